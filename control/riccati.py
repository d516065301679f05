"""The Riccati backward recursion of iLQR / box-DDP, written once for torch and NumPy arrays.

For ``M`` members at once, on ``δx = x − x̂``, ``δu = u − û`` (lecture notes' LQR notation):

    Q_t = C_t + F_tᵀ V_{t+1} F_t,   q_t = c_t + F_tᵀ v_{t+1},
    δu_t = K_t δx_t + k_t,
    V_t = Q_xx + K_tᵀQ_uu K_t + K_tᵀQ_ux + Q_xu K_t,
    v_t = q_x + K_tᵀQ_uu k_t + K_tᵀq_u + Q_xu k_t.

:func:`riccati_backward` is that loop.  Only the per-step control solve differs between cases and
is passed in as a *step* (:func:`scalar_step`: one control, closed-form clamped Newton step;
:func:`cholesky_box_step`: ``m > 1``, Cholesky and the projected-Newton box QP of
:mod:`control.boxqp`), and only the few array primitives that differ between torch and NumPy are
passed in as *ops* (:data:`TORCH_OPS`, :data:`NUMPY_OPS`).  :func:`backward_pass` picks them; for
one control on the CPU it runs the same recursion on NumPy arrays, whose per-call overhead on
these tiny arrays is several times lower than torch's (the loop over ``T`` is overhead-bound).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from control.boxqp import HESSIAN_NOT_PD, box_qp

Tensor = torch.Tensor
Array = Any  # torch.Tensor or np.ndarray

__all__ = [
    "NUMPY_OPS",
    "TORCH_OPS",
    "ArrayOps",
    "backward_pass",
    "riccati_backward",
    "riccati_backward_one_scalar",
]


@dataclass(frozen=True)
class ArrayOps:
    """The array primitives on which torch and NumPy differ (everything else is ``@ + * /``).

    Attributes:
        addmm: ``addmm(C, A, B) = C + A @ B`` for batched matrices (torch: one ``baddbmm``).
        minimum, maximum: element-wise.
        isfinite: element-wise finiteness.
        empty: ``empty(shape, like)`` uninitialised array of ``like``'s dtype (and device).
        transpose: swap the last two axes (NumPy: a contiguous copy, so that the per-step
            ``F_tᵀ`` slices are contiguous for BLAS; torch: a view).
    """

    addmm: Callable[[Array, Array, Array], Array]
    minimum: Callable[[Array, Array], Array]
    maximum: Callable[[Array, Array], Array]
    isfinite: Callable[[Array], Array]
    empty: Callable[[tuple[int, ...], Array], Array]
    transpose: Callable[[Array], Array]


TORCH_OPS = ArrayOps(
    addmm=torch.baddbmm,
    minimum=torch.minimum,
    maximum=torch.maximum,
    isfinite=torch.isfinite,
    empty=lambda shape, like: torch.empty(shape, dtype=like.dtype, device=like.device),
    transpose=lambda a: a.transpose(-1, -2),
)
NUMPY_OPS = ArrayOps(
    addmm=lambda C, A, B: C + A @ B,
    minimum=np.minimum,
    maximum=np.maximum,
    isfinite=np.isfinite,
    empty=lambda shape, like: np.empty(shape, dtype=like.dtype),
    transpose=lambda a: np.ascontiguousarray(a.swapaxes(-1, -2)),
)

ONE_MEMBER_MAX_N = 6
"""Largest state size for :func:`riccati_backward_one_scalar` in :func:`backward_pass`: its update
of ``V`` is ``O(n²)`` Python-float operations, which beyond small ``n`` cost more than the batched
recursion's fixed number of NumPy calls."""
DT64 = torch.float64

Step = Callable[..., tuple[Array, Array, Array]]
"""``step(t, Quu, Qux, qu, mu3, lower, upper, k_warm, ops) -> (K_t, k_t, ok)``.

Shapes ``K_t (M, m, n)``, ``k_t (M, m, 1)``, ``ok (M,)`` bool."""


def scalar_step(
    t: int,
    Quu: Array,
    Qux: Array,
    qu: Array,
    mu3: Array,
    lower: Array | None,
    upper: Array | None,
    k_warm: Array | None,
    ops: ArrayOps,
) -> tuple[Array, Array, Array]:
    """One control (``m = 1``): the box QP is solved exactly by clamping the Newton step.

    ``k_t = clip(−q_u / h)``, ``K_t = −Q_ux / h`` with ``h = Q_uu + μ``, and ``K_t = 0`` where
    ``k_t`` is clamped.  ``ok`` is False where ``h <= 0`` (or NaN).
    """
    h = Quu + mu3  # (M, 1, 1)
    kt = -qu / h
    Kt = -Qux / h
    if lower is not None:
        kc = ops.minimum(ops.maximum(kt, lower[:, t]), upper[:, t])
        Kt = Kt * (kc == kt)
        kt = kc
    return Kt, kt, (h > 0).reshape(h.shape[0])


def cholesky_box_step(
    t: int,
    Quu: Tensor,
    Qux: Tensor,
    qu: Tensor,
    mu3: Tensor,
    lower: Tensor | None,
    upper: Tensor | None,
    k_warm: Tensor | None,
    ops: ArrayOps,
) -> tuple[Tensor, Tensor, Tensor]:
    """Several controls (torch): Cholesky Newton step, box QP where it leaves the box.

    Members whose unconstrained step ``−(Q_uu + μI)⁻¹ q_u`` is inside the box keep it; the others
    solve the box QP by projected Newton (warm-started at ``k_warm[:, t]``) and get
    ``K_t = −(Q_uu + μI)_ff⁻¹ Q_ux,f`` with the rows of clamped controls zeroed.
    """
    m = Quu.shape[-1]
    eye_m = torch.eye(m, dtype=Quu.dtype, device=Quu.device)
    Quu_reg = 0.5 * (Quu + Quu.transpose(-1, -2)) + mu3 * eye_m
    L, info = torch.linalg.cholesky_ex(Quu_reg)
    ok = info == 0
    kt = -torch.cholesky_solve(qu, L)
    Kt = -torch.cholesky_solve(Qux, L)
    if lower is not None:
        lo, up = lower[:, t, :, 0], upper[:, t, :, 0]
        ks = kt.squeeze(-1)
        out = ((ks < lo) | (ks > up)).any(-1) & ok
        if bool(out.any()):
            sel = torch.nonzero(out).flatten()
            res = box_qp(Quu_reg[sel], qu[sel, :, 0], lo[sel], up[sel], x0=k_warm[sel, t])
            fm = res.free.to(Quu.dtype).unsqueeze(-1)
            kt = kt.index_copy(0, sel, res.x.unsqueeze(-1))
            Kt = Kt.index_copy(0, sel, -torch.cholesky_solve(Qux[sel] * fm, res.chol) * fm)
            ok = ok.index_copy(0, sel, ok[sel] & (res.status != HESSIAN_NOT_PD))
    return Kt, kt, ok


def riccati_backward(
    F: Array,
    c: Array,
    C: Array,
    vT: Array,
    VT: Array,
    mu: Array,
    lower: Array | None,
    upper: Array | None,
    k_warm: Array | None,
    step: Step,
    ops: ArrayOps,
) -> tuple[Array, Array, Array, Array, Array]:
    """The LQR backward recursion on ``(δx, δu)`` for ``M`` members (torch or NumPy arrays).

    Args:
        F: ``(M, T, n, n+m)``; c: ``(M, T, n+m)``; C: ``(M, T, n+m, n+m)``.
        vT: ``(M, n)``; VT: ``(M, n, n)`` terminal value gradient and Hessian.
        mu: ``(M,)`` regularisation added to ``Q_uu``.
        lower: ``(M, T, m, 1)`` lower bounds on ``δu`` (None when unbounded).
        upper: ``(M, T, m, 1)`` upper bounds on ``δu`` (None when unbounded).
        k_warm: ``(M, T, m)`` warm start for box QPs (used by :func:`cholesky_box_step`).
        step: the per-step control solve.
        ops: :data:`TORCH_OPS` or :data:`NUMPY_OPS`, matching the arrays.

    Returns:
        ``(K (M, T, m, n), k (M, T, m), dV1 (M,), dV2 (M,), ok (M,) bool)``: the expected cost
        change of step size ``α`` is ``α dV1 + α² dV2``; ``ok`` is False where the step failed
        (``Q_uu + μI`` not positive definite) or anything came out non-finite.  Failures only
        poison their own member: every operation is per member.
    """
    M, T, n, d = F.shape
    m = d - n
    K = ops.empty((M, T, m, n), F)
    k = ops.empty((M, T, m, 1), F)
    qu_all = ops.empty((M, T, m, 1), F)  # q_u of every step, for the expected decrease
    Quu_all = ops.empty((M, T, m, m), F)
    ok = ops.isfinite(mu)  # (M,) bool array of the right library
    FT = ops.transpose(F)
    V, v = VT, vT[..., None]
    mu3 = mu.reshape(M, 1, 1)
    for t in range(T - 1, -1, -1):
        Ft, FtT = F[:, t], FT[:, t]
        Q = ops.addmm(C[:, t], FtT, V @ Ft)
        q = ops.addmm(c[:, t, :, None], FtT, v)  # (M, d, 1)
        Qxx, Qxu, Qux, Quu = Q[:, :n, :n], Q[:, :n, n:], Q[:, n:, :n], Q[:, n:, n:]
        qx, qu = q[:, :n], q[:, n:]
        Kt, kt, ok_t = step(t, Quu, Qux, qu, mu3, lower, upper, k_warm, ops)
        ok = ok & ok_t
        K[:, t], k[:, t] = Kt, kt
        qu_all[:, t], Quu_all[:, t] = qu, Quu
        KtT = Kt.swapaxes(-1, -2)
        KQ = KtT @ Quu + Qxu  # (M, n, m)
        V = ops.addmm(Qxx, KQ, Kt) + KtT @ Qux
        V = 0.5 * (V + V.swapaxes(-1, -2))
        v = qx + KQ @ kt + KtT @ qu
    dV1 = (k * qu_all).sum((1, 2, 3))  # Σ_t k_tᵀ q_u
    dV2 = 0.5 * (k * (Quu_all @ k)).sum((1, 2, 3))  # ½ Σ_t k_tᵀ Q_uu k_t
    fin = ops.isfinite
    ok = ok & fin(V).reshape(M, -1).all(1) & fin(dV1) & fin(dV2)
    ok = ok & fin(K).reshape(M, -1).all(1) & fin(k).reshape(M, -1).all(1)
    return K, k[..., 0], dV1, dV2, ok


def riccati_backward_one_scalar(
    F: np.ndarray,
    c: np.ndarray,
    C: np.ndarray,
    vT: np.ndarray,
    VT: np.ndarray,
    mu: float,
    lower: np.ndarray | None,
    upper: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """:func:`riccati_backward` with :func:`scalar_step` for ONE float64 member and one control.

    The same arithmetic as the batched recursion on :data:`NUMPY_OPS` with ``M = 1`` (equal to it
    up to the sign of zeros, tested), with fewer calls per step: the contractions over the state
    (``V F``, ``Fᵀ(V F)``, ``Fᵀ v``) are the same NumPy ``matmul`` calls on the 2-D slices (same
    BLAS kernels, same rounding), while everything else (``k_t``, ``K_t``, and the update of
    ``V``, ``v``, whose products over the one control are single products) is computed on Python
    floats, which are IEEE doubles with the same operations in the same order.  A non-positive
    ``Q_uu + μ`` stops the recursion early and returns zeros with ``ok = False`` (the member
    fails either way).  Float64 only.

    Args:
        F: ``(T, n, n+1)``; c: ``(T, n+1)``; C: ``(T, n+1, n+1)``; vT: ``(n,)``; VT: ``(n, n)``.
        mu: regularisation added to ``Q_uu``.
        lower: ``(T,)`` lower bounds on ``δu`` (None when unbounded).
        upper: ``(T,)`` upper bounds on ``δu`` (None when unbounded).

    Returns:
        ``(K (1, T, 1, n), k (1, T, 1), dV1 (1,), dV2 (1,), ok)`` as :func:`riccati_backward`.
    """
    T, n, d = F.shape
    Ks, ks, qus, Quus = [], [], [], []  # per step, from t = T-1 down to 0
    ok = math.isfinite(mu)
    # Per-step slices as Python lists (cheaper than indexing the arrays inside the loop).
    Fs, FTs = list(F), list(np.ascontiguousarray(F.swapaxes(-1, -2)))  # (n, d), (d, n)
    Cs, cs = list(C), list(c)
    lo = None if lower is None else lower.tolist()
    up = None if upper is None else upper.tolist()
    V, v = VT, vT
    rn = range(n)
    for t in range(T - 1, -1, -1):
        FtT = FTs[t]
        Ql = (Cs[t] + FtT @ (V @ Fs[t])).tolist()  # (d, d) as floats
        ql = (cs[t] + FtT @ v).tolist()  # (d,)
        Qux, Quu, qu = Ql[n][:n], Ql[n][n], ql[n]
        h = Quu + mu
        if not h > 0.0:  # the member fails (the batched recursion's ``ok`` is False too)
            z = np.zeros(1)
            return np.zeros((1, T, 1, n)), np.zeros((1, T, 1)), z, z, False
        mh = -h
        kt = qu / mh  # = −q_u / h (IEEE division is sign-symmetric)
        Kt = [a / mh for a in Qux]
        if lo is not None:
            kc = min(max(kt, lo[t]), up[t])
            if not kc == kt:
                Kt = [a * 0.0 for a in Kt]  # as the batched step's ``K_t * (k_c == k_t)``
            kt = kc
        Ks.append(Kt)
        ks.append(kt)
        qus.append(qu)
        Quus.append(Quu)
        KQ = [Kt[i] * Quu + Ql[i][n] for i in rn]  # K_tᵀ Q_uu + Q_xu
        # V = Q_xx + (K_tᵀQ_uu + Q_xu) K_t + K_tᵀ Q_ux, then its symmetric part
        W = [[Ql[i][j] + KQ[i] * Kt[j] + Kt[i] * Qux[j] for j in rn] for i in rn]
        V = np.array([[0.5 * (W[i][j] + W[j][i]) for j in rn] for i in rn])
        v = np.array([ql[i] + KQ[i] * kt + Kt[i] * qu for i in rn])
    K = np.array(Ks[::-1]).reshape(1, T, 1, n)
    k, qu_all, Quu_all = (np.array(a[::-1]).reshape(1, T, 1, 1) for a in (ks, qus, Quus))
    dV1 = (k * qu_all).sum((1, 2, 3))  # the batched recursion's sums, same shapes and order
    dV2 = 0.5 * (k * (Quu_all * k)).sum((1, 2, 3))
    if ok:
        fin = np.isfinite
        ok = bool(fin(V).all() and fin(dV1).all() and fin(dV2).all())
        ok = ok and bool(fin(K).all() and fin(k).all())
    return K, k[..., 0], dV1, dV2, ok


def backward_pass(
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
    one_member: bool = True,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """:func:`riccati_backward` on torch tensors, with the step and array library chosen.

    Args:
        F: as in :func:`riccati_backward`.
        c: as in :func:`riccati_backward`.
        C: as in :func:`riccati_backward`.
        vT: as in :func:`riccati_backward`.
        VT: as in :func:`riccati_backward`.
        mu: as in :func:`riccati_backward`.
        lower: ``(M, T, m)`` lower bounds on ``δu`` (None when unbounded).
        upper: ``(M, T, m)`` upper bounds on ``δu`` (None when unbounded).
        k_warm: ``(M, T, m)`` warm start for the box QPs.
        numpy_scalar: for ``m = 1`` on the CPU, run the recursion on NumPy arrays (same
            arithmetic, less per-step overhead); False forces torch.
        one_member: on that NumPy path, a single float64 member (``M = 1``) with
            ``n <= ONE_MEMBER_MAX_N`` runs
            :func:`riccati_backward_one_scalar` (same results, fewer calls per step); False forces
            the batched NumPy recursion.

    Returns:
        ``(K (M, T, m, n), k (M, T, m), dV1 (M,), dV2 (M,), ok (M,) bool)`` tensors.
    """
    m = F.shape[-1] - F.shape[-2]
    lo = None if lower is None else lower[..., None]
    up = None if upper is None else upper[..., None]
    step = scalar_step if m == 1 else cholesky_box_step
    if not (numpy_scalar and m == 1 and F.device.type == "cpu"):
        return riccati_backward(F, c, C, vT, VT, mu, lo, up, k_warm, step, TORCH_OPS)
    arrays = [None if a is None else a.detach().numpy() for a in (F, c, C, vT, VT, mu, lo, up)]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if one_member and F.shape[0] == 1 and F.shape[-2] <= ONE_MEMBER_MAX_N and F.dtype == DT64:
            F1, c1, C1, vT1, VT1, mu1, lo1, up1 = (None if a is None else a[0] for a in arrays)
            lo1 = None if lo1 is None else lo1.reshape(-1)
            up1 = None if up1 is None else up1.reshape(-1)
            *out, ok = riccati_backward_one_scalar(F1, c1, C1, vT1, VT1, float(mu1), lo1, up1)
            out.append(np.array([ok]))
        else:
            out = riccati_backward(*arrays, None, step, NUMPY_OPS)
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in out)  # type: ignore[return-value]
