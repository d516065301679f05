"""Time per action: the distilled policy of a ``mbrl gps`` run against its iLQR-MPC teacher.

Both act one state at a time, each along its own episode from the same held-out start; every
action is timed on its own. The teacher is :class:`control.RecedingHorizonILQR` with the run's
horizon and iterations (warm-started; its cold first solve is left out), the policy a forward
pass of the MLP. Prints the median and mean seconds per action and their ratio.

    python benchmarks/bench_gps.py runs/gps-gps-pendulum-swingup-20261202-224842 --steps 100
    python benchmarks/bench_gps.py runs/gps-gps-inverted-double-pendulum-... --steps 50   # MuJoCo
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from control import RecedingHorizonILQR
from envs import get_task
from mbrl.algorithms.gps import load_policy
from mbrl.algorithms.gps_config import EVAL_SEED_BASE, GPSConfig
from mbrl.algorithms.gps_mujoco import mujoco_problem, mujoco_start_states
from mbrl.algorithms.gps_problem import problem_from_task, start_states
from mbrl.util.config import load_config


def per_action_times(act, dynamics, clip, x0: torch.Tensor, steps: int) -> list[float]:
    """Seconds of each of ``steps`` actions ``act(x (n,)) -> u (m,)`` along its own rollout
    (one untimed first action)."""
    x, times = x0.clone(), []
    for step in range(steps + 1):
        tic = time.perf_counter()
        u = act(x)
        if step:
            times.append(time.perf_counter() - tic)
        x = dynamics(x.view(1, -1), clip(u).view(1, -1))[0]
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--start", type=int, default=0, help="held-out start index")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(GPSConfig, f"{args.run_dir}/config.yaml")
    task = get_task(cfg.task)
    if task.is_analytic:
        problem, states = problem_from_task(task, cfg.horizon), start_states
    else:  # a MuJoCo task: the true simulator, its state [qpos, qvel]
        problem, states = mujoco_problem(task, cfg.horizon, cfg.sim_threads), mujoco_start_states
    x0 = states(task, [EVAL_SEED_BASE + args.start])[0]
    policy = load_policy(args.run_dir)
    mpc = RecedingHorizonILQR(
        problem.dynamics, problem.cost, cfg.teacher_horizon, problem.m,
        terminal_cost=problem.terminal_cost, u_min=problem.u_min, u_max=problem.u_max,
        iters_per_step=cfg.teacher_iters, first_iters=cfg.teacher_first_iters,
        **problem.solver_options(),
    )  # fmt: skip

    def policy_act(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return policy(x.view(1, -1))[0]

    rows = {}
    for name, act in (("teacher", mpc.act), ("policy", policy_act)):
        t = per_action_times(act, problem.dynamics, problem.clip, x0, args.steps)
        rows[name] = (statistics.median(t), statistics.fmean(t))
        print(f"{name:8s} median {1e3 * rows[name][0]:8.3f} ms  mean {1e3 * rows[name][1]:8.3f} ms")
    ratio = rows["teacher"][0] / rows["policy"][0]
    print(f"{cfg.task} ({cfg.method}): the policy is {ratio:.0f}x faster per action (medians)")


if __name__ == "__main__":
    main()
