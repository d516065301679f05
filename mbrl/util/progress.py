"""Progress bars with live metrics: tqdm on a terminal, plain periodic lines in a log.

>>> bar = progress(num_episodes, "PETS")
>>> for episode in bar:
...     bar.set_postfix(ret=episode_return, loss=model_loss)

On a terminal this is a :class:`tqdm.tqdm` bar. When the output stream is not a terminal (CI
logs, ``nohup``, a sweep's trial logs) a redrawn bar would leave one line per step in the log, so
:func:`progress` returns a :class:`LogProgress` instead: the same interface, writing one plain
line (description, count/total, rate, postfix) at most every ``MBRL_PROGRESS_INTERVAL`` seconds
(default 10) and a final line when the bar closes.

Environment variables:

- ``MBRL_NO_PROGRESS=1`` turns every bar off (``bar.write`` messages still appear).
- ``MBRL_PROGRESS_INTERVAL=S`` seconds between two lines off a terminal (a float >= 0).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm import tqdm

__all__ = [
    "DEFAULT_LOG_INTERVAL",
    "LogProgress",
    "log_interval",
    "progress",
    "progress_disabled",
]

DEFAULT_LOG_INTERVAL = 10.0
"""Seconds between two progress lines off a terminal, unless ``MBRL_PROGRESS_INTERVAL`` is set."""

_clock = time.monotonic  # replaced in tests


def progress_disabled() -> bool:
    """True when ``MBRL_NO_PROGRESS`` is set to a true value (``1``, ``true``, ``yes``)."""
    return os.environ.get("MBRL_NO_PROGRESS", "").strip().lower() in ("1", "true", "yes", "on")


def log_interval() -> float:
    """Seconds between progress lines off a terminal: ``MBRL_PROGRESS_INTERVAL`` or 10."""
    raw = os.environ.get("MBRL_PROGRESS_INTERVAL", "").strip()
    if not raw:
        return DEFAULT_LOG_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"MBRL_PROGRESS_INTERVAL: expected a number of seconds >= 0, got {raw!r}"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"MBRL_PROGRESS_INTERVAL: expected a number of seconds >= 0, got {raw!r}")
    return value


def _is_tty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # a closed or detached stream
        return False


def progress(
    iterable_or_total: Iterable[Any] | int | None = None, desc: str | None = None, **kw: Any
) -> tqdm | LogProgress:
    """A progress bar over an iterable, or over ``range(n)`` when given an int ``n``.

    For manual updates, pass ``None`` and ``total=n``, then call ``bar.update(k)``.
    Extra keyword arguments go to :class:`tqdm.tqdm` (``disable=``, ``leave=``, ``unit=``,
    ``initial=``, ``file=`` ...); ``MBRL_NO_PROGRESS=1`` forces ``disable=True``.
    When the output stream (``file=``, default ``sys.stderr``) is not a terminal, the bar is a
    :class:`LogProgress` that prints a line at most every :func:`log_interval` seconds.
    """
    if isinstance(iterable_or_total, bool):
        raise TypeError("iterable_or_total: expected an iterable, an int or None, got a bool")
    if isinstance(iterable_or_total, int):
        if iterable_or_total < 0:
            raise ValueError(
                f"iterable_or_total: expected a non-negative int, got {iterable_or_total}"
            )
        iterable_or_total = range(iterable_or_total)
    if progress_disabled():
        kw["disable"] = True
    stream = kw.get("file") if kw.get("file") is not None else sys.stderr
    if not kw.get("disable", False) and not _is_tty(stream):
        return LogProgress(iterable_or_total, desc, interval=log_interval(), **kw)
    kw.setdefault("dynamic_ncols", True)
    return tqdm(iterable_or_total, desc=desc, **kw)


class LogProgress:
    """A tqdm-compatible progress reporter for logs: one plain line per ``interval`` seconds.

    Supports what the toolkit's loops use: iteration, ``update``, ``set_postfix``,
    ``set_postfix_str``, ``set_description``, ``write``, ``refresh``, ``reset``, ``close`` and
    use as a context manager. A line looks like::

        PETS pendulum: 1200/2000 (60%), 41.3 it/s, 29 s elapsed, ~19 s left | trial=3, ret=45.1

    A final line is written on ``close`` (unless ``leave=False``, as tqdm erases such a bar).
    tqdm's display-only keywords (``dynamic_ncols``, ``ncols``, ``mininterval``, ``position``...)
    are accepted and ignored.

    Args:
        iterable: what to iterate over, or ``None`` for manual ``update`` calls.
        desc: the description at the start of each line.
        total: the expected count (default ``len(iterable)`` where it has one).
        initial: the starting count (e.g. steps already done by a resumed run).
        interval: seconds between two lines (>= 0); 0 writes a line on every update.
        file: the output stream (default ``sys.stderr``).
        leave: write a final line on ``close``.
        unit: the name of one step, in the rate (``it`` by default).
        disable: write nothing but ``write`` messages.
    """

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        desc: str | None = None,
        *,
        total: float | None = None,
        initial: float = 0,
        interval: float = DEFAULT_LOG_INTERVAL,
        file: TextIO | None = None,
        leave: bool | None = True,
        unit: str = "it",
        disable: bool = False,
        **_display_only: Any,
    ) -> None:
        if not (isinstance(interval, int | float) and math.isfinite(interval) and interval >= 0):
            raise ValueError(f"interval: expected a number of seconds >= 0, got {interval!r}")
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable = iterable
        self.desc = desc or ""
        self.total = total
        self.n = initial
        self.initial = initial
        self.interval = float(interval)
        self.file = file
        self.leave = leave is None or bool(leave)
        self.unit = unit
        self.disable = bool(disable)
        self.postfix = ""
        self.start_t = _clock()
        self.last_print_t = self.start_t
        self.last_print_n = initial
        self.closed = False

    # -- the tqdm interface -------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("LogProgress: no iterable given; use update() for manual counts")
        try:
            for obj in self.iterable:
                yield obj
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        if self.total is not None:
            return int(self.total)
        return len(self.iterable)  # type: ignore[arg-type]

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> bool | None:
        """Add ``n`` to the count; write a line if ``interval`` seconds passed since the last."""
        self.n += n
        if self.disable or self.closed:
            return None
        if _clock() - self.last_print_t >= self.interval and self.n != self.last_print_n:
            self._print_status()
            return True
        return None

    def set_postfix(
        self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any
    ) -> None:
        """Set the metrics at the end of each line (``key=value, ...``, as tqdm formats them).

        ``refresh`` is accepted for tqdm compatibility; lines are written by ``update``/``close``.
        """
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={_format_value(v)}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Set the end of each line to ``s``."""
        self.postfix = str(s)

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        """Set the description at the start of each line."""
        self.desc = desc or ""

    set_description_str = set_description

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        """No-op: a log is written at intervals, not redrawn."""

    def clear(self, *args: Any, **kwargs: Any) -> None:
        """No-op: nothing to erase in a log."""

    def reset(self, total: float | None = None) -> None:
        """Restart the count at 0 (and the clock), optionally with a new ``total``."""
        self.n = self.last_print_n = 0
        self.initial = 0
        if total is not None:
            self.total = total
        self.start_t = self.last_print_t = _clock()

    @classmethod
    def write(cls, s: str, file: TextIO | None = None, end: str = "\n", nolock: bool = False):
        """Print a message on its own line (``file`` defaults to ``sys.stdout``, as tqdm's)."""
        fp = file if file is not None else sys.stdout
        fp.write(f"{s}{end}")
        fp.flush()

    def close(self) -> None:
        """Write the final line (if ``leave``); later updates write nothing."""
        if self.closed:
            return
        self.closed = True
        if not self.disable and self.leave:
            self._print_status(final=True)

    # -- formatting ---------------------------------------------------------------------------
    def status_line(self, final: bool = False) -> str:
        """The line written now, without the newline."""
        elapsed = _clock() - self.start_t
        done = self.n - self.initial
        rate = done / elapsed if elapsed > 0 else math.nan
        count = _format_count(self.n)
        if self.total is not None:
            count += f"/{_format_count(self.total)}"
            if self.total > 0:
                count += f" ({100.0 * self.n / self.total:.0f}%)"
        parts = [count]
        if math.isfinite(rate):
            parts.append(f"{tqdm.format_sizeof(rate)}{self.unit}/s")
        timing = f"{_format_seconds(elapsed)} elapsed"
        if not final and self.total is not None and rate > 0 and self.n < self.total:
            timing += f", ~{_format_seconds((self.total - self.n) / rate)} left"
        parts.append(timing)
        head = f"{self.desc}: " if self.desc else ""
        line = head + ", ".join(parts)
        if final:
            line += " (done)"
        return f"{line} | {self.postfix}" if self.postfix else line

    def _print_status(self, final: bool = False) -> None:
        fp = self.file if self.file is not None else sys.stderr
        fp.write(self.status_line(final) + "\n")
        fp.flush()
        self.last_print_t, self.last_print_n = _clock(), self.n


def _format_count(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else f"{n:.4g}"


def _format_value(v: Any) -> str:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return tqdm.format_num(v)  # as tqdm formats a postfix number
    return str(v)


def _format_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
