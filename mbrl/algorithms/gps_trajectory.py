"""The trajectory and dual steps of guided policy search (augmented Lagrangian form).

For conditions ``i = 1..B`` (start states ``x0_i``), the trajectory step minimises, for fixed
policy ``π_θ``, multipliers ``λ_{i,t} (m,)`` and penalties ``ρ_t``,

    L_i(τ) = c(τ_i) + Σ_t λ_{i,t}ᵀ (π_θ(x_{i,t}) − u_{i,t}) + Σ_t ρ_t ‖π_θ(x_{i,t}) − u_{i,t}‖²

over ``τ_i = (x_{i,0..T}, u_{i,0..T-1})``: all ``B`` conditions in **one** batched
:func:`control.ilqr` call. :func:`control.ilqr` takes a time-invariant running cost
``cost(x, u)``; the multipliers depend on the condition and the step, so the state is augmented
with two index coordinates ``x̃ = [x, i, t]`` (dynamics ``[f(x, u), i, t + 1]``, costs independent
of them: their derivatives vanish, so the iLQR steps on ``x`` are those of the plain problem).

Derivatives of the policy term: ``hessian="gauss_newton"`` (default) uses the policy's Jacobian
``J = ∂π/∂x`` by autodiff, gradient ``[J, −I]ᵀ(λ + 2ρ r)`` and Hessian ``2ρ [J, −I]ᵀ[J, −I]`` with
``r = π(x) − u`` (positive semi-definite, drops ``(λ + 2ρ r)ᵀ∇²π``); ``"exact"`` differentiates the
whole augmented cost twice by autodiff.

The dual step is ``λ ← λ + α ρ_t (π_θ(x_t) − u_t)`` (:func:`dual_step`): gradient ascent on the
dual, in the direction of the constraint violation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from control import ilqr
from control.derivatives import (
    cost_derivatives,
    terminal_cost_derivatives,
)
from control.riccati import backward_pass
from mbrl.algorithms.gps_problem import DTYPE, ControlProblem, Policy

Tensor = torch.Tensor

__all__ = [
    "HESSIANS",
    "TrajectoryStep",
    "dual_step",
    "policy_violation",
    "task_gains",
    "trajectory_step",
]

HESSIANS = ("gauss_newton", "exact")


@dataclass(frozen=True)
class TrajectoryStep:
    """Result of one trajectory step over ``B`` conditions.

    Attributes:
        x: ``(B, T+1, n)`` states. u: ``(B, T, m)`` controls.
        K: ``(B, T, m, n)`` iLQR feedback gains on ``x`` (``u ≈ u_t + K_t (x − x_t)``).
        cost: ``(B,)`` task cost ``c(τ)``. lagrangian: ``(B,)`` the augmented Lagrangian.
        status: iLQR status per condition.
    """

    x: Tensor
    u: Tensor
    K: Tensor
    cost: Tensor
    lagrangian: Tensor
    status: list[str]


def _check(name: str, t: Tensor, shape: tuple[int, ...]) -> Tensor:
    if tuple(t.shape) != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or inf")
    return t.to(DTYPE)


@dataclass(frozen=True)
class _Augmented:
    """The index-augmented problem ``x̃ = [x, i, t]`` (see the module docstring)."""

    problem: ControlProblem
    policy: Policy
    lam: Tensor  # (B, T, m)
    rho: Tensor  # (T,)
    n: int

    def split(self, xa: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``x (N, n)``, condition and step indices ``(N,)`` (clamped into range)."""
        B, T, _ = self.lam.shape
        i = xa[:, self.n].detach().round().long().clamp(0, B - 1)
        t = xa[:, self.n + 1].detach().round().long().clamp(0, T - 1)
        return xa[:, : self.n], i, t

    def dynamics(self, xa: Tensor, u: Tensor) -> Tensor:
        x = xa[:, : self.n]
        return torch.cat([self.problem.dynamics(x, u), xa[:, self.n :] + xa.new_tensor([0, 1])], 1)

    def residual(self, xa: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``r = π(x) − u (N, m)``, ``λ_{i,t} (N, m)``, ``ρ_t (N,)``."""
        x, i, t = self.split(xa)
        return self.policy(x).to(DTYPE) - u, self.lam[i, t], self.rho[t]

    def cost(self, xa: Tensor, u: Tensor) -> Tensor:
        r, lam, rho = self.residual(xa, u)
        c = self.problem.cost(xa[:, : self.n], u)
        return c + (lam * r).sum(-1) + rho * r.square().sum(-1)

    def task_cost(self, xa: Tensor, u: Tensor) -> Tensor:
        return self.problem.cost(xa[:, : self.n], u)

    def terminal(self) -> Callable[[Tensor], Tensor] | None:
        tc = self.problem.terminal_cost
        if tc is None:
            return None
        return lambda xa: tc(xa[:, : self.n])

    def dynamics_jacobians(self, xa: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """``(f̃_x (N, n+2, n+2), f̃_u (N, n+2, m))``: the problem's Jacobians on ``x``, the
        identity on the index coordinates (they do not depend on ``x`` or ``u``)."""
        N, d = xa.shape
        F = self.problem.linearize(xa[:, : self.n], u)
        A = torch.zeros(N, d, d, dtype=F.dtype, device=F.device)
        A[:, : self.n, : self.n] = F[..., : self.n]
        A[:, self.n :, self.n :] = torch.eye(d - self.n, dtype=F.dtype, device=F.device)
        Bu = torch.zeros(N, d, u.shape[1], dtype=F.dtype, device=F.device)
        Bu[:, : self.n] = F[..., self.n :]
        return A, Bu

    def cost_gauss_newton(self, xa: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """Gradient ``(N, d+m)`` and Gauss–Newton Hessian of the augmented cost."""
        c, C = cost_derivatives(self.task_cost, xa, u, "autodiff")
        N, d = xa.shape
        m = u.shape[1]
        with torch.enable_grad():
            x = xa[:, : self.n].detach().requires_grad_(True)
            pi = self.policy(x).to(DTYPE)
            rows = [
                torch.autograd.grad(pi[:, k].sum(), x, retain_graph=k < m - 1)[0] for k in range(m)
            ]
        J = torch.zeros(N, m, d + m, dtype=DTYPE, device=xa.device)
        J[:, :, : self.n] = torch.stack(rows, 1)
        J[:, :, d:] = -torch.eye(m, dtype=DTYPE, device=xa.device)
        _, i, t = self.split(xa)
        rho = self.rho[t].view(N, 1)
        w = self.lam[i, t] + 2.0 * rho * (pi.detach() - u)
        c = c + (J.transpose(1, 2) @ w.unsqueeze(-1)).squeeze(-1)
        C = C + 2.0 * rho.view(N, 1, 1) * (J.transpose(1, 2) @ J)
        return c, C


def trajectory_step(
    problem: ControlProblem,
    policy: Policy,
    x0: Tensor,
    u_init: Tensor,
    lam: Tensor,
    rho: Tensor | float,
    *,
    max_iter: int = 50,
    hessian: str = "gauss_newton",
    tol: float = 1e-6,
) -> TrajectoryStep:
    """Minimise the augmented Lagrangian of every condition in one batched iLQR call.

    Args:
        problem: dynamics, cost, bounds, horizon ``T``.
        policy: ``π_θ(x (N, n)) -> (N, m)``, differentiable in ``x``.
        x0: ``(B, n)`` start states of the conditions.
        u_init: ``(B, T, m)`` warm start (e.g. the previous trajectories' controls).
        lam: ``(B, T, m)`` multipliers.
        rho: penalty, a scalar or ``(T,)`` per step, ``>= 0``.
        max_iter: iLQR iterations.
        hessian: ``"gauss_newton"`` or ``"exact"`` (see the module docstring).
        tol: iLQR convergence tolerance.
    """
    if hessian not in HESSIANS:
        raise ValueError(f"hessian: expected one of {HESSIANS}, got {hessian!r}")
    T, m = problem.horizon, problem.m
    if x0.dim() != 2:
        raise ValueError(f"x0: expected shape (B, n), got {tuple(x0.shape)}")
    B, n = x0.shape
    x0 = _check("x0", x0, (B, n))
    u_init = _check("u_init", u_init, (B, T, m))
    lam = _check("lam", lam, (B, T, m))
    rho_t = torch.as_tensor(rho, dtype=DTYPE).expand(T).clone()
    if not bool((rho_t >= 0).all()) or not bool(torch.isfinite(rho_t).all()):
        raise ValueError(f"rho: expected finite values >= 0, got {rho}")
    aug = _Augmented(problem, policy, lam, rho_t, n)
    index = torch.stack([torch.arange(B, dtype=DTYPE), torch.zeros(B, dtype=DTYPE)], 1)
    jac: dict = {"dynamics": aug.dynamics_jacobians}
    if hessian == "gauss_newton":
        jac["cost"] = aug.cost_gauss_newton
    kw: dict = dict(derivatives="analytic", jacobians=jac)
    if problem.alphas is not None:
        kw["alphas"] = problem.alphas
    res = ilqr(
        aug.dynamics,
        aug.cost,
        torch.cat([x0, index], 1),
        u_init,
        terminal_cost=aug.terminal(),
        u_min=problem.u_min,
        u_max=problem.u_max,
        max_iter=max_iter,
        tol=tol,
        dtype=DTYPE,
        **kw,
    )
    x, u = res.x[..., :n].detach(), res.u.detach()
    return TrajectoryStep(
        x=x,
        u=u,
        K=res.K[..., :n].detach(),
        cost=problem.trajectory_cost(x, u).detach(),
        lagrangian=res.cost.detach(),
        status=list(res.status),
    )


@torch.no_grad()
def policy_violation(policy: Policy, x: Tensor, u: Tensor) -> Tensor:
    """``π(x_t) − u_t (B, T, m)`` along trajectories ``x (B, T+1, n)``, ``u (B, T, m)``."""
    B, T, m = u.shape
    return policy(x[:, :T].reshape(B * T, -1)).to(DTYPE).view(B, T, m) - u


def dual_step(lam: Tensor, violation: Tensor, rho: Tensor | float, alpha: float) -> Tensor:
    """``λ + α ρ_t (π(x_t) − u_t)``: ``lam``, ``violation`` ``(B, T, m)``, ``rho`` scalar or
    ``(T,)``, step ``alpha > 0``."""
    if not alpha > 0:
        raise ValueError(f"alpha: expected > 0, got {alpha}")
    if lam.shape != violation.shape:
        raise ValueError(
            f"violation: expected the shape of lam {tuple(lam.shape)}, got {tuple(violation.shape)}"
        )
    rho_t = torch.as_tensor(rho, dtype=lam.dtype).expand(lam.shape[1]).view(1, -1, 1)
    return lam + alpha * rho_t * violation


def task_gains(
    problem: ControlProblem, x: Tensor, u: Tensor, reg: float = 0.0, max_tries: int = 20
) -> Tensor:
    """Feedback gains ``K (B, T, m, n)`` of the *task's* cost around trajectories
    ``x (B, T+1, n)``, ``u (B, T, m)``: one iLQR backward pass (box-DDP: rows of clamped controls
    are zero) with the policy term left out.

    With a large ``ρ`` the gains of the trajectory step itself tend to the policy's own
    Jacobian (deviating from ``π`` is what the Lagrangian charges), so noisy copies built with
    them would teach the policy nothing it does not already do; these gains are the teacher's
    correction. ``reg`` is added to ``Q_uu``; where that is not positive definite it grows to
    ``max(10 reg, 1e-6)`` and the pass is repeated.
    """
    B, T, m = u.shape
    n = x.shape[-1]
    xf, uf = x[:, :T].reshape(B * T, n).to(DTYPE), u.reshape(B * T, m).to(DTYPE)
    F = problem.linearize(xf, uf).view(B, T, n, n + m)
    c, C = cost_derivatives(problem.cost, xf, uf, "autodiff")
    if problem.terminal_cost is not None:
        vT, VT = terminal_cost_derivatives(problem.terminal_cost, x[:, T].to(DTYPE), "autodiff")
    else:
        vT, VT = torch.zeros(B, n, dtype=DTYPE), torch.zeros(B, n, n, dtype=DTYPE)
    lo, up = problem.u_min - u, problem.u_max - u
    bounded = bool(torch.isfinite(problem.u_min).any() or torch.isfinite(problem.u_max).any())
    mu = torch.full((B,), float(reg), dtype=DTYPE)
    K = torch.zeros(B, T, m, n, dtype=DTYPE)
    todo = torch.ones(B, dtype=torch.bool)
    for _ in range(max_tries):
        i = torch.nonzero(todo).flatten()
        Ki, _, _, _, ok = backward_pass(
            F[i], c.view(B, T, -1)[i], C.view(B, T, n + m, n + m)[i], vT[i], VT[i], mu[i],
            lo[i] if bounded else None, up[i] if bounded else None,
            torch.zeros(i.numel(), T, m, dtype=DTYPE),
        )  # fmt: skip
        K[i[ok]] = Ki[ok].to(DTYPE)
        todo[i[ok]] = False
        if not bool(todo.any()):
            return K
        mu[todo] = torch.clamp(mu[todo] * 10.0, min=1e-6)
    raise ValueError(f"x, u: no positive-definite backward pass after {max_tries} tries")
