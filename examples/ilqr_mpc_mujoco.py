"""Receding-horizon iLQR (MPC) on Gymnasium MuJoCo tasks using the true MuJoCo dynamics.

The planner's model is the environment's own ``MjModel`` (:class:`control.mujoco_model.
MuJoCoDynamics`), so planning is exact up to the finite-difference Jacobians.  The state fed to
the planner is the simulator's ``[qpos, qvel]``.

    python examples/ilqr_mpc_mujoco.py                       # InvertedPendulum-v5 and Reacher-v5
    python examples/ilqr_mpc_mujoco.py --env InvertedPendulum-v5 --steps 1000
    python examples/ilqr_mpc_mujoco.py --env InvertedDoublePendulum-v5 --steps 1000
    python examples/ilqr_mpc_mujoco.py --quick               # 10 steps each (smoke test)
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

from control.mujoco_model import MuJoCoDynamics
from control.receding_horizon import RecedingHorizonILQR
from mbrl.algorithms.gps_mujoco import idp_cost, idp_terminal_cost

QUICK_STEPS = 10
"""``--quick``: episode length cap unless ``--steps`` is given."""


def pendulum_cost(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """InvertedPendulum: keep the pole upright (qpos[1]) and the cart near 0. ``(N,)``."""
    return (
        x[:, 0] ** 2
        + 10.0 * x[:, 1] ** 2
        + 0.1 * x[:, 2] ** 2
        + 0.1 * x[:, 3] ** 2
        + 0.01 * u[:, 0] ** 2
    )


def reacher_distance(x: torch.Tensor) -> torch.Tensor:
    """Smoothed fingertip–target distance (m) from Reacher's ``qpos`` (links 0.1 m, 0.11 m)."""
    q0, q1 = x[:, 0], x[:, 1]
    tip_x = 0.1 * torch.cos(q0) + 0.11 * torch.cos(q0 + q1)
    tip_y = 0.1 * torch.sin(q0) + 0.11 * torch.sin(q0 + q1)
    d2 = (tip_x - x[:, 2]) ** 2 + (tip_y - x[:, 3]) ** 2
    return torch.sqrt(d2 + 1e-4)


def reacher_cost(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Reacher-v5's negated reward terms (distance + squared torque), smoothed distance."""
    return reacher_distance(x) + (u**2).sum(-1)


def run(env_id: str, steps: int | None, seed: int) -> float:
    """Run one episode of iLQR-MPC and return its (undiscounted) return."""
    env = gym.make(env_id)
    model = MuJoCoDynamics.from_env(env)
    lo, hi = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    if env_id.startswith("InvertedDoublePendulum"):
        cost, terminal, horizon, iters = idp_cost, idp_terminal_cost, 20, 1
    elif env_id.startswith("InvertedPendulum"):
        cost, terminal, horizon, iters = pendulum_cost, None, 20, 2
    elif env_id.startswith("Reacher"):
        cost, terminal, horizon, iters = reacher_cost, lambda x: 5.0 * reacher_distance(x), 20, 1
    else:
        raise ValueError(f"no cost defined for {env_id}")
    mpc = RecedingHorizonILQR(
        model,
        cost,
        horizon=horizon,
        act_dim=model.nu,
        terminal_cost=terminal,
        u_min=lo,
        u_max=hi,
        iters_per_step=iters,
        first_iters=10,
        derivatives="analytic",
        jacobians=model.jacobians,
        alphas=(1.0, 0.5, 0.25, 0.1),
    )
    env.reset(seed=seed)
    limit = steps if steps is not None else env.spec.max_episode_steps
    total, t0, n = 0.0, time.perf_counter(), 0
    info: dict = {}
    term = False
    while n < limit:
        u = mpc.act(model.get_state(env.unwrapped.data))
        _, r, term, trunc, info = env.step(u.numpy().astype(np.float32))
        total += float(r)
        n += 1
        if term or trunc:
            break
    wall = time.perf_counter() - t0
    extra = ", terminated (fell)" if term else ""
    if env_id.startswith("Reacher"):
        extra += f", final fingertip distance {-info['reward_dist']:.4f} m"
    print(f"{env_id}: return {total:.3f} over {n} steps ({wall / n * 1e3:.1f} ms/step){extra}")
    env.close()
    return total


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", help="Gymnasium id (repeatable)")
    parser.add_argument("--steps", type=int, default=None, help="episode length cap")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps per task")
    args = parser.parse_args(argv)
    if args.quick and args.steps is None:
        args.steps = QUICK_STEPS
    for env_id in args.env or ["InvertedPendulum-v5", "Reacher-v5"]:
        run(env_id, args.steps, args.seed)


if __name__ == "__main__":
    main()
