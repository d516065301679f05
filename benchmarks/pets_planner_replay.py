"""Replay one InvertedPendulum-v5 MPC episode with a PETS checkpoint's model and another planner.

Loads the model of checkpoint ``ckpt-K`` of a PETS run (the model that planned trial ``K + 1``),
builds the run's planner with ``KEY=VALUE`` overrides (``name=ilqr`` starts from that planner's
defaults, keeping only the run's ``obs_cost_weights``), and runs one episode of the true
environment from ``reset(seed=S)``. Prints the cart position every 100 steps and a result line:
return, steps, the largest and mean ``|x|``, planning time per step. With ``--simulator`` the
planner plans through the true MuJoCo simulator (``SimulatorModel``) instead of the model, to
tell the planner's errors from the model's.

    python benchmarks/pets_planner_replay.py RUN_DIR --ckpt 4 --env-seed 1 horizon=15
    python benchmarks/pets_planner_replay.py RUN_DIR --ckpt 4 --env-seed 1 name=ilqr horizon=25
    python benchmarks/pets_planner_replay.py RUN_DIR --ckpt 4 --simulator num_particles=1

Measured figures: docs/pets.md ("InvertedPendulum-v5: the fix").
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from envs import get_task
from mbrl.agents.mpc_agent import MPCAgent
from mbrl.models import DynamicsModel
from mbrl.models.simulator_model import PhysicsStateObservation, SimulatorModel
from mbrl.planning import make_planner, planner_config


def planner_settings(run_dir: Path, overrides: list[str]) -> tuple[str, dict]:
    """The run's planner name and settings with ``KEY=VALUE`` overrides (YAML values)."""
    settings = dict(yaml.safe_load((run_dir / "config.yaml").read_text())["planner"])
    pairs = [o.split("=", 1) for o in overrides]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"overrides: expected KEY=VALUE entries, got {overrides}")
    if any(k == "name" for k, _ in pairs):
        settings = {"obs_cost_weights": settings.get("obs_cost_weights")}
    settings |= {k: yaml.safe_load(v) for k, v in pairs}
    return settings.pop("name"), settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--ckpt", type=int, required=True, help="checkpoint index K")
    ap.add_argument("--env-seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--simulator", action="store_true", help="plan through the true simulator")
    ap.add_argument("overrides", nargs="*", help="planner KEY=VALUE")
    args = ap.parse_intermixed_args()
    task = get_task("inverted-pendulum")
    name, settings = planner_settings(args.run_dir, args.overrides)
    if args.simulator:
        model = SimulatorModel(task)
        env, offset, dtype = PhysicsStateObservation(task.make_env()), model.nstate, torch.float64
        agent_task = model.planning_task(task)
    else:
        ckpt = args.run_dir / "checkpoints" / f"ckpt-{args.ckpt:08d}" / "model.pt"
        model = DynamicsModel.load(ckpt)
        env, offset, dtype, agent_task = task.make_env(), 0, torch.float32, task
    planner = make_planner(planner_config(name, **settings), model, task)
    gen = torch.Generator().manual_seed(args.env_seed)
    agent = MPCAgent(planner, generator=gen, task=agent_task, dtype=dtype)
    obs, _ = env.reset(seed=args.env_seed)
    ret, xs, start = 0.0, [], time.perf_counter()
    for t in range(args.steps):
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs))
        ret += float(reward)
        xs.append(float(obs[offset]))
        if t % 100 == 99:
            print(f"  step {t + 1}: x={obs[offset]:+.3f} angle={obs[offset + 1]:+.3f}", flush=True)
        if terminated or truncated:
            break
    env.close()
    ax = np.abs(xs)
    print(
        f"RESULT ckpt {args.ckpt} env seed {args.env_seed} {name} {settings}: return {ret:.0f}, "
        f"steps {t + 1}, max|x| {ax.max():.3f}, mean|x| {ax.mean():.3f}, "
        f"plan {1e3 * agent.mean_step_time:.0f} ms/step, wall {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
