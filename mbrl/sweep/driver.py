"""Plan a sweep (check every point's config, write ``sweep.yaml``), run it, summarize it.

>>> sweep_dir, plan = plan_sweep(ref, "pets_cartpole_swingup", ["task=cartpole-swingup"],
...                              ["seed=0,1,2", "planner=cem,icem,mppi"], run_root="runs")
>>> summary = run_sweep(sweep_dir, SweepOptions(backend="local"))

Every point's config is built (and so checked) before any folder is made: a bad key or value
ends the sweep at once, naming the override. Resuming a sweep runs the trials that are not
``done``; a trial with a run directory continues it from its latest checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from mbrl.sweep.grid import SweepSyntaxError, expand_grid, parse_grid, point_slug, safe_name
from mbrl.sweep.state import (
    AlgorithmRef,
    SweepPlan,
    TrialSpec,
    driver_lock,
    read_plan,
    read_status,
    write_plan,
)
from mbrl.sweep.summary import SweepSummary, summarize

__all__ = [
    "BACKENDS",
    "INSTALL_HINT",
    "RESERVED_KEYS",
    "SweepError",
    "SweepOptions",
    "available_cores",
    "plan_sweep",
    "resolve_parallelism",
    "run_sweep",
]

BACKENDS = ("ray", "local")
RESERVED_KEYS = ("run_root", "run_name")
"""Keys the sweep sets for each trial (its run directory goes in the sweep folder)."""

INSTALL_HINT = (
    "Ray Tune is not installed; install it with: pip install 'mbrl-toolkit[distributed]' "
    "(or, in a source checkout, pip install -e '.[distributed]'), "
    "or run the trials one after another with --backend local"
)


class SweepError(ValueError):
    """A sweep cannot start: bad arguments, an unusable folder, or a missing back end."""


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """How to run a sweep.

    Attributes:
        backend: ``"ray"`` (Ray Tune trials) or ``"local"`` (one child process at a time).
        address: Ray cluster address (``ray start --head`` prints it); ``None`` starts Ray here.
        max_concurrent: most trials at once (Ray); ``None``: as many as the CPUs allow.
        threads_per_trial: CPU threads (and Ray CPUs) per trial; ``None``: the CPUs divided by
            the concurrent trials.
        gpus_per_trial: GPUs Ray reserves per trial (may be fractional).
    """

    backend: str = "ray"
    address: str | None = None
    max_concurrent: int | None = None
    threads_per_trial: int | None = None
    gpus_per_trial: float = 0.0

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise SweepError(
                f"backend: expected one of {', '.join(BACKENDS)}, got {self.backend!r}"
            )
        for name in ("max_concurrent", "threads_per_trial"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise SweepError(f"{name}: expected an int >= 1, got {value!r}")
        if not self.gpus_per_trial >= 0:
            raise SweepError(f"gpus_per_trial: expected a number >= 0, got {self.gpus_per_trial!r}")
        if self.backend == "local":
            if self.address is not None:
                raise SweepError("address: only the ray back end connects to a cluster")
            if self.max_concurrent not in (None, 1):
                raise SweepError("max_concurrent: the local back end runs one trial at a time")
            if self.gpus_per_trial:
                raise SweepError("gpus_per_trial: only the ray back end reserves GPUs")


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def resolve_parallelism(
    cores: int, trials: int, max_concurrent: int | None, threads: int | None
) -> tuple[int, int]:
    """``(concurrent trials, threads per trial)`` for ``trials`` trials on ``cores`` CPUs.

    Unset values share the cores: ``max_concurrent`` defaults to ``min(trials, cores //
    threads)`` and ``threads`` to ``cores // max_concurrent`` (each at least 1).
    """
    trials, cores = max(1, trials), max(1, cores)
    if max_concurrent is None:
        max_concurrent = max(1, min(trials, cores // (threads or 1)))
    if threads is None:
        threads = max(1, cores // min(max_concurrent, trials))
    return max_concurrent, threads


def plan_sweep(
    algorithm: AlgorithmRef,
    preset: str | Path | None,
    base_overrides: Sequence[str],
    sweep_args: Sequence[str],
    *,
    run_root: str | Path = "runs",
    name: str | None = None,
    command: Sequence[str] = (),
    load: Callable[[AlgorithmRef], tuple[type, Callable]] | None = None,
    create: bool = True,
) -> tuple[Path, SweepPlan]:
    """Expand ``sweep_args`` into trials, check each trial's config, write ``sweep.yaml``.

    Args:
        algorithm: the algorithm to run (its module, config class and runner).
        preset: preset name or path for every trial (``None``: the config defaults).
        base_overrides: overrides before the sweep's (e.g. ``task=...`` from ``--task``).
        sweep_args: ``KEY=V1,V2,...`` (an axis) or ``KEY=V`` (fixed) arguments.
        run_root: the folder the sweep folder goes in.
        name: the sweep folder's name; ``None``: ``sweep-<algorithm>[-<task>]-<time>``. A folder
            of that name holding the same plan is resumed; one holding another plan is an error.
        command: the command line, recorded in ``sweep.yaml``.
        load: imports the algorithm (default :func:`mbrl.sweep.trial.load_algorithm`).
        create: make the folder and write ``sweep.yaml`` (``False``: only check and plan).

    Returns:
        ``(sweep folder, plan)``.

    Raises:
        SweepError: bad sweep syntax, a bad config for some point (naming its override),
            or an existing folder of that name that is not this sweep.
    """
    from mbrl.sweep.trial import load_algorithm
    from mbrl.util.config import ConfigError, config_to_dict, load_config
    from mbrl.util.lifecycle import SetupError, check_run_root

    try:
        grid = parse_grid(sweep_args, reserved=RESERVED_KEYS)
        root = check_run_root(run_root)
    except (SweepSyntaxError, SetupError) as exc:
        raise SweepError(str(exc)) from None
    config_cls, _ = (load or load_algorithm)(algorithm)
    if name is None:
        task = _task_of(base_overrides, grid.fixed)
        name = (
            f"sweep-{algorithm.name}{f'-{task}' if task else ''}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise SweepError(f"name: expected a folder name without separators, got {name!r}")
    sweep_dir = (root / name).resolve()
    trials = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for index, point in enumerate(expand_grid(grid)):
            trial_name = f"t{index:03d}" + (f"-{point_slug(point)}" if point else "")
            overrides = ["progress=false", *base_overrides, *grid.fixed]
            overrides += [f"{k}={v}" for k, v in point.items()]
            overrides += [f"run_root={sweep_dir}", f"run_name={trial_name}"]
            try:
                cfg = load_config(config_cls, preset, overrides)
            except (ConfigError, FileNotFoundError, TypeError, ValueError) as exc:
                where = ", ".join(f"{k}={v}" for k, v in point.items()) or "the fixed overrides"
                raise SweepError(f"trial {index} ({where}): {exc}") from None
            trials.append(TrialSpec(index, trial_name, dict(point), config_to_dict(cfg)))
    unique = {str(w.message): w for w in caught}  # once each, not once per trial
    for w in unique.values():
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    plan = SweepPlan(algorithm, grid.keys, tuple(command), tuple(trials))
    if create:
        _claim_folder(sweep_dir, plan)
    return sweep_dir, plan


def _task_of(*override_lists: Sequence[str]) -> str | None:
    """The last ``task=`` value of the overrides, as a folder-name-safe string."""
    tasks = [item[5:] for items in override_lists for item in items if item.startswith("task=")]
    return safe_name(tasks[-1]) or None if tasks else None


def _claim_folder(sweep_dir: Path, plan: SweepPlan) -> None:
    """Create ``sweep_dir`` with ``plan``; accept an existing one holding the same trials."""
    if (sweep_dir / "sweep.yaml").is_file():
        old = read_plan(sweep_dir)
        if old.algorithm != plan.algorithm or old.trials != plan.trials:
            raise SweepError(
                f"name: {str(sweep_dir)!r} holds a different sweep; resume it with "
                f"mbrl sweep --resume {sweep_dir}, or choose another --name"
            )
        return
    if sweep_dir.exists():
        raise SweepError(f"name: {str(sweep_dir)!r} exists and is not a sweep folder")
    sweep_dir.mkdir(parents=True)
    write_plan(sweep_dir, plan)


def run_sweep(
    sweep_dir: str | Path, options: SweepOptions, echo: Callable[[str], None] = print
) -> SweepSummary:
    """Run the trials of ``sweep_dir`` that are not done, then write and return its summary.

    A failing trial is recorded (status ``error`` and its message) and the others go on.
    """
    from mbrl.sweep import backends

    sweep_dir = Path(sweep_dir).resolve()
    plan = read_plan(sweep_dir)
    with driver_lock(sweep_dir):  # SweepBusy if another driver runs it
        pending = [t for t in plan.trials if read_status(sweep_dir, t.name).status != "done"]
        done = len(plan.trials) - len(pending)
        echo(
            f"sweep {sweep_dir}: {len(plan.trials)} trial(s), {done} done, "
            f"{len(pending)} to run ({options.backend})"
        )
        if pending and options.backend == "local":
            backends.run_local(sweep_dir, plan, pending, options, echo)
        elif pending:
            backends.run_ray(sweep_dir, plan, pending, options, echo)
    summary = summarize(sweep_dir, plan)
    for line in summary_lines(summary):
        echo(line)
    return summary


def summary_lines(summary: SweepSummary) -> list[str]:
    """The console report: one line per trial (errors included), one per setting, the files."""
    lines = []
    for r in summary.trials:
        if r.status == "done":
            what = f"final {r.final_return:.2f}  best {r.best_return:.2f}"
        elif r.status == "error":
            what = f"FAILED: {r.error}"
        else:
            what = r.status
        lines.append(f"  {r.name}: {what}")
    for s in summary.settings:
        if s.done > 1:
            lines.append(
                f"  {s.label}: final {s.final_mean:.2f} ± {s.final_std:.2f}, best "
                f"{s.best_mean:.2f} ± {s.best_std:.2f} over {s.done} runs"
            )
    lines.append(f"wrote {summary.csv} and {summary.settings_csv}")
    if summary.png is not None:
        lines.append(f"plot: {summary.png}")
    return lines
