"""Constrained linear MPC as a cvxpy QP, compiled once and re-solved for each new initial state.

Problem (horizon ``H``, state ``x`` (n,), control ``u`` (m,))::

    minimise   ½ Σ_{t<H} ((x_t - r_t)ᵀ Q (x_t - r_t) + (u_t - s_t)ᵀ R (u_t - s_t))
                 + ½ (x_H - r_H)ᵀ Q_final (x_H - r_H)
    subject to x_0 = x0,  x_{t+1} = A_t x_t + B_t u_t + c_t,
               x_min <= x_t <= x_max  (t = 1..H),   u_min <= u_t <= u_max  (t = 0..H-1)

``A_t, B_t`` are constant or time-varying; the affine term ``c_t`` and the references
``r_t = x_ref[t]``, ``s_t = u_ref[t]`` are optional (zero when omitted, which is plain regulation
to the origin). The cost has the same ½ convention as :func:`control.linear_quadratic.lqr`
(stage Hessian ``C = blkdiag(Q, R)``; tracking is its linear term ``c_t = -[Q r_t; R s_t]``), so
with inactive constraints the plan equals the LQR solution. The initial state, and the
references and affine terms when enabled, are ``cp.Parameter``s: the problem is DPP, compiled on
the first :meth:`LinearMPC.solve` and only re-parametrised afterwards (warm-started when the
solver supports it, e.g. OSQP), also when :meth:`LinearMPC.solve` is given a new reference.

Default solver: Clarabel (interior point: ~20 iterations whatever the conditioning, accurate to
~1e-8). OSQP (``solver="OSQP"``) warm-starts and is several times faster on small, well-conditioned
problems, but ADMM can need thousands of iterations on long horizons with slow dynamics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import cvxpy.settings as cps
import numpy as np
import scipy.sparse as sp

from control._backend import check_finite, to_numpy

__all__ = ["InfeasibleError", "LinearMPC", "MPCResult"]

_FAILED = {
    cp.INFEASIBLE,
    cp.INFEASIBLE_INACCURATE,
    cp.UNBOUNDED,
    cp.UNBOUNDED_INACCURATE,
    cps.INFEASIBLE_OR_UNBOUNDED,
}

# Tight enough that plans agree with the exact LQR solution to ~1e-6 when constraints are inactive
# (OSQP's polishing step recovers the exact solution once the active set is identified).
_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "CLARABEL": {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10},
    "OSQP": {"eps_abs": 1e-7, "eps_rel": 1e-7, "max_iter": 200_000, "polishing": True},
}


class InfeasibleError(RuntimeError):
    """The MPC problem has no solution for this initial state (``status`` is cvxpy's status)."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class MPCResult:
    """One MPC solve. Arrays are float64 numpy; NaN-filled when the solve failed.

    Attributes:
        u0: first control to apply, shape (m,).
        x: planned states ``x_0 .. x_H``, shape (H+1, n).
        u: planned controls ``u_0 .. u_{H-1}``, shape (H, m).
        status: cvxpy status string (``"optimal"``, ``"infeasible"``, ...).
        cost: optimal objective value (``inf`` when infeasible).
        solve_time: wall-clock seconds of this call (compilation included on the first call).
    """

    u0: np.ndarray
    x: np.ndarray
    u: np.ndarray
    status: str
    cost: float
    solve_time: float


def _matrix(x: Any, name: str, shape: tuple[int, int]) -> np.ndarray:
    a = to_numpy(x, name).astype(np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {a.shape}")
    check_finite(a, name)
    return a


def _psd_factor(M: np.ndarray, name: str, definite: bool) -> np.ndarray:
    """``L`` with ``Lᵀ L = M`` for symmetric PSD (PD when ``definite``) ``M``."""
    if not np.allclose(M, M.T, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name} must be symmetric")
    w, U = np.linalg.eigh(0.5 * (M + M.T))
    scale = max(1.0, float(np.abs(w).max(initial=0.0)))
    if definite and w.min() <= 1e-12 * scale:
        raise ValueError(f"{name} must be positive definite (min eigenvalue {w.min():.3g})")
    if w.min() < -1e-10 * scale:
        raise ValueError(f"{name} must be positive semidefinite (min eigenvalue {w.min():.3g})")
    return np.sqrt(np.clip(w, 0.0, None))[:, None] * U.T


def _bounds(
    x_min: Any, x_max: Any, u_min: Any, u_max: Any, n: int, m: int
) -> dict[str, np.ndarray | None]:
    """The four box bounds as float64 vectors (or ``None``), checked for empty boxes."""
    bounds = {
        "x_min": _bound(x_min, "x_min", n),
        "x_max": _bound(x_max, "x_max", n),
        "u_min": _bound(u_min, "u_min", m),
        "u_max": _bound(u_max, "u_max", m),
    }
    for lo, hi in (("x_min", "x_max"), ("u_min", "u_max")):
        a, b = bounds[lo], bounds[hi]
        if a is not None and b is not None and np.any(a > b):
            i = int(np.flatnonzero(a > b)[0])
            raise ValueError(f"{lo} > {hi} at index {i} ({a[i]} > {b[i]}): empty box")
        for key, a, bad in ((lo, bounds[lo], np.inf), (hi, bounds[hi], -np.inf)):
            if a is not None and np.any(a == bad):
                raise ValueError(f"{key} contains {bad} (empty box); use {-bad} for no bound")
    return bounds


def _bound(x: Any, name: str, dim: int) -> np.ndarray | None:
    if x is None:
        return None
    a = to_numpy(x, name).astype(np.float64)
    if a.ndim == 0:
        a = np.full(dim, float(a))
    elif a.shape != (dim,):
        raise ValueError(f"{name} must be a scalar or have shape ({dim},); got {a.shape}")
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN (use ±inf for no bound)")
    return a


def _dynamics(A: Any, B: Any, horizon: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """``A`` (n, n) or (H, n, n) and ``B`` (n, m) or (H, n, m) as float64, each stacked to the
    time-varying shape when either is time-varying; and whether they are time-varying."""
    A_np = to_numpy(A, "A")
    H = horizon
    if A_np.ndim not in (2, 3) or A_np.shape[-1] != A_np.shape[-2] or A_np.shape[-1] < 1:
        raise ValueError(f"A must have shape (n, n) or (H, n, n) = ({H}, n, n); got {A_np.shape}")
    n = A_np.shape[-1]
    if A_np.ndim == 3 and A_np.shape[0] != H:
        raise ValueError(f"A must have shape (n, n) or (H, n, n) = ({H}, {n}, {n}); got "
                         f"{A_np.shape} (time-varying A needs one matrix per step)")  # fmt: skip
    B_np = to_numpy(B, "B")
    if B_np.ndim not in (2, 3) or B_np.shape[-2] != n or B_np.shape[-1] < 1:
        raise ValueError(f"B must have shape (n, m) = ({n}, m) or (H, n, m) = ({H}, {n}, m); "
                         f"got {B_np.shape}")  # fmt: skip
    m = B_np.shape[-1]
    if B_np.ndim == 3 and B_np.shape[0] != H:
        raise ValueError(f"B must have shape (n, m) = ({n}, {m}) or (H, n, m) = "
                         f"({H}, {n}, {m}); got {B_np.shape} (time-varying B needs one matrix "
                         "per step)")  # fmt: skip
    A_np = np.asarray(A_np, dtype=np.float64)
    B_np = np.asarray(B_np, dtype=np.float64)
    check_finite(A_np, "A")
    check_finite(B_np, "B")
    varying = A_np.ndim == 3 or B_np.ndim == 3
    if varying:
        A_np = np.array(np.broadcast_to(A_np, (H, n, n)))
        B_np = np.array(np.broadcast_to(B_np, (H, n, m)))
    return A_np, B_np, varying


def _trajectory(x: Any, name: str, steps: int, dim: int) -> np.ndarray:
    """``x`` (dim,) or (steps, dim) as a float64 (steps, dim) array (a constant is repeated)."""
    a = to_numpy(x, name).astype(np.float64)
    if a.shape == (dim,):
        a = np.broadcast_to(a, (steps, dim))
    elif a.shape != (steps, dim):
        raise ValueError(f"{name} must have shape ({dim},) or ({steps}, {dim}); got {a.shape}")
    check_finite(a, name)
    return np.array(a)


class LinearMPC:
    """Linear MPC with box constraints on states and controls, solved as a compiled cvxpy QP.

    Args:
        A: state matrix, (n, n), or time-varying (H, n, n) (``A[t]`` maps ``x_t`` to ``x_{t+1}``).
        B: input matrix, (n, m), or time-varying (H, n, m).
        Q: (n, n) symmetric PSD state cost.  R: (m, m) symmetric PD control cost.
        horizon: number of planned steps ``H >= 1``.
        Q_final: (n, n) symmetric PSD terminal cost; defaults to ``Q``. Passing the DARE solution
            ``S`` of ``dlqr(A, B, Q, R)`` makes the tail cost the exact infinite-horizon one.
        c: affine dynamics term, (n,) (constant) or (H, n) (``c[t]`` is added to ``x_{t+1}``);
            omitted: zero. When given it becomes a parameter that :meth:`solve` can update.
        x_ref: state reference ``r_0 .. r_H``, (n,) (a set point) or (H+1, n); ``r_0`` does not
            change the plan (``x_0`` is fixed) but is part of the reported cost. Omitted: zero.
        u_ref: control reference ``s_0 .. s_{H-1}``, (m,) or (H, m); omitted: zero. Giving
            either reference enables tracking: both become parameters that :meth:`solve` can
            update without recompiling.
        x_min: lower state bounds (scalar or (n,), ±inf allowed) imposed on ``x_1 .. x_H``
            (``x_0`` is given).
        x_max: upper state bounds (scalar or (n,), ±inf allowed) imposed on ``x_1 .. x_H``.
        u_min: lower control bounds (scalar or (m,), ±inf allowed) on ``u_0 .. u_{H-1}``.
        u_max: upper control bounds (scalar or (m,), ±inf allowed) on ``u_0 .. u_{H-1}``.
        solver: a cvxpy solver name; default ``"CLARABEL"`` (``"OSQP"`` warm-starts re-solves).
        solver_options: keyword options for the solver, merged over tight defaults for OSQP and
            CLARABEL.
        raise_on_infeasible: raise :class:`InfeasibleError` when the problem is infeasible or
            unbounded (default); otherwise return a NaN-filled :class:`MPCResult` with the status.
    """

    def __init__(
        self,
        A: Any,
        B: Any,
        Q: Any,
        R: Any,
        horizon: int,
        *,
        Q_final: Any | None = None,
        c: Any | None = None,
        x_ref: Any | None = None,
        u_ref: Any | None = None,
        x_min: Any | None = None,
        x_max: Any | None = None,
        u_min: Any | None = None,
        u_max: Any | None = None,
        solver: str | None = None,
        solver_options: dict[str, Any] | None = None,
        raise_on_infeasible: bool = True,
    ) -> None:
        if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1; got {horizon!r}")
        for name, value in (("A", A), ("B", B), ("Q", Q), ("R", R)):
            if value is None:
                raise TypeError(f"LinearMPC: {name} must be an array, got None")
        H = self.horizon = int(horizon)
        self.A, self.B, self.time_varying = _dynamics(A, B, H)
        n, m = self.n, self.m = self.B.shape[-2], self.B.shape[-1]
        self.Q = _matrix(Q, "Q", (n, n))
        self.R = _matrix(R, "R", (m, m))
        self.Q_final = self.Q if Q_final is None else _matrix(Q_final, "Q_final", (n, n))
        self.bounds = _bounds(x_min, x_max, u_min, u_max, n, m)

        self._x0 = cp.Parameter(n, name="x0")
        self._c = None if c is None else cp.Parameter((H, n), name="c")
        self._tracking = x_ref is not None or u_ref is not None
        self._x_ref = cp.Parameter((H + 1, n), name="x_ref") if self._tracking else None
        self._u_ref = cp.Parameter((H, m), name="u_ref") if self._tracking else None
        self._set_parameters(c=c, x_ref=x_ref, u_ref=u_ref, initial=True)
        self._x = cp.Variable((H + 1, n), name="x")
        self._u = cp.Variable((H, m), name="u")
        self.problem = cp.Problem(cp.Minimize(self._cost()), self._constraints())
        if not self.problem.is_dpp():  # pragma: no cover - guards the formulation above
            raise RuntimeError("LinearMPC: internal error, the QP is not DPP")

        self.solver = "CLARABEL" if solver is None else solver.upper()
        self.solver_options = {**_DEFAULT_OPTIONS.get(self.solver, {}), **(solver_options or {})}
        self.raise_on_infeasible = raise_on_infeasible

    def _set_parameters(
        self, *, c: Any | None, x_ref: Any | None, u_ref: Any | None, initial: bool = False
    ) -> None:
        """Validate and assign the affine term and references (``None``: keep, or zero at
        construction)."""
        H, n, m = self.horizon, self.n, self.m
        for name, value, param, steps, dim in (
            ("c", c, self._c, H, n),
            ("x_ref", x_ref, self._x_ref, H + 1, n),
            ("u_ref", u_ref, self._u_ref, H, m),
        ):
            if param is None:
                if value is not None:
                    hint = "c" if name == "c" else "x_ref or u_ref"
                    raise ValueError(f"{name} given to solve() but this LinearMPC was built "
                                     f"without {hint}; pass it to the constructor")  # fmt: skip
                continue
            if value is not None:
                param.value = _trajectory(value, name, steps, dim)
            elif initial:
                param.value = np.zeros((steps, dim))

    def _cost(self) -> cp.Expression:
        H, X, U = self.horizon, self._x, self._u
        LQ = _psd_factor(self.Q, "Q", definite=False)
        LR = _psd_factor(self.R, "R", definite=True)
        LF = _psd_factor(self.Q_final, "Q_final", definite=False)
        dX, dU = (X, U) if not self._tracking else (X - self._x_ref, U - self._u_ref)
        return 0.5 * (
            cp.sum_squares(dX[:H] @ LQ.T) + cp.sum_squares(dU @ LR.T) + cp.sum_squares(LF @ dX[H])
        )

    def _constraints(self) -> list[cp.Constraint]:
        H, X, U = self.horizon, self._x, self._u
        if self.time_varying:  # row-major vec: blkdiag(A_0..A_{H-1}) [x_0; ..; x_{H-1}]
            A_bd = sp.block_diag(list(self.A), format="csr")
            B_bd = sp.block_diag(list(self.B), format="csr")
            nxt = A_bd @ cp.vec(X[:H], order="C") + B_bd @ cp.vec(U, order="C")
            if self._c is not None:
                nxt = nxt + cp.vec(self._c, order="C")
            cons = [X[0] == self._x0, cp.vec(X[1:], order="C") == nxt]
        else:
            nxt = X[:H] @ self.A.T + U @ self.B.T
            cons = [X[0] == self._x0, X[1:] == (nxt if self._c is None else nxt + self._c)]
        for var, lo, hi in ((X[1:], "x_min", "x_max"), (U, "u_min", "u_max")):
            for key, sign in ((lo, 1.0), (hi, -1.0)):
                b = self.bounds[key]
                if b is None:
                    continue
                idx = np.flatnonzero(np.isfinite(b))
                if idx.size == 0:
                    continue
                cols = var[:, idx] if idx.size < b.size else var
                cons.append(sign * cols >= sign * b[idx][None, :])
        return cons

    def solve(
        self,
        x0: Any,
        *,
        x_ref: Any | None = None,
        u_ref: Any | None = None,
        c: Any | None = None,
    ) -> MPCResult:
        """Plan from initial state ``x0`` (n,) (numpy/torch/array-like).

        ``x_ref`` ((n,) or (H+1, n)), ``u_ref`` ((m,) or (H, m)) and ``c`` ((n,) or (H, n))
        replace the reference / affine term for this and later calls (``None`` keeps the
        current one); they need the feature enabled at construction.

        The first call compiles the problem; later calls only update the parameters and
        warm-start.

        Raises:
            ValueError: ``x0`` or a new reference has the wrong shape or holds NaN/inf.
            InfeasibleError: the problem is infeasible or unbounded (with ``raise_on_infeasible``).
        """
        x0_np = to_numpy(x0, "x0").astype(np.float64)
        if x0_np.shape != (self.n,):
            raise ValueError(f"x0 must have shape ({self.n},); got {x0_np.shape}")
        check_finite(x0_np, "x0")
        self._set_parameters(c=c, x_ref=x_ref, u_ref=u_ref)
        self._x0.value = x0_np
        start = time.perf_counter()
        self.problem.solve(solver=self.solver, warm_start=True, **self.solver_options)
        elapsed = time.perf_counter() - start
        status = self.problem.status
        if status in _FAILED or self._u.value is None:
            if self.raise_on_infeasible:
                raise InfeasibleError(
                    f"LinearMPC: the QP is {status} for x0={x0_np.tolist()} "
                    f"(solver {self.solver}); check the state/control bounds against the "
                    "reachable set",
                    status=status,
                )
            nan_x = np.full((self.horizon + 1, self.n), np.nan)
            nan_u = np.full((self.horizon, self.m), np.nan)
            return MPCResult(nan_u[0].copy(), nan_x, nan_u, status, float("inf"), elapsed)
        u = np.array(self._u.value, dtype=np.float64)
        x = np.array(self._x.value, dtype=np.float64)
        return MPCResult(u[0].copy(), x, u, status, float(self.problem.value), elapsed)
