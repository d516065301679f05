"""Sweep grids from command-line overrides: ``seed=0,1,2 planner=cem,icem`` -> 6 points.

An argument ``KEY=V1,V2,...`` with more than one value is an *axis* of the grid; an argument with
one value is a fixed override applied to every point. Values are split on the commas that are not
inside brackets (``[]``, ``{}``, ``()``) or quotes, so a list value stays whole::

    planner.obs_cost_weights=[1,2]            one value: the list [1, 2] (a fixed override)
    planner.obs_cost_weights=[1,2],[3,4]      an axis of two lists
    run_name="a,b"                            one quoted value

Each value is kept as the text the user typed (the config loader parses it as YAML), so a point
becomes ordinary ``KEY=VALUE`` overrides. The grid is the Cartesian product of the axes in the
order they were given, the last axis varying fastest.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Grid",
    "SweepSyntaxError",
    "expand_grid",
    "parse_grid",
    "point_slug",
    "safe_name",
    "split_values",
]

_OPEN = {"[": "]", "{": "}", "(": ")"}
_CLOSE = {v: k for k, v in _OPEN.items()}
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


class SweepSyntaxError(ValueError):
    """A sweep argument is malformed (the message names the argument)."""


@dataclass(frozen=True)
class Grid:
    """A parsed sweep: its axes and the overrides every point shares.

    Attributes:
        axes: ``((key, (value text, ...)), ...)`` in the order given; each has >= 2 values.
        fixed: ``("key=value", ...)`` overrides applied to every point, in the order given.
    """

    axes: tuple[tuple[str, tuple[str, ...]], ...]
    fixed: tuple[str, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        """The swept keys, in order."""
        return tuple(key for key, _ in self.axes)

    def __len__(self) -> int:
        n = 1
        for _, values in self.axes:
            n *= len(values)
        return n


def split_values(arg: str) -> tuple[str, list[str]]:
    """Split ``"key=v1,v2"`` into ``("key", ["v1", "v2"])`` at top-level commas.

    Raises:
        SweepSyntaxError: no ``=``, an empty key or key part, an empty value, unbalanced
            brackets or an unterminated quote; the message names ``arg``.
    """
    if not isinstance(arg, str) or "=" not in arg:
        raise SweepSyntaxError(f"sweep argument {arg!r}: expected KEY=VALUE[,VALUE...]")
    key, text = arg.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise SweepSyntaxError(f"sweep argument {arg!r}: empty key or key part")
    values, start, stack, quote = [], 0, [], ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            stack.append(ch)
        elif ch in _CLOSE:
            if not stack or stack[-1] != _CLOSE[ch]:
                raise SweepSyntaxError(
                    f"sweep argument {arg!r}: unbalanced {ch!r} at value position {i}"
                )
            stack.pop()
        elif ch == "," and not stack:
            values.append(text[start:i])
            start = i + 1
    if quote:
        raise SweepSyntaxError(f"sweep argument {arg!r}: unterminated {quote} quote")
    if stack:
        raise SweepSyntaxError(f"sweep argument {arg!r}: unclosed {stack[-1]!r}")
    values.append(text[start:])
    values = [v.strip() for v in values]
    if len(values) > 1 and any(not v for v in values):
        raise SweepSyntaxError(f"sweep argument {arg!r}: empty value in the comma list")
    return key, values


def parse_grid(args: Sequence[str], reserved: Sequence[str] = ()) -> Grid:
    """Parse sweep arguments into a :class:`Grid`.

    Args:
        args: ``KEY=VALUE[,VALUE...]`` strings.
        reserved: keys the sweep sets itself (e.g. ``run_root``); giving one is an error.

    Raises:
        SweepSyntaxError: a malformed argument (see :func:`split_values`), a key given twice,
            a reserved key, or a value repeated within one axis.
    """
    if isinstance(args, str):
        raise TypeError("args: expected a sequence of 'KEY=VALUE' strings, got one string")
    axes: list[tuple[str, tuple[str, ...]]] = []
    fixed: list[str] = []
    seen: set[str] = set()
    for arg in args:
        key, values = split_values(arg)
        if key in seen:
            raise SweepSyntaxError(f"sweep argument {arg!r}: key {key!r} is given twice")
        if key in reserved:
            raise SweepSyntaxError(
                f"sweep argument {arg!r}: the sweep sets {key!r} itself (one per trial)"
            )
        seen.add(key)
        if len(values) == 1:
            fixed.append(f"{key}={values[0]}")
            continue
        if len(set(values)) != len(values):
            raise SweepSyntaxError(f"sweep argument {arg!r}: a value is repeated")
        axes.append((key, tuple(values)))
    return Grid(axes=tuple(axes), fixed=tuple(fixed))


def expand_grid(grid: Grid) -> list[dict[str, str]]:
    """Every point of ``grid`` as ``{key: value text}`` (one empty point when it has no axes)."""
    keys = grid.keys
    return [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*(values for _, values in grid.axes))
    ]


def safe_name(text: str, limit: int = 80) -> str:
    """``text`` with every run of characters other than letters, digits and ``._=+-`` replaced
    by ``-`` (a folder name on any OS), at most ``limit`` characters."""
    return _SLUG_UNSAFE.sub("-", text).strip("-")[:limit]


def point_slug(point: dict[str, str], limit: int = 80) -> str:
    """A folder-name-safe label of a point: ``"seed=0_planner=cem"`` (at most ``limit`` chars)."""
    return safe_name("_".join(f"{k}={v}" for k, v in point.items()), limit)
