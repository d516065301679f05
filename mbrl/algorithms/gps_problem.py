"""The control problem guided policy search works on, and the rollouts it needs.

:class:`ControlProblem` holds batched torch dynamics ``f(x (N, n), u (N, m)) -> (N, n)``, the
running cost ``c(x, u) = -reward(x, u, f(x, u))`` (``(N,)``), an optional terminal cost, the
control box and the horizon ``T``. Everything is in float64.

The rollouts here are all batched over start states:

* :func:`policy_rollouts` — the policy alone, ``u_t = π(x_t)`` (no planning);
* :func:`mpc_rollouts` — the iLQR-MPC teacher: at every step one batched :func:`control.ilqr`
  call over all rollouts, warm-started with the previous plans shifted by one step; an extra
  cost ``extra(x, u)`` (PLATO's ``λ‖u − π(x)‖²``) may be added to what the teacher minimises;
* :func:`label_states` — the teacher's action (and feedback gain) at arbitrary states, one
  batched iLQR solve of horizon ``H`` from each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from control import ilqr
from control.derivatives import linearize_dynamics

Tensor = torch.Tensor
DTYPE = torch.float64
Policy = Callable[[Tensor], Tensor]
"""``policy(x (N, n)) -> u (N, m)``, differentiable in ``x``."""

__all__ = [
    "ControlProblem",
    "Rollouts",
    "TeacherSettings",
    "label_states",
    "mpc_rollouts",
    "policy_rollouts",
    "problem_from_task",
    "solve",
    "start_states",
]


@dataclass(frozen=True)
class ControlProblem:
    """``min Σ_t cost(x_t, u_t) + terminal_cost(x_T)``, ``x_{t+1} = dynamics(x_t, u_t)``.

    Attributes:
        dynamics: ``(N, n), (N, m) -> (N, n)`` batched, differentiable.
        cost: ``(N, n), (N, m) -> (N,)`` running cost (minus the task's reward).
        u_min, u_max: ``(m,)`` float64 control bounds.
        horizon: ``T``, steps of a trajectory (and of an evaluation episode).
        terminal_cost: ``(N, n) -> (N,)`` or ``None``.
        jacobians: ``(x (N, n), u (N, m)) -> (f_x (N, n, n), f_u (N, n, m))`` for dynamics
            that autodiff cannot differentiate (e.g. :class:`control.mujoco_model.
            MuJoCoDynamics`'s ``jacobians``); ``None``: autodiff through ``dynamics``.
        alphas: iLQR line-search step sizes (``None``: :func:`control.ilqr`'s default); fewer
            steps mean fewer batched rollouts per iteration, which matters for a simulator.
    """

    dynamics: Callable[[Tensor, Tensor], Tensor]
    cost: Callable[[Tensor, Tensor], Tensor]
    u_min: Tensor
    u_max: Tensor
    horizon: int
    terminal_cost: Callable[[Tensor], Tensor] | None = None
    jacobians: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None
    alphas: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.u_min.shape != self.u_max.shape or self.u_min.dim() != 1:
            raise ValueError(
                f"u_min, u_max: expected equal shapes (m,), got {tuple(self.u_min.shape)} and "
                f"{tuple(self.u_max.shape)}"
            )
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, int) or self.horizon < 1:
            raise ValueError(f"horizon: expected an int >= 1, got {self.horizon!r}")

    @property
    def m(self) -> int:
        """Control size."""
        return int(self.u_min.shape[0])

    def linearize(self, x: Tensor, u: Tensor) -> Tensor:
        """``[f_x, f_u] (N, n, n + m)`` at ``x (N, n)``, ``u (N, m)``: ``jacobians`` when given,
        else autodiff."""
        if self.jacobians is None:
            return linearize_dynamics(self.dynamics, x, u, "autodiff")
        return linearize_dynamics(self.dynamics, x, u, "analytic", jacobians=self.jacobians)

    def solver_options(self) -> dict:
        """Keyword arguments of :func:`control.ilqr` for this problem's dynamics derivatives
        and line search (empty for autodiff and the default step sizes)."""
        kw: dict = {}
        if self.jacobians is not None:
            kw = dict(derivatives="analytic", jacobians={"dynamics": self.jacobians})
        if self.alphas is not None:
            kw["alphas"] = self.alphas
        return kw

    def clip(self, u: Tensor) -> Tensor:
        """``u (..., m)`` clipped to the box."""
        return torch.maximum(torch.minimum(u, self.u_max), self.u_min)

    def trajectory_cost(self, x: Tensor, u: Tensor) -> Tensor:
        """Total cost ``(B,)`` of states ``x (B, T+1, n)`` and controls ``u (B, T, m)``."""
        B, T, m = u.shape
        c = self.cost(x[:, :T].reshape(B * T, -1), u.reshape(B * T, m)).view(B, T).sum(1)
        if self.terminal_cost is not None:
            c = c + self.terminal_cost(x[:, T])
        return c


def problem_from_task(task, horizon: int | None = None) -> ControlProblem:
    """The :class:`ControlProblem` of an analytic task: its dynamics, ``-reward`` as cost, its
    action box, horizon ``horizon`` (default the episode length)."""
    if not task.is_analytic:
        raise ValueError(
            f"task: guided policy search needs a task with differentiable dynamics_fn; "
            f"{task.name!r} has none"
        )
    if task.is_discrete:
        raise ValueError(f"task: needs continuous actions; {task.name!r} is discrete")
    dyn, reward = task.dynamics_fn, task.reward_fn

    def cost(x: Tensor, u: Tensor) -> Tensor:
        return -reward(x, u, dyn(x, u))

    lo = torch.as_tensor(np.asarray(task.action_low, dtype=np.float64))
    hi = torch.as_tensor(np.asarray(task.action_high, dtype=np.float64))
    return ControlProblem(dyn, cost, lo, hi, int(horizon or task.max_episode_steps))


def start_states(task, seeds: list[int]) -> Tensor:
    """``(len(seeds), n)`` start states: ``env.reset(seed=s)`` of the task's environment."""
    env = task.make_env()
    try:
        xs = [np.asarray(env.reset(seed=int(s))[0], dtype=np.float64) for s in seeds]
    finally:
        env.close()
    return torch.as_tensor(np.stack(xs))


@dataclass(frozen=True)
class Rollouts:
    """A batch of ``B`` rollouts of ``T`` steps.

    Attributes:
        x: ``(B, T+1, n)`` states. u: ``(B, T, m)`` executed controls.
        K: ``(B, T, m, n)`` the teacher's feedback gains at each step (``None`` for a policy).
        cost: ``(B,)`` total cost (the task's; minus the return).
    """

    x: Tensor
    u: Tensor
    K: Tensor | None
    cost: Tensor


@torch.no_grad()
def policy_rollouts(problem: ControlProblem, policy: Policy, x0: Tensor) -> Rollouts:
    """The policy alone from ``x0 (B, n)`` for ``problem.horizon`` steps (controls clipped)."""
    X = x0.to(DTYPE)
    xs, us = [X], []
    for _ in range(problem.horizon):
        U = problem.clip(policy(X).to(DTYPE))
        X = problem.dynamics(X, U)
        xs.append(X)
        us.append(U)
    x, u = torch.stack(xs, 1), torch.stack(us, 1)
    return Rollouts(x, u, None, problem.trajectory_cost(x, u))


@dataclass(frozen=True)
class TeacherSettings:
    """The iLQR-MPC teacher.

    Attributes:
        horizon: planning horizon ``H`` (steps).
        iters: iLQR iterations per step once warm.
        first_iters: iterations of the first, cold solve (and of :func:`label_states`).
    """

    horizon: int = 30
    iters: int = 3
    first_iters: int = 30


def solve(
    problem: ControlProblem,
    cost: Callable[[Tensor, Tensor], Tensor],
    X: Tensor,
    U: Tensor,
    iters: int,
):
    """One batched :func:`control.ilqr` solve of ``cost`` (plus the problem's terminal cost)
    from states ``X (B, n)``, warm start ``U (B, H, m)``, ``iters`` iterations."""
    return ilqr(
        problem.dynamics,
        cost,
        X,
        U,
        terminal_cost=problem.terminal_cost,
        u_min=problem.u_min,
        u_max=problem.u_max,
        max_iter=iters,
        dtype=DTYPE,
        **problem.solver_options(),
    )


def mpc_rollouts(
    problem: ControlProblem,
    teacher: TeacherSettings,
    x0: Tensor,
    extra_cost: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> Rollouts:
    """The iLQR-MPC teacher from ``x0 (B, n)`` for ``problem.horizon`` steps, all ``B`` rollouts
    planned in one batched solve per step. With ``extra_cost`` the teacher minimises
    ``cost + extra_cost``; the returned ``cost`` is always the task's.

    The teacher's plans carry no terminal cost beyond the problem's; ``K[:, t]`` is the gain of
    the first step of the plan made at ``x_t``.
    """
    cost = problem.cost
    if extra_cost is not None:

        def cost(x: Tensor, u: Tensor) -> Tensor:
            return problem.cost(x, u) + extra_cost(x, u)

    X = x0.to(DTYPE)
    B = X.shape[0]
    plan = torch.zeros(B, teacher.horizon, problem.m, dtype=DTYPE)
    xs, us, Ks = [X], [], []
    for t in range(problem.horizon):
        res = solve(problem, cost, X, plan, teacher.first_iters if t == 0 else teacher.iters)
        U = res.u[:, 0]
        Ks.append(res.K[:, 0])
        X = problem.dynamics(X, U).detach()
        xs.append(X)
        us.append(U)
        plan = torch.cat([res.u[:, 1:], res.u[:, -1:]], 1)
    x, u = torch.stack(xs, 1), torch.stack(us, 1)
    return Rollouts(x, u, torch.stack(Ks, 1), problem.trajectory_cost(x, u))


def label_states(
    problem: ControlProblem, teacher: TeacherSettings, X: Tensor, warm: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The teacher's action at every state of ``X (M, n)``: the first control of an iLQR plan of
    horizon ``H`` from it, ``teacher.first_iters`` iterations, warm-started from
    ``warm (M, H, m)`` (e.g. the learner's own next actions) or zeros.

    Returns:
        ``(u (M, m), K (M, m, n))``: the labels and the plans' first feedback gains.
    """
    M = X.shape[0]
    if warm is None:
        warm = torch.zeros(M, teacher.horizon, problem.m, dtype=DTYPE)
    if tuple(warm.shape) != (M, teacher.horizon, problem.m):
        raise ValueError(
            f"warm: expected shape {(M, teacher.horizon, problem.m)}, got {tuple(warm.shape)}"
        )
    res = solve(problem, problem.cost, X.to(DTYPE), warm.to(DTYPE), teacher.first_iters)
    return res.u[:, 0], res.K[:, 0]


def shifted_windows(u: Tensor, H: int) -> Tensor:
    """``u (B, T, m) -> (B, T, H, m)``: at each step ``t`` the next ``H`` controls
    ``u_t..u_{t+H-1}`` (the last one repeated past ``T``), a warm start for :func:`label_states`."""
    B, T, m = u.shape
    pad = torch.cat([u, u[:, -1:].expand(B, H, m)], 1)  # (B, T+H, m)
    idx = torch.arange(T).view(T, 1) + torch.arange(H).view(1, H)  # (T, H)
    return pad[:, idx]
