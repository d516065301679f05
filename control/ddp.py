"""Batched iLQR / box-DDP trajectory optimisation.

:func:`ilqr` minimises, for every member ``b`` of a batch of problems,

    J_b(u) = Σ_{t=0}^{T-1} cost(x_t, u_t) + terminal_cost(x_T),
    x_{t+1} = dynamics(x_t, u_t),  x_0 = x0_b,  u_min <= u_t <= u_max,

by iterative LQR (Gauss–Newton DDP, Li & Todorov 2004): each iteration linearises the dynamics and
quadratises the cost around the nominal trajectory ``(x̂, û)`` (all steps of all members at once),
runs the LQR backward recursion of the lecture notes on ``δx = x − x̂``, ``δu = u − û``,

    Q_t = C_t + F_tᵀ V_{t+1} F_t,   q_t = c_t + F_tᵀ v_{t+1},
    δu_t = K_t δx_t + k_t,
    V_t = Q_xx + K_tᵀQ_uu K_t + K_tᵀQ_ux + Q_xu K_t,
    v_t = q_x + K_tᵀQ_uu k_t + K_tᵀq_u + Q_xu k_t,

and then a forward line search ``u_t = clip(û_t + α k_t + K_t (x_t − x̂_t))`` in which every step
size ``α`` of every member is evaluated in one batched rollout.

Control limits are handled as in box-DDP (Tassa, Mansard & Todorov, ICRA 2014): ``k_t`` solves the
box-constrained QP ``min ½ kᵀQ_uu k + q_uᵀk, u_min − û_t <= k <= u_max − û_t`` by projected
Newton (:mod:`control.boxqp`) and the rows of ``K_t`` of clamped controls are zero, so controls
never leave ``[u_min, u_max]``.

Each member has its own Levenberg–Marquardt regularisation ``μ`` (added to ``Q_uu``, adapted with
Tassa's multiplicative schedule), line search and convergence flag.  A non-PD ``Q_uu`` or a failed
line search (no decrease, or NaN/inf in every candidate rollout) raises ``μ``; ``μ > reg_max``
stops that member with status ``"reg_max_reached"``.  The returned trajectory is always the last
finite one.

Batch convention: results are **always batched** — ``ILQRResult.x`` is ``(B, T+1, n)`` even for a
single problem (then ``B = 1``); ``result.best`` indexes the member of lowest cost and
``result.x_best`` / ``result.u_best`` / ... are that member's arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from control.boxqp import HESSIAN_NOT_PD, box_qp
from control.derivatives import (
    METHODS,
    cost_derivatives,
    linearize_dynamics,
    terminal_cost_derivatives,
)

Tensor = torch.Tensor

__all__ = ["ILQRResult", "ilqr", "DEFAULT_ALPHAS"]

DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in 10.0 ** np.linspace(0.0, -3.0, 11))
"""Line-search step sizes ``10^linspace(0, -3, 11)``, largest first."""


@dataclass(frozen=True)
class ILQRResult:
    """Solution of a batch of ``B`` trajectory-optimisation problems (always batched).

    Attributes:
        x: ``(B, T+1, n)`` optimised states (``x[:, 0]`` is the initial state).
        u: ``(B, T, m)`` optimised controls, inside ``[u_min, u_max]``.
        K: ``(B, T, m, n)`` feedback gains of the last successful backward pass (around the
            returned trajectory for converged members): ``u_t ≈ u[:, t] + K_t (x_t − x[:, t])``.
        k: ``(B, T, m)`` feed-forward terms of that backward pass (≈ 0 at convergence).
        cost: ``(B,)`` total cost ``Σ_t cost(x_t, u_t) + terminal_cost(x_T)`` of ``(x, u)``.
        cost_history: ``(iters + 1, B)`` cost of each member's nominal trajectory before the first
            iteration (row 0) and after every iteration.
        iterations: ``(B,)`` number of iterations (backward + forward pass) each member ran; the
            final backward pass that only detects convergence is not counted.
        converged: ``(B,)`` bool.
        status: per member ``"converged"``, ``"max_iter"``, ``"reg_max_reached"`` or
            ``"nonfinite_derivatives"``.
        notes: per member, a human-readable account of events (Q_uu not PD, candidate rollouts
            with NaN/inf, line searches without improvement); ``""`` when none happened.
        reg: ``(B,)`` final Levenberg–Marquardt regularisation.
        best: index of the member with the lowest cost.
    """

    x: Tensor
    u: Tensor
    K: Tensor
    k: Tensor
    cost: Tensor
    cost_history: Tensor
    iterations: Tensor
    converged: Tensor
    status: list[str]
    notes: list[str]
    reg: Tensor
    best: int

    @property
    def x_best(self) -> Tensor:
        """``(T+1, n)`` states of the best member."""
        return self.x[self.best]

    @property
    def u_best(self) -> Tensor:
        """``(T, m)`` controls of the best member."""
        return self.u[self.best]

    @property
    def K_best(self) -> Tensor:
        """``(T, m, n)`` feedback gains of the best member."""
        return self.K[self.best]

    @property
    def k_best(self) -> Tensor:
        """``(T, m)`` feed-forward terms of the best member."""
        return self.k[self.best]

    @property
    def cost_best(self) -> float:
        """Cost of the best member."""
        return float(self.cost[self.best])


def _as_tensor(name: str, v: object, dtype: torch.dtype, device: torch.device | None) -> Tensor:
    t = torch.as_tensor(np.asarray(v) if not isinstance(v, Tensor) else v)
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must be a real float array, got dtype {t.dtype}")
    return t.to(dtype=dtype, device=device)


def _check_batched(name: str, out: Tensor, shape: tuple[int, ...]) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(out).__name__}")
    if tuple(out.shape) != shape:
        raise ValueError(f"{name} returned shape {tuple(out.shape)}, expected {shape}")
    return out


class _Problem:
    """Validated problem data and the batched rollout used by the solver."""

    def __init__(
        self,
        dynamics: Callable[[Tensor, Tensor], Tensor],
        cost: Callable[[Tensor, Tensor], Tensor],
        terminal_cost: Callable[[Tensor], Tensor] | None,
        x0: Tensor,
        lower: Tensor | None,
        upper: Tensor | None,
        T: int,
        n: int,
        m: int,
    ) -> None:
        self.dynamics = dynamics
        self.cost = cost
        self.terminal_cost = terminal_cost
        self.x0 = x0
        self.lower = lower  # (B, T, m) or None
        self.upper = upper
        self.T, self.n, self.m = T, n, m

    @torch.no_grad()
    def rollout(
        self,
        idx: Tensor,
        u_nom: Tensor,
        x_nom: Tensor | None = None,
        K: Tensor | None = None,
        k: Tensor | None = None,
        alphas: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Closed-loop rollout of members ``idx`` for every step size in ``alphas``.

        ``u_t = clip(û_t + α k_t + K_t (x_t − x̂_t))``; open loop (``u = û``) when ``K`` is None.

        Returns:
            ``(x (M, A, T+1, n), u (M, A, T, m), J (M, A))`` with ``J = inf`` for rollouts that
            produced a non-finite state or cost.
        """
        M = idx.shape[0]
        A = 1 if alphas is None else alphas.shape[0]
        n, m, T = self.n, self.m, self.T
        dt = u_nom.dtype
        X = self.x0[idx].unsqueeze(1).expand(M, A, n).contiguous()  # (M, A, n)
        if K is not None:
            # u_t = (û_t + α k_t − K_t x̂_t) + K_t x_t: the bracket for all t, α at once, then
            # one batched matmul per step.
            Kxh = (K @ x_nom[:, :T].unsqueeze(-1)).squeeze(-1)  # (M, T, m)
            base = (u_nom - Kxh).unsqueeze(1) + alphas.view(1, A, 1, 1) * k.unsqueeze(1)
            KT = K.transpose(-1, -2)  # (M, T, n, m)
        else:
            base = u_nom.unsqueeze(1).expand(M, A, T, m)
        if self.lower is not None:
            lo = self.lower[idx].unsqueeze(1).expand(M, A, T, m)
            up = self.upper[idx].unsqueeze(1).expand(M, A, T, m)
        xs_list = [X]
        us_list = []
        bad = None
        for t in range(T):
            U = torch.baddbmm(base[:, :, t], X, KT[:, t]) if K is not None else base[:, :, t]
            if self.lower is not None:
                U = torch.clamp(U, min=lo[:, :, t], max=up[:, :, t])
            Xn = self.dynamics(X.reshape(M * A, n), U.reshape(M * A, m))
            Xn = _check_batched("dynamics(x, u)", Xn, (M * A, n)).to(dt).view(M, A, n)
            if not bool(torch.isfinite(Xn).all()):
                fin = torch.isfinite(Xn).all(-1)
                bad = ~fin if bad is None else bad | ~fin
                # Keep feeding finite states to the dynamics; these rollouts are discarded.
                repl = x_nom[:, t + 1].unsqueeze(1).expand(M, A, n) if x_nom is not None else X
                Xn = torch.where(bad.unsqueeze(-1), repl, Xn)
            us_list.append(U)
            xs_list.append(Xn)
            X = Xn
        xs = torch.stack(xs_list, 2)  # (M, A, T+1, n)
        us = torch.stack(us_list, 2)  # (M, A, T, m)
        c = self.cost(xs[:, :, :T].reshape(M * A * T, n), us.reshape(M * A * T, m))
        c = _check_batched("cost(x, u)", c, (M * A * T,)).to(dt)
        J = c.view(M, A, T).sum(-1)
        if self.terminal_cost is not None:
            cT = self.terminal_cost(X.reshape(M * A, n))
            J = J + _check_batched("terminal_cost(x)", cT, (M * A,)).to(dt).view(M, A)
        notfinite = ~torch.isfinite(J)
        if bad is not None:
            notfinite = notfinite | bad
        J = torch.where(notfinite, torch.full_like(J, math.inf), J)
        return xs, us, J


def _backward_pass(
    F: Tensor,
    c: Tensor,
    C: Tensor,
    vT: Tensor,
    VT: Tensor,
    mu: Tensor,
    lower: Tensor | None,
    upper: Tensor | None,
    k_warm: Tensor,
    numpy_scalar: bool = True,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """LQR backward recursion on ``(δx, δu)`` with box-QP controls for ``M`` members.

    Args:
        F: ``(M, T, n, n+m)``; c: ``(M, T, n+m)``; C: ``(M, T, n+m, n+m)``.
        vT: ``(M, n)``; VT: ``(M, n, n)`` terminal value gradient and Hessian.
        mu: ``(M,)`` regularisation added to ``Q_uu``.
        lower, upper: ``(M, T, m)`` bounds on ``δu`` (None when unbounded).
        k_warm: ``(M, T, m)`` warm start for the box QPs.
        numpy_scalar: for ``m = 1`` on the CPU, run the (identical) NumPy recursion
            :func:`_backward_pass_scalar_numpy`, which has less per-step overhead.

    Returns:
        ``(K (M, T, m, n), k (M, T, m), dV1 (M,), dV2 (M,), ok (M,) bool)`` where the expected
        cost change of step ``α`` is ``α dV1 + α² dV2``; ``ok`` is False where ``Q_uu + μI`` was not
        positive definite (or non-finite) at some step.
    """
    M, T, n, d = F.shape
    m = d - n
    dt = F.dtype
    if numpy_scalar and m == 1 and F.device.type == "cpu":
        return _backward_pass_scalar_numpy(F, c, C, vT, VT, mu, lower, upper)
    K = torch.empty(M, T, m, n, dtype=dt, device=F.device)
    k = torch.empty(M, T, m, dtype=dt, device=F.device)
    dV1 = torch.zeros(M, dtype=dt, device=F.device)
    dV2 = torch.zeros(M, dtype=dt, device=F.device)
    ok = torch.ones(M, dtype=torch.bool, device=F.device)
    V, v = VT, vT.unsqueeze(-1)
    mu3 = mu.view(M, 1, 1)
    eye_m = torch.eye(m, dtype=dt, device=F.device)
    FT = F.transpose(-1, -2)
    # Failures only poison their own member (all operations are per member); they are detected
    # from the Cholesky/QP status and the finiteness of the result, and the member is discarded.
    for t in range(T - 1, -1, -1):
        Ft, FtT = F[:, t], FT[:, t]
        Q = torch.baddbmm(C[:, t], FtT, V @ Ft)
        q = torch.baddbmm(c[:, t].unsqueeze(-1), FtT, v)  # (M, d, 1)
        Qxx, Qxu = Q[:, :n, :n], Q[:, :n, n:]
        Qux, Quu = Q[:, n:, :n], Q[:, n:, n:]
        qx, qu = q[:, :n], q[:, n:]
        if m == 1:
            # Scalar control: the box QP is solved in closed form by clamping the Newton step.
            h = Quu + mu3
            ok = ok & (h.view(M) > 0)
            kt = -qu / h
            Kt = -Qux / h
            if lower is not None:
                lo, up = lower[:, t].unsqueeze(-1), upper[:, t].unsqueeze(-1)
                kc = torch.minimum(torch.maximum(kt, lo), up)
                Kt = Kt * (kc == kt)
                kt = kc
        else:
            Quu_reg = 0.5 * (Quu + Quu.transpose(-1, -2)) + mu3 * eye_m
            L, info = torch.linalg.cholesky_ex(Quu_reg)
            ok = ok & (info == 0)
            kt = -torch.cholesky_solve(qu, L)
            Kt = -torch.cholesky_solve(Qux, L)
            if lower is not None:
                lo, up = lower[:, t], upper[:, t]
                ks = kt.squeeze(-1)
                out = ((ks < lo) | (ks > up)).any(-1) & (info == 0)
                if bool(out.any()):
                    sel = torch.nonzero(out).flatten()
                    res = box_qp(Quu_reg[sel], qu[sel, :, 0], lo[sel], up[sel], x0=k_warm[sel, t])
                    fm = res.free.to(dt).unsqueeze(-1)
                    kt = kt.index_copy(0, sel, res.x.unsqueeze(-1))
                    Kt = Kt.index_copy(0, sel, -torch.cholesky_solve(Qux[sel] * fm, res.chol) * fm)
                    ok = ok.index_copy(0, sel, ok[sel] & (res.status != HESSIAN_NOT_PD))
        K[:, t], k[:, t] = Kt, kt.squeeze(-1)
        Quu_k = Quu @ kt
        dV1 = dV1 + (kt * qu).sum((-1, -2))
        dV2 = dV2 + 0.5 * (kt * Quu_k).sum((-1, -2))
        KtT = Kt.transpose(-1, -2)
        KQ = KtT @ Quu + Qxu  # (M, n, m)
        V = torch.baddbmm(Qxx, KQ, Kt) + KtT @ Qux
        V = 0.5 * (V + V.transpose(-1, -2))
        v = qx + KQ @ kt + KtT @ qu
    ok = ok & torch.isfinite(V).flatten(1).all(-1) & torch.isfinite(dV1) & torch.isfinite(dV2)
    ok = ok & torch.isfinite(K).flatten(1).all(-1) & torch.isfinite(k).flatten(1).all(-1)
    return K, k, dV1, dV2, ok


def _backward_pass_scalar_numpy(
    F: Tensor,
    c: Tensor,
    C: Tensor,
    vT: Tensor,
    VT: Tensor,
    mu: Tensor,
    lower: Tensor | None,
    upper: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """:func:`_backward_pass` for one control (``m = 1``) on the CPU, in NumPy.

    Same recursion; the box QP of a scalar control is solved exactly by clamping the Newton step
    (``K_t = 0`` when clamped).  NumPy's per-call overhead on these tiny arrays is several times
    lower than torch's, and the loop over ``T`` is overhead-bound.
    """
    M, T, n, d = F.shape
    Fn = F.detach().numpy()
    FTn = np.ascontiguousarray(Fn.swapaxes(-1, -2))
    cn = c.detach().numpy()[..., None]  # (M, T, d, 1)
    Cn = C.detach().numpy()
    mun = mu.detach().numpy().reshape(M, 1, 1)
    lo = None if lower is None else lower.detach().numpy()[..., None]  # (M, T, 1, 1)
    up = None if upper is None else upper.detach().numpy()[..., None]
    K = np.empty((M, T, 1, n))
    k = np.empty((M, T, 1, 1))
    quu = np.empty((M, T))
    qu_all = np.empty((M, T))
    V = VT.detach().numpy().copy()
    v = vT.detach().numpy()[..., None].copy()
    for t in range(T - 1, -1, -1):
        FtT = FTn[:, t]
        Q = Cn[:, t] + FtT @ (V @ Fn[:, t])
        q = cn[:, t] + FtT @ v
        Qxx, Qxu, Qux, Quu = Q[:, :n, :n], Q[:, :n, n:], Q[:, n:, :n], Q[:, n:, n:]
        qx, qu = q[:, :n], q[:, n:]
        h = Quu + mun
        with np.errstate(divide="ignore", invalid="ignore"):
            kt = -qu / h
            Kt = -Qux / h
        if lo is not None:
            kc = np.minimum(np.maximum(kt, lo[:, t]), up[:, t])
            Kt = Kt * (kc == kt)
            kt = kc
        K[:, t], k[:, t] = Kt, kt
        quu[:, t], qu_all[:, t] = h[:, 0, 0], qu[:, 0, 0]
        KtT = Kt.swapaxes(-1, -2)
        KQ = KtT @ Quu + Qxu
        V = Qxx + KQ @ Kt + KtT @ Qux
        V = 0.5 * (V + V.swapaxes(-1, -2))
        v = qx + KQ @ kt + KtT @ qu
    kk = k[:, :, 0, 0]
    Quu_plain = quu - mun.reshape(M, 1)
    dV1 = (kk * qu_all).sum(1)
    dV2 = 0.5 * (kk * Quu_plain * kk).sum(1)
    ok = (quu > 0).all(1) & np.isfinite(V).all((1, 2)) & np.isfinite(K).all((1, 2, 3))
    ok &= np.isfinite(kk).all(1) & np.isfinite(dV1) & np.isfinite(dV2)
    return (
        torch.from_numpy(K).to(F.dtype),
        torch.from_numpy(k[..., 0]).to(F.dtype),
        torch.from_numpy(dV1).to(F.dtype),
        torch.from_numpy(dV2).to(F.dtype),
        torch.from_numpy(ok),
    )


def _broadcast_bound(
    name: str, b: object, B: int, T: int, m: int, dtype: torch.dtype, device: torch.device | None
) -> Tensor:
    t = _as_tensor(name, b, dtype, device)
    if torch.isnan(t).any():
        raise ValueError(f"{name} contains NaN")
    try:
        return torch.broadcast_to(t, (B, T, m)).clone()
    except RuntimeError as err:
        raise ValueError(
            f"{name} must broadcast to (B, T, m) = ({B}, {T}, {m}) (scalar, (m,), (T, m) or "
            f"(B, T, m)); got shape {tuple(t.shape)}"
        ) from err


def ilqr(
    dynamics: Callable[[Tensor, Tensor], Tensor],
    cost: Callable[[Tensor, Tensor], Tensor],
    x0: Tensor | np.ndarray | Sequence[float],
    u_init: Tensor | np.ndarray,
    *,
    terminal_cost: Callable[[Tensor], Tensor] | None = None,
    u_min: Tensor | np.ndarray | float | None = None,
    u_max: Tensor | np.ndarray | float | None = None,
    max_iter: int = 100,
    tol: float = 1e-6,
    derivatives: str = "autodiff",
    jacobians: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
    | Mapping[str, Callable[..., tuple[Tensor, Tensor]]]
    | None = None,
    reg_init: float = 0.0,
    reg_min: float = 1e-6,
    reg_max: float = 1e10,
    reg_factor: float = 1.6,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    armijo: float = 1e-4,
    fd_eps: float | None = None,
    dtype: torch.dtype = torch.float64,
    verbose: bool = False,
) -> ILQRResult:
    """Solve a batch of trajectory-optimisation problems by iLQR with box control limits.

    Args:
        dynamics: ``dynamics(x (N, n), u (N, m)) -> x_next (N, n)``, batched torch function
            (rows independent).  For ``derivatives="autodiff"`` it must be differentiable by
            ``torch.func``; wrap NumPy functions with :func:`control.derivatives.numpy_function`
            and use ``"finite_difference"`` or ``"analytic"``.
        cost: ``cost(x (N, n), u (N, m)) -> (N,)`` running cost of one step.
        x0: ``(n,)`` or ``(B, n)`` initial states.
        u_init: ``(T, m)`` or ``(B, T, m)`` initial control sequences (projected onto the box).
            ``B`` is the common batch size of ``x0`` and ``u_init`` (an unbatched one is shared).
        terminal_cost: ``terminal_cost(x (N, n)) -> (N,)`` on ``x_T``; none when ``None``.
        u_min, u_max: control bounds broadcastable to ``(B, T, m)`` (scalar, ``(m,)``, ...);
            ``±inf`` entries are unbounded.  Both ``None``: unconstrained.
        max_iter: iteration limit per member.
        tol: a member converges when the expected decrease of a full step is below
            ``tol · (1 + |J|)`` or an accepted step decreases ``J`` by less than ``tol · |J|``.
        derivatives: ``"autodiff"``, ``"analytic"`` or ``"finite_difference"`` (central
            differences, also for the costs).
        jacobians: for ``"analytic"``: ``jac(x (N, n), u (N, m)) -> (f_x (N, n, n), f_u (N, n,
            m))``, or a mapping with keys ``"dynamics"`` (that callable) and optionally
            ``"cost"`` (``(x, u) -> (grad (N, n+m), hess (N, n+m, n+m))``) and
            ``"terminal_cost"`` (``x -> (grad (N, n), hess (N, n, n))``); cost derivatives not
            given are taken by autodiff.
        reg_init: initial regularisation ``μ`` added to ``Q_uu`` (0: pure Gauss–Newton step).
        reg_min: smallest non-zero ``μ``; a decrease below it sets ``μ = 0``.
        reg_max: a member whose ``μ`` would exceed this stops with ``"reg_max_reached"``.
        reg_factor: base factor ``λ₀`` of Tassa's multiplicative ``μ`` schedule.
        alphas: line-search step sizes, tried at once; the largest accepted one is taken.
        armijo: accept ``α`` when the actual decrease exceeds ``armijo ×`` the expected one.
        fd_eps: finite-difference step (default: scaled ``eps_machine^(1/3)``/``^(1/4)``).
        dtype: floating dtype of the computation (float64 by default).
        verbose: print one line per iteration.

    Returns:
        :class:`ILQRResult` (always batched; ``B = 1`` for a single problem).

    Raises:
        ValueError: on inconsistent shapes, NaN inputs, ``u_min > u_max``, or an initial rollout
            that is already non-finite.
    """
    if derivatives not in METHODS:
        raise ValueError(f"derivatives must be one of {METHODS}, got {derivatives!r}")
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")
    if not (0.0 <= reg_init <= reg_max and 0.0 < reg_min <= reg_max and reg_factor > 1.0):
        raise ValueError(
            "need 0 <= reg_init <= reg_max, 0 < reg_min <= reg_max and reg_factor > 1; got "
            f"reg_init={reg_init}, reg_min={reg_min}, reg_max={reg_max}, reg_factor={reg_factor}"
        )
    alphas_t = torch.as_tensor(list(alphas), dtype=dtype)
    if alphas_t.dim() != 1 or alphas_t.numel() == 0 or bool((alphas_t <= 0).any()):
        raise ValueError(f"alphas must be a non-empty sequence of positive floats, got {alphas}")
    alphas_t = alphas_t.sort(descending=True).values

    device = x0.device if isinstance(x0, Tensor) else None
    x0_t = _as_tensor("x0", x0, dtype, device)
    u0_t = _as_tensor("u_init", u_init, dtype, device)
    alphas_t = alphas_t.to(device)
    if x0_t.dim() not in (1, 2):
        raise ValueError(f"x0 must have shape (n,) or (B, n), got {tuple(x0_t.shape)}")
    if u0_t.dim() not in (2, 3):
        raise ValueError(f"u_init must have shape (T, m) or (B, T, m), got {tuple(u0_t.shape)}")
    n = x0_t.shape[-1]
    T, m = u0_t.shape[-2], u0_t.shape[-1]
    if T < 1 or m < 1 or n < 1:
        raise ValueError(f"need T >= 1, m >= 1, n >= 1; got T={T}, m={m}, n={n}")
    Bx = x0_t.shape[0] if x0_t.dim() == 2 else None
    Bu = u0_t.shape[0] if u0_t.dim() == 3 else None
    if Bx is not None and Bu is not None and Bx != Bu and 1 not in (Bx, Bu):
        raise ValueError(f"batch sizes of x0 ({Bx}) and u_init ({Bu}) differ")
    B = max(Bx or 1, Bu or 1)
    x0_t = x0_t.reshape(-1, n).expand(B, n).contiguous()
    u_nom = u0_t.reshape(-1, T, m).expand(B, T, m).contiguous()
    if not bool(torch.isfinite(x0_t).all()):
        raise ValueError("x0 contains NaN or inf")
    if not bool(torch.isfinite(u_nom).all()):
        raise ValueError("u_init contains NaN or inf")

    lower = upper = None
    if u_min is not None or u_max is not None:
        lower = _broadcast_bound(
            "u_min", -math.inf if u_min is None else u_min, B, T, m, dtype, device
        )
        upper = _broadcast_bound(
            "u_max", math.inf if u_max is None else u_max, B, T, m, dtype, device
        )
        if bool((lower > upper).any()):
            raise ValueError("u_min must be <= u_max everywhere")
        if bool((lower == math.inf).any()) or bool((upper == -math.inf).any()):
            raise ValueError(
                "u_min must be < +inf and u_max > -inf everywhere (an empty box); use -inf / +inf "
                "or None for no bound"
            )
        if bool(torch.isinf(lower).all() and torch.isinf(upper).all()):
            lower = upper = None
        else:
            u_nom = torch.maximum(torch.minimum(u_nom, upper), lower)

    dyn_jac = cost_jac = term_jac = None
    if derivatives == "analytic":
        if jacobians is None:
            raise ValueError('derivatives="analytic" needs `jacobians`')
        if isinstance(jacobians, Mapping):
            unknown = set(jacobians) - {"dynamics", "cost", "terminal_cost"}
            if unknown or "dynamics" not in jacobians:
                raise ValueError(
                    "jacobians mapping needs key 'dynamics' and optional 'cost', "
                    f"'terminal_cost'; got keys {sorted(jacobians)}"
                )
            dyn_jac = jacobians["dynamics"]
            cost_jac = jacobians.get("cost")
            term_jac = jacobians.get("terminal_cost")
        else:
            dyn_jac = jacobians

    prob = _Problem(dynamics, cost, terminal_cost, x0_t, lower, upper, T, n, m)
    all_idx = torch.arange(B, device=device)
    xs, us, J0 = prob.rollout(all_idx, u_nom)
    x_nom, u_nom, J = xs[:, 0], us[:, 0], J0[:, 0]
    if not bool(torch.isfinite(J).all()):
        bad = torch.nonzero(~torch.isfinite(J)).flatten().tolist()
        raise ValueError(
            f"the initial rollout of u_init is non-finite (NaN/inf state or cost) for members {bad}"
        )

    K_all = torch.zeros(B, T, m, n, dtype=dtype, device=device)
    k_all = torch.zeros(B, T, m, dtype=dtype, device=device)
    mu = torch.full((B,), float(reg_init), dtype=dtype, device=device)
    dmu = torch.ones(B, dtype=dtype, device=device)
    active = torch.ones(B, dtype=torch.bool, device=device)
    converged = torch.zeros(B, dtype=torch.bool, device=device)
    iterations = torch.zeros(B, dtype=torch.long, device=device)
    status = ["max_iter"] * B
    n_nonpd = [0] * B
    n_nan = [0] * B
    n_noimp = [0] * B
    history = [J.clone()]
    last_failed = torch.zeros(B, dtype=torch.bool, device=device)

    def increase(i: Tensor) -> None:
        dmu[i] = torch.clamp(dmu[i] * reg_factor, min=reg_factor)
        mu[i] = torch.clamp(mu[i] * dmu[i], min=reg_min)

    def decrease(i: Tensor) -> None:
        dmu[i] = torch.clamp(dmu[i] / reg_factor, max=1.0 / reg_factor)
        new = mu[i] * dmu[i]
        mu[i] = torch.where(new >= reg_min, new, torch.zeros_like(new))

    def stop(i: Tensor, why: str) -> None:
        for j in i.tolist():
            status[j] = why
        active[i] = False

    for it in range(max_iter):
        idx = torch.nonzero(active).flatten()
        if idx.numel() == 0:
            break
        M = idx.numel()
        # ---- derivatives at the nominal trajectories of the active members, all at once ----
        xf = x_nom[idx, :T].reshape(M * T, n)
        uf = u_nom[idx].reshape(M * T, m)
        F = linearize_dynamics(dynamics, xf, uf, derivatives, dyn_jac, fd_eps).view(M, T, n, n + m)
        c, C = cost_derivatives(cost, xf, uf, derivatives, cost_jac, fd_eps)
        c, C = c.view(M, T, n + m), C.view(M, T, n + m, n + m)
        if terminal_cost is not None:
            vT, VT = terminal_cost_derivatives(
                terminal_cost, x_nom[idx, T], derivatives, term_jac, fd_eps
            )
        else:
            vT = torch.zeros(M, n, dtype=dtype, device=device)
            VT = torch.zeros(M, n, n, dtype=dtype, device=device)
        fin = (
            torch.isfinite(F).flatten(1).all(-1)
            & torch.isfinite(C).flatten(1).all(-1)
            & torch.isfinite(c).flatten(1).all(-1)
            & torch.isfinite(VT).flatten(1).all(-1)
            & torch.isfinite(vT).all(-1)
        )
        if not bool(fin.all()):
            stop(idx[~fin], "nonfinite_derivatives")
            keep = fin
            idx, F, c, C, vT, VT = idx[keep], F[keep], c[keep], C[keep], vT[keep], VT[keep]
            M = idx.numel()
            if M == 0:
                history.append(J.clone())
                continue
        # ---- backward pass; members with non-PD Q_uu retry with larger μ ----
        Kn = torch.zeros(M, T, m, n, dtype=dtype, device=device)
        kn = torch.zeros(M, T, m, dtype=dtype, device=device)
        dV1 = torch.zeros(M, dtype=dtype, device=device)
        dV2 = torch.zeros(M, dtype=dtype, device=device)
        done = torch.zeros(M, dtype=torch.bool, device=device)
        while True:
            pend = torch.nonzero(~done).flatten()
            if pend.numel() == 0:
                break
            gi = idx[pend]
            lo = None if lower is None else lower[gi] - u_nom[gi]
            up = None if upper is None else upper[gi] - u_nom[gi]
            Kp, kp, a1, a2, okp = _backward_pass(
                F[pend], c[pend], C[pend], vT[pend], VT[pend], mu[gi], lo, up, k_all[gi]
            )
            sel = pend[okp]
            Kn[sel], kn[sel], dV1[sel], dV2[sel] = Kp[okp], kp[okp], a1[okp], a2[okp]
            done[sel] = True
            failed = gi[~okp]
            if failed.numel():
                for j in failed.tolist():
                    n_nonpd[j] += 1
                increase(failed)
                over = mu[failed] > reg_max
                if bool(over.any()):
                    stop(failed[over], "reg_max_reached")
                    done[pend[~okp][over]] = True
        ok_idx = active[idx]
        idx, Kn, kn, dV1, dV2 = idx[ok_idx], Kn[ok_idx], kn[ok_idx], dV1[ok_idx], dV2[ok_idx]
        if idx.numel() == 0:
            history.append(J.clone())
            continue
        K_all[idx], k_all[idx] = Kn, kn
        # ---- convergence on the expected decrease of a full step ----
        expected_full = -(dV1 + dV2)
        # Trusted with little regularisation (a heavily damped step is small anyway) or when the
        # last line search already failed to decrease the cost (stuck at the optimum to precision).
        small = (expected_full < tol * (1.0 + J[idx].abs())) & (
            (mu[idx] <= reg_min) | last_failed[idx]
        )
        if bool(small.any()):
            conv = idx[small]
            converged[conv] = True
            stop(conv, "converged")
            idx, Kn, kn, dV1, dV2 = idx[~small], Kn[~small], kn[~small], dV1[~small], dV2[~small]
            if idx.numel() == 0:
                history.append(J.clone())
                continue
        # ---- line search: all step sizes of all members in one batched rollout ----
        iterations[idx] += 1
        xs, us, Jc = prob.rollout(idx, u_nom[idx], x_nom[idx], Kn, kn, alphas_t)
        expected = -(
            alphas_t.view(1, -1) * dV1.view(-1, 1) + alphas_t.view(1, -1) ** 2 * dV2.view(-1, 1)
        )
        Jold = J[idx].view(-1, 1)
        nonfinite = ~torch.isfinite(Jc)
        accept = ~nonfinite & ((Jold - Jc) > armijo * expected) & (Jc < Jold)
        any_acc = accept.any(-1)
        first = torch.argmax(accept.to(torch.int8), dim=-1)  # largest accepted step
        rows = torch.arange(idx.numel(), device=device)
        for j, nf in zip(idx.tolist(), nonfinite.sum(-1).tolist(), strict=True):
            n_nan[j] += int(nf)
        acc = idx[any_acc]
        if acc.numel():
            r, a = rows[any_acc], first[any_acc]
            Jnew = Jc[r, a]
            rel = ((J[acc] - Jnew) < tol * J[acc].abs()) & (mu[acc] <= reg_min)
            x_nom[acc], u_nom[acc], J[acc] = xs[r, a], us[r, a], Jnew
            decrease(acc)
            last_failed[acc] = False
            if bool(rel.any()):
                converged[acc[rel]] = True
                stop(acc[rel], "converged")
        rej = idx[~any_acc]
        if rej.numel():
            for j in rej.tolist():
                n_noimp[j] += 1
            increase(rej)
            last_failed[rej] = True
            over = mu[rej] > reg_max
            if bool(over.any()):
                stop(rej[over], "reg_max_reached")
        history.append(J.clone())
        if verbose:
            fin_J = J[torch.isfinite(J)]
            print(
                f"ilqr it {it + 1:3d}: active {int(active.sum()):4d}/{B}, best cost "
                f"{float(fin_J.min()):.6g}, mean reg {float(mu.mean()):.3g}, "
                f"accepted {int(any_acc.sum())}/{idx.numel()}"
            )

    notes = []
    for j in range(B):
        parts = []
        if n_nonpd[j]:
            parts.append(f"Q_uu + reg not positive definite in {n_nonpd[j]} backward pass(es)")
        if n_nan[j]:
            parts.append(f"{n_nan[j]} candidate rollout(s) with NaN/inf rejected")
        if n_noimp[j]:
            parts.append(f"{n_noimp[j]} line search(es) without sufficient decrease")
        notes.append("; ".join(parts))
    best = int(torch.argmin(J).item())
    return ILQRResult(
        x=x_nom,
        u=u_nom,
        K=K_all,
        k=k_all,
        cost=J,
        cost_history=torch.stack(history, 0),
        iterations=iterations,
        converged=converged,
        status=status,
        notes=notes,
        reg=mu,
        best=best,
    )
