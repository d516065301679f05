"""Learning-curve plots from the wide CSV files written by :class:`mbrl.util.logger.Logger`.

Uses matplotlib's object-oriented API with the Agg canvas, so it never touches the global
pyplot backend and works on machines without a display.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mbrl.util.io import atomic_open

__all__ = ["plot_curves", "read_csv_columns"]


def read_csv_columns(csv_path: str | Path) -> dict[str, np.ndarray]:
    """Read a wide CSV into ``{column: float array}``; empty cells become NaN.

    Raises ``FileNotFoundError`` if missing and ``ValueError`` on non-numeric cells.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"csv_path: no such file {str(csv_path)!r}")
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"csv_path: {str(csv_path)!r} is empty")
    header, body = rows[0], rows[1:]
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        values = []
        for i, row in enumerate(body):
            cell = row[j] if j < len(row) else ""
            try:
                values.append(float(cell) if cell != "" else math.nan)
            except ValueError:
                raise ValueError(
                    f"{csv_path}: row {i + 2}, column {name!r}: not a number: {cell!r}"
                ) from None
        columns[name] = np.asarray(values, dtype=np.float64)
    return columns


def plot_curves(
    csv_path: str | Path | Sequence[str | Path],
    x: str,
    ys: str | Sequence[str],
    out_png: str | Path,
    *,
    title: str | None = None,
    ylabel: str | None = None,
    hlines: Mapping[str, float] | None = None,
    integer_x: bool = False,
) -> Path:
    """Plot columns ``ys`` against column ``x`` of one or more wide CSV files into ``out_png``.

    Rows where a ``y`` value is empty or NaN are skipped for that curve. With several CSV
    files (e.g. one per seed), each curve is labelled ``<parent folder name>: <y>``.

    Args:
        csv_path: a CSV path, or a sequence of them.
        x: name of the x column (e.g. ``"step"``).
        ys: name(s) of the y columns (e.g. ``["episode_return"]``).
        out_png: output image path (written atomically; the format follows the suffix).
        hlines: labelled horizontal reference lines, e.g. ``{"random policy": -41.5}``.
        integer_x: put ticks on integer x values only (e.g. for trial numbers).

    Returns:
        ``Path(out_png)``.
    """
    paths = [Path(csv_path)] if isinstance(csv_path, str | Path) else [Path(p) for p in csv_path]
    if not paths:
        raise ValueError("csv_path: expected at least one CSV file")
    ys = [ys] if isinstance(ys, str) else list(ys)
    if not ys:
        raise ValueError("ys: expected at least one column name")
    out_png = Path(out_png)
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for path in paths:
        columns = read_csv_columns(path)
        for name in [x, *ys]:
            if name not in columns:
                raise ValueError(
                    f"{path}: no column {name!r}; available columns: {', '.join(columns)}"
                )
        for y in ys:
            xv, yv = columns[x], columns[y]
            keep = np.isfinite(xv) & np.isfinite(yv)
            label = y if len(paths) == 1 else f"{path.parent.name}: {y}"
            ax.plot(xv[keep], yv[keep], label=label)
    for label, value in (hlines or {}).items():
        ax.axhline(value, linestyle="--", color="gray", label=label)
    if integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel if ylabel is not None else (ys[0] if len(ys) == 1 else "value"))
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if len(ys) > 1 or len(paths) > 1 or hlines:
        ax.legend()
    fig.tight_layout()
    fmt = out_png.suffix.lstrip(".") or "png"
    with atomic_open(out_png, "wb") as f:
        fig.savefig(f, format=fmt)
    return out_png
