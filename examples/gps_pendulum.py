"""Guided policy search on the pendulum swing-up: distil iLQR trajectories into a small MLP
policy, then run the policy alone (no planning) in the environment.

    python examples/gps_pendulum.py                  # the gps_pendulum_swingup preset
    python examples/gps_pendulum.py --method dagger  # or bc, bc_noise, plato
    python examples/gps_pendulum.py --quick          # a tiny run (seconds): smoke test

The same run from the command line: ``mbrl gps --task pendulum-swingup [method=dagger]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from envs import get_task
from mbrl.algorithms.gps import load_gps_config, load_policy, run_gps

QUICK = [
    "num_conditions=2", "iterations=2", "horizon=40", "eval_episodes=3", "epochs=5",
    "teacher_horizon=15", "timing_steps=5",
]  # fmt: skip


def run_policy_alone(run_dir, seed: int) -> tuple[float, float]:
    """One episode of the distilled policy in the task's environment: return, ms per action."""
    task = get_task("pendulum-swingup")
    policy = load_policy(run_dir)
    env = task.make_env()
    obs, _ = env.reset(seed=seed)
    ret, elapsed, steps, done = 0.0, 0.0, 0, False
    while not done:
        tic = time.perf_counter()
        with torch.no_grad():
            act = policy(torch.as_tensor(obs).view(1, -1))[0].numpy()
        elapsed += time.perf_counter() - tic
        obs, reward, terminated, truncated, _ = env.step(act)
        ret, steps = ret + float(reward), steps + 1
        done = terminated or truncated
    env.close()
    return ret, 1e3 * elapsed / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="gps", help="gps, bc, bc_noise, dagger or plato")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-root", default="runs")
    p.add_argument("--quick", action="store_true", help="a tiny run, for a smoke test")
    args = p.parse_args()
    overrides = [f"method={args.method}", f"seed={args.seed}", f"run_root={args.run_root}"]
    overrides += QUICK if args.quick else []
    cfg = load_gps_config("pendulum-swingup", overrides=overrides)
    result = run_gps(cfg)
    print(result.summary())
    ret, ms = run_policy_alone(result.run_dir, seed=123_456)
    print(f"policy alone in the environment (seed 123456): return {ret:.2f}, {ms:.3f} ms/action")
    print(f"held-out mean return {np.mean(result.final_returns):.2f}")


if __name__ == "__main__":
    main()
