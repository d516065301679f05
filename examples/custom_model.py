"""Plug in your own model: a plain ``torch.nn.Module`` as the dynamics for CEM planning.

Any callable ``model(obs (B, obs_dim), act (B, act_dim)) -> next_obs (B, obs_dim)`` works as a
planner's model (no ensemble interface needed). Here the model is a small MLP predicting the
state change of the pendulum from ``[cos theta, sin theta, theta_dot, torque]``, fitted by an
ordinary supervised loop on random transitions; CEM then plans through it inside MPC and the
result is compared with MPC through the true dynamics and with random actions.

    python examples/custom_model.py              # ~1 minute on 2 CPU cores
    python examples/custom_model.py --steps 200 --data 20000 --seed 1
    python examples/custom_model.py --quick       # a smoke run in seconds (the test suite's)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

import envs
from envs.task import Task
from mbrl.agents import MPCAgent
from mbrl.data import collect_episode
from mbrl.planning import CEMConfig, make_planner
from mbrl.util.seeding import seed_everything

QUICK = {"data": 500, "epochs": 3, "steps": 10, "horizon": 5, "population": 32}
"""``--quick``: a smoke run in seconds; settings given explicitly are kept."""


class PendulumMLP(nn.Module):
    """Deterministic model ``(obs (B, 2), act (B, 1)) -> next_obs (B, 2)`` predicting deltas."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(4, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Next observation ``(B, 2)`` = ``obs + net([cos, sin, theta_dot, u / 2])``."""
        th, th_dot = obs[..., 0], obs[..., 1]
        x = torch.stack((torch.cos(th), torch.sin(th), th_dot / 8.0, act[..., 0] / 2.0), -1)
        return obs + self.net(x)


def random_transitions(
    task: Task, n: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` transitions from uniformly random states and actions (true dynamics), float32."""
    obs = np.stack([rng.uniform(-np.pi, np.pi, n), rng.uniform(-8.0, 8.0, n)], -1)
    act = rng.uniform(task.action_low, task.action_high, (n, task.act_dim))
    obs_t, act_t = torch.as_tensor(obs), torch.as_tensor(act)
    with torch.no_grad():
        nxt = task.dynamics_fn(obs_t, act_t)
    return obs_t.float(), act_t.float(), nxt.float()


def fit(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    epochs: int,
    gen: torch.Generator,
) -> float:
    """Mean-squared-error regression of ``next_obs``; returns the final training MSE."""
    obs, act, nxt = data
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        perm = torch.randperm(obs.shape[0], generator=gen)
        for idx in perm.split(256):
            loss = nn.functional.mse_loss(model(obs[idx], act[idx]), nxt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return float(loss.detach())


def run_episode(task: Task, policy, steps: int, seed: int) -> float:
    """Return of ``policy(obs) -> action`` over ``steps`` steps of the task's environment."""
    total, _ = collect_episode(task.make_env(), policy, max_steps=steps, reset_seed=seed)
    return total


def main(argv: list[str] | None = None) -> None:
    """Fit the custom model, then compare MPC through it with MPC through the true dynamics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=int, default=5000, help="random training transitions")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=100, help="episode steps (task max 200)")
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--population", type=int, default=200, help="CEM samples per iteration")
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:  # shrink what was left at its default
        for key, value in QUICK.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)

    np_rng, gen = seed_everything(args.seed)
    task = envs.get_task("pendulum-swingup")
    model = PendulumMLP()
    t0 = time.perf_counter()
    mse = fit(model, random_transitions(task, args.data, np_rng), args.epochs, gen)
    test = random_transitions(task, 2000, np_rng)
    with torch.no_grad():
        test_mse = float(nn.functional.mse_loss(model(test[0], test[1]), test[2]))
    fit_time = time.perf_counter() - t0
    print(f"custom model: train MSE {mse:.2e}, test MSE {test_mse:.2e} ({fit_time:.1f} s)")

    cfg = CEMConfig(
        horizon=args.horizon,
        population=args.population,
        num_elites=max(2, args.population // 10),
        iterations=4,
        num_particles=1,
    )
    model.eval().requires_grad_(False)
    results = {}
    for name, dyn, dtype in (
        ("CEM-MPC, custom nn.Module", model, torch.float32),
        ("CEM-MPC, true dynamics", task.dynamics_fn, torch.float64),
    ):
        agent = MPCAgent(
            make_planner(cfg, dyn, task),
            task=task,
            dtype=dtype,
            generator=torch.Generator().manual_seed(args.seed),
        )
        t0 = time.perf_counter()
        results[name] = run_episode(task, agent.act, args.steps, args.seed)
        print(f"{name:28s} return {results[name]:9.2f}  ({time.perf_counter() - t0:.1f} s)")
    rng = np.random.default_rng(args.seed)
    rand = run_episode(
        task, lambda obs: rng.uniform(task.action_low, task.action_high), args.steps, args.seed
    )
    print(f"{'random actions':28s} return {rand:9.2f}")


if __name__ == "__main__":
    main()
