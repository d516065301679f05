"""iLQR model-predictive control through a learned ensemble (PETS loop with the iLQR planner).

The MBRL v1.5 loop of ``mbrl pets`` with ``planner.name=ilqr``: random data, a probabilistic
ensemble fitted to it, then every step box-constrained iLQR (``control.ddp.ilqr``) on the
ensemble's mean dynamics with derivatives by autodiff, first action executed, data appended,
model retrained after each trial. For reference the same iLQR-MPC is run once through the
task's true dynamics.

    python examples/ilqr_mpc_learned_model.py                 # pendulum swing-up, ~2-3 min
    python examples/ilqr_mpc_learned_model.py --trials 5 --steps 200
    python examples/ilqr_mpc_learned_model.py --task cartpole-swingup --horizon 30 --trials 6
    python examples/ilqr_mpc_learned_model.py --quick   # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import time

import torch

import envs
from mbrl.agents import MPCAgent
from mbrl.algorithms.pets import load_pets_config, run_pets
from mbrl.data import collect_episode
from mbrl.planning import ILQRConfig, make_planner

QUICK = {"trials": 1, "steps": 10, "horizon": 5, "iterations": 2}
"""``--quick``: a smoke run in seconds; settings given explicitly are kept."""
QUICK_MODEL = [
    "initial_random_episodes=1",
    "model.num_members=2",
    "model.num_elites=2",
    "model.hidden=16",
    "model.max_epochs=2",
]
"""``--quick``: a tiny ensemble."""


def true_dynamics_return(task_name: str, horizon: int, iters: int, steps: int, seed: int) -> float:
    """Return of one iLQR-MPC episode planning through the task's exact dynamics."""
    task = envs.get_task(task_name)
    cfg = ILQRConfig(horizon=horizon, max_iter=iters)
    agent = MPCAgent(make_planner(cfg, task.dynamics_fn, task), task=task, dtype=torch.float64)
    total, _ = collect_episode(task.make_env(), agent.act, max_steps=steps, reset_seed=seed)
    return total


def main(argv: list[str] | None = None) -> None:
    """Run PETS with iLQR planning, then the true-dynamics iLQR-MPC reference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pendulum-swingup", help="an analytic task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100, help="steps per trial")
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=10, help="iLQR iterations per step")
    parser.add_argument("--run-root", default="runs")
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:  # shrink what was left at its default
        for key, value in QUICK.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)

    cfg = load_pets_config(
        args.task,
        None,
        [
            f"seed={args.seed}",
            f"num_trials={args.trials}",
            f"trial_length={args.steps}",
            "planner.name=ilqr",
            f"planner.horizon={args.horizon}",
            f"planner.max_iter={args.iterations}",
            f"run_root={args.run_root}",
            *(QUICK_MODEL if args.quick else []),
        ],
    )
    result = run_pets(cfg)
    print(
        "iLQR-MPC through the learned ensemble, returns per trial: "
        + ", ".join(f"{r:.2f}" for r in result.returns)
    )
    print(f"run directory: {result.run_dir}")
    t0 = time.perf_counter()
    ref = true_dynamics_return(args.task, args.horizon, args.iterations, args.steps, args.seed)
    print(
        f"iLQR-MPC through the true dynamics (reference): {ref:.2f} "
        f"({time.perf_counter() - t0:.1f} s)"
    )


if __name__ == "__main__":
    main()
