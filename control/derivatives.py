"""Linearisation of batched dynamics and quadratisation of batched costs.

Three interchangeable ways to get the derivatives iLQR needs at a batch of points:

* ``"autodiff"``: ``torch.autograd`` reverse mode at all ``N`` points (the whole horizon of the
  whole batch) at once.  Because a batched function ``f(x (N, n), u (N, m))`` treats rows
  independently, the gradient of ``Σ_i f_k(x_i, u_i)`` with respect to ``x`` holds row ``k`` of
  every per-point Jacobian, so ``n`` backward passes through one recorded graph give all ``N``
  Jacobians (cost Hessians: ``d`` backward passes through the gradient's graph).  Plain
  ``torch.autograd`` rather than ``torch.func``: the first ``torch.func`` transform in a process
  imports ``torch._dynamo`` (seconds), which made the first :func:`~control.ilqr.ilqr` call
  several times slower than the next ones.
* ``"finite_difference"``: central differences, all ``2(n+m)`` perturbations in one batched call,
  for black-box (e.g. NumPy) functions; cost Hessians by the four-point formula.
* ``"analytic"``: user-supplied callables (see :func:`linearize_dynamics`).

Shapes: ``x`` is ``(N, n)``, ``u`` is ``(N, m)``, ``d = n + m``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

Tensor = torch.Tensor
Dynamics = Callable[[Tensor, Tensor], Tensor]
Cost = Callable[[Tensor, Tensor], Tensor]
TerminalCost = Callable[[Tensor], Tensor]
DynamicsJacobians = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""``jac(x (N, n), u (N, m)) -> (f_x (N, n, n), f_u (N, n, m))``."""
CostDerivatives = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""``cd(x (N, n), u (N, m)) -> (grad (N, d), hess (N, d, d))`` with ``d = n + m``, order [x; u]."""
TerminalCostDerivatives = Callable[[Tensor], tuple[Tensor, Tensor]]
"""``tcd(x (N, n)) -> (grad (N, n), hess (N, n, n))``."""

METHODS = ("autodiff", "analytic", "finite_difference")

__all__ = [
    "METHODS",
    "cost_derivatives",
    "linearize_dynamics",
    "numpy_function",
    "terminal_cost_derivatives",
]


def numpy_function(fn: Callable[..., np.ndarray]) -> Callable[..., Tensor]:
    """Wrap a NumPy function of arrays into one of torch tensors (no autograd through it).

    Inputs are converted with ``.detach().cpu().numpy()`` and the output back to a tensor with the
    dtype and device of the first input.  Use with ``derivatives="finite_difference"`` or
    ``"analytic"``.  The wrapper keeps ``fn`` as ``wrapped.numpy_fn``: :func:`control.ilqr.ilqr`
    then steps it on NumPy arrays in its rollouts (no conversion per time step).
    """

    def wrapped(*args: Tensor) -> Tensor:
        ref = args[0]
        out = fn(*(a.detach().cpu().numpy() for a in args))
        return torch.as_tensor(np.asarray(out), dtype=ref.dtype, device=ref.device)

    wrapped.numpy_fn = fn  # type: ignore[attr-defined]
    wrapped.__name__ = getattr(fn, "__name__", "numpy_function")
    wrapped.__doc__ = fn.__doc__
    return wrapped


def _fd_step(z: Tensor, eps: float | None) -> Tensor:
    """Per-coordinate central-difference steps scaled to the magnitude of ``z`` (N, d)."""
    if eps is not None:
        return torch.full_like(z, eps)
    base = torch.finfo(z.dtype).eps ** (1.0 / 3.0)
    return base * (1.0 + z.abs())


def _check_jac(name: str, t: Tensor, shape: tuple[int, ...]) -> Tensor:
    if not isinstance(t, Tensor):
        t = torch.as_tensor(np.asarray(t))
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    return t


def linearize_dynamics(
    dynamics: Dynamics,
    x: Tensor,
    u: Tensor,
    method: str = "autodiff",
    jacobians: DynamicsJacobians | None = None,
    eps: float | None = None,
) -> Tensor:
    """Jacobian ``F = [∂f/∂x, ∂f/∂u]`` of batched dynamics at ``N`` points.

    Args:
        dynamics: ``f(x (N, n), u (N, m)) -> (N, n)``; rows must be independent.
        x: ``(N, n)`` states.
        u: ``(N, m)`` controls.
        method: ``"autodiff"``, ``"analytic"`` (uses ``jacobians``) or ``"finite_difference"``.
        jacobians: for ``"analytic"``: ``jac(x, u) -> (f_x (N, n, n), f_u (N, n, m))``.
        eps: finite-difference step; default ``eps_machine^(1/3) (1 + |z|)`` per coordinate.

    Returns:
        ``(N, n, n + m)`` Jacobians in the dtype of ``x``.
    """
    N, n = x.shape
    m = u.shape[-1]
    if method == "autodiff":
        jx, ju = _autodiff_jacobian(dynamics, x, u, n)
        return torch.cat([jx, ju], dim=-1)
    if method == "analytic":
        if jacobians is None:
            raise ValueError('derivatives="analytic" needs `jacobians=callable(x, u) -> (fx, fu)`')
        fx, fu = jacobians(x, u)
        fx = _check_jac("jacobians(x, u)[0] (f_x)", fx, (N, n, n))
        fu = _check_jac("jacobians(x, u)[1] (f_u)", fu, (N, n, m))
        return torch.cat([fx, fu], dim=-1).to(dtype=x.dtype, device=x.device)
    if method == "finite_difference":
        d = n + m
        z = torch.cat([x, u], dim=-1)
        h = _fd_step(z, eps)  # (N, d)
        eye = torch.eye(d, dtype=z.dtype, device=z.device)
        pert = eye.unsqueeze(0) * h.unsqueeze(1)  # (N, d(dir), d)
        zp = (z.unsqueeze(1) + pert).reshape(N * d, d)
        zm = (z.unsqueeze(1) - pert).reshape(N * d, d)
        zz = torch.cat([zp, zm], 0)
        with torch.no_grad():
            out = dynamics(zz[:, :n], zz[:, n:])
        out = torch.as_tensor(out, dtype=x.dtype, device=x.device)
        fp, fm = out[: N * d].view(N, d, n), out[N * d :].view(N, d, n)
        J = (fp - fm) / (2.0 * h.unsqueeze(-1))  # (N, d(dir), n)
        return J.transpose(1, 2).contiguous()
    raise ValueError(f"derivatives must be one of {METHODS}, got {method!r}")


def _not_differentiable(name: str) -> ValueError:
    return ValueError(
        f"{name} is not differentiable by torch.autograd (its output does not depend on its "
        'inputs through autograd, e.g. a NumPy function): use derivatives="finite_difference" '
        'or "analytic"'
    )


def _one_hot_blocks(k: int, N: int, like: Tensor) -> Tensor:
    """``(k·N, k)`` seed whose block ``i`` (rows ``i·N .. (i+1)·N``) is ``1`` in column ``i``."""
    eye = torch.eye(k, dtype=like.dtype, device=like.device)
    return eye.unsqueeze(1).expand(k, N, k).reshape(k * N, k)


def _autodiff_jacobian(
    fun: Callable[[Tensor, Tensor], Tensor], x: Tensor, u: Tensor, n_out: int
) -> tuple[Tensor, Tensor]:
    """Per-row Jacobians ``(N, n_out, n)`` and ``(N, n_out, m)`` of a row-wise ``fun(x, u)``.

    The rows are stacked ``n_out`` times (block ``k`` for output ``k``) and ONE backward pass
    with a block one-hot seed gives every Jacobian row: the same per-row arithmetic as ``n_out``
    passes of ``Σ_b out[b, k]`` through one graph, in one pass (the cost is dispatch, not rows).
    """
    N, n = x.shape
    m = u.shape[-1]
    with torch.enable_grad():
        xx = x.detach().repeat(n_out, 1).requires_grad_(True)  # (n_out·N, n)
        uu = u.detach().repeat(n_out, 1).requires_grad_(True)
        out = fun(xx, uu)
        if not (isinstance(out, Tensor) and out.requires_grad):
            raise _not_differentiable("dynamics")
        grads = torch.autograd.grad(
            out, (xx, uu), _one_hot_blocks(n_out, N, out), allow_unused=True
        )
    gx, gu = (torch.zeros_like(a) if g is None else g for a, g in zip((xx, uu), grads, strict=True))
    jx = gx.view(n_out, N, n).transpose(0, 1)  # jx[b, k, j] = ∂out_{b,k}/∂x_{b,j}
    ju = gu.view(n_out, N, m).transpose(0, 1)
    return jx, ju


def _autodiff_grad_hess(
    fun: Callable[[Tensor], Tensor], z: Tensor, name: str
) -> tuple[Tensor, Tensor]:
    """Per-row gradient (N, d) and Hessian (N, d, d) of a row-wise function ``fun(z) -> (N,)``.

    As :func:`_autodiff_jacobian`: the rows are stacked ``d`` times and one double-backward pass
    with a block one-hot seed gives every Hessian row.
    """
    N, d = z.shape
    with torch.enable_grad():
        zz = z.detach().repeat(d, 1).requires_grad_(True)  # (d·N, d)
        total = fun(zz).sum()
        if not total.requires_grad:
            raise _not_differentiable(name)
        (grad,) = torch.autograd.grad(total, zz, create_graph=True, allow_unused=True)
        if grad is None:
            grad = torch.zeros_like(zz)
        hess = None
        if grad.requires_grad:
            (hess,) = torch.autograd.grad(grad, zz, _one_hot_blocks(d, N, grad), allow_unused=True)
    if hess is None:  # linear in z
        hess = torch.zeros_like(zz)
    hess = hess.view(d, N, d).transpose(0, 1)  # hess[b, i, j] = ∂g_{b,i}/∂z_{b,j}
    hess = 0.5 * (hess + hess.transpose(-1, -2))
    return grad[:N].detach(), hess


def _fd_grad_hess(
    fun: Callable[[Tensor], Tensor], z: Tensor, eps: float | None
) -> tuple[Tensor, Tensor]:
    """Central-difference gradient and four-point Hessian of a row-wise function."""
    N, d = z.shape
    if eps is None:
        h = torch.finfo(z.dtype).eps ** 0.25 * (1.0 + z.abs())
    else:
        h = torch.full_like(z, eps)
    eye = torch.eye(d, dtype=z.dtype, device=z.device)
    E = eye.unsqueeze(0) * h.unsqueeze(1)  # (N, d, d): E[b, i] = h_bi e_i
    si = E.unsqueeze(2)  # (N, d, 1, d)
    sj = E.unsqueeze(1)  # (N, 1, d, d)
    zs = z.view(N, 1, 1, d)
    pts = torch.stack(
        [zs + si + sj, zs + si - sj, zs - si + sj, zs - si - sj], dim=0
    )  # (4, N, d, d, d)
    gpts = torch.stack([z.unsqueeze(1) + E, z.unsqueeze(1) - E], 0)  # (2, N, d, d)
    with torch.no_grad():
        vals = torch.as_tensor(fun(pts.reshape(-1, d)), dtype=z.dtype).view(4, N, d, d)
        gv = torch.as_tensor(fun(gpts.reshape(-1, d)), dtype=z.dtype).view(2, N, d)
    hi = h.unsqueeze(2)
    hj = h.unsqueeze(1)
    hess = (vals[0] - vals[1] - vals[2] + vals[3]) / (4.0 * hi * hj)
    hess = 0.5 * (hess + hess.transpose(-1, -2))
    grad = (gv[0] - gv[1]) / (2.0 * h)
    return grad, hess


def cost_derivatives(
    cost: Cost,
    x: Tensor,
    u: Tensor,
    method: str = "autodiff",
    derivatives: CostDerivatives | None = None,
    eps: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Gradient and Hessian of a batched running cost ``cost(x (N, n), u (N, m)) -> (N,)``.

    Args:
        cost: the running cost, rows independent.
        x: ``(N, n)``; u: ``(N, m)``.
        method: ``"autodiff"`` or ``"finite_difference"``; ``"analytic"`` uses ``derivatives``
            when given, else autodiff.
        derivatives: ``cd(x, u) -> (grad (N, d), hess (N, d, d))`` for ``"analytic"``.
        eps: finite-difference step (default ``eps_machine^(1/4) (1 + |z|)``).

    Returns:
        ``(c (N, d), C (N, d, d))``: gradient and symmetric Hessian with respect to ``[x; u]``.
    """
    N, n = x.shape
    m = u.shape[-1]
    d = n + m
    z = torch.cat([x, u], dim=-1)

    def fun(zz: Tensor) -> Tensor:
        return cost(zz[..., :n], zz[..., n:])

    if method == "analytic" and derivatives is not None:
        c, C = derivatives(x, u)
        c = _check_jac("cost derivatives grad", c, (N, d)).to(x.dtype)
        C = _check_jac("cost derivatives hess", C, (N, d, d)).to(x.dtype)
        return c, 0.5 * (C + C.transpose(-1, -2))  # only the symmetric part is a Hessian
    if method in ("autodiff", "analytic"):
        return _autodiff_grad_hess(fun, z, "cost")
    if method == "finite_difference":
        return _fd_grad_hess(fun, z, eps)
    raise ValueError(f"derivatives must be one of {METHODS}, got {method!r}")


def terminal_cost_derivatives(
    terminal_cost: TerminalCost,
    x: Tensor,
    method: str = "autodiff",
    derivatives: TerminalCostDerivatives | None = None,
    eps: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Gradient ``(N, n)`` and Hessian ``(N, n, n)`` of ``terminal_cost(x (N, n)) -> (N,)``.

    ``method`` and ``derivatives`` as in :func:`cost_derivatives`.
    """
    N, n = x.shape
    if method == "analytic" and derivatives is not None:
        c, C = derivatives(x)
        c = _check_jac("terminal cost derivatives grad", c, (N, n)).to(x.dtype)
        C = _check_jac("terminal cost derivatives hess", C, (N, n, n)).to(x.dtype)
        return c, 0.5 * (C + C.transpose(-1, -2))
    if method in ("autodiff", "analytic"):
        return _autodiff_grad_hess(terminal_cost, x, "terminal_cost")
    if method == "finite_difference":
        return _fd_grad_hess(terminal_cost, x, eps)
    raise ValueError(f"derivatives must be one of {METHODS}, got {method!r}")
