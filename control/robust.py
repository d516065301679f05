"""Robust trajectory optimisation: ONE control sequence for ``K`` models (used by :func:`ilqr`).

The lecture notes' "movement with model uncertainty": generate perturbed models (limb mass,
centre of mass, contact/friction, ...), optimise one control sequence over the ``K`` state
trajectories it produces, one per model.  :func:`control.ilqr.ilqr` does this when ``dynamics`` is
a sequence of ``K`` callables ``f¹ … fᴷ``.  The ``K`` models are stacked into one system whose
state is ``x̄ = [x¹; …; xᴷ]`` (``K·n``) and whose control ``u`` is shared:

    x̄_{t+1} = [f¹(x¹_t, u_t); …; fᴷ(xᴷ_t, u_t)],   x̄_0 = [x_0; …; x_0].

Each model's cost is the user's ``J_k = Σ_t cost(xᵏ_t, u_t) + terminal_cost(xᵏ_T)``; the robust
objective combines them:

* ``"mean"``: ``J = (1/K) Σ_k J_k``.  Stage-additive, so iLQR on the stacked system is exact
  Gauss–Newton on it: the Riccati recursion over ``x̄`` gives one shared feedback gain
  ``K_t (m, K·n)`` and feed-forward ``k_t``.
* ``"worst"``: the smooth maximum ``J = τ log((1/K) Σ_k exp(J_k / τ))`` (temperature ``τ`` in cost
  units).  ``mean ≤ J ≤ max``, ``J → max_k J_k`` as ``τ → 0`` and ``J → mean`` as ``τ → ∞``;
  with ``K`` equal costs ``J`` equals that cost (the ``1/K`` inside the log makes this so).  Its
  gradient is ``Σ_k w_k ∇J_k`` with ``w = softmax(J_k / τ)``.  It is not stage-additive, so each
  iteration quadratises the *weighted mean* ``Σ_k w_k J_k`` with ``w`` frozen at the nominal
  trajectory (exact gradient; the Hessian drops the positive semi-definite term
  ``(1/τ) Cov_w(∇J_k)``, as Gauss–Newton drops second-order terms), and the line search
  evaluates the true smooth maximum.  A smooth maximum rather than "optimise the currently worst
  model" because the hard maximum switches between models from one iteration to the next (its
  gradient jumps), which stalls the line search; ``τ`` small approaches that rule.

Cost: the backward pass works on ``K·n`` states (``O((K n)³)`` per step), the rollouts on ``K``
times the rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from control.derivatives import cost_derivatives, linearize_dynamics, terminal_cost_derivatives

Tensor = torch.Tensor

__all__ = ["ROBUST_OBJECTIVES", "ModelSet", "StackedDynamics", "model_set"]

ROBUST_OBJECTIVES: tuple[str, ...] = ("mean", "worst")


class StackedDynamics:
    """``x̄ (N, K·n), u (N, m) -> x̄' (N, K·n)``: model ``k`` moves block ``k`` of the state.

    Has ``numpy_fn`` (the same map on NumPy arrays) when every model has one
    (:func:`~control.derivatives.numpy_function`), so :func:`ilqr`'s NumPy rollout applies.
    """

    def __init__(self, dynamics: tuple[Callable[[Tensor, Tensor], Tensor], ...], n: int) -> None:
        self.dynamics = dynamics
        self.n = n
        fns = [getattr(f, "numpy_fn", None) for f in dynamics]
        if all(fn is not None for fn in fns):
            self.numpy_fn = _StackedNumpy(tuple(fns), n)

    def __call__(self, x: Tensor, u: Tensor) -> Tensor:
        n = self.n
        return torch.cat([f(x[:, k * n : (k + 1) * n], u) for k, f in enumerate(self.dynamics)], 1)


class _StackedNumpy:
    """:class:`StackedDynamics` on NumPy arrays."""

    def __init__(self, fns: tuple[Callable[..., np.ndarray], ...], n: int) -> None:
        self.fns = fns
        self.n = n

    def __call__(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        n = self.n
        parts = [np.asarray(f(x[:, k * n : (k + 1) * n], u)) for k, f in enumerate(self.fns)]
        return np.concatenate(parts, 1)


@dataclass(frozen=True)
class ModelSet:
    """``K`` dynamics models with one shared control, and how their costs are combined.

    Attributes:
        dynamics: the ``K`` callables ``f_k(x (N, n), u (N, m)) -> (N, n)``.
        jacobians: ``K`` analytic Jacobian callables (``derivatives="analytic"``) or None.
        objective: ``"mean"`` or ``"worst"`` (see the module docs).
        temperature: ``τ`` of ``"worst"`` (cost units, > 0).
        n: state size of ONE model; the stacked state has ``K·n``.
    """

    dynamics: tuple[Callable[[Tensor, Tensor], Tensor], ...]
    jacobians: tuple[Callable[..., tuple[Tensor, Tensor]], ...] | None
    objective: str
    temperature: float
    n: int

    @property
    def K(self) -> int:  # noqa: N802 - the notes' K
        """Number of models."""
        return len(self.dynamics)

    def stacked(self) -> StackedDynamics:
        """The stacked dynamics over ``x̄ (N, K·n)``."""
        return StackedDynamics(self.dynamics, self.n)

    def combine(self, Jk: Tensor) -> Tensor:
        """Robust objective ``(...)`` of per-model costs ``Jk (..., K)`` (inf stays inf)."""
        if self.objective == "mean":
            return Jk.mean(-1)
        tau = self.temperature
        return tau * (torch.logsumexp(Jk / tau, -1) - math.log(self.K))

    def weights(self, Jk: Tensor) -> Tensor:
        """``(M, K)`` weights ``∂J/∂J_k`` at per-model costs ``Jk (M, K)`` (rows sum to 1)."""
        if self.objective == "mean":
            return torch.full_like(Jk, 1.0 / self.K)
        return torch.softmax(Jk / self.temperature, -1)

    def trajectory_costs(
        self,
        cost: Callable[[Tensor, Tensor], Tensor],
        terminal_cost: Callable[[Tensor], Tensor] | None,
        xs: Tensor,
        us: Tensor,
    ) -> Tensor:
        """Per-model costs ``(M, A, K)`` of stacked states ``xs (M, A, T+1, K·n)`` and shared
        controls ``us (M, A, T, m)`` (not yet checked for finiteness)."""
        M, A, T, m = us.shape
        K, n = self.K, self.n
        x = xs.view(M, A, T + 1, K, n)
        u = us.unsqueeze(3).expand(M, A, T, K, m).reshape(M * A * T * K, m)
        c = cost(x[:, :, :T].reshape(M * A * T * K, n), u)
        c = _check_rows("cost(x, u)", c, M * A * T * K).to(xs.dtype)
        Jk = c.view(M, A, T, K).sum(2)
        if terminal_cost is not None:
            cT = terminal_cost(x[:, :, T].reshape(M * A * K, n))
            Jk = Jk + _check_rows("terminal_cost(x)", cT, M * A * K).to(xs.dtype).view(M, A, K)
        return Jk

    def derivatives(
        self,
        cost: Callable[[Tensor, Tensor], Tensor],
        terminal_cost: Callable[[Tensor], Tensor] | None,
        x_nom: Tensor,
        u_nom: Tensor,
        w: Tensor,
        method: str,
        cost_jac: Callable | None,
        term_jac: Callable | None,
        eps: float | None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Stacked ``F, c, C, vT, VT`` along ``x_nom (M, T+1, K·n)``, ``u_nom (M, T, m)`` for the
        weighted objective ``Σ_k w_k J_k`` (``w (M, K)``).

        ``F`` is block-diagonal in the states with the ``K`` control Jacobians stacked; the cost
        blocks of model ``k`` are scaled by ``w_k`` and the control blocks summed.

        Returns:
            ``F (M, T, K n, K n + m)``, ``c (M, T, K n + m)``, ``C (M, T, K n + m, K n + m)``,
            ``vT (M, K n)``, ``VT (M, K n, K n)``.
        """
        M, T, m = u_nom.shape
        K, n = self.K, self.n
        N = K * n
        like = dict(dtype=x_nom.dtype, device=x_nom.device)
        x = x_nom.view(M, T + 1, K, n)
        uf = u_nom.reshape(M * T, m)
        F = torch.zeros(M * T, N, N + m, **like)
        for k, f in enumerate(self.dynamics):
            jac = None if self.jacobians is None else self.jacobians[k]
            Fk = linearize_dynamics(f, x[:, :T, k].reshape(M * T, n), uf, method, jac, eps)
            F[:, k * n : (k + 1) * n, k * n : (k + 1) * n] = Fk[:, :, :n]
            F[:, k * n : (k + 1) * n, N:] = Fk[:, :, n:]
        xk = x[:, :T].reshape(M * T * K, n)
        uk = u_nom.unsqueeze(2).expand(M, T, K, m).reshape(M * T * K, m)
        ck, Ck = cost_derivatives(cost, xk, uk, method, cost_jac, eps)
        wt = w.view(M, 1, K, 1).expand(M, T, K, 1).reshape(M * T, K, 1)
        ck = ck.view(M * T, K, n + m) * wt
        Ck = Ck.view(M * T, K, n + m, n + m) * wt.unsqueeze(-1)
        c = torch.cat([ck[:, :, :n].reshape(M * T, N), ck[:, :, n:].sum(1)], 1)
        C = torch.zeros(M * T, N + m, N + m, **like)
        for k in range(K):
            s = slice(k * n, (k + 1) * n)
            C[:, s, s] = Ck[:, k, :n, :n]
            C[:, s, N:] = Ck[:, k, :n, n:]
            C[:, N:, s] = Ck[:, k, n:, :n]
        C[:, N:, N:] = Ck[:, :, n:, n:].sum(1)
        vT = torch.zeros(M, N, **like)
        VT = torch.zeros(M, N, N, **like)
        if terminal_cost is not None:
            gT, HT = terminal_cost_derivatives(
                terminal_cost, x[:, T].reshape(M * K, n), method, term_jac, eps
            )
            gT = gT.view(M, K, n) * w.unsqueeze(-1)
            HT = HT.view(M, K, n, n) * w.view(M, K, 1, 1)
            vT = gT.reshape(M, N)
            for k in range(K):
                VT[:, k * n : (k + 1) * n, k * n : (k + 1) * n] = HT[:, k]
        return (
            F.view(M, T, N, N + m),
            c.view(M, T, N + m),
            C.view(M, T, N + m, N + m),
            vT,
            VT,
        )


def _check_rows(name: str, out: Tensor, rows: int) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(out).__name__}")
    if tuple(out.shape) != (rows,):
        raise ValueError(f"{name} returned shape {tuple(out.shape)}, expected {(rows,)}")
    return out


def model_set(
    dynamics: Sequence[Callable[[Tensor, Tensor], Tensor]],
    jacobians: object,
    objective: str,
    temperature: float,
    n: int,
) -> ModelSet:
    """Validate ``K`` models and the robust settings of :func:`ilqr` (errors name the argument).

    Args:
        dynamics: sequence of ``K >= 1`` callables.
        jacobians: for ``derivatives="analytic"``, a sequence of ``K`` Jacobian callables (the
            ``"dynamics"`` entry of ``ilqr``'s ``jacobians``); else None.
        objective: ``"mean"`` or ``"worst"``.
        temperature: ``τ > 0`` (finite) for ``"worst"``.
        n: state size of one model (from ``x0``).
    """
    if isinstance(dynamics, str | bytes) or not isinstance(dynamics, Sequence):
        raise TypeError(
            "dynamics must be a callable or a sequence of K callables (one per model), got "
            f"{type(dynamics).__name__}"
        )
    models = tuple(dynamics)
    if len(models) == 0:
        raise ValueError("dynamics: an empty sequence of models; give at least one callable")
    for i, f in enumerate(models):
        if not callable(f):
            raise TypeError(f"dynamics[{i}] must be callable, got {type(f).__name__}")
    if objective not in ROBUST_OBJECTIVES:
        raise ValueError(f"robust must be one of {ROBUST_OBJECTIVES}, got {objective!r}")
    finite = isinstance(temperature, int | float) and math.isfinite(temperature)
    if not (finite and temperature > 0):
        raise ValueError(f"robust_temperature must be a finite float > 0, got {temperature!r}")
    jacs = None
    if jacobians is not None:
        if callable(jacobians) or not isinstance(jacobians, Sequence):
            raise TypeError(
                f"jacobians: with K = {len(models)} models the dynamics Jacobians must be a "
                f"sequence of {len(models)} callables (one per model), got "
                f"{type(jacobians).__name__}"
            )
        jacs = tuple(jacobians)
        if len(jacs) != len(models):
            raise ValueError(
                f"jacobians: got {len(jacs)} Jacobian callables for K = {len(models)} models"
            )
        for i, j in enumerate(jacs):
            if not callable(j):
                raise TypeError(f"jacobians[{i}] must be callable, got {type(j).__name__}")
    return ModelSet(models, jacs, objective, float(temperature), n)
