"""Guided policy search on a Gymnasium MuJoCo task, the true simulator as the teacher's model.

The control problem's state is the simulator's ``x = [qpos, qvel]`` (not the task's
observation) and its dynamics are :class:`control.mujoco_model.MuJoCoDynamics` built from the
task's own environment, with finite-difference Jacobians (``ControlProblem.jacobians``): the
iLQR-MPC teacher, the GPS trajectory step and the noisy copies' gains all plan through the
true physics. The running cost is a smooth planning cost per task (:data:`MUJOCO_COSTS`; the
tasks' rewards have indicator terms iLQR cannot use).

**Returns are the environment's own.** :func:`env_returns` steps ``B`` copies of the task's
Gymnasium environment in lock-step, reading each one's ``[qpos, qvel]`` from its ``MjData``
and summing the rewards ``env.step`` returns until it terminates or ``horizon`` steps pass; the
controller (the policy alone, or the teacher: one batched iLQR solve per step over the
environments still running, warm-started by their shifted plans) acts on all of them at once.

Supported: ``inverted-double-pendulum`` (InvertedDoublePendulum-v5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from control.mujoco_model import MuJoCoDynamics
from mbrl.algorithms.gps_problem import DTYPE, ControlProblem, TeacherSettings, solve

Tensor = torch.Tensor

__all__ = [
    "MUJOCO_COSTS",
    "MuJoCoCost",
    "env_returns",
    "idp_cost",
    "idp_terminal_cost",
    "mujoco_problem",
    "mujoco_start_states",
    "mpc_controller",
]

Controller = Callable[[Tensor, Tensor], Tensor]
"""``controller(x (B', n), rows (B',)) -> u (B', m)``: actions for the running environments
``rows`` (indices into the batch) at their states ``x``."""


def idp_cost(x: Tensor, u: Tensor) -> Tensor:
    """InvertedDoublePendulum planning cost ``(N,)`` on ``x = [cart, θ1, θ2, ẋ, θ̇1, θ̇2]``:
    both poles upright (absolute angles ``θ1`` and ``θ1 + θ2``, rad), the cart near 0 (m; its
    rail ends at ±1 m), small velocities, small force (``u`` in [-1, 1])."""
    return (
        0.5 * x[:, 0] ** 2
        + 10.0 * x[:, 1] ** 2
        + 10.0 * (x[:, 1] + x[:, 2]) ** 2
        + 0.05 * x[:, 3] ** 2
        + 0.1 * x[:, 4] ** 2
        + 0.1 * x[:, 5] ** 2
        + 0.01 * u[:, 0] ** 2
    )


def idp_terminal_cost(x: Tensor) -> Tensor:
    """10 × the state part of :func:`idp_cost`, ``(N,)``."""
    return 10.0 * idp_cost(x, torch.zeros(x.shape[0], 1, dtype=x.dtype))


@dataclass(frozen=True)
class MuJoCoCost:
    """A MuJoCo task's planning cost and iLQR line-search step sizes."""

    cost: Callable[[Tensor, Tensor], Tensor]
    terminal_cost: Callable[[Tensor], Tensor] | None
    alphas: tuple[float, ...] = (1.0, 0.5, 0.25, 0.1)


MUJOCO_COSTS: dict[str, MuJoCoCost] = {
    "inverted-double-pendulum": MuJoCoCost(idp_cost, idp_terminal_cost),
}


def _check_task(task) -> MuJoCoCost:
    if task.name not in MUJOCO_COSTS:
        raise ValueError(
            f"task: guided policy search needs an analytic task or one of the MuJoCo tasks "
            f"{sorted(MUJOCO_COSTS)}; got {task.name!r}"
        )
    return MUJOCO_COSTS[task.name]


def mujoco_problem(task, horizon: int | None = None, nthread: int = 1) -> ControlProblem:
    """The :class:`ControlProblem` of a MuJoCo task: the true simulator (``nthread`` threads
    for its batched steps), the planning cost, the action box, ``horizon`` steps (default the
    episode length)."""
    spec = _check_task(task)
    env = task.make_env()
    try:
        model = MuJoCoDynamics.from_env(env, nthread=nthread)
    finally:
        env.close()
    lo = torch.as_tensor(np.asarray(task.action_low, dtype=np.float64))
    hi = torch.as_tensor(np.asarray(task.action_high, dtype=np.float64))
    return ControlProblem(
        model, spec.cost, lo, hi, int(horizon or task.max_episode_steps),
        terminal_cost=spec.terminal_cost, jacobians=model.jacobians, alphas=spec.alphas,
    )  # fmt: skip


def _sim_state(env) -> np.ndarray:
    d = env.unwrapped.data
    return np.concatenate([d.qpos, d.qvel, d.act]).astype(np.float64)


def mujoco_start_states(task, seeds: list[int]) -> Tensor:
    """``(len(seeds), n)`` simulator states ``[qpos, qvel]`` after ``env.reset(seed=s)``."""
    _check_task(task)
    env = task.make_env()
    try:
        xs = []
        for s in seeds:
            env.reset(seed=int(s))
            xs.append(_sim_state(env))
    finally:
        env.close()
    return torch.as_tensor(np.stack(xs))


def env_returns(task, seeds: list[int], controller: Controller, horizon: int) -> list[float]:
    """The environment's return from ``env.reset(seed=s)`` for every seed, ``controller``
    acting on all environments in lock-step for at most ``horizon`` steps (an environment
    stops when it terminates or is truncated)."""
    envs = [task.make_env() for _ in seeds]
    try:
        for env, s in zip(envs, seeds, strict=True):
            env.reset(seed=int(s))
        total = np.zeros(len(envs))
        running = np.ones(len(envs), dtype=bool)
        for _ in range(horizon):
            rows = np.flatnonzero(running)
            if rows.size == 0:
                break
            X = torch.as_tensor(np.stack([_sim_state(envs[i]) for i in rows]))
            U = controller(X, torch.as_tensor(rows)).detach().cpu().numpy()
            for i, u in zip(rows, U, strict=True):
                _, r, term, trunc, _ = envs[i].step(u.astype(np.float32))
                total[i] += float(r)
                running[i] = not (term or trunc)
        return total.tolist()
    finally:
        for env in envs:
            env.close()


def mpc_controller(problem: ControlProblem, teacher: TeacherSettings, batch: int) -> Controller:
    """The iLQR-MPC teacher as a :data:`Controller` over ``batch`` environments: one batched
    solve per call over the running ones, each warm-started with its previous plan shifted by
    one step (``teacher.first_iters`` iterations for the first call, then ``teacher.iters``)."""
    plan = torch.zeros(batch, teacher.horizon, problem.m, dtype=DTYPE)
    calls = [0]

    def act(x: Tensor, rows: Tensor) -> Tensor:
        iters = teacher.first_iters if calls[0] == 0 else teacher.iters
        calls[0] += 1
        res = solve(problem, problem.cost, x.to(DTYPE), plan[rows], iters)
        plan[rows] = torch.cat([res.u[:, 1:], res.u[:, -1:]], 1)
        return res.u[:, 0]

    return act
