"""Linear-quadratic regulators: finite-horizon time-varying LQR with affine terms (:func:`lqr`) and
infinite-horizon discrete LQR via the discrete algebraic Riccati equation (:func:`dlqr`).

Notation (Levine's deep-RL lecture notes): the state is ``x`` (n,), the control ``u`` (m,), and
``z = [x; u]`` (n+m,).

* dynamics  ``x_{t+1} = F_t z_t + f_t``
* stage cost ``½ z_tᵀ C_t z_t + z_tᵀ c_t`` for ``t = 0 .. T-1``
* terminal cost ``½ x_Tᵀ C_final x_T + x_Tᵀ c_final`` (optional)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.linalg.lapack
import torch

from control._backend import (
    Array,
    NumpyBatchedOps,
    NumpyLapackOps,
    TorchOps,
    check_finite,
    float_dtype_numpy,
    float_dtype_torch,
    is_torch,
    to_numpy,
)
from control.dare import dare_doubling, dare_gain, dare_qz, dare_residual, dare_schur

__all__ = [
    "LQROverflowError",
    "LQRSolution",
    "NotPositiveDefiniteError",
    "dlqr",
    "lqr",
]


class NotPositiveDefiniteError(np.linalg.LinAlgError):
    """``Q_uu`` (the control block of the Q-function Hessian) is not positive definite.

    ``LinAlgError`` is a ``ValueError``. ``time_step`` is the step ``t`` at which the backward
    recursion failed and ``batch_index`` the index into the batch dims (``()`` when unbatched).
    """

    def __init__(self, message: str, time_step: int, batch_index: tuple[int, ...]) -> None:
        super().__init__(message)
        self.time_step = time_step
        self.batch_index = batch_index


class LQROverflowError(ValueError, ArithmeticError):
    """The cost-to-go or the optimal trajectory of :func:`lqr` overflowed (became inf or NaN).

    A ``ValueError`` (the problem data cause it) and an ``ArithmeticError``. ``time_step`` is the
    step ``t`` at which it happened (the first in the recursion's order: the largest ``t`` for the
    backward pass, the smallest for the rollout) and ``batch_index`` the index into the batch
    dims (``()`` when unbatched).
    """

    def __init__(self, message: str, time_step: int, batch_index: tuple[int, ...]) -> None:
        super().__init__(message)
        self.time_step = time_step
        self.batch_index = batch_index


@dataclass
class LQRSolution:
    """Solution of a finite-horizon LQR problem (numpy arrays or torch tensors, as the inputs).

    The optimal policy is ``u_t = K_t x_t + k_t`` and the optimal cost-to-go from state ``x`` at
    time ``t`` is exactly ``½ xᵀ V_t x + xᵀ v_t + const_t`` (``t = T`` is the terminal cost).

    ``...`` in K, k, V, v, const is the broadcast batch shape of the problem data (F, f, C, c,
    C_final, c_final); in x, u, cost it also includes the batch dims of ``x0``.

    Attributes:
        K: feedback gains, shape (..., T, m, n).
        k: feedforward terms, shape (..., T, m).
        V: value-function Hessians (symmetric), shape (..., T+1, n, n).
        v: value-function gradients at ``x = 0``, shape (..., T+1, n).
        const: value-function constants, shape (..., T+1).
        x: optimal states ``x_0 .. x_T``, shape (..., T+1, n); ``None`` without ``x0``.
        u: optimal controls ``u_0 .. u_{T-1}``, shape (..., T, m); ``None`` without ``x0``.
        cost: total cost of that trajectory (stage costs plus terminal cost), shape (...);
            ``None`` without ``x0``.
    """

    K: Array
    k: Array
    V: Array
    v: Array
    const: Array
    x: Array | None = None
    u: Array | None = None
    cost: Array | None = None

    def value(self, x: Array, t: int = 0) -> Array:
        """Optimal cost-to-go ``½ xᵀ V_t x + xᵀ v_t + const_t`` of ``x`` (..., n) at step ``t``.

        Returns shape (...) (``x``'s batch dims broadcast with the solution's).
        """
        Vt, vt, ct = self.V[..., t, :, :], self.v[..., t, :], self.const[..., t]
        quad = (x[..., None, :] @ Vt @ x[..., :, None])[..., 0, 0]
        return 0.5 * quad + (x * vt).sum(-1) + ct


def _shape_error(name: str, expected: str, got: tuple[int, ...]) -> ValueError:
    return ValueError(f"{name} must have shape {expected}; got {tuple(got)}")


def _validate(
    F: Any, f: Any, C: Any, c: Any, x0: Any, C_final: Any, c_final: Any
) -> tuple[int, int, int, tuple[int, ...], tuple[int, ...]]:
    """Check shapes and finiteness; return (T, n, m, problem batch shape, batch shape with x0)."""
    if F.ndim < 3 or F.shape[-1] <= F.shape[-2] or F.shape[-2] < 1:
        raise _shape_error("F", "(..., T, n, n+m) with n >= 1 and m >= 1", F.shape)
    T, n, nm = F.shape[-3], F.shape[-2], F.shape[-1]
    m = nm - n
    if T < 1:
        raise _shape_error("F", "(..., T, n, n+m) with T >= 1", F.shape)
    specs = [
        ("f", f, (T, n), f"(..., T, n) = (..., {T}, {n})"),
        ("C", C, (T, nm, nm), f"(..., T, n+m, n+m) = (..., {T}, {nm}, {nm})"),
        ("c", c, (T, nm), f"(..., T, n+m) = (..., {T}, {nm})"),
        ("x0", x0, (n,), f"(..., n) = (..., {n})"),
        ("C_final", C_final, (n, n), f"(..., n, n) = (..., {n}, {n})"),
        ("c_final", c_final, (n,), f"(..., n) = (..., {n})"),
    ]
    batch_shapes = [("F", tuple(F.shape[:-3]))]
    check_finite(F, "F")
    for name, a, trailing, expected in specs:
        if a is None:
            continue
        k = len(trailing)
        if a.ndim < k or tuple(a.shape[-k:]) != trailing:
            raise _shape_error(name, expected + " to match F", a.shape)
        check_finite(a, name)
        batch_shapes.append((name, tuple(a.shape[:-k])))

    def bshape(shapes: list[tuple[str, tuple[int, ...]]]) -> tuple[int, ...]:
        try:
            return tuple(np.broadcast_shapes(*[s for _, s in shapes]))
        except ValueError:
            desc = ", ".join(f"{name}: {s}" for name, s in shapes)
            raise ValueError(f"batch dims of the LQR inputs do not broadcast ({desc})") from None

    batch = bshape(batch_shapes)
    problem_batch = bshape([(k, s) for k, s in batch_shapes if k != "x0"])
    return T, n, m, problem_batch, batch


def lqr(
    F: Array,
    f: Array,
    C: Array,
    c: Array,
    x0: Array | None = None,
    *,
    C_final: Array | None = None,
    c_final: Array | None = None,
) -> LQRSolution:
    """Solve a finite-horizon, time-varying LQR problem with affine terms exactly.

    Minimises ``Σ_{t<T} (½ z_tᵀ C_t z_t + z_tᵀ c_t) + ½ x_Tᵀ C_final x_T + x_Tᵀ c_final`` over
    ``u_0 .. u_{T-1}`` subject to ``x_{t+1} = F_t z_t + f_t``, with ``z_t = [x_t; u_t]``, by the
    backward Riccati recursion (``Q_t = C_t + F_tᵀ V_{t+1} F_t``, ``q_t = c_t + F_tᵀ V_{t+1} f_t +
    F_tᵀ v_{t+1}``, ``K_t = -Q_uu⁻¹ Q_ux``, ``k_t = -Q_uu⁻¹ q_u``). ``Q_uu`` is factorised by
    Cholesky (``Q_uu = L Lᵀ``) and ``V_t = Q_xx - (L⁻¹Q_ux)ᵀ(L⁻¹Q_ux)`` is symmetrised. Only the
    symmetric part of ``C_t`` and ``C_final`` matters (they are symmetrised).

    Args:
        F: dynamics matrices, shape (..., T, n, n+m).
        f: dynamics offsets, shape (..., T, n).
        C: stage-cost Hessians, shape (..., T, n+m, n+m).
        c: stage-cost gradients, shape (..., T, n+m).
        x0: initial state, shape (..., n). When given, the optimal trajectory and cost are returned.
        C_final: terminal-cost Hessian, shape (..., n, n); zero when omitted.
        c_final: terminal-cost gradient, shape (..., n); zero when omitted.

    Leading batch dims ``...`` may differ between arguments and broadcast. The loop runs over
    ``T`` only; batches are vectorised.

    Returns:
        :class:`LQRSolution` holding numpy arrays when all inputs are numpy, torch tensors (dtype
        and device of the inputs, differentiable) when any input is a tensor. torch float16 and
        bfloat16 inputs are computed in, and returned as, float32. Every output is checked
        finite.

    Raises:
        TypeError: a required argument (F, f, C, c) is ``None``, or an input is not numeric.
        ValueError: a shape mismatch (naming the argument and the expected shape) or NaN/inf input.
        NotPositiveDefiniteError: ``Q_uu`` is not positive definite at some step (a ``ValueError``;
            the message names the time step and batch index).
        LQROverflowError: the cost-to-go or the optimal trajectory overflowed (a ``ValueError``
            and an ``ArithmeticError``; the message names the time step, batch index and likely
            cause: an uncontrollable unstable mode over a long horizon, or huge entries).
    """
    args = {"F": F, "f": f, "C": C, "c": c, "x0": x0, "C_final": C_final, "c_final": c_final}
    given = _given_arrays(args)
    use_torch = any(is_torch(a) for a in given.values())

    if use_torch:
        dtype = float_dtype_torch(*given.values())
        if dtype in (torch.float16, torch.bfloat16):
            dtype = torch.float32  # half precision overflows (max 65504) and loses accuracy
        device = next(a.device for a in given.values() if is_torch(a))
        conv = {
            k: (a if is_torch(a) else torch.as_tensor(a)).to(dtype=dtype, device=device)
            for k, a in given.items()
        }
    else:
        dtype_np = float_dtype_numpy(*given.values())
        conv = {k: a.astype(dtype_np, copy=False) for k, a in given.items()}
    for k in args:
        conv.setdefault(k, None)
    T, n, m, batch, full_batch = _validate(**conv)

    # Backend choice (same maths either way). numpy/LAPACK kernels have the lowest per-call
    # overhead and do not oversubscribe a busy CPU, so they run every problem that does not need
    # torch: unbatched ones through LAPACK directly, batched ones through numpy's stacked
    # gufuncs. torch kernels run only when autograd or a non-CPU device (or dtype) needs them.
    torch_kernels = use_torch and (
        device.type != "cpu"
        or dtype not in (torch.float32, torch.float64)
        or any(a.requires_grad for a in conv.values() if a is not None)
    )
    if torch_kernels:
        return _solve(conv, T, n, m, batch, full_batch, TorchOps(dtype, device))
    np_conv = {k: None if a is None else (a.numpy() if use_torch else a) for k, a in conv.items()}
    ops_cls = NumpyLapackOps if batch == () else NumpyBatchedOps
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected and raised below
        sol = _solve(np_conv, T, n, m, batch, full_batch, ops_cls(np_conv["F"].dtype))
    return _map_solution(sol, lambda a: torch.from_numpy(np.asarray(a))) if use_torch else sol


def _given_arrays(args: dict[str, Any]) -> dict[str, Any]:
    """The non-``None`` arguments as torch tensors or numpy arrays of real numbers.

    Raises:
        TypeError: a required argument (F, f, C, c) is ``None``, or an argument is not numeric.
    """
    given = {}
    for k, a in args.items():
        if a is None:
            if k in ("F", "f", "C", "c"):
                raise TypeError(f"lqr: {k} must be an array (numpy or torch), got None")
            continue
        if not is_torch(a):
            a = to_numpy(a, k)
            if a.dtype.kind not in "biuf":
                raise TypeError(f"lqr: {k} must be an array of real numbers; got dtype {a.dtype}")
        given[k] = a
    return given


def _map_solution(sol: LQRSolution, fn: Any) -> LQRSolution:
    return LQRSolution(**{k: (None if val is None else fn(val)) for k, val in vars(sol).items()})


def _sym(a: Array) -> Array:
    return 0.5 * (a + a.swapaxes(-1, -2))


def _solve(
    a: dict[str, Any],
    T: int,
    n: int,
    m: int,
    batch: tuple[int, ...],
    full_batch: tuple[int, ...],
    ops: Any,
) -> LQRSolution:
    """Backward Riccati recursion and (with ``x0``) forward rollout on one backend."""
    nm = n + m

    def bcast(x: Any, trailing: tuple[int, ...], batch: tuple[int, ...] = batch) -> Any:
        shape = batch + trailing
        if tuple(x.shape) == shape:
            return x
        return torch.broadcast_to(x, shape) if is_torch(x) else np.broadcast_to(x, shape)

    F = bcast(a["F"], (T, n, nm))
    f = bcast(a["f"], (T, n))
    C = _sym(bcast(a["C"], (T, nm, nm)))
    c = bcast(a["c"], (T, nm))

    V = ops.zeros(batch + (n, n)) if a["C_final"] is None else _sym(bcast(a["C_final"], (n, n)))
    v = ops.zeros(batch + (n,)) if a["c_final"] is None else bcast(a["c_final"], (n,))
    const = ops.zeros(batch)
    Vs, vs, consts, Ks, ks, infos = [V], [v], [const], [], [], []

    for t in range(T - 1, -1, -1):
        Ft = F[..., t, :, :]
        ft = f[..., t, :, None]  # (..., n, 1)
        FtT = Ft.swapaxes(-1, -2)
        FtV = FtT @ V  # (..., n+m, n)
        Q = C[..., t, :, :] + FtV @ Ft
        Vf = V @ ft  # (..., n, 1)
        q = c[..., t, :, None] + FtT @ (Vf + v[..., :, None])  # (..., n+m, 1)
        const = const + (ft.swapaxes(-1, -2) @ (0.5 * Vf + v[..., :, None]))[..., 0, 0]

        low, info = ops.cholesky(Q[..., n:, n:])
        if isinstance(ops, NumpyLapackOps):
            _raise_if_failed(ops, info, t, Q[..., n:, n:], (Ks, ks, Vs, vs, consts), a)
        else:
            infos.append((info, Q[..., n:, n:]))
        # W = L⁻¹ [Q_ux | q_u], so that Q_uu⁻¹[Q_ux | q_u] = L⁻ᵀ W.
        W = ops.solve_lower(low, ops.cat([Q[..., n:, :n], q[..., n:, :]], -1))  # (..., m, n+1)
        Kk = -ops.solve_lower_t(low, W)
        Wx, Wq = W[..., :, :n], W[..., :, n:]
        WxT = Wx.swapaxes(-1, -2)
        V = _sym(Q[..., :n, :n] - WxT @ Wx)
        v = (q[..., :n, :] - WxT @ Wq)[..., 0]
        const = const - 0.5 * (Wq.swapaxes(-1, -2) @ Wq)[..., 0, 0]

        Vs.append(V)
        vs.append(v)
        consts.append(const)
        Ks.append(Kk[..., :, :n])
        ks.append(Kk[..., :, n])

    if infos:  # deferred check on the torch path (avoids a device sync per step)
        for i, (info, Quu) in enumerate(infos):
            steps = (Ks[:i], ks[:i], Vs[: i + 1], vs[: i + 1], consts[: i + 1])
            _raise_if_failed(ops, info, T - 1 - i, Quu, steps, a)
    backward = (Ks, ks, Vs, vs, consts)

    sol = LQRSolution(
        K=ops.stack(Ks[::-1], -3),
        k=ops.stack(ks[::-1], -2),
        V=ops.stack(Vs[::-1], -3),
        v=ops.stack(vs[::-1], -2),
        const=ops.stack(consts[::-1], -1),
    )
    if not all(_all_finite(getattr(sol, k)) for k in ("K", "k", "V", "v", "const")):
        _raise_overflow(_backward_overflow(T, *backward), a)
    if a["x0"] is not None:
        x = bcast(a["x0"], (n,), full_batch)
        xs, us = [x], []
        for t in range(T):
            u = (sol.K[..., t, :, :] @ x[..., :, None])[..., 0] + sol.k[..., t, :]
            z = ops.cat([x, u], -1)
            x = (F[..., t, :, :] @ z[..., :, None])[..., 0] + f[..., t, :]
            xs.append(x)
            us.append(u)
        sol.x = ops.stack(xs, -2)
        sol.u = ops.stack(us, -2)
        z = ops.cat([sol.x[..., :-1, :], sol.u], -1)  # (..., T, n+m)
        stage = 0.5 * (z[..., None, :] @ C @ z[..., :, None])[..., 0, 0] + (z * c).sum(-1)
        cost = stage.sum(-1)
        xT = sol.x[..., -1, :]
        if a["C_final"] is not None:
            Cf = bcast(a["C_final"], (n, n))
            cost = cost + 0.5 * (xT[..., None, :] @ Cf @ xT[..., :, None])[..., 0, 0]
        if a["c_final"] is not None:
            cost = cost + (xT * bcast(a["c_final"], (n,))).sum(-1)
        sol.cost = cost
        if not (_all_finite(sol.x) and _all_finite(sol.u) and _all_finite(cost)):
            _raise_trajectory_overflow(xs, us, stage, cost, a)
    return sol


def _all_finite(x: Any) -> bool:
    return bool(torch.isfinite(x).all()) if is_torch(x) else bool(np.isfinite(x).all())


def _nonfinite_index(*arrays: tuple[Any, int]) -> tuple[int, ...] | None:
    """First batch index at which any ``(array, number of trailing dims)`` is inf/NaN, else None
    (``()`` for unbatched arrays)."""
    bad: Any = False
    for x, k in arrays:
        b = ~np.isfinite(to_numpy(x, "x"))
        bad = bad | (b.any(axis=tuple(range(-k, 0))) if k else b)
    if not np.any(bad):
        return None
    return tuple(int(i) for i in np.argwhere(bad)[0]) if np.ndim(bad) else ()


def _backward_overflow(
    T: int, Ks: list, ks: list, Vs: list, vs: list, consts: list
) -> tuple[int, tuple[int, ...]] | None:
    """``(t, batch index)`` of the first non-finite step of the backward recursion (the
    largest ``t``), from its per-step lists (``Vs[0]`` is ``V_T``, ``Ks[0]`` is ``K_{T-1}``)."""
    for i in range(len(Vs)):
        arrays = [(Vs[i], 2), (vs[i], 1), (consts[i], 0)]
        if 1 <= i <= len(Ks):
            arrays += [(Ks[i - 1], 2), (ks[i - 1], 1)]
        idx = _nonfinite_index(*arrays)
        if idx is not None:
            return T - i, idx
    return None


def _largest_entry(a: dict[str, Any]) -> float:
    """Largest |entry| of the problem data (for error messages)."""
    largest = 0.0
    for k in ("F", "f", "C", "c", "C_final", "c_final", "x0"):
        x = None if a[k] is None else to_numpy(a[k], k)
        if x is not None and x.size:
            largest = max(largest, float(np.abs(x).max()))
    return largest


def _raise_overflow(found: tuple[int, tuple[int, ...]] | None, a: dict[str, Any]) -> None:
    t, idx = found if found is not None else (-1, ())
    where = f" (batch index {idx})" if idx else ""
    T = a["F"].shape[-3]
    dtype = str(a["F"].dtype).replace("torch.", "")
    raise LQROverflowError(
        f"lqr: overflow: the cost-to-go (V_t, v_t, const_t or the gains) became inf/NaN at time "
        f"step t={t}{where} of the backward Riccati recursion (horizon T={T}, {dtype}). Likely "
        "cause: an unstable mode that the controls cannot reach (uncontrollable), whose cost "
        "grows like |eigenvalue|^(2(T-t)) over a long horizon; or huge entries in the problem "
        f"data (largest |entry| {_largest_entry(a):.3g}). Shorten the horizon, make the unstable "
        "mode controllable, or rescale the problem (float64 reaches further than float32)",
        time_step=t,
        batch_index=idx,
    )


def _raise_trajectory_overflow(xs: list, us: list, stage: Any, cost: Any, a: dict) -> None:
    T = len(us)
    for t in range(T + 1):
        arrays = [(xs[t], 1)] + ([(us[t], 1)] if t < T else [])
        idx = _nonfinite_index(*arrays)
        if idx is not None:
            what = f"the optimal trajectory overflows at t={t} (x_t or u_t became inf/NaN)"
            break
    else:
        idx = _nonfinite_index((cost, 0)) or ()
        bad = ~np.isfinite(to_numpy(stage, "stage"))
        t = int(np.argwhere(bad.reshape(-1, T).any(0))[0][0]) if bad.any() else T
        what = f"the optimal trajectory's cost overflows at t={t}"
    where = f" (batch index {idx})" if idx else ""
    raise LQROverflowError(
        f"lqr: overflow: {what}{where} in the forward rollout from x0 (horizon T={T}). Likely "
        "cause: an unstable mode that the controls cannot reach (uncontrollable) and that "
        "costs little, growing like |eigenvalue|^t over a long horizon; or huge entries in the "
        f"problem data (largest |entry| {_largest_entry(a):.3g}). Shorten the horizon, penalise "
        "or stabilise that mode, or rescale the problem",
        time_step=t,
        batch_index=idx,
    )


def _raise_if_failed(
    ops: Any, info: Any, t: int, Quu: Any, steps: tuple[list, ...], a: dict[str, Any]
) -> None:
    """Raise when the Cholesky factorisation of ``Q_uu`` at step ``t`` failed: overflow when
    ``Q_uu`` is not finite (``steps``: the backward lists up to step ``t+1``), else
    :class:`NotPositiveDefiniteError`."""
    failed, idx, order = ops.failed(info)
    if failed:
        if not _all_finite(Quu):
            found = _backward_overflow(a["F"].shape[-3], *steps)
            _raise_overflow(found or (t, _nonfinite_index((Quu, 2)) or ()), a)
        where = f" (batch index {idx})" if idx else ""
        raise NotPositiveDefiniteError(
            f"lqr: Q_uu = C_uu + F_uᵀ V_{{t+1}} F_u is not positive definite at time step "
            f"t={t}{where} (Cholesky failed at leading minor {order}); the control cost "
            f"C[..., {t}, n:, n:] must make Q_uu positive definite",
            time_step=t,
            batch_index=idx,
        )


_DARE_RESIDUAL_TOL = 1e-11  # accept a fast-path DARE solution whose relative residual is below
_QZ_MAX_N = 6  # unbatched problems up to this n take the direct QZ path, larger ones doubling


def dlqr(
    A: Array,
    B: Array,
    Q: Array,
    R: Array,
    N: Array | None = None,
    *,
    method: Literal["auto", "scipy"] = "auto",
) -> tuple[Array, Array, Array]:
    """Infinite-horizon discrete-time LQR (python-control's ``dlqr`` convention), batched.

    Minimises ``Σ_t x_tᵀ Q x_t + u_tᵀ R u_t + 2 x_tᵀ N u_t`` subject to ``x_{t+1} = A x_t + B u_t``
    with the stationary policy ``u = -K x``, where ``S`` solves the discrete algebraic Riccati
    equation ``S = AᵀSA - (AᵀSB + N)(R + BᵀSB)⁻¹(BᵀSA + Nᵀ) + Q`` and
    ``K = (R + BᵀSB)⁻¹(BᵀSA + Nᵀ)``.

    Args:
        A: state matrix, shape (..., n, n).  B: input matrix, shape (..., n, m).
        Q: state cost (symmetric PSD), shape (..., n, n).
        R: control cost (symmetric PD), shape (..., m, m).
        N: cross term, shape (..., n, m); zero when omitted.
        method: ``"auto"`` (default): a fast path, then scipy's Schur method for any problem where
            the fast path fails, leaves a relative DARE residual above 1e-11, or gives a
            solution that does not stabilise the system (``R`` not positive definite,
            closed-loop eigenvalues on or near the unit circle, a costless unstable mode, no
            stabilising solution). The fast path is the stable eigenvectors of the symplectic
            pencil from one LAPACK call (:func:`control.dare.dare_qz`) for one problem with
            n <= 6, and structure-preserving doubling (:func:`control.dare.dare_doubling`,
            vectorised over the batch) otherwise.
            ``"scipy"``: :func:`scipy.linalg.solve_discrete_are` for every problem.

    Leading batch dims ``...`` may differ between arguments and broadcast; each problem in the
    batch is solved independently.

    Returns:
        ``(K, S, E)``: gains K (..., m, n), DARE solutions S (..., n, n), closed-loop eigenvalues
        E (..., n) of ``A - B K`` (complex). numpy arrays, or CPU-computed torch tensors on the
        inputs' device and dtype when any input is a tensor (E complex).

    Raises:
        ValueError: bad shapes or NaN/inf input, or no stabilising DARE solution exists for some
            problem (the message names its batch index when batched).
    """
    if method not in ("auto", "scipy"):
        raise ValueError(f"dlqr: method must be 'auto' or 'scipy'; got {method!r}")
    raw = {"A": A, "B": B, "Q": Q, "R": R, "N": N}
    An, Bn, Qn, Rn, Nn = _dlqr_inputs(raw)
    S, K, E = _dlqr_riccati(An, Bn, Qn, Rn, Nn, method)
    unstable = ~(np.abs(E) < 1.0).all(-1)
    if unstable.any():
        idx = tuple(int(i) for i in np.argwhere(unstable)[0]) if unstable.ndim else ()
        where = f" (batch index {idx})" if idx else ""
        raise ValueError(
            f"dlqr: the Riccati solution does not stabilise the system{where} "
            f"(max |closed-loop eigenvalue| = {np.abs(E[idx]).max():.6g} >= 1)"
        )
    torch_like = next((x for x in raw.values() if is_torch(x)), None)
    if torch_like is not None:
        dt = float_dtype_torch(*[x for x in raw.values() if x is not None])
        if dt in (torch.float16, torch.bfloat16):
            dt = torch.float32  # computed in float64; half precision would lose it
        dev = torch_like.device
        return (
            torch.as_tensor(K, dtype=dt, device=dev),
            torch.as_tensor(S, dtype=dt, device=dev),
            torch.as_tensor(E, device=dev).to(
                torch.complex64 if dt == torch.float32 else torch.complex128
            ),
        )
    return K, S, E


def _eigvals(M: np.ndarray) -> np.ndarray:
    """Eigenvalues (complex) of ``M`` (..., n, n); one LAPACK ``dgeev`` call when unbatched."""
    if M.ndim == 2:
        wr, wi, _, _, info = scipy.linalg.lapack.dgeev(M, compute_vl=0, compute_vr=0)
        if info == 0:
            return wr + 1j * wi
    return np.linalg.eigvals(M).astype(np.complex128)


def _dlqr_inputs(raw: dict[str, Any]) -> list[np.ndarray | None]:
    """Validate ``dlqr``'s inputs; return A, B, Q, R, N as float64 numpy arrays broadcast to one
    batch shape, with Q and R symmetrised (N may be ``None``)."""
    arrs: dict[str, np.ndarray | None] = {}
    for k, x in raw.items():
        if x is None:
            if k != "N":
                raise TypeError(f"dlqr: {k} must be an array, got None")
            arrs[k] = None
            continue
        if is_torch(x):  # via float64 in torch: numpy has no bfloat16
            x = x.detach().to(device="cpu", dtype=torch.float64).numpy()
        try:
            arrs[k] = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise TypeError(f"dlqr: {k} must be an array of real numbers ({e})") from None
    An, Bn = arrs["A"], arrs["B"]
    if An.ndim < 2 or An.shape[-1] != An.shape[-2] or An.shape[-1] < 1:
        raise _shape_error("A", "(..., n, n)", An.shape)
    n = An.shape[-1]
    if Bn.ndim < 2 or Bn.shape[-2] != n or Bn.shape[-1] < 1:
        raise _shape_error("B", f"(..., n, m) = (..., {n}, m)", Bn.shape)
    m = Bn.shape[-1]
    trailing = {"A": (n, n), "B": (n, m), "Q": (n, n), "R": (m, m), "N": (n, m)}
    expected = {"Q": "(..., n, n)", "R": "(..., m, m)", "N": "(..., n, m)"}
    for k, x in arrs.items():
        if x is None:
            continue
        if x.ndim < 2 or x.shape[-2:] != trailing[k]:
            raise _shape_error(k, f"{expected[k]} = (..., {trailing[k][0]}, {trailing[k][1]})",
                               x.shape)  # fmt: skip
        if not np.isfinite(x).all():
            raise ValueError(f"{k} contains NaN or inf")
    shapes = {k: x.shape[:-2] for k, x in arrs.items() if x is not None}
    if any(shapes.values()):
        try:
            batch = tuple(np.broadcast_shapes(*shapes.values()))
        except ValueError:
            desc = ", ".join(f"{k}: {s}" for k, s in shapes.items())
            raise ValueError(f"dlqr: batch dims of the inputs do not broadcast ({desc})") from None
        for k, x in arrs.items():
            if x is not None and x.shape[:-2] != batch:
                arrs[k] = np.broadcast_to(x, batch + trailing[k])
    Q, R = arrs["Q"], arrs["R"]
    return [arrs["A"], arrs["B"], _sym(Q), _sym(R), arrs["N"]]


def _dlqr_riccati(
    A: np.ndarray,
    B: np.ndarray,
    Q: np.ndarray,
    R: np.ndarray,
    N: np.ndarray | None,
    method: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DARE solutions S (..., n, n), gains K (..., m, n) and closed-loop eigenvalues E (..., n)
    by ``method`` (see :func:`dlqr`).

    A fast-path solution is kept only if its residual passes the gate and it stabilises the
    system: the DARE can have several solutions, and doubling converges to a non-stabilising one
    when an unstable mode costs nothing (e.g. ``Q = 0``); scipy then finds the stabilising one.
    """
    if method == "scipy":
        S = dare_schur(A, B, Q, R, N)
    else:
        with np.errstate(all="ignore"):  # failures show as NaN/inf, caught by the checks
            if A.ndim == 2 and A.shape[-1] <= _QZ_MAX_N:
                X = dare_qz(A, B, Q, R, N)
                S = np.full_like(A, np.nan) if X is None else X
            else:
                S = dare_doubling(A, B, Q, R, N).X
            K, _ = dare_gain(A, B, R, N, S)
            finite = np.isfinite(K).all((-2, -1))
            E = _eigvals(A - B @ np.where(finite[..., None, None], K, 0.0))
            stable = finite & (np.abs(E) < 1.0).all(-1)
            bad = ~stable | ~(dare_residual(A, B, Q, N, S, K) <= _DARE_RESIDUAL_TOL)
        if not bad.any():
            return S, K, E
        S = S.copy()
        for idx in np.argwhere(bad) if bad.ndim else [()]:
            S[tuple(idx)] = _schur_at(A, B, Q, R, N, tuple(int(i) for i in idx))
    K, gain_ok = dare_gain(A, B, R, N, S)
    if not np.all(gain_ok):
        raise ValueError("dlqr: Bᵀ S B + R is not positive definite")
    return S, K, _eigvals(A - B @ K)


def _schur_at(
    A: np.ndarray,
    B: np.ndarray,
    Q: np.ndarray,
    R: np.ndarray,
    N: np.ndarray | None,
    idx: tuple[int, ...],
) -> np.ndarray:
    """scipy's DARE solution for batch element ``idx``; its error names that batch index."""
    try:
        return dare_schur(A[idx], B[idx], Q[idx], R[idx], None if N is None else N[idx])
    except ValueError as e:
        if not idx:
            raise
        raise ValueError(str(e).replace("solution (", f"solution (batch index {idx}) (", 1)) from e
