"""Scalar metric logging to CSV files and TensorBoard.

Files written under ``run_dir`` (all pandas-friendly):

* ``metrics.csv`` — every scalar of every group in **long format**, one row per value, columns
  ``timestamp, group, step, key, value``. Append-only, so new keys never need a header change::

      df = pd.read_csv(run / "metrics.csv")
      df[df.group == "eval"].pivot_table(index="step", columns="key", values="value")

* ``<group>.csv`` (e.g. ``train.csv``, ``eval.csv``) — the same values in **wide format**, one
  row per :meth:`Logger.log` call, columns ``step, timestamp, <keys in first-seen order>``.
  When a key appears that the file does not have yet, the file is rewritten atomically with the
  extra column (earlier rows get an empty cell). ``pd.read_csv(run / "eval.csv")`` and
  :func:`mbrl.util.plotting.plot_curves` read it directly.

* ``tb/`` — TensorBoard event files with scalars named ``<group>/<key>``
  (``tensorboard --logdir runs``).

``timestamp`` is Unix time in seconds (so a metric may itself be called ``wall_time``).
The keys ``step`` and ``timestamp`` are reserved for the index columns. NaN and infinite
values are written as ``nan``/``inf``.
Re-opening a Logger on an existing run directory appends to its files (resuming a run).
A resumed run first calls :func:`rewind_logs` with the :func:`log_row_counts` saved in its
checkpoint, so rows logged after that checkpoint are not duplicated when the work is redone.
"""

from __future__ import annotations

import csv
import math
import numbers
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from mbrl.util.io import atomic_open

__all__ = ["GroupLogger", "Logger", "log_row_counts", "rewind_logs"]

_GROUP_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_LONG_HEADER = ["timestamp", "group", "step", "key", "value"]
_RESERVED_COLUMNS = ("step", "timestamp")


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


class Logger:
    """Log scalar metrics of named groups to CSV (long and wide) and TensorBoard.

    Args:
        run_dir: folder to write into (created if missing).
        tensorboard: also write TensorBoard scalars under ``run_dir/tb``.

    Use as a context manager, or call :meth:`close` when done.
    """

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._closed = False
        self._long_path = self.run_dir / "metrics.csv"
        new_long = not self._long_path.exists() or self._long_path.stat().st_size == 0
        self._long_file: IO[str] = open(self._long_path, "a", newline="")  # noqa: SIM115
        self._long_writer = csv.writer(self._long_file, lineterminator="\n")
        if new_long:
            self._long_writer.writerow(_LONG_HEADER)
            self._long_file.flush()
        self._columns: dict[str, list[str]] = {}  # group -> wide CSV columns
        self._last: dict[str, dict[str, float]] = {}
        self._tb: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.run_dir / "tb"))

    # ------------------------------------------------------------------------------------
    def csv_path(self, group: str = "train") -> Path:
        """Path of the wide CSV file of ``group``: ``run_dir/<group>.csv``."""
        self._check_group(group)
        return self.run_dir / f"{group}.csv"

    @property
    def metrics_path(self) -> Path:
        """Path of the long-format ``metrics.csv``."""
        return self._long_path

    def last(self, group: str = "train") -> dict[str, float]:
        """The most recent value of every key logged in ``group`` (empty if none)."""
        return dict(self._last.get(group, {}))

    def log(self, metrics: Mapping[str, Any], step: int, group: str = "train") -> None:
        """Log scalars ``metrics`` (name -> number) at integer ``step`` under ``group``.

        Values may be Python/numpy numbers or one-element tensors; NaN/inf are recorded as such.
        Raises ``ValueError``/``TypeError`` naming the offending key for non-scalar values, bad
        keys, a bad group name or a non-integer step.
        """
        if self._closed:
            raise RuntimeError("Logger.log: the logger is closed")
        self._check_group(group)
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TypeError(f"step: expected an int, got {type(step).__name__} {step!r}")
        step = int(step)
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics: expected a mapping of name -> number, got {type(metrics)}")
        values: dict[str, float] = {}
        for key, value in metrics.items():
            if not isinstance(key, str) or not key or key.strip() != key:
                raise ValueError(f"metrics: invalid key {key!r} (non-empty string expected)")
            if key in _RESERVED_COLUMNS:
                raise ValueError(f"metrics: key {key!r} is reserved for the CSV index column")
            values[key] = self._to_float(key, value)
        if not values:
            return
        now = time.time()
        for key, value in values.items():
            self._long_writer.writerow([f"{now:.3f}", group, step, key, _format_value(value)])
        self._long_file.flush()
        self._write_wide(group, step, now, values)
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(f"{group}/{key}", value, global_step=step, walltime=now)
        self._last.setdefault(group, {}).update(values)

    def flush(self) -> None:
        """Flush buffered TensorBoard events (CSV rows are flushed on every :meth:`log`)."""
        if self._tb is not None:
            self._tb.flush()
        if not self._long_file.closed:
            self._long_file.flush()

    def close(self) -> None:
        """Flush and close all files. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._long_file.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001  (interpreter shutdown)
            pass

    # ------------------------------------------------------------------------------------
    @staticmethod
    def _check_group(group: str) -> None:
        if not isinstance(group, str) or not _GROUP_RE.match(group):
            raise ValueError(
                f"group: expected a file-name-safe name (letters, digits, '_', '-', '.'), "
                f"got {group!r}"
            )
        if group == "metrics":
            raise ValueError("group: 'metrics' is reserved for the long-format metrics.csv")

    @staticmethod
    def _to_float(key: str, value: Any) -> float:
        if isinstance(value, bool):
            return float(value)
        if hasattr(value, "numel") and callable(value.numel):  # torch tensor
            if value.numel() != 1:
                raise ValueError(f"metrics[{key!r}]: expected a scalar, got shape {value.shape}")
            value = value.item()
        elif hasattr(value, "size") and hasattr(value, "item") and not isinstance(value, str):
            if value.size != 1:  # numpy array
                raise ValueError(f"metrics[{key!r}]: expected a scalar, got shape {value.shape}")
            value = value.item()
        if isinstance(value, numbers.Real):
            return float(value)
        raise TypeError(f"metrics[{key!r}]: expected a real number, got {type(value).__name__}")

    def _read_header(self, path: Path) -> list[str]:
        with open(path, newline="") as f:
            header = next(csv.reader(f), None)
        if not header or header[: len(_RESERVED_COLUMNS)] != list(_RESERVED_COLUMNS):
            raise ValueError(f"{path}: not a metrics CSV written by Logger (header {header!r})")
        return header

    def _write_wide(self, group: str, step: int, now: float, values: dict[str, float]) -> None:
        path = self.run_dir / f"{group}.csv"
        columns = self._columns.get(group)
        if columns is None:
            if path.exists() and path.stat().st_size > 0:
                columns = self._read_header(path)
            else:
                columns = list(_RESERVED_COLUMNS)
                with atomic_open(path, "w") as f:
                    csv.writer(f, lineterminator="\n").writerow(columns)
            self._columns[group] = columns
        new_keys = [k for k in values if k not in columns]
        if new_keys:
            columns = columns + new_keys
            self._rewrite_with_columns(path, columns)
            self._columns[group] = columns
        row = [str(step), f"{now:.3f}"] + [
            _format_value(values[c]) if c in values else "" for c in columns[2:]
        ]
        with open(path, "a", newline="") as f:
            csv.writer(f, lineterminator="\n").writerow(row)

    @staticmethod
    def _rewrite_with_columns(path: Path, columns: list[str]) -> None:
        """Rewrite ``path`` atomically with header ``columns`` (old rows padded with blanks)."""
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        with atomic_open(path, "w") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(columns)
            for row in rows[1:]:
                writer.writerow(row + [""] * (len(columns) - len(row)))


class GroupLogger:
    """``log(metrics, step)`` into one group of a :class:`Logger` (``/`` in keys becomes ``_``).

    Hands a single-group logger to components that log on their own, such as
    :class:`mbrl.models.ModelTrainer` (``GroupLogger(run.logger, "model_epochs")``).
    """

    def __init__(self, logger: Logger, group: str) -> None:
        Logger._check_group(group)
        self.logger = logger
        self.group = group

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Log ``metrics`` at ``step`` under this adapter's group."""
        self.logger.log({k.replace("/", "_"): v for k, v in metrics.items()}, step, self.group)


def _logger_csvs(run_dir: Path) -> list[Path]:
    """The CSV files in ``run_dir`` that a :class:`Logger` wrote (judged by their header)."""
    found = []
    for path in sorted(run_dir.glob("*.csv")):
        with open(path, newline="") as f:
            header = next(csv.reader(f), None)
        if header == _LONG_HEADER or (header and header[:2] == list(_RESERVED_COLUMNS)):
            found.append(path)
    return found


def log_row_counts(run_dir: str | Path) -> dict[str, int]:
    """``{file name: data rows}`` of every Logger CSV in ``run_dir`` (saved in checkpoints)."""
    counts = {}
    for path in _logger_csvs(Path(run_dir)):
        with open(path, newline="") as f:
            counts[path.name] = max(0, sum(1 for _ in csv.reader(f)) - 1)
    return counts


def rewind_logs(
    run_dir: str | Path, counts: Mapping[str, int], *, tensorboard: bool = True
) -> None:
    """Cut the run's logs back to ``counts`` (from :func:`log_row_counts`) before resuming.

    Each Logger CSV keeps its header and its first ``counts[name]`` rows (a row cut short by a
    kill is dropped); a CSV not in ``counts`` was started after the checkpoint and is removed.
    The TensorBoard events are rebuilt from the rewound ``metrics.csv``, so no point is doubled.
    Call it while no Logger is open on ``run_dir``.
    """
    run_dir = Path(run_dir)
    for path in _logger_csvs(run_dir):
        keep = counts.get(path.name)
        if keep is None:
            path.unlink()
            continue
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        if len(rows) - 1 == keep and path.read_bytes().endswith(b"\n"):
            continue
        with atomic_open(path, "w") as out:
            csv.writer(out, lineterminator="\n").writerows(rows[: keep + 1])
    tb_dir = run_dir / "tb"
    if tb_dir.exists():
        import shutil

        shutil.rmtree(tb_dir)
    long_path = run_dir / "metrics.csv"
    if not tensorboard or not long_path.exists():
        return
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tb_dir))
    try:
        with open(long_path, newline="") as f:
            for row in csv.DictReader(f):
                writer.add_scalar(
                    f"{row['group']}/{row['key']}",
                    float(row["value"]),
                    global_step=int(row["step"]),
                    walltime=float(row["timestamp"]),
                )
    finally:
        writer.close()
