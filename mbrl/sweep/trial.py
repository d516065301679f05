"""Run one trial of a sweep: a new run, or the continuation of its interrupted run.

Both back ends call :func:`run_trial`: Ray Tune inside a worker process, ``--backend local`` in
a child process (``python -m mbrl.sweep.trial SWEEP_DIR INDEX --threads N``), so a trial that
crashes, even hard, never takes the sweep down with it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mbrl.sweep.state import (
    AlgorithmRef,
    TrialSpec,
    TrialStatus,
    find_run_dir,
    read_plan,
    read_status,
    write_status,
)

__all__ = ["THREAD_VARIABLES", "load_algorithm", "run_trial", "set_threads"]

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""Environment variables that cap a process's math-library threads (set for each trial)."""


def set_threads(threads: int) -> None:
    """Cap torch's intra-op threads (and, for child processes, OpenMP/MKL/OpenBLAS) at
    ``threads``."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: expected an int >= 1, got {threads!r}")
    import torch

    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    torch.set_num_threads(threads)


def load_algorithm(ref: AlgorithmRef) -> tuple[type, Any]:
    """Import ``ref.module``; return ``(config class, runner)``."""
    module = importlib.import_module(ref.module)
    return getattr(module, ref.config), getattr(module, ref.runner)


def run_trial(
    sweep_dir: str | os.PathLike, algorithm: AlgorithmRef, spec: TrialSpec, threads: int
) -> TrialStatus:
    """Run ``spec`` (resuming its run directory if it has one) and record its status.

    A trial already ``done`` is not rerun. On an exception the status is ``error`` with the
    exception's type and message, the traceback is printed, and the exception propagates
    (the caller decides: Ray marks the trial failed, the local child exits with code 1).
    """
    from mbrl.util.config import config_from_dict

    sweep_dir = Path(sweep_dir)
    previous = read_status(sweep_dir, spec.name)
    if previous.status == "done":
        return previous
    set_threads(threads)
    resume = find_run_dir(sweep_dir, spec.name)
    write_status(sweep_dir, spec.name, TrialStatus("running", str(resume) if resume else None))
    what = "resuming " + str(resume) if resume else "starting"
    print(f"trial {spec.name}: {what} ({threads} thread(s))", flush=True)
    start = time.perf_counter()
    try:
        config_cls, runner = load_algorithm(algorithm)
        cfg = config_from_dict(config_cls, spec.config)
        result = runner(cfg, resume=str(resume) if resume is not None else None)
    except Exception as exc:
        run_dir = find_run_dir(sweep_dir, spec.name)
        error = f"{type(exc).__name__}: {exc}".strip()
        failed = TrialStatus("error", str(run_dir) if run_dir else None, error, _since(start))
        write_status(sweep_dir, spec.name, failed)
        traceback.print_exc()
        raise
    run_dir = getattr(result, "run_dir", None) or find_run_dir(sweep_dir, spec.name)
    done = TrialStatus("done", str(run_dir) if run_dir else None, None, _since(start))
    write_status(sweep_dir, spec.name, done)
    print(f"trial {spec.name}: done in {done.wall_time_s:.1f} s, run directory {run_dir}")
    return done


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 3)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mbrl.sweep.trial SWEEP_DIR INDEX [--threads N]``: exit 0 done, 1 failed."""
    parser = argparse.ArgumentParser(prog="python -m mbrl.sweep.trial")
    parser.add_argument("sweep_dir")
    parser.add_argument("index", type=int)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    plan = read_plan(args.sweep_dir)
    if not 0 <= args.index < len(plan.trials):
        print(f"index: expected 0..{len(plan.trials) - 1}, got {args.index}", file=sys.stderr)
        return 2
    try:
        run_trial(args.sweep_dir, plan.algorithm, plan.trials[args.index], args.threads)
    except Exception:  # noqa: BLE001  (recorded in the status file and printed)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
