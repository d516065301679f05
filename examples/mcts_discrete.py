"""MCTS (UCT) model-predictive control on the discrete cart-pole (``cartpole-discrete``).

Two modes:

* default: MCTS plans through the task's true dynamics every step (push left / push right);
* ``--learned``: the full PETS loop with the MCTS planner: random data, a probabilistic
  ensemble trained on it (mean prediction used by MCTS), MCTS-MPC trials, retraining.

Gymnasium's CartPole-v1 gives 1 per step until the pole tips past 12 degrees or the cart leaves
the track; an episode is capped at 500 steps here.

    python examples/mcts_discrete.py                     # true model, 100 steps (~1 min)
    python examples/mcts_discrete.py --steps 500 --simulations 100
    python examples/mcts_discrete.py --learned --trials 3
    python examples/mcts_discrete.py --quick [--learned] # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import time

import torch

import envs
from mbrl.agents import MPCAgent
from mbrl.algorithms.pets import load_pets_config, run_pets
from mbrl.data import collect_episode
from mbrl.planning import MCTSConfig, make_planner

TASK = "cartpole-discrete"
QUICK = {"steps": 10, "trials": 1, "simulations": 8, "horizon": 4, "rollout_horizon": 5}
"""``--quick``: a smoke run in seconds; settings given explicitly are kept."""
QUICK_MODEL = [
    "initial_random_steps=20",
    "model.num_members=2",
    "model.num_elites=2",
    "model.hidden=16",
    "model.max_epochs=2",
]
"""``--quick --learned``: little random data and a tiny ensemble."""


def true_model_episode(args: argparse.Namespace) -> None:
    """One MCTS-MPC episode planning through the exact dynamics."""
    task = envs.get_task(TASK)
    cfg = MCTSConfig(
        horizon=args.horizon,
        simulations=args.simulations,
        rollout_horizon=args.rollout_horizon,
    )
    planner = make_planner(cfg, task.dynamics_fn, task)
    agent = MPCAgent(
        planner, task=task, dtype=torch.float64, generator=torch.Generator().manual_seed(args.seed)
    )
    t0 = time.perf_counter()
    # agent.act returns an int: 0 (push left) or 1 (push right)
    total, steps = collect_episode(
        task.make_env(), agent.act, max_steps=args.steps, reset_seed=args.seed
    )
    wall = time.perf_counter() - t0
    print(
        f"MCTS-MPC (true dynamics, {args.simulations} simulations/step): return {total:.0f} "
        f"in {steps} steps (max {args.steps}); {1e3 * agent.mean_step_time:.1f} ms/step, "
        f"{wall:.1f} s"
    )


def learned_model_pets(args: argparse.Namespace) -> None:
    """PETS loop with MCTS planning through a learned ensemble."""
    cfg = load_pets_config(
        TASK,
        None,
        [
            f"seed={args.seed}",
            f"num_trials={args.trials}",
            f"trial_length={args.steps}",
            "initial_random_steps=200",
            "model.hidden=64",
            "model.batch_size=64",
            *(QUICK_MODEL if args.quick else []),
            "planner.name=mcts",
            f"planner.horizon={args.horizon}",
            f"planner.simulations={args.simulations}",
            f"planner.rollout_horizon={args.rollout_horizon}",
            f"run_root={args.run_root}",
        ],
    )
    result = run_pets(cfg)
    print("MCTS-PETS returns per trial: " + ", ".join(f"{r:.0f}" for r in result.returns))
    print(f"run directory: {result.run_dir}")


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and run one of the two modes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learned", action="store_true", help="PETS with a learned model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100, help="steps per episode (max 500)")
    parser.add_argument("--trials", type=int, default=3, help="PETS trials (--learned)")
    parser.add_argument("--simulations", type=int, default=50, help="MCTS simulations per step")
    parser.add_argument("--horizon", type=int, default=10, help="tree depth")
    parser.add_argument("--rollout-horizon", type=int, default=20, help="leaf rollout length")
    parser.add_argument("--run-root", default="runs", help="run directory root (--learned)")
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:  # shrink what was left at its default
        for key, value in QUICK.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    if args.learned:
        learned_model_pets(args)
    else:
        true_model_episode(args)


if __name__ == "__main__":
    main()
