"""Where a sweep's trials run: Ray Tune (a local Ray, or a cluster by address) or, without Ray,
one child process after another.

Neither back end schedules anything itself: Ray Tune places the trials (each reserves
``threads_per_trial`` CPUs), and the local back end runs them in order.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import mbrl
from mbrl.sweep.driver import (
    INSTALL_HINT,
    SweepError,
    SweepOptions,
    available_cores,
    resolve_parallelism,
)
from mbrl.sweep.state import (
    AlgorithmRef,
    SweepPlan,
    TrialSpec,
    TrialStatus,
    find_run_dir,
    read_status,
    write_status,
)
from mbrl.sweep.summary import summarize
from mbrl.sweep.trial import THREAD_VARIABLES, run_trial

__all__ = ["import_ray", "run_local", "run_ray"]

_PROJECT_ROOT = str(Path(mbrl.__file__).resolve().parent.parent)


def _child_env(threads: int) -> dict[str, str]:
    """The environment of a trial process: this ``mbrl`` first on the path, threads capped."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = _PROJECT_ROOT + (os.pathsep + path if path else "")
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    return env


def _report(echo: Callable[[str], None], k: int, n: int, spec: TrialSpec, status: TrialStatus):
    if status.status == "done":
        echo(f"[{k}/{n}] {spec.name}: done ({status.wall_time_s or 0:.1f} s)")
    elif status.status == "error":
        echo(f"[{k}/{n}] {spec.name}: FAILED: {status.error}")
    else:
        echo(f"[{k}/{n}] {spec.name}: not finished ({status.status}); resume the sweep to go on")


def run_local(
    sweep_dir: Path,
    plan: SweepPlan,
    pending: Sequence[TrialSpec],
    options: SweepOptions,
    echo: Callable[[str], None],
) -> None:
    """Run ``pending`` one at a time, each in a child process (output in ``logs/<trial>.log``).

    A child that dies without recording its status (killed, out of memory) is recorded as
    failed with its exit code.
    """
    _, threads = resolve_parallelism(available_cores(), 1, 1, options.threads_per_trial)
    logs = sweep_dir / "logs"
    logs.mkdir(exist_ok=True)
    for k, spec in enumerate(pending, 1):
        log = logs / f"{spec.name}.log"
        cmd = [sys.executable, "-m", "mbrl.sweep.trial", str(sweep_dir), str(spec.index)]
        cmd += ["--threads", str(threads)]
        echo(f"[{k}/{len(pending)}] {spec.name}: running (log {log})")
        with open(log, "a") as out:
            code = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=_child_env(threads)
            ).returncode
        status = read_status(sweep_dir, spec.name)
        if code != 0 and status.status in ("pending", "running"):  # died unrecorded
            status = _record_crash(
                sweep_dir, spec, f"trial process exited with code {code}; see {log}"
            )
        _report(echo, k, len(pending), spec, status)
        summarize(sweep_dir, plan)  # the results so far, should the sweep be stopped


def _record_crash(sweep_dir: Path, spec: TrialSpec, error: str) -> TrialStatus:
    run_dir = find_run_dir(sweep_dir, spec.name)
    status = TrialStatus("error", str(run_dir) if run_dir else None, error)
    write_status(sweep_dir, spec.name, status)
    return status


def import_ray() -> Any:
    """``ray`` and ``ray.tune``, or :class:`SweepError` saying how to install them."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise SweepError(INSTALL_HINT) from None
    return ray, tune


def _ray_trial(
    config: dict[str, Any],
    specs: dict[str, dict[str, Any]],
    sweep_dir: str,
    algorithm: dict[str, str],
    threads: int,
) -> None:
    """The Ray Tune trainable: the trial ``config["trial"]`` (a name), in a Ray worker."""
    spec = TrialSpec(**specs[config["trial"]])
    run_trial(sweep_dir, AlgorithmRef(**algorithm), spec, threads)


def _summary_callback(tune: Any, sweep_dir: Path, plan: SweepPlan) -> Any:
    """A Tune callback that rewrites the sweep's summary whenever a trial ends."""

    class SummaryCallback(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any):
            summarize(sweep_dir, plan)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any):
            summarize(sweep_dir, plan)

    return SummaryCallback()


def _trial_name(trial: Any) -> str:
    return str(trial.config["trial"])[:100]


def run_ray(
    sweep_dir: Path,
    plan: SweepPlan,
    pending: Sequence[TrialSpec],
    options: SweepOptions,
    echo: Callable[[str], None],
) -> None:
    """Run ``pending`` as Ray Tune trials, on a Ray started here or the cluster at
    ``options.address``. Ray's own records go in ``<sweep_dir>/ray``."""
    ray, tune = import_ray()
    started = not ray.is_initialized()
    if started and options.address is None:
        ray.init(
            address="local",  # a new Ray here, even if this machine is part of a cluster
            num_cpus=available_cores(),
            include_dashboard=False,
            runtime_env={"env_vars": {"PYTHONPATH": _child_env(1)["PYTHONPATH"]}},
            log_to_driver=True,
        )
    elif started:
        try:
            ray.init(address=options.address)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SweepError(
                f"address: cannot connect to the Ray cluster at {options.address!r} ({exc}); "
                "for a cluster with token authentication set RAY_AUTH_MODE=token "
                f"(docs/sweeps.md); then: mbrl sweep --resume {sweep_dir}"
            ) from None
    try:
        _fit(ray, tune, sweep_dir, plan, pending, options, echo)
    finally:
        if started:
            ray.shutdown()


def _cluster_cpus(ray: Any) -> tuple[int, int]:
    """``(total CPUs, CPUs of the largest node)`` of the connected Ray cluster."""
    total = int(ray.cluster_resources().get("CPU", 1))
    nodes = [int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
    return max(1, total), max([1, *nodes])


def _fit(
    ray: Any,
    tune: Any,
    sweep_dir: Path,
    plan: SweepPlan,
    pending: Sequence[TrialSpec],
    options: SweepOptions,
    echo: Callable[[str], None],
) -> None:
    total, largest = _cluster_cpus(ray)
    concurrent, threads = resolve_parallelism(
        total, len(pending), options.max_concurrent, options.threads_per_trial
    )
    if options.threads_per_trial is None:
        threads = min(threads, largest)
    if threads > largest:
        raise SweepError(
            f"threads_per_trial: {threads}, but the largest Ray node has {largest} CPUs"
        )
    echo(f"Ray: {total} CPU(s); up to {concurrent} trial(s) at once, {threads} thread(s) each")
    resources = {"cpu": threads, "gpu": options.gpus_per_trial}
    trainable = tune.with_parameters(
        _ray_trial,
        specs={t.name: asdict(t) for t in pending},  # in Ray's object store, once
        sweep_dir=str(sweep_dir),
        algorithm=asdict(plan.algorithm),
        threads=threads,
    )
    tuner = tune.Tuner(
        tune.with_resources(trainable, resources),
        param_space={"trial": tune.grid_search([t.name for t in pending])},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=concurrent,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=f"run-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=str(sweep_dir / "ray"),
            failure_config=tune.FailureConfig(max_failures=0),
            callbacks=[_summary_callback(tune, sweep_dir, plan)],
            verbose=1,
        ),
    )
    results = tuner.fit()
    by_name = {t.name: t for t in pending}
    for k, result in enumerate(results, 1):
        spec = by_name[result.config["trial"]]
        status = read_status(sweep_dir, spec.name)
        if result.error is not None and status.status in ("pending", "running"):
            error = f"{type(result.error).__name__}: {result.error}"
            status = _record_crash(sweep_dir, spec, error)
        _report(echo, k, len(pending), spec, status)
