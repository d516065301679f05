"""MPC through the true MuJoCo simulator: a sampling planner scores its action sequences with
``mujoco.rollout`` from the environment's full physics state, and the task's own reward.

The model is :class:`mbrl.models.simulator_model.SimulatorModel`; the environment is wrapped in
:class:`~mbrl.models.simulator_model.PhysicsStateObservation` so the agent sees the planning
state ``[physics state, observation]``. Any sampling planner works (``--planner``).

    python examples/mpc_true_simulator.py --task reacher --steps 50
    python examples/mpc_true_simulator.py --task inverted-double-pendulum --steps 1000
    python examples/mpc_true_simulator.py --task halfcheetah --planner predictive_sampling \\
        --horizon 30 --population 64 --iterations 2 --steps 1000
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from envs import get_task
from mbrl.agents.mpc_agent import MPCAgent
from mbrl.models.simulator_model import PhysicsStateObservation, SimulatorModel
from mbrl.planning import make_planner, planner_config


@dataclass(frozen=True)
class EpisodeResult:
    """One episode: return, steps taken, whether it terminated, seconds per planned step."""

    ret: float
    steps: int
    terminated: bool
    plan_s_per_step: float


def planner_settings(args: argparse.Namespace) -> dict:
    """The chosen planner's size settings from the command line."""
    settings = dict(horizon=args.horizon, population=args.population)
    if args.planner in ("cem", "icem", "mppi", "predictive_sampling"):
        settings["iterations"] = args.iterations
    if args.planner in ("cem", "icem"):
        settings["num_elites"] = max(1, args.population // 8)
    if args.planner == "predictive_sampling":
        settings.update(
            num_knots=args.knots, noise_std=args.noise_std, interpolation=args.interpolation
        )
    if args.planner == "mppi":
        settings.update(normalize_returns=True, temperature=0.5)
    if args.obs_cost_weights:
        settings["obs_cost_weights"] = [float(w) for w in args.obs_cost_weights.split(",")]
    return settings


def run_episode(task, model: SimulatorModel, args: argparse.Namespace, seed: int) -> EpisodeResult:
    """One MPC episode of at most ``args.steps`` steps from ``env.reset(seed=seed)``."""
    planner = make_planner(planner_config(args.planner, **planner_settings(args)), model, task)
    agent = MPCAgent(
        planner,
        generator=torch.Generator().manual_seed(seed),
        task=model.planning_task(task),
        dtype=torch.float64,
    )
    env = PhysicsStateObservation(task.make_env())
    z, _ = env.reset(seed=seed)
    ret, steps, terminated = 0.0, 0, False
    for _ in range(args.steps):
        z, reward, terminated, truncated, _ = env.step(agent.act(z))
        ret += float(reward)
        steps += 1
        if terminated or truncated:
            break
    env.close()
    return EpisodeResult(ret, steps, bool(terminated), float(np.mean(agent.step_times)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="reacher", help="MuJoCo task name or Gymnasium id")
    p.add_argument("--planner", default="cem", help="random, cem, icem, mppi, predictive_sampling")
    p.add_argument("--steps", type=int, default=50, help="environment steps per episode (max)")
    p.add_argument("--episodes", type=int, default=1)
    p.add_argument("--horizon", type=int, default=20)
    p.add_argument("--population", type=int, default=48)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--knots", type=int, default=4, help="predictive sampling: spline knots")
    p.add_argument("--noise-std", type=float, default=0.1, help="predictive sampling")
    p.add_argument("--interpolation", default="zero", help="predictive sampling: zero, linear")
    p.add_argument("--nthread", type=int, default=1, help="threads of mujoco.rollout")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--obs-cost-weights",
        default="",
        help="planning-only state cost: obs_dim comma-separated weights w_i >= 0, reward - "
        "sum_i w_i obs_i^2 (PlannerConfig.obs_cost_weights)",
    )
    args = p.parse_args()
    task = get_task(args.task)
    model = SimulatorModel(task, nthread=args.nthread)
    print(f"{task.name}: {args.planner} {planner_settings(args)}, nthread {args.nthread}")
    t0 = time.perf_counter()
    results = []
    for ep in range(args.episodes):
        res = run_episode(task, model, args, args.seed + ep)
        results.append(res)
        print(
            f"episode {ep}: return {res.ret:.2f}, steps {res.steps}, terminated "
            f"{res.terminated}, planning {1e3 * res.plan_s_per_step:.1f} ms/step"
        )
    rets = [r.ret for r in results]
    print(
        f"mean return {np.mean(rets):.2f} +- {np.std(rets):.2f} over {len(rets)} episode(s); "
        f"wall {time.perf_counter() - t0:.1f} s"
    )
    model.close()


if __name__ == "__main__":
    main()
