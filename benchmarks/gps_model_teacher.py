"""The iLQR-MPC teacher of a ``mbrl gps ... dynamics=model`` run planning through the run's
final ensemble but acting in the TRUE system, on the run's held-out starts, beside the same
teacher planning through the true dynamics: how much of the gap is the model's.

At every step one batched :func:`control.ilqr` solve over all starts plans through the
ensemble's float64 mean (warm-started with the previous plans shifted, the run's teacher
horizon and iterations); the first actions are applied to the task's true dynamics.

    python benchmarks/gps_model_teacher.py /tmp/mgps/v2/s0/gps-gps-pendulum-swingup-...
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from envs import get_task
from mbrl.algorithms.gps_config import EVAL_SEED_BASE, GPSConfig
from mbrl.algorithms.gps_model import EnsembleMean, model_problem
from mbrl.algorithms.gps_problem import (
    DTYPE,
    ControlProblem,
    TeacherSettings,
    mpc_rollouts,
    problem_from_task,
    solve,
    start_states,
)
from mbrl.models import DynamicsModel
from mbrl.util.checkpoint import Checkpointer
from mbrl.util.config import load_config


def planned_in_model_acting_in_true(
    plan: ControlProblem, true: ControlProblem, teacher: TeacherSettings, x0: torch.Tensor
) -> torch.Tensor:
    """Returns ``(B,)`` of the MPC teacher that plans through ``plan`` and steps ``true``'s
    dynamics from ``x0 (B, n)`` for ``true.horizon`` steps (cost: ``true``'s)."""
    X = x0.to(DTYPE)
    U = torch.zeros(X.shape[0], teacher.horizon, plan.m, dtype=DTYPE)
    xs, us = [X], []
    for t in range(true.horizon):
        res = solve(plan, plan.cost, X, U, teacher.first_iters if t == 0 else teacher.iters)
        u = true.clip(res.u[:, 0].detach())
        X = true.dynamics(X, u).detach()
        xs.append(X)
        us.append(u)
        U = torch.cat([res.u[:, 1:], res.u[:, -1:]], 1).detach()
    return -true.trajectory_cost(torch.stack(xs, 1), torch.stack(us, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    cfg = load_config(GPSConfig, args.run_dir / "config.yaml")
    if cfg.dynamics != "model":
        raise SystemExit(f"run_dir: {args.run_dir} is not a dynamics=model run")
    latest = Checkpointer(args.run_dir / "checkpoints", kind="gps").load_latest()
    if latest is None:
        raise SystemExit(f"run_dir: {args.run_dir} has no checkpoint")
    task = get_task(cfg.task)
    model = DynamicsModel.load(latest[0] / "model.pt")
    true = problem_from_task(task, cfg.horizon)
    plan = model_problem(task, EnsembleMean(model), true.horizon)
    teacher = TeacherSettings(cfg.teacher_horizon, cfg.teacher_iters, cfg.teacher_first_iters)
    x0 = start_states(task, [EVAL_SEED_BASE + i for i in range(cfg.eval_episodes)])
    exact = (-mpc_rollouts(true, teacher, x0).cost).tolist()
    through_model = planned_in_model_acting_in_true(plan, true, teacher, x0).tolist()
    for name, r in (("true dynamics", exact), ("learned model", through_model)):
        print(
            f"teacher planning through the {name}, acting in the true system: mean "
            f"{statistics.mean(r):.2f}, median {statistics.median(r):.2f}, worst {min(r):.2f} "
            f"({len(r)} held-out starts; checkpoint {latest[0].name})"
        )


if __name__ == "__main__":
    main()
