"""Learning-curve plots from the wide CSV files written by :class:`mbrl.util.logger.Logger`.

:func:`plot_curves` draws columns of one or more CSV files; :func:`plot_runs` (``mbrl plot``)
compares run directories, grouping the seeds of one setting into mean ± std bands.

Uses matplotlib's object-oriented API with the Agg canvas, so it never touches the global
pyplot backend and works on machines without a display.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mbrl.util.io import atomic_open

__all__ = [
    "NON_SETTING_KEYS",
    "Band",
    "PlotResult",
    "RunCurves",
    "RunGroup",
    "flatten_config",
    "group_runs",
    "load_run_curves",
    "mean_std_band",
    "plot_curves",
    "plot_runs",
    "read_csv_columns",
]


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


# -- comparing run directories: ``mbrl plot RUN_DIR [RUN_DIR ...]`` ---------------------------

NON_SETTING_KEYS = frozenset(
    {
        "seed",
        "run_root",
        "run_name",
        "progress",
        "checkpoint_every",
        "keep_checkpoints",
        "record_video_every",
    }
)
"""Config keys that do not change what a run computes (or, for ``seed``, that runs of one setting
differ in): runs whose other keys are equal form one group."""

X_AXES = ("env_steps", "trials")


@dataclass(frozen=True)
class RunCurves:
    """The curves of one run directory (arrays of equal length within each pair).

    Attributes:
        run_dir: the run directory.
        settings: its ``config.yaml`` flattened to dotted keys (``{"planner.name": "cem", ...}``).
        trials, env_steps, returns, plan_time: ``trial.csv`` columns, one entry per trial;
            ``env_steps`` counts steps at the end of the trial, ``plan_time`` is in seconds/step
            (NaN where the run did not log it).
        trial_holdout_mse: the model's holdout MSE after each trial (``trial.csv``).
        model_steps, model_holdout_mse: every training round (``model.csv``; empty if absent).
        random_returns: returns of the random-policy episodes (``random.csv``; empty if absent).
    """

    run_dir: Path
    settings: dict[str, Any]
    trials: np.ndarray
    env_steps: np.ndarray
    returns: np.ndarray
    plan_time: np.ndarray
    trial_holdout_mse: np.ndarray
    model_steps: np.ndarray
    model_holdout_mse: np.ndarray
    random_returns: np.ndarray


@dataclass(frozen=True)
class RunGroup:
    """Runs that differ only in :data:`NON_SETTING_KEYS` (e.g. seeds of one setting).

    ``label`` names the settings that tell this group from the others (``"planner.name=icem"``),
    or the task when every run has the same settings.
    """

    label: str
    settings: dict[str, Any]
    runs: tuple[RunCurves, ...]


@dataclass(frozen=True)
class Band:
    """Mean and standard deviation over the runs of a group on a common x grid, each ``(K,)``.

    ``count[k]`` runs cover ``x[k]``; ``std`` is 0 where only one does.
    """

    x: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat


@dataclass(frozen=True)
class ReturnLog:
    """A per-run return log: its ``file``, its ``x`` column and its return column ``y``;
    ``env_steps``: whether ``x`` counts environment steps (GPS's counts iterations)."""

    file: str
    x: str
    y: str
    env_steps: bool


RETURN_LOGS: tuple[ReturnLog, ...] = (
    ReturnLog("trial.csv", "env_steps", "return", True),  # PETS: one row per MPC trial
    ReturnLog("eval.csv", "step", "return", True),  # SAC, MBPO: one row per evaluation
    ReturnLog("iteration.csv", "step", "policy_return", False),  # GPS: per iteration
    ReturnLog("episode.csv", "step", "return", True),  # training episodes (any off-policy run)
)
"""The return logs of every algorithm, in order of preference: ``mbrl plot`` and the sweep
summary read the first one a run directory has."""


def find_return_log(
    run_dir: str | Path, *, env_steps_only: bool = False
) -> tuple[ReturnLog, dict[str, np.ndarray]] | None:
    """The first of :data:`RETURN_LOGS` that ``run_dir`` has (only logs over environment steps
    with ``env_steps_only``), with its columns; ``None`` when it has none. Raises ``ValueError``
    naming the file for a log without its ``x`` or ``y`` column."""
    for log in RETURN_LOGS:
        path = Path(run_dir) / log.file
        if (env_steps_only and not log.env_steps) or not path.is_file():
            continue
        cols = read_csv_columns(path)
        missing = [c for c in (log.x, log.y) if c not in cols]
        if missing:
            raise ValueError(f"{path}: no column(s) {', '.join(missing)}")
        return log, cols
    return None


def _read_return_log(run_dir: Path) -> dict[str, np.ndarray]:
    """The run's return log as ``trial``, ``env_steps``, ``return`` (+ PETS's extra) columns."""
    found = find_return_log(run_dir, env_steps_only=True)
    if found is None:
        names = ", ".join(log.file for log in RETURN_LOGS if log.env_steps)
        raise FileNotFoundError(
            f"run_dir: {str(run_dir)!r} has none of {names} (is it a run directory?)"
        )
    log, cols = found
    if log.file == "trial.csv" and "trial" not in cols:
        raise ValueError(f"{Path(run_dir) / log.file}: no column(s) trial")
    index = cols["trial"] if "trial" in cols else np.arange(1.0, cols[log.x].size + 1)
    return {**cols, "trial": index, "env_steps": cols[log.x], "return": cols[log.y]}


def load_run_curves(run_dir: str | Path) -> RunCurves:
    """Read ``config.yaml``, the return log and (if present) ``model.csv``, ``random.csv``.

    The return log is the first of :data:`RETURN_LOGS` over environment steps that the run
    has: PETS's ``trial.csv`` (x: env steps at the end of each trial), SAC's and MBPO's
    ``eval.csv`` (x: env steps of each evaluation; "trials" count the evaluations), else the
    training episodes' ``episode.csv``. GPS runs (no env-step axis) are plotted by ``mbrl gps``
    itself. Raises
    ``FileNotFoundError`` naming the run directory and the missing file, and ``ValueError`` for
    a log without its columns.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run_dir: no such directory {str(run_dir)!r}")
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"run_dir: {str(run_dir)!r} has no {config_path.name} (is it a run directory?)"
        )
    config = yaml.safe_load(config_path.read_text())
    if not isinstance(config, Mapping):
        raise ValueError(f"{config_path}: expected a mapping of settings, got {type(config)}")
    trial = _read_return_log(run_dir)
    nan = np.full_like(trial["trial"], np.nan)
    model_path = run_dir / "model.csv"
    model = read_csv_columns(model_path) if model_path.is_file() else {}
    if "holdout_mse" not in model:
        model = {"step": np.empty(0), "holdout_mse": np.empty(0)}
    random_path = run_dir / "random.csv"
    random = read_csv_columns(random_path) if random_path.is_file() else {}
    return RunCurves(
        run_dir=run_dir,
        settings=flatten_config(config),
        trials=trial["trial"],
        env_steps=trial["env_steps"],
        returns=trial["return"],
        plan_time=trial.get("plan_time_per_step", nan),
        trial_holdout_mse=trial.get("holdout_mse", nan),
        model_steps=model["step"],
        model_holdout_mse=model["holdout_mse"],
        random_returns=random.get("return", np.empty(0)),
    )


def group_runs(
    runs: Sequence[RunCurves], ignore: frozenset[str] = NON_SETTING_KEYS
) -> list[RunGroup]:
    """Group runs whose settings are equal apart from the ``ignore`` keys, in first-seen order."""
    keyed: dict[str, list[RunCurves]] = {}
    for run in runs:
        setting = {k: v for k, v in run.settings.items() if k not in ignore}
        keyed.setdefault(yaml.safe_dump(setting, sort_keys=True), []).append(run)
    settings = [yaml.safe_load(key) for key in keyed]
    differing = sorted(
        {k for s in settings for k in s if any(t.get(k) != s.get(k) for t in settings)}
    )
    groups = []
    for setting, members in zip(settings, keyed.values(), strict=True):
        label = ", ".join(f"{k}={setting.get(k)}" for k in differing)
        if not label:
            label = str(setting.get("task", members[0].run_dir.name))
        groups.append(RunGroup(label=label, settings=setting, runs=tuple(members)))
    return groups


def mean_std_band(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], interpolate: bool) -> Band:
    """Mean ± std (population, ``ddof=0``) over curves ``(xs[i], ys[i])`` on the sorted union of
    their finite x values.

    With ``interpolate``, each curve is linearly interpolated inside its own x range (never
    extrapolated), for x values that differ between runs (env steps of episodes that end early);
    without it, a curve contributes only at its own x values (trial numbers).
    """
    if len(xs) != len(ys) or not xs:
        raise ValueError(
            f"xs, ys: expected equal, non-zero numbers of curves, got {len(xs)}, {len(ys)}"
        )
    clean = []
    for x, y in zip(xs, ys, strict=True):
        keep = np.isfinite(x) & np.isfinite(y)
        order = np.argsort(x[keep], kind="stable")
        clean.append((x[keep][order], y[keep][order]))
    grid = np.unique(np.concatenate([x for x, _ in clean]))
    values = np.full((len(clean), grid.size), np.nan)
    for i, (x, y) in enumerate(clean):
        if x.size == 0:
            continue
        if interpolate:
            inside = (grid >= x[0]) & (grid <= x[-1])
            values[i, inside] = np.interp(grid[inside], x, y)
        else:
            values[i, np.searchsorted(grid, x)] = y
    count = np.isfinite(values).sum(axis=0)  # >= 1: every grid point comes from some curve
    return Band(x=grid, mean=np.nanmean(values, axis=0), std=np.nanstd(values, axis=0), count=count)


def plot_runs(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    x: str = "env_steps",
    title: str | None = None,
    ignore: frozenset[str] = NON_SETTING_KEYS,
) -> PlotResult:
    """Compare run directories: return, model holdout MSE and planning time, one panel each.

    Runs that differ only in the ``ignore`` keys (seeds) form a group drawn as mean ± std; a
    group of one run is its plain curve. ``x`` is ``"env_steps"`` (curves interpolated onto the
    union of the runs' step counts) or ``"trials"``. The mean return of each group's
    random-policy episodes (``random.csv``), where present, is a dashed line.

    Args:
        run_dirs: run directories, each with ``config.yaml`` and ``trial.csv`` (``model.csv``
            optional).
        out: output path; ``out`` with the suffix ``.png`` and with ``.svg`` are written
            (a ``.png`` or ``.svg`` suffix given here is replaced).

    Returns:
        the written paths and the groups.
    """
    if x not in X_AXES:
        raise ValueError(f"x: expected one of {', '.join(X_AXES)}, got {x!r}")
    paths = [Path(d) for d in run_dirs]
    if not paths:
        raise ValueError("run_dirs: expected at least one run directory")
    seen = {p.resolve() for p in paths}
    if len(seen) != len(paths):
        raise ValueError("run_dirs: a run directory is given more than once")
    groups = group_runs([load_run_curves(p) for p in paths], ignore)
    fig = Figure(figsize=(15.0, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    for color, group in zip(_colors(len(groups)), groups, strict=True):
        for ax, panel in zip(axes, _PANELS, strict=True):
            _draw_group(ax, group, panel, x, color)
    for ax, panel in zip(axes, _PANELS, strict=True):
        _style_axis(ax, panel, x)
    if any(run.random_returns.size for group in groups for run in group.runs):
        axes[0].plot([], [], color="gray", linestyle="--", label="random policy (mean)")
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    if out.suffix in (".png", ".svg"):
        out = out.with_suffix("")
    written = []
    for fmt in ("png", "svg"):
        target = out.with_name(f"{out.name}.{fmt}")
        with atomic_open(target, "wb") as f:
            fig.savefig(f, format=fmt)
        written.append(target)
    return PlotResult(png=written[0], svg=written[1], groups=tuple(groups))


@dataclass(frozen=True)
class PlotResult:
    """What :func:`plot_runs` wrote (``png``, ``svg``) and the run ``groups`` it drew."""

    png: Path
    svg: Path
    groups: tuple[RunGroup, ...]


@dataclass(frozen=True)
class _Panel:
    name: str
    ylabel: str
    log_y: bool
    scale: float


_PANELS = (
    _Panel("return", "episode return", False, 1.0),
    _Panel("model", "model holdout MSE", True, 1.0),
    _Panel("plan_time", "planning time (ms / step)", False, 1e3),
)


def _panel_curve(run: RunCurves, panel: _Panel, x: str) -> tuple[np.ndarray, np.ndarray]:
    xs = run.env_steps if x == "env_steps" else run.trials
    if panel.name == "return":
        return xs, run.returns
    if panel.name == "plan_time":
        return xs, run.plan_time * panel.scale
    if x == "env_steps" and run.model_steps.size:  # every training round, not only per trial
        return run.model_steps, run.model_holdout_mse
    return xs, run.trial_holdout_mse


def _draw_group(ax: Any, group: RunGroup, panel: _Panel, x: str, color: Any) -> None:
    curves = [_panel_curve(run, panel, x) for run in group.runs]
    curves = [(cx, cy) for cx, cy in curves if np.isfinite(cy).any()]
    if not curves:
        return
    band = mean_std_band([c[0] for c in curves], [c[1] for c in curves], x == "env_steps")
    n = len(curves)
    label = group.label if n == 1 else f"{group.label} (mean ± std, {n} seeds)"
    ax.plot(band.x, band.mean, color=color, label=label, marker="." if band.x.size < 30 else None)
    if n > 1:
        ax.fill_between(band.x, band.mean - band.std, band.mean + band.std, color=color, alpha=0.2)
    random = [r for run in group.runs for r in run.random_returns if np.isfinite(r)]
    if panel.name == "return" and random:
        ax.axhline(float(np.mean(random)), color=color, linestyle="--", linewidth=1.0)


def _style_axis(ax: Any, panel: _Panel, x: str) -> None:
    ax.set_xlabel("environment steps" if x == "env_steps" else "trial")
    ax.set_ylabel(panel.ylabel)
    if x == "trials":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if panel.log_y and ax.lines and all(np.all(line.get_ydata() > 0) for line in ax.lines):
        ax.set_yscale("log")
    if not ax.lines:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.grid(True, alpha=0.3)


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(n - 1, 1)) for i in range(n)]
