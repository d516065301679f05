"""The phases of one iLQR iteration and the solver state they update (used by :func:`ilqr`).

One iteration, for the active members of the batch (:class:`SolverState`):

1. :func:`compute_derivatives` — linearise the dynamics and quadratise the costs along the nominal
   trajectories; members with non-finite derivatives stop.
2. :func:`backward_pass_with_retry` — the Riccati recursion (:mod:`control.riccati`); members
   whose ``Q_uu + μI`` is not positive definite retry with a larger ``μ``.
3. :func:`check_convergence` — stop members whose expected decrease is negligible.
4. :func:`line_search` — every step size of every member in one batched closed-loop rollout;
   accept the largest step with sufficient decrease, adapt ``μ``.

Index tensors ``idx`` hold the batch indices of the members a phase works on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from control.derivatives import cost_derivatives, linearize_dynamics, terminal_cost_derivatives
from control.riccati import backward_pass
from control.robust import ModelSet

Tensor = torch.Tensor

__all__ = [
    "Options",
    "Problem",
    "SolverState",
    "Step",
    "backward_pass_with_retry",
    "check_convergence",
    "compute_derivatives",
    "line_search",
]


def _check_batched(name: str, out: Tensor, shape: tuple[int, ...]) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(out).__name__}")
    if tuple(out.shape) != shape:
        raise ValueError(f"{name} returned shape {tuple(out.shape)}, expected {shape}")
    return out


def _simulate_torch(
    dynamics: Callable[[Tensor, Tensor], Tensor],
    X: Tensor,
    base: Tensor,
    KT: Tensor | None,
    lo: Tensor | None,
    up: Tensor | None,
    xnom: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The closed-loop step loop of :meth:`Problem.rollout` in torch.

    ``X (M, A, n)`` initial states, ``base (M, A, T, m)`` feed-forward part of the controls,
    ``KT (M, T, n, m)`` transposed gains (None: open loop), ``lo``/``up`` ``(M, A, T, m)``
    bounds, ``xnom (M, A, T, n)`` states that replace non-finite ones (None: the previous state).

    The steps run in ``torch.inference_mode`` (less overhead per operation than ``no_grad``,
    same arithmetic); the stacked results, made outside it, are ordinary tensors.  A dynamics
    that needs autograd inside (it raises a ``RuntimeError`` in inference mode) is rolled out
    again under ``no_grad`` only.

    Returns:
        states ``(M, A, T+1, n)``, controls ``(M, A, T, m)`` and the ``(M, A)`` mask of rollouts
        that met a non-finite state (None if none did).
    """
    args = (dynamics, X, base, KT, lo, up, xnom)
    try:
        with torch.inference_mode():
            xs_list, us_list, bad = _torch_steps(*args)
    except RuntimeError:
        xs_list, us_list, bad = _torch_steps(*args)
    return torch.stack(xs_list, 2), torch.stack(us_list, 2), bad


def _torch_steps(
    dynamics: Callable[[Tensor, Tensor], Tensor],
    X: Tensor,
    base: Tensor,
    KT: Tensor | None,
    lo: Tensor | None,
    up: Tensor | None,
    xnom: Tensor | None,
) -> tuple[list[Tensor], list[Tensor], Tensor | None]:
    """The steps of :func:`_simulate_torch`: lists of the ``T+1`` states ``(M, A, n)`` and ``T``
    controls ``(M, A, m)``, and the mask of non-finite rollouts."""
    M, A, n = X.shape
    T, m = base.shape[2], base.shape[3]
    dt = X.dtype
    # Per-step views made once (indexing inside the loop costs a dispatch per step).
    base_t = base.unbind(2)  # T × (M, A, m)
    KT_t = KT.unbind(1) if KT is not None else None  # T × (M, n, m)
    if lo is not None:
        lo_t, up_t = lo.unbind(2), up.unbind(2)
    xs_list, us_list, bad = [X], [], None
    X2 = X.reshape(M * A, n)
    for t in range(T):
        U = torch.baddbmm(base_t[t], X, KT_t[t]) if KT is not None else base_t[t]
        if lo is not None:
            U = torch.clamp(U, min=lo_t[t], max=up_t[t])
        Xn = _check_batched("dynamics(x, u)", dynamics(X2, U.reshape(M * A, m)), (M * A, n))
        X2 = Xn if Xn.dtype == dt else Xn.to(dt)
        Xn = X2.view(M, A, n)
        # One reduction detects NaN/inf (a finite sum may overflow: then the exact test below
        # finds nothing to replace).
        if not math.isfinite(Xn.sum().item()):
            fin = torch.isfinite(Xn).all(-1)
            bad = ~fin if bad is None else bad | ~fin
            # Keep feeding finite states to the dynamics; these rollouts are discarded.
            repl = xnom[:, :, t] if xnom is not None else X
            Xn = torch.where(bad.unsqueeze(-1), repl, Xn)
            X2 = Xn.reshape(M * A, n)
        us_list.append(U)
        xs_list.append(Xn)
        X = Xn
    return xs_list, us_list, bad


def _simulate_numpy(
    dynamics: Callable[[np.ndarray, np.ndarray], np.ndarray],
    X: np.ndarray,
    base: np.ndarray,
    KT: np.ndarray | None,
    lo: np.ndarray | None,
    up: np.ndarray | None,
    xnom: np.ndarray | None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """:func:`_simulate_torch` for NumPy dynamics (:func:`~control.derivatives.numpy_function`),
    on NumPy arrays: no torch call and no conversion per step.

    The feedback ``K_t x_t`` is accumulated term by term in the order of torch's small
    ``baddbmm`` (equal to it bit for bit for one control in the cases tested).
    """
    M, A, n = X.shape
    T, m = base.shape[2], base.shape[3]
    dt = X.dtype
    # Per-step views made once, as lists (list indexing is cheaper than array indexing).
    base_t = list(np.moveaxis(base, 2, 0))  # T × (M, A, m)
    # One control and a short state: K_t x_t as one product and one row sum, whose order for
    # n < 8 (NumPy sums fewer than 8 terms left to right) is the term-by-term one below.
    row_sum = KT is not None and m == 1 and n < 8
    if row_sum:
        Krow = list(np.moveaxis(KT[:, :, None, :, 0], 1, 0))  # T × (M, 1, n)
    elif KT is not None:  # n × T × (M, 1, m)
        Kj = [list(np.moveaxis(KT[:, :, None, j, :], 1, 0)) for j in range(n)]
    if lo is not None:
        lo_t, up_t = list(np.moveaxis(lo, 2, 0)), list(np.moveaxis(up, 2, 0))
    xs_list, us_list, bad = [X], [], None
    X2 = X.reshape(M * A, n)
    for t in range(T):
        U = base_t[t]
        if row_sum:
            U = U + np.add.reduce(X * Krow[t], axis=-1, keepdims=True)
        elif KT is not None:
            s = X[..., 0:1] * Kj[0][t]
            for j in range(1, n):
                s += X[..., j : j + 1] * Kj[j][t]
            U = U + s
        if lo is not None:
            U = np.minimum(np.maximum(U, lo_t[t]), up_t[t])
        X2 = np.asarray(dynamics(X2, U.reshape(M * A, m)), dtype=dt)
        if X2.shape != (M * A, n):
            raise ValueError(f"dynamics(x, u) returned shape {X2.shape}, expected {(M * A, n)}")
        Xn = X2.reshape(M, A, n)
        if not math.isfinite(Xn.sum()):
            fin = np.isfinite(Xn).all(-1)
            bad = ~fin if bad is None else bad | ~fin
            repl = xnom[:, :, t] if xnom is not None else X
            Xn = np.where(bad[..., None], repl, Xn)
            X2 = Xn.reshape(M * A, n)
        us_list.append(U)
        xs_list.append(Xn)
        X = Xn
    return (
        torch.from_numpy(_stack_steps(xs_list)),
        torch.from_numpy(_stack_steps(us_list)),
        None if bad is None else torch.from_numpy(bad),
    )


def _stack_steps(arrays: list[np.ndarray]) -> np.ndarray:
    """``np.stack(arrays, 2)`` for equal ``(M, A, k)`` arrays, by one ``np.array`` call (C-level)
    and one transposed copy instead of ``np.stack``'s Python loop over the arrays."""
    return np.ascontiguousarray(np.array(arrays).transpose(1, 2, 0, 3))


@dataclass(frozen=True)
class Options:
    """Validated solver settings (see :func:`control.ilqr.ilqr` for their meaning)."""

    tol: float
    derivatives: str
    dyn_jac: Callable | None
    cost_jac: Callable | None
    term_jac: Callable | None
    reg_min: float
    reg_max: float
    reg_factor: float
    alphas: Tensor  # (A,) descending
    armijo: float
    fd_eps: float | None


@dataclass(frozen=True)
class Problem:
    """Validated problem data and the batched rollout used by the solver.

    ``x0 (B, n)``; ``lower``/``upper`` ``(B, T, m)`` or None (unbounded).  With ``K`` models
    (``models`` not None, :mod:`control.robust`) the state is the stacked ``x̄`` (``n = K·n₁``),
    ``dynamics`` the stacked dynamics, and ``cost``/``terminal_cost`` act on one model's state.
    """

    dynamics: Callable[[Tensor, Tensor], Tensor]
    cost: Callable[[Tensor, Tensor], Tensor]
    terminal_cost: Callable[[Tensor], Tensor] | None
    x0: Tensor
    lower: Tensor | None
    upper: Tensor | None
    T: int
    n: int
    m: int
    models: ModelSet | None = None

    @torch.no_grad()
    def rollout(
        self,
        idx: Tensor,
        u_nom: Tensor,
        x_nom: Tensor | None = None,
        K: Tensor | None = None,
        k: Tensor | None = None,
        alphas: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Closed-loop rollout of members ``idx`` for every step size in ``alphas``.

        ``u_t = clip(û_t + α k_t + K_t (x_t − x̂_t))``; open loop (``u = û``) when ``K`` is None.

        Returns:
            ``(x (M, A, T+1, n), u (M, A, T, m), J (M, A), Jk)`` with ``J = inf`` for rollouts that
            produced a non-finite state or cost; ``Jk (M, A, K)`` the per-model costs with ``K``
            models (None without).
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
        else:
            base = u_nom.unsqueeze(1).expand(M, A, T, m)
        lo = up = None
        if self.lower is not None:
            lo = self.lower[idx].unsqueeze(1).expand(M, A, T, m)
            up = self.upper[idx].unsqueeze(1).expand(M, A, T, m)
        KT = K.transpose(-1, -2) if K is not None else None  # (M, T, n, m)
        xnom = x_nom[:, 1:].unsqueeze(1).expand(M, A, T, n) if x_nom is not None else None
        np_fn = getattr(self.dynamics, "numpy_fn", None)
        if np_fn is not None and X.device.type == "cpu":
            simulate = _simulate_numpy
            args = (np_fn, *(None if a is None else a.numpy() for a in (X, base, KT, lo, up, xnom)))
        else:
            simulate, args = _simulate_torch, (self.dynamics, X, base, KT, lo, up, xnom)
        xs, us, bad = simulate(*args)  # (M, A, T+1, n), (M, A, T, m), (M, A) or None
        if self.models is not None:
            return (xs, us, *self._robust_costs(xs, us, bad))
        X = xs[:, :, T]
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
        return xs, us, J, None

    def _robust_costs(self, xs: Tensor, us: Tensor, bad: Tensor | None) -> tuple[Tensor, Tensor]:
        """``(J (M, A), Jk (M, A, K))``: robust objective and per-model costs (inf where a
        model's rollout or cost is non-finite; then ``J`` is inf too)."""
        Jk = self.models.trajectory_costs(self.cost, self.terminal_cost, xs, us)
        notfinite = ~torch.isfinite(Jk)
        if bad is not None:
            notfinite = notfinite | bad.unsqueeze(-1)
        Jk = torch.where(notfinite, torch.full_like(Jk, math.inf), Jk)
        return self.models.combine(Jk), Jk


@dataclass
class SolverState:
    """Everything the iterations update, per member ``b`` of the batch of ``B``.

    Attributes:
        x_nom: ``(B, T+1, n)``, u_nom: ``(B, T, m)``, J: ``(B,)`` nominal trajectories and costs.
        K: ``(B, T, m, n)``, k: ``(B, T, m)`` gains of the last successful backward pass.
        mu, dmu: ``(B,)`` regularisation and its multiplicative step (Tassa's schedule).
        active, converged, last_failed: ``(B,)`` bool; iterations: ``(B,)`` int64.
        status: per-member status string; n_nonpd, n_nan, n_noimp: per-member event counts.
        history: list of ``(B,)`` costs, one per iteration plus the initial one.
        Jk: ``(B, K)`` per-model costs of the nominal trajectories with ``K`` models, else None.
    """

    x_nom: Tensor
    u_nom: Tensor
    J: Tensor
    K: Tensor
    k: Tensor
    mu: Tensor
    dmu: Tensor
    active: Tensor
    converged: Tensor
    last_failed: Tensor
    iterations: Tensor
    status: list[str]
    n_nonpd: list[int]
    n_nan: list[int]
    n_noimp: list[int]
    history: list[Tensor] = field(default_factory=list)
    Jk: Tensor | None = None

    @classmethod
    def initial(
        cls,
        x_nom: Tensor,
        u_nom: Tensor,
        J: Tensor,
        n: int,
        reg_init: float,
        Jk: Tensor | None = None,
    ) -> SolverState:
        """State before the first iteration, around the initial rollout ``(x_nom, u_nom, J)``."""
        B, T, m = u_nom.shape
        kw = dict(dtype=J.dtype, device=J.device)
        flags = dict(dtype=torch.bool, device=J.device)
        return cls(
            x_nom=x_nom,
            u_nom=u_nom,
            J=J,
            K=torch.zeros(B, T, m, n, **kw),
            k=torch.zeros(B, T, m, **kw),
            mu=torch.full((B,), float(reg_init), **kw),
            dmu=torch.ones(B, **kw),
            active=torch.ones(B, **flags),
            converged=torch.zeros(B, **flags),
            last_failed=torch.zeros(B, **flags),
            iterations=torch.zeros(B, dtype=torch.long, device=J.device),
            status=["max_iter"] * B,
            n_nonpd=[0] * B,
            n_nan=[0] * B,
            n_noimp=[0] * B,
            history=[J.clone()],
            Jk=Jk,
        )

    def increase_reg(self, i: Tensor, opt: Options) -> None:
        """Raise ``μ`` of members ``i``; those above ``reg_max`` stop with ``reg_max_reached``."""
        self.dmu[i] = torch.clamp(self.dmu[i] * opt.reg_factor, min=opt.reg_factor)
        self.mu[i] = torch.clamp(self.mu[i] * self.dmu[i], min=opt.reg_min)
        over = self.mu[i] > opt.reg_max
        if bool(over.any()):
            self.stop(i[over], "reg_max_reached")

    def decrease_reg(self, i: Tensor, opt: Options) -> None:
        """Lower ``μ`` of members ``i`` (to 0 below ``reg_min``)."""
        self.dmu[i] = torch.clamp(self.dmu[i] / opt.reg_factor, max=1.0 / opt.reg_factor)
        new = self.mu[i] * self.dmu[i]
        self.mu[i] = torch.where(new >= opt.reg_min, new, torch.zeros_like(new))

    def stop(self, i: Tensor, why: str) -> None:
        """Deactivate members ``i`` with status ``why``."""
        for j in i.tolist():
            self.status[j] = why
        self.active[i] = False
        if why == "converged":
            self.converged[i] = True

    def notes(self) -> list[str]:
        """Per-member human-readable account of the events counted."""
        notes = []
        for a, b, c in zip(self.n_nonpd, self.n_nan, self.n_noimp, strict=True):
            parts = []
            if a:
                parts.append(f"Q_uu + reg not positive definite in {a} backward pass(es)")
            if b:
                parts.append(f"{b} candidate rollout(s) with NaN/inf rejected")
            if c:
                parts.append(f"{c} line search(es) without sufficient decrease")
            notes.append("; ".join(parts))
        return notes


@dataclass(frozen=True)
class Derivatives:
    """Derivatives along the nominal trajectories of members ``idx`` (``M`` of them).

    ``F (M, T, n, n+m)``, ``c (M, T, n+m)``, ``C (M, T, n+m, n+m)``, ``vT (M, n)``,
    ``VT (M, n, n)``.
    """

    idx: Tensor
    F: Tensor
    c: Tensor
    C: Tensor
    vT: Tensor
    VT: Tensor

    def select(self, keep: Tensor) -> Derivatives:
        """The members where ``keep`` (a mask or index tensor over the ``M``) holds."""
        return Derivatives(*(a[keep] for a in (self.idx, self.F, self.c, self.C, self.vT, self.VT)))


@dataclass(frozen=True)
class Step:
    """A successful backward pass of members ``idx``: ``K (M, T, m, n)``, ``k (M, T, m)`` and
    the expected cost change ``α dV1 + α² dV2`` of step size ``α`` (``dV1``, ``dV2`` ``(M,)``)."""

    idx: Tensor
    K: Tensor
    k: Tensor
    dV1: Tensor
    dV2: Tensor

    def select(self, keep: Tensor) -> Step:
        """The members where the mask ``keep`` over the ``M`` holds."""
        return Step(*(a[keep] for a in (self.idx, self.K, self.k, self.dV1, self.dV2)))


def compute_derivatives(
    prob: Problem, state: SolverState, idx: Tensor, opt: Options
) -> Derivatives:
    """Phase 1: ``F, c, C`` at all ``M·T`` nominal points of members ``idx`` at once, and the
    terminal ``vT, VT`` (zero without terminal cost).  Members with any non-finite derivative stop
    with status ``"nonfinite_derivatives"`` and are left out of the result."""
    T, n, m = prob.T, prob.n, prob.m
    M = idx.numel()
    if prob.models is not None:
        return _finite_only(state, _robust_derivatives(prob, state, idx, opt))
    xf = state.x_nom[idx, :T].reshape(M * T, n)
    uf = state.u_nom[idx].reshape(M * T, m)
    F = linearize_dynamics(prob.dynamics, xf, uf, opt.derivatives, opt.dyn_jac, opt.fd_eps)
    c, C = cost_derivatives(prob.cost, xf, uf, opt.derivatives, opt.cost_jac, opt.fd_eps)
    if prob.terminal_cost is not None:
        vT, VT = terminal_cost_derivatives(
            prob.terminal_cost, state.x_nom[idx, T], opt.derivatives, opt.term_jac, opt.fd_eps
        )
    else:
        vT = torch.zeros(M, n, dtype=xf.dtype, device=xf.device)
        VT = torch.zeros(M, n, n, dtype=xf.dtype, device=xf.device)
    d = Derivatives(
        idx, F.view(M, T, n, n + m), c.view(M, T, n + m), C.view(M, T, n + m, n + m), vT, VT
    )
    return _finite_only(state, d)


def _robust_derivatives(
    prob: Problem, state: SolverState, idx: Tensor, opt: Options
) -> Derivatives:
    """Phase 1 with ``K`` models: the stacked system's derivatives for the weighted mean of the
    model costs, weights ``∂J/∂J_k`` at the nominal trajectories (:mod:`control.robust`)."""
    models = prob.models
    w = models.weights(state.Jk[idx])
    F, c, C, vT, VT = models.derivatives(
        prob.cost, prob.terminal_cost, state.x_nom[idx], state.u_nom[idx], w, opt.derivatives,
        opt.cost_jac, opt.term_jac, opt.fd_eps,
    )  # fmt: skip
    return Derivatives(idx, F, c, C, vT, VT)


def _finite_only(state: SolverState, d: Derivatives) -> Derivatives:
    """``d`` without the members that have a non-finite derivative (those stop with status
    ``"nonfinite_derivatives"``)."""
    fin = torch.ones(d.idx.numel(), dtype=torch.bool, device=d.F.device)
    for a in (d.F, d.C, d.c, d.VT, d.vT):
        fin = fin & torch.isfinite(a).flatten(1).all(-1)
    if bool(fin.all()):
        return d
    state.stop(d.idx[~fin], "nonfinite_derivatives")
    return d.select(fin)


def _delta_bounds(prob: Problem, state: SolverState, gi: Tensor) -> tuple[Tensor | None, ...]:
    """Bounds ``(M, T, m)`` on ``δu = u − û`` of members ``gi`` (None when unbounded)."""
    if prob.lower is None:
        return None, None
    return prob.lower[gi] - state.u_nom[gi], prob.upper[gi] - state.u_nom[gi]


def backward_pass_with_retry(
    prob: Problem, state: SolverState, d: Derivatives, opt: Options
) -> Step:
    """Phase 2: the backward pass of every member in ``d``; members whose pass fails (``Q_uu + μI``
    not positive definite, non-finite result) raise ``μ`` and retry, until they succeed or pass
    ``reg_max`` (then they stop and are left out).  Stores the gains in ``state.K``/``state.k``.

    The first pass runs on ``d`` as it is; only when some member fails are the pending members
    gathered (:func:`_retry_failed`)."""
    gi = d.idx
    out = backward_pass(d.F, d.c, d.C, d.vT, d.VT, state.mu[gi], *_delta_bounds(prob, state, gi),
                        state.k[gi])  # fmt: skip
    if bool(out[4].all()):  # the common case: every member succeeded (and all are active)
        step = Step(d.idx, *out[:4])
    else:
        step = _retry_failed(prob, state, d, opt, out)
    state.K[step.idx], state.k[step.idx] = step.K, step.k
    return step


def _retry_failed(
    prob: Problem,
    state: SolverState,
    d: Derivatives,
    opt: Options,
    first: tuple[Tensor, Tensor, Tensor, Tensor, Tensor],
) -> Step:
    """The retry loop of :func:`backward_pass_with_retry`, given the ``first`` pass's results
    ``(K, k, dV1, dV2, ok)`` of all members of ``d``."""
    M = d.idx.numel()
    T, n, m = prob.T, prob.n, prob.m
    like = dict(dtype=d.F.dtype, device=d.F.device)
    K = torch.zeros(M, T, m, n, **like)
    k = torch.zeros(M, T, m, **like)
    dV1 = torch.zeros(M, **like)
    dV2 = torch.zeros(M, **like)
    done = torch.zeros(M, dtype=torch.bool, device=d.F.device)
    pend, res = torch.arange(M, device=d.F.device), first
    while True:
        gi = d.idx[pend]
        Kp, kp, a1, a2, ok = res
        sel = pend[ok]
        K[sel], k[sel], dV1[sel], dV2[sel] = Kp[ok], kp[ok], a1[ok], a2[ok]
        done[sel] = True
        failed = gi[~ok]
        if failed.numel():
            for j in failed.tolist():
                state.n_nonpd[j] += 1
            state.increase_reg(failed, opt)
            done[pend[~ok]] = ~state.active[failed]  # stopped at reg_max: give up
        pend = torch.nonzero(~done).flatten()
        if pend.numel() == 0:
            break
        gi = d.idx[pend]
        res = backward_pass(
            d.F[pend], d.c[pend], d.C[pend], d.vT[pend], d.VT[pend], state.mu[gi],
            *_delta_bounds(prob, state, gi), state.k[gi],
        )  # fmt: skip
    return Step(d.idx, K, k, dV1, dV2).select(state.active[d.idx])


def check_convergence(state: SolverState, step: Step, opt: Options) -> Step:
    """Phase 3: members whose expected decrease of a full step is below ``tol · (1 + |J|)``
    converge, and are left out of the result.

    The test is trusted with little regularisation (a heavily damped step is small anyway) or
    when the last line search already failed to decrease the cost (stuck at the optimum to
    precision)."""
    expected_full = -(step.dV1 + step.dV2)
    i = step.idx
    small = (expected_full < opt.tol * (1.0 + state.J[i].abs())) & (
        (state.mu[i] <= opt.reg_min) | state.last_failed[i]
    )
    if not bool(small.any()):
        return step
    state.stop(i[small], "converged")
    return step.select(~small)


def line_search(prob: Problem, state: SolverState, step: Step, opt: Options) -> int:
    """Phase 4: roll out every step size of every member in ``step`` at once; accept the largest
    ``α`` whose decrease exceeds ``armijo ×`` the expected one (then lower ``μ``; a relative
    decrease below ``tol`` with ``μ <= reg_min`` converges), else raise ``μ``.

    Returns:
        the number of members that accepted a step.
    """
    idx, alphas = step.idx, opt.alphas
    state.iterations[idx] += 1
    xs, us, Jc, Jkc = prob.rollout(idx, state.u_nom[idx], state.x_nom[idx], step.K, step.k, alphas)
    expected = -(
        alphas.view(1, -1) * step.dV1.view(-1, 1) + alphas.view(1, -1) ** 2 * step.dV2.view(-1, 1)
    )
    Jold = state.J[idx].view(-1, 1)
    nonfinite = ~torch.isfinite(Jc)
    accept = ~nonfinite & ((Jold - Jc) > opt.armijo * expected) & (Jc < Jold)
    any_acc = accept.any(-1)
    first = torch.argmax(accept.to(torch.int8), dim=-1)  # largest accepted step
    for j, nf in zip(idx.tolist(), nonfinite.sum(-1).tolist(), strict=True):
        state.n_nan[j] += int(nf)
    acc = idx[any_acc]
    if acc.numel():
        r = torch.arange(idx.numel(), device=idx.device)[any_acc]
        a = first[any_acc]
        Jnew = Jc[r, a]
        J = state.J
        rel = ((J[acc] - Jnew) < opt.tol * J[acc].abs()) & (state.mu[acc] <= opt.reg_min)
        state.x_nom[acc], state.u_nom[acc], J[acc] = xs[r, a], us[r, a], Jnew
        if state.Jk is not None:
            state.Jk[acc] = Jkc[r, a]
        state.decrease_reg(acc, opt)
        state.last_failed[acc] = False
        if bool(rel.any()):
            state.stop(acc[rel], "converged")
    rej = idx[~any_acc]
    if rej.numel():
        for j in rej.tolist():
            state.n_noimp[j] += 1
        state.last_failed[rej] = True
        state.increase_reg(rej, opt)
    return int(any_acc.sum())
