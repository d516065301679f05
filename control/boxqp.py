"""Batched box-constrained convex QP by projected Newton (the solver inside box-DDP).

Solves, for every member of a batch independently,

    minimise_x  ½ xᵀ H x + gᵀ x    subject to  lower <= x <= upper,

with ``H`` symmetric positive definite, by the projected-Newton method of Bertsekas (1982) as used
in box-DDP (Tassa, Mansard & Todorov, ICRA 2014): at each iterate the *clamped* set holds the
coordinates that sit on a bound with the gradient pushing outwards; a Newton step is taken on the
free coordinates and an Armijo line search runs along the projected arc.  All step sizes of the
line search are tried at once as batched tensor operations.

The Cholesky factor of the free block ``H_ff`` is returned (embedded in an identity on the
clamped coordinates) so that DDP can form the feedback gains ``K_f = -H_ff⁻¹ Q_ux,f`` with the
clamped rows zeroed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor

__all__ = ["BoxQPResult", "box_qp", "masked_cholesky"]

# Result codes (per member).
HESSIAN_NOT_PD = -1
"""``H_ff`` is not positive definite; ``x`` is the (feasible) starting point."""
MAX_ITER = 0
"""The iteration limit was reached; ``x`` is feasible and has not increased the objective."""
CONVERGED = 1
"""The projected gradient on the free set is below tolerance."""
ALL_CLAMPED = 2
"""Every coordinate is clamped: ``x`` is a vertex of the box and optimal."""


@dataclass(frozen=True)
class BoxQPResult:
    """Output of :func:`box_qp` for a batch of ``M`` problems of size ``m``.

    Attributes:
        x: ``(M, m)`` solution, always inside ``[lower, upper]``.
        free: ``(M, m)`` bool, True for coordinates not clamped at the solution.
        chol: ``(M, m, m)`` lower Cholesky factor of ``H`` restricted to the free set (rows and
            columns of clamped coordinates replaced by those of the identity).
        status: ``(M,)`` int64 codes: ``-1`` Hessian not PD, ``0`` iteration limit, ``1``
            converged, ``2`` all coordinates clamped.
        iterations: number of projected-Newton iterations run (maximum over the batch).
    """

    x: Tensor
    free: Tensor
    chol: Tensor
    status: Tensor
    iterations: int


def masked_cholesky(H: Tensor, free: Tensor) -> tuple[Tensor, Tensor]:
    """Cholesky factor of ``H`` restricted to ``free`` coordinates, padded with the identity.

    Args:
        H: ``(M, m, m)`` symmetric matrices.
        free: ``(M, m)`` bool mask.

    Returns:
        ``(L, ok)``: ``L`` is ``(M, m, m)`` lower triangular with ``L Lᵀ = H_ff ⊕ I_cc`` (in the
        original coordinate order), ``ok`` is ``(M,)`` bool, False where ``H_ff`` is not PD.
    """
    f = free.to(H.dtype)
    eye = torch.eye(H.shape[-1], dtype=H.dtype, device=H.device)
    Hm = H * (f.unsqueeze(-1) * f.unsqueeze(-2)) + torch.diag_embed(1.0 - f)
    Hm = 0.5 * (Hm + Hm.transpose(-1, -2))
    L, info = torch.linalg.cholesky_ex(Hm)
    ok = (info == 0) & torch.isfinite(Hm).flatten(-2).all(-1)
    L = torch.where(ok[:, None, None], L, eye)
    return L, ok


def _objective(H: Tensor, g: Tensor, x: Tensor) -> Tensor:
    """``½ xᵀHx + gᵀx`` for ``x`` of shape ``(M, ..., m)`` and ``H`` ``(M, m, m)``."""
    Hx = torch.einsum("mij,m...j->m...i", H, x)
    return (x * (0.5 * Hx + g.view(g.shape[0], *([1] * (x.dim() - 2)), g.shape[-1]))).sum(-1)


def box_qp(
    H: Tensor,
    g: Tensor,
    lower: Tensor,
    upper: Tensor,
    x0: Tensor | None = None,
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
    min_step: float = 1e-22,
    armijo: float = 0.1,
    step_decrease: float = 0.6,
) -> BoxQPResult:
    """Solve a batch of box-constrained convex QPs ``min ½xᵀHx + gᵀx, lower <= x <= upper``.

    Args:
        H: ``(M, m, m)`` symmetric Hessians (positive definite on the free set).
        g: ``(M, m)`` linear terms.
        lower: ``(M, m)`` lower bounds (``-inf`` allowed).
        upper: ``(M, m)`` upper bounds (``+inf`` allowed), ``upper >= lower``.
        x0: ``(M, m)`` warm start (projected onto the box); zeros when ``None``.
        max_iter: projected-Newton iteration limit.
        tol: convergence threshold on the norm of the free gradient (relative to ``1 + |g|``).
        min_step: smallest line-search step tried.
        armijo: sufficient-decrease fraction of the Armijo test.
        step_decrease: line-search step shrink factor.

    Returns:
        :class:`BoxQPResult`.
    """
    if H.dim() != 3 or H.shape[-1] != H.shape[-2]:
        raise ValueError(f"H must have shape (M, m, m), got {tuple(H.shape)}")
    M, m, _ = H.shape
    for name, t in (("g", g), ("lower", lower), ("upper", upper)):
        if t.shape != (M, m):
            raise ValueError(f"{name} must have shape ({M}, {m}), got {tuple(t.shape)}")
    if bool((lower > upper).any()):
        raise ValueError("box_qp: lower must be <= upper everywhere")
    x = torch.zeros_like(g) if x0 is None else x0.clone()
    x = torch.minimum(torch.maximum(x, lower), upper)
    n_steps = 1
    while step_decrease**n_steps > min_step:
        n_steps += 1
    steps = step_decrease ** torch.arange(n_steps, dtype=H.dtype, device=H.device)  # (S,)

    status = torch.full((M,), MAX_ITER, dtype=torch.long, device=H.device)
    active = torch.ones(M, dtype=torch.bool, device=H.device)
    free = torch.ones(M, m, dtype=torch.bool, device=H.device)
    value = _objective(H, g, x)
    gnorm_scale = 1.0 + g.norm(dim=-1)
    iterations = 0
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        iterations += 1
        grad = g + torch.einsum("mij,mj->mi", H, x)
        clamped = ((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0))
        new_free = ~clamped
        free = torch.where(active[:, None], new_free, free)
        all_clamped = active & clamped.all(-1)
        status = torch.where(all_clamped, torch.full_like(status, ALL_CLAMPED), status)
        active = active & ~all_clamped
        gnorm = (grad * new_free).norm(dim=-1)
        conv = active & (gnorm < tol * gnorm_scale)
        status = torch.where(conv, torch.full_like(status, CONVERGED), status)
        active = active & ~conv
        if not bool(active.any()):
            break
        L, ok = masked_cholesky(H, new_free)
        bad = active & ~ok
        status = torch.where(bad, torch.full_like(status, HESSIAN_NOT_PD), status)
        active = active & ~bad
        if not bool(active.any()):
            break
        # Newton step on the free set: x_f <- -H_ff^{-1}(g_f + H_fc x_c); clamped coords fixed.
        fm = new_free.to(H.dtype)
        x_c = x * (1.0 - fm)
        rhs = (g + torch.einsum("mij,mj->mi", H, x_c)) * fm
        target = -torch.cholesky_solve(rhs.unsqueeze(-1), L).squeeze(-1) * fm
        search = (target - x) * fm  # zero on clamped coordinates
        sdotg = (search * grad).sum(-1)
        cand = x.unsqueeze(1) + steps.view(1, -1, 1) * search.unsqueeze(1)  # (M, S, m)
        cand = torch.minimum(torch.maximum(cand, lower.unsqueeze(1)), upper.unsqueeze(1))
        vals = _objective(H, g, cand)  # (M, S)
        ratio = (value.unsqueeze(1) - vals) / (-(steps.view(1, -1) * sdotg.unsqueeze(1)))
        good = (ratio > armijo) & torch.isfinite(vals)
        any_good = good.any(-1)
        first = torch.argmax(good.to(torch.int8), dim=-1)
        chosen = cand[torch.arange(M, device=H.device), first]
        update = active & any_good
        # No acceptable step: the search direction is not a descent direction to precision.
        stalled = active & ~any_good
        status = torch.where(stalled, torch.full_like(status, CONVERGED), status)
        x = torch.where(update[:, None], chosen, x)
        value = torch.where(update, vals[torch.arange(M, device=H.device), first], value)
        active = active & any_good
    # Final free set and factor at the returned point.
    grad = g + torch.einsum("mij,mj->mi", H, x)
    clamped = ((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0))
    free = ~clamped
    L, ok = masked_cholesky(H, free)
    status = torch.where(~ok, torch.full_like(status, HESSIAN_NOT_PD), status)
    return BoxQPResult(x=x, free=free, chol=L, status=status, iterations=iterations)
