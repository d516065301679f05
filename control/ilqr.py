"""Batched iLQR / box-DDP trajectory optimisation: :func:`ilqr` and its :class:`ILQRResult`.

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

Robust trajectory optimisation: with ``dynamics`` a sequence of ``K`` models, :func:`ilqr`
optimises ONE control sequence for the mean (``robust="mean"``) or a smooth worst case
(``robust="worst"``) of the ``K`` models' costs, on the stacked state ``x̄ = [x¹; …; xᴷ]``
(:mod:`control.robust`).

Layout: :func:`ilqr` validates its inputs and runs the phases of :mod:`control.ilqr_phases` on a
:class:`~control.ilqr_phases.SolverState`; the backward recursion is :mod:`control.riccati`.
``control.ddp`` re-exports the public names for older imports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from control.derivatives import METHODS
from control.ilqr_phases import (
    Options,
    Problem,
    SolverState,
    backward_pass_with_retry,
    check_convergence,
    compute_derivatives,
    line_search,
)
from control.robust import ROBUST_OBJECTIVES, ModelSet, model_set

Tensor = torch.Tensor

__all__ = ["DEFAULT_ALPHAS", "ILQRResult", "ilqr"]

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
        model_cost: with ``K`` models, ``(B, K)`` cost of the shared controls under each model
            (``cost`` is then their mean or smooth maximum); None for one model.
        n_models: ``K`` (1 for one model).  With ``K > 1`` (or a sequence of one), ``x`` holds the
            stacked states ``(B, T+1, K·n)`` and ``K`` the shared gains ``(B, T, m, K·n)`` on
            them; :attr:`x_models` gives the states per model.
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
    model_cost: Tensor | None = None
    n_models: int = 1

    @property
    def x_models(self) -> Tensor:
        """``(B, K, T+1, n)`` states of each model under the shared controls."""
        B, T1, N = self.x.shape
        K = self.n_models
        return self.x.view(B, T1, K, N // K).transpose(1, 2)

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


def _options(
    derivatives: str,
    jacobians: object,
    tol: float,
    reg_init: float,
    reg_min: float,
    reg_max: float,
    reg_factor: float,
    alphas: Sequence[float],
    armijo: float,
    fd_eps: float | None,
    max_iter: int,
    dtype: torch.dtype,
    device: torch.device | None,
) -> Options:
    """Validate the solver settings (raises naming the argument)."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"dtype must be a floating torch dtype (torch.float64 or torch.float32), got {dtype}"
        )
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
    return Options(
        tol=tol,
        derivatives=derivatives,
        dyn_jac=dyn_jac,
        cost_jac=cost_jac,
        term_jac=term_jac,
        reg_min=reg_min,
        reg_max=reg_max,
        reg_factor=reg_factor,
        alphas=alphas_t.sort(descending=True).values.to(device),
        armijo=armijo,
        fd_eps=fd_eps,
    )


def _problem(
    dynamics: Callable[[Tensor, Tensor], Tensor],
    cost: Callable[[Tensor, Tensor], Tensor],
    terminal_cost: Callable[[Tensor], Tensor] | None,
    x0: object,
    u_init: object,
    u_min: object,
    u_max: object,
    dtype: torch.dtype,
    device: torch.device | None,
) -> tuple[Problem, Tensor]:
    """Validate and broadcast ``x0``, ``u_init`` and the bounds.

    Returns:
        the :class:`Problem` (``x0 (B, n)``, bounds ``(B, T, m)`` or None) and ``u_init`` as
        ``(B, T, m)`` projected onto the box.
    """
    x0_t = _as_tensor("x0", x0, dtype, device)
    u0_t = _as_tensor("u_init", u_init, dtype, device)
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
    prob = Problem(dynamics, cost, terminal_cost, x0_t, lower, upper, T, n, m)
    return prob, u_nom


def _stacked_problem(prob: Problem, models: ModelSet) -> Problem:
    """``prob`` over the stacked state of ``models``: ``x0`` repeated ``K`` times."""
    K = models.K
    return replace(
        prob,
        dynamics=models.stacked(),
        x0=prob.x0.repeat(1, K),
        n=K * prob.n,
        models=models,
    )


def _report(it: int, state: SolverState, accepted: int, tried: int) -> None:
    """The ``verbose`` line of iteration ``it``."""
    fin_J = state.J[torch.isfinite(state.J)]
    print(
        f"ilqr it {it + 1:3d}: active {int(state.active.sum()):4d}/{state.J.shape[0]}, best cost "
        f"{float(fin_J.min()):.6g}, mean reg {float(state.mu.mean()):.3g}, "
        f"accepted {accepted}/{tried}"
    )


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
    robust: str = "mean",
    robust_temperature: float = 1.0,
) -> ILQRResult:
    """Solve a batch of trajectory-optimisation problems by iLQR with box control limits.

    Args:
        dynamics: ``dynamics(x (N, n), u (N, m)) -> x_next (N, n)``, batched torch function
            (rows independent).  For ``derivatives="autodiff"`` it must be differentiable by
            ``torch.autograd``; wrap NumPy functions with :func:`control.derivatives.numpy_function`
            and use ``"finite_difference"`` or ``"analytic"``.  A sequence of ``K`` such
            callables (perturbed models with the same state and control) optimises one shared
            control sequence for all of them (see ``robust``; every model starts at ``x0``).
        cost: ``cost(x (N, n), u (N, m)) -> (N,)`` running cost of one step.
        x0: ``(n,)`` or ``(B, n)`` initial states.
        u_init: ``(T, m)`` or ``(B, T, m)`` initial control sequences (projected onto the box).
            ``B`` is the common batch size of ``x0`` and ``u_init`` (an unbatched one is shared).
        terminal_cost: ``terminal_cost(x (N, n)) -> (N,)`` on ``x_T``; none when ``None``.
        u_min: lower control bounds broadcastable to ``(B, T, m)`` (scalar, ``(m,)``, ...);
            ``-inf`` entries are unbounded. Both bounds ``None``: unconstrained.
        u_max: upper control bounds, as ``u_min`` (``+inf`` entries are unbounded).
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
        dtype: floating torch dtype of the computation (float64 by default).
        verbose: print one line per iteration.
        robust: with ``K`` models, the objective over the models' costs ``J_k``: ``"mean"``
            (``Σ_k J_k / K``) or ``"worst"`` (smooth maximum ``τ log(Σ_k exp(J_k/τ) / K)``,
            between the mean and the maximum); see :mod:`control.robust`.
        robust_temperature: ``τ > 0`` of ``"worst"``, in cost units (small: close to the
            maximum; large: close to the mean).

    Returns:
        :class:`ILQRResult` (always batched; ``B = 1`` for a single problem).

    Raises:
        TypeError: ``dtype`` is not a floating torch dtype, or an input is not real.
        ValueError: on inconsistent shapes, NaN inputs, ``u_min > u_max``, or an initial rollout
            that is already non-finite.
    """
    if robust not in ROBUST_OBJECTIVES:
        raise ValueError(f"robust must be one of {ROBUST_OBJECTIVES}, got {robust!r}")
    device = x0.device if isinstance(x0, Tensor) else None
    opt = _options(
        derivatives, jacobians, tol, reg_init, reg_min, reg_max, reg_factor, alphas, armijo,
        fd_eps, max_iter, dtype, device,
    )  # fmt: skip
    prob, u_nom = _problem(dynamics, cost, terminal_cost, x0, u_init, u_min, u_max, dtype, device)
    models = None
    if not callable(dynamics):
        models = model_set(dynamics, opt.dyn_jac, robust, robust_temperature, prob.n)
        prob = _stacked_problem(prob, models)
    B = prob.x0.shape[0]
    xs, us, J0, Jk0 = prob.rollout(torch.arange(B, device=prob.x0.device), u_nom)
    if not bool(torch.isfinite(J0[:, 0]).all()):
        bad = torch.nonzero(~torch.isfinite(J0[:, 0])).flatten().tolist()
        raise ValueError(
            f"the initial rollout of u_init is non-finite (NaN/inf state or cost) for members {bad}"
        )
    Jk0 = None if Jk0 is None else Jk0[:, 0]
    state = SolverState.initial(xs[:, 0], us[:, 0], J0[:, 0], prob.n, reg_init, Jk0)
    for it in range(max_iter):
        idx = torch.nonzero(state.active).flatten()
        if idx.numel() == 0:
            break
        d = compute_derivatives(prob, state, idx, opt)
        if d.idx.numel():
            step = check_convergence(state, backward_pass_with_retry(prob, state, d, opt), opt)
            if step.idx.numel():
                accepted = line_search(prob, state, step, opt)
                if verbose:
                    _report(it, state, accepted, step.idx.numel())
        state.history.append(state.J.clone())
    return ILQRResult(
        x=state.x_nom,
        u=state.u_nom,
        K=state.K,
        k=state.k,
        cost=state.J,
        cost_history=torch.stack(state.history, 0),
        iterations=state.iterations,
        converged=state.converged,
        status=state.status,
        notes=state.notes(),
        reg=state.mu,
        best=int(torch.argmin(state.J).item()),
        model_cost=state.Jk,
        n_models=1 if models is None else models.K,
    )
