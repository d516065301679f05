"""iLQR-MPC through the true cart-pole swing-up dynamics: the reference PETS is compared with.

One 200-step episode per seed from ``env.reset(seed=seed)``, replanning every step with
:class:`mbrl.planning.ilqr_planner.ILQRPlanner` (horizon 30, 20 iterations) through
``task.dynamics_fn``, warm-started by the shifted previous plan (:class:`MPCAgent`).

    python benchmarks/cartpole_ilqr_reference.py --seeds 0 1 2 3 4

Measured figures: docs/pets.md ("Cart-pole swing-up over seeds").
"""

from __future__ import annotations

import argparse

import torch

from envs import get_task
from mbrl.agents.mpc_agent import MPCAgent
from mbrl.data import collect_episode
from mbrl.planning.ilqr_planner import ILQRPlanner


def episode_return(seed: int, horizon: int, iterations: int) -> float:
    """Return of one iLQR-MPC episode of the cart-pole swing-up from ``reset(seed=seed)``."""
    task = get_task("cartpole-swingup")
    planner = ILQRPlanner(task.dynamics_fn, task, horizon, max_iter=iterations)
    agent = MPCAgent(planner, generator=torch.Generator().manual_seed(seed), task=task)
    env = task.make_env()
    agent.reset()
    ret, _ = collect_episode(env, agent.act, max_steps=task.max_episode_steps, reset_seed=seed)
    env.close()
    return ret


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--horizon", type=int, default=30)
    ap.add_argument("--iterations", type=int, default=20)
    args = ap.parse_args()
    for seed in args.seeds:
        print(f"seed {seed}: return {episode_return(seed, args.horizon, args.iterations):.1f}")


if __name__ == "__main__":
    main()
