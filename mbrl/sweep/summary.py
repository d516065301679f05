"""A sweep's results: one row per trial, one row per setting, and mean ± std return curves.

Returns are read from the trial's run directory, from the first of the logs in
:data:`mbrl.util.plotting.RETURN_LOGS` that it has (the table ``mbrl plot`` reads too):
``trial.csv`` (PETS: the return of each MPC trial), ``eval.csv`` (SAC and MBPO: the
deterministic policy's evaluation return), ``iteration.csv`` (GPS: the distilled policy's
return per iteration, x = iteration), then ``episode.csv`` (the training episodes). The *final*
return is the last finite logged value, the *best* the largest; x is the log's ``x`` column.

Trials of one *setting* differ only in keys of :data:`mbrl.util.plotting.NON_SETTING_KEYS`
(``seed`` above all): the grouping ``mbrl plot`` uses. Standard deviations are over a setting's
finished trials, population (``ddof=0``) as in ``mbrl plot``'s bands.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mbrl.sweep.state import SweepPlan, TrialStatus, read_plan, read_status
from mbrl.util.io import atomic_open
from mbrl.util.plotting import NON_SETTING_KEYS, find_return_log, mean_std_band

__all__ = [
    "ReturnCurve",
    "SettingRow",
    "SweepSummary",
    "TrialRow",
    "aggregate",
    "read_returns",
    "summarize",
]


@dataclass(frozen=True)
class ReturnCurve:
    """Returns logged by a run: ``x`` (environment steps) and ``returns``, each ``(K,)``,
    finite values only, from the file ``source``."""

    source: str
    x: np.ndarray
    returns: np.ndarray


@dataclass(frozen=True)
class TrialRow:
    """One trial in ``summary.csv``: its point, status, returns (NaN when none were logged)."""

    index: int
    name: str
    point: dict[str, str]
    status: str
    final_return: float
    best_return: float
    env_steps: float
    returns_from: str
    wall_time_s: float | None
    run_dir: str | None
    error: str | None
    curve: ReturnCurve | None


@dataclass(frozen=True)
class SettingRow:
    """One setting in ``settings.csv``: the swept keys that define it, its trial counts, and
    mean and std (``ddof=0``) of the final and best returns of its finished trials."""

    setting: dict[str, str]
    trials: int
    done: int
    failed: int
    final_mean: float
    final_std: float
    best_mean: float
    best_std: float

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.setting.items()) or "all trials"


@dataclass(frozen=True)
class SweepSummary:
    """What :func:`summarize` wrote and read."""

    trials: tuple[TrialRow, ...]
    settings: tuple[SettingRow, ...]
    csv: Path
    settings_csv: Path
    png: Path | None
    svg: Path | None


def read_returns(run_dir: str | Path) -> ReturnCurve | None:
    """The return curve of a run directory (first log of
    :data:`mbrl.util.plotting.RETURN_LOGS` it has), or ``None`` when it has none with a finite
    return. Raises ``ValueError`` for a log without its columns."""
    found = find_return_log(run_dir)
    if found is None:
        return None
    log, columns = found
    x, y = columns[log.x], columns[log.y]
    keep = np.isfinite(y) & np.isfinite(x)
    return ReturnCurve(log.file, x[keep], y[keep]) if keep.any() else None


def _trial_row(sweep_dir: Path, index: int, name: str, point: dict[str, str]) -> TrialRow:
    status: TrialStatus = read_status(sweep_dir, name)
    error = status.error
    try:
        curve = read_returns(status.run_dir) if status.run_dir else None
    except (OSError, ValueError) as exc:  # one damaged log must not hide the other trials
        curve = None
        error = "; ".join(e for e in (error, f"returns not readable: {exc}") if e)
    nan = math.nan
    return TrialRow(
        index=index,
        name=name,
        point=dict(point),
        status=status.status,
        final_return=float(curve.returns[-1]) if curve else nan,
        best_return=float(curve.returns.max()) if curve else nan,
        env_steps=float(curve.x[-1]) if curve else nan,
        returns_from=curve.source if curve else "",
        wall_time_s=status.wall_time_s,
        run_dir=status.run_dir,
        error=error,
        curve=curve,
    )


def aggregate(
    rows: Sequence[TrialRow], ignore: frozenset[str] = NON_SETTING_KEYS
) -> list[SettingRow]:
    """Group trials whose points agree outside ``ignore`` (seeds of one setting), in
    first-seen order; mean and std over each group's ``done`` trials with a logged return."""
    groups: dict[tuple[tuple[str, str], ...], list[TrialRow]] = {}
    for row in rows:
        key = tuple((k, v) for k, v in row.point.items() if k not in ignore)
        groups.setdefault(key, []).append(row)
    settings = []
    for key, members in groups.items():
        done = [r for r in members if r.status == "done" and math.isfinite(r.final_return)]
        final = np.array([r.final_return for r in done])
        best = np.array([r.best_return for r in done])
        stats = [float(a.mean()) if a.size else math.nan for a in (final, best)]
        stds = [float(a.std()) if a.size else math.nan for a in (final, best)]
        settings.append(
            SettingRow(
                setting=dict(key),
                trials=len(members),
                done=sum(r.status == "done" for r in members),
                failed=sum(r.status == "error" for r in members),
                final_mean=stats[0],
                final_std=stds[0],
                best_mean=stats[1],
                best_std=stds[1],
            )
        )
    return settings


def summarize(sweep_dir: str | Path, plan: SweepPlan | None = None) -> SweepSummary:
    """Read every trial's status and returns; write ``summary.csv``, ``settings.csv`` and
    (when some trial logged returns) ``returns.png`` and ``returns.svg`` in ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    plan = plan if plan is not None else read_plan(sweep_dir)
    rows = [_trial_row(sweep_dir, t.index, t.name, t.point) for t in plan.trials]
    settings = aggregate(rows)
    out_csv = _write_trials_csv(sweep_dir / "summary.csv", plan.keys, rows)
    setting_keys = [k for k in plan.keys if k not in NON_SETTING_KEYS]
    out_settings = _write_settings_csv(sweep_dir / "settings.csv", setting_keys, settings)
    png = svg = None
    if any(r.curve is not None for r in rows):
        png, svg = _plot(sweep_dir / "returns", rows, plan.algorithm.name)
    return SweepSummary(tuple(rows), tuple(settings), out_csv, out_settings, png, svg)


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


def _write_trials_csv(path: Path, keys: Sequence[str], rows: Sequence[TrialRow]) -> Path:
    header = ["index", "trial", *keys, "status", "final_return", "best_return", "env_steps"]
    header += ["returns_from", "wall_time_s", "run_dir", "error"]
    with atomic_open(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for r in rows:
            writer.writerow(
                [r.index, r.name, *(r.point.get(k, "") for k in keys), r.status]
                + [_fmt(r.final_return), _fmt(r.best_return), _fmt(r.env_steps)]
                + [r.returns_from, _fmt(r.wall_time_s), r.run_dir or "", r.error or ""]
            )
    return path


def _write_settings_csv(path: Path, keys: Sequence[str], settings: Sequence[SettingRow]) -> Path:
    header = [*keys, "trials", "done", "failed", "final_mean", "final_std", "best_mean"]
    header.append("best_std")
    with atomic_open(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for s in settings:
            stats = [s.final_mean, s.final_std, s.best_mean, s.best_std]
            writer.writerow(
                [s.setting.get(k, "") for k in keys]
                + [s.trials, s.done, s.failed, *(_fmt(v) for v in stats)]
            )
    return path


def _plot(out: Path, rows: Sequence[TrialRow], algorithm: str) -> tuple[Path, Path]:
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups: dict[str, list[ReturnCurve]] = {}
    for setting in aggregate(rows):
        members = [
            r.curve
            for r in rows
            if r.curve is not None and all(r.point.get(k) == v for k, v in setting.setting.items())
        ]
        if members:
            groups[setting.label] = members
    fig = Figure(figsize=(7.5, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    cmap = colormaps["tab10" if len(groups) <= 10 else "viridis"]
    for i, (label, curves) in enumerate(groups.items()):
        color = cmap(i if len(groups) <= 10 else i / max(len(groups) - 1, 1))
        band = mean_std_band([c.x for c in curves], [c.returns for c in curves], True)
        n = len(curves)
        text = label if n == 1 else f"{label} (mean ± std, {n} runs)"
        ax.plot(
            band.x, band.mean, color=color, label=text, marker="." if band.x.size < 30 else None
        )
        if n > 1:
            ax.fill_between(
                band.x, band.mean - band.std, band.mean + band.std, color=color, alpha=0.2
            )
    sources = sorted({c.source for curves in groups.values() for c in curves})
    ax.set_xlabel("environment steps")
    ax.set_ylabel(f"return ({', '.join(sources)})")
    ax.set_title(f"{algorithm} sweep")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    written = []
    for fmt in ("png", "svg"):
        target = out.with_name(f"{out.name}.{fmt}")
        with atomic_open(target, "wb") as f:
            fig.savefig(f, format=fmt)
        written.append(target)
    return written[0], written[1]
