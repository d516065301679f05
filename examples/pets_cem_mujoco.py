"""PETS with CEM on a MuJoCo task: probabilistic ensemble + CEM model-predictive control.

Uses the task's packaged preset (``mbrl/configs/pets_<task>.yaml``) and shortens it by default
so that it finishes in minutes on a laptop CPU; ``--full`` runs the preset as it is.

    python examples/pets_cem_mujoco.py                          # reacher, 5 trials
    python examples/pets_cem_mujoco.py --task inverted-pendulum --trials 5
    python examples/pets_cem_mujoco.py --full planner.name=icem # any PETSConfig override
    python examples/pets_cem_mujoco.py --task halfcheetah --full device=cuda
    python examples/pets_cem_mujoco.py --quick                  # a smoke run in seconds

Every run writes a run directory (config.yaml, metrics.csv, checkpoints, learning curve).
"""

from __future__ import annotations

import argparse

from mbrl.algorithms.pets import load_pets_config, run_pets

SHORT = {"num_trials": 5}
"""Overrides applied unless ``--full`` is given."""

QUICK = {
    "num_trials": 1,
    "trial_length": 10,
    "initial_random_episodes": 1,
    "model.num_members": 2,
    "model.num_elites": 2,
    "model.hidden": 16,
    "model.max_epochs": 2,
    "planner.horizon": 5,
    "planner.population": 16,
    "planner.num_elites": 4,
    "planner.iterations": 2,
    "planner.num_particles": 2,
}
"""``--quick``: a smoke run in seconds (applied before ``--trials`` and the overrides)."""


def main(argv: list[str] | None = None) -> None:
    """Run PETS on ``--task`` and print the return of every trial."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="reacher", help="MuJoCo task (see `mbrl tasks`)")
    parser.add_argument("--trials", type=int, default=None, help="MPC trials")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full", action="store_true", help="run the preset unshortened")
    parser.add_argument("--run-root", default="runs")
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="PETSConfig overrides")
    args = parser.parse_args(argv)

    overrides = [] if args.full else [f"{k}={v}" for k, v in SHORT.items()]
    if args.quick:
        overrides += [f"{k}={v}" for k, v in QUICK.items()]
    if args.trials is not None:
        overrides.append(f"num_trials={args.trials}")
    overrides += [f"seed={args.seed}", f"run_root={args.run_root}", *args.overrides]
    cfg = load_pets_config(args.task, None, overrides)
    p = cfg.planner
    print(
        f"PETS on {cfg.task}: {p.name} (horizon {p.horizon}, population {p.population}, "
        f"{p.iterations} iterations, {p.num_particles} particles), {cfg.num_trials} trials"
    )
    result = run_pets(cfg)
    for i, (ret, n) in enumerate(zip(result.returns, result.lengths, strict=True), 1):
        print(f"trial {i:3d}: return {ret:10.2f} ({n} steps)")
    print(f"wall time {result.wall_time:.1f} s; run directory: {result.run_dir}")


if __name__ == "__main__":
    main()
