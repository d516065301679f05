"""Discrete algebraic Riccati equation (DARE) solvers behind :func:`control.linear_quadratic.dlqr`.

The DARE with cross term ``N`` (python-control's and scipy's convention, no ½)::

    X = Aᵀ X A - (Aᵀ X B + N)(R + Bᵀ X B)⁻¹(Bᵀ X A + Nᵀ) + Q

All arrays are float64 numpy with leading batch dims ``...`` (already broadcast): A (..., n, n),
B (..., n, m), Q (..., n, n) symmetric, R (..., m, m) symmetric, N (..., n, m).

* :func:`dare_doubling` — the structure-preserving doubling algorithm (SDA; Chu, Fan & Lin,
  "A structure-preserving doubling algorithm for discrete-time algebraic Riccati equations",
  2005). After eliminating the cross term (``Â = A - B R⁻¹ Nᵀ``, ``Ĥ = Q - N R⁻¹ Nᵀ``,
  ``G = B R⁻¹ Bᵀ``) it iterates, with ``W_k = I + G_k H_k``::

      A_{k+1} = A_k W_k⁻¹ A_k
      G_{k+1} = G_k + A_k W_k⁻¹ G_k A_kᵀ
      H_{k+1} = H_k + A_kᵀ H_k W_k⁻¹ A_k            (H_k -> X)

  The error falls like ``ρ(A - B K)^(2^k)``: ten iterations for a closed-loop spectral radius of
  0.97, twenty-five for 0.999999. Each iteration is one LU solve with 2n right-hand sides and
  five products, ~17 n³ flops, against ~500 n³ for the QZ (Schur) method on the 2n pencil, and it
  needs only a few dozen numpy calls, so it is also fast for small n. It needs ``R`` positive
  definite; it does not converge when the closed loop has eigenvalues on or near the unit circle
  and it overflows when no stabilising solution exists. Those elements are reported as not
  converged (the caller falls back to the Schur method). When an unstable mode is not seen by
  ``Q`` (``(A, Q)`` not detectable, e.g. ``Q = 0``) it converges to a DARE solution that does not
  stabilise: the caller must check the closed loop.
* :func:`dare_qz` — the stable eigenvectors of the symplectic pencil (QZ, one LAPACK call;
  unbatched; the fast path for small n, where call overhead dominates).
* :func:`dare_schur` — scipy's :func:`scipy.linalg.solve_discrete_are` (QZ of the extended
  pencil with balancing), one batch element at a time.
* :func:`dare_gain` — the gain ``K = (R + BᵀXB)⁻¹(BᵀXA + Nᵀ)``.
* :func:`dare_residual` — the relative residual used to accept a solution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.linalg.blas as blas
import scipy.linalg.lapack as lapack

__all__ = [
    "DoublingResult",
    "dare_doubling",
    "dare_gain",
    "dare_qz",
    "dare_residual",
    "dare_schur",
]

_TINY = float(np.finfo(np.float64).tiny)
_MAX_ITER = 60
_TOL = 1e-15  # stop when ‖H_{k+1} - H_k‖_F <= _TOL ‖H_{k+1}‖_F


@dataclass(frozen=True)
class DoublingResult:
    """Outcome of :func:`dare_doubling`.

    Attributes:
        X: DARE solutions, shape (..., n, n) (symmetrised); NaN where not ``converged``.
        converged: per-problem flag, shape (...): the iteration met its tolerance with finite
            iterates (it says nothing about stability; check the closed loop).
        iterations: doubling steps taken (the most over the batch).
    """

    X: np.ndarray
    converged: np.ndarray
    iterations: int


def dare_doubling(
    A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, N: np.ndarray | None
) -> DoublingResult:
    """Solve the DARE by structure-preserving doubling (see the module docstring).

    Args:
        A: (..., n, n).  B: (..., n, m).  Q: (..., n, n) symmetric.  R: (..., m, m) symmetric.
        N: (..., n, m) or ``None``. All float64 with the same batch dims ``...``.

    Returns:
        :class:`DoublingResult`; elements whose ``R`` is not positive definite, whose ``I + G H``
        became singular, whose iterates overflowed or which did not converge in 60 steps have
        ``converged = False``.
    """
    batch = A.shape[:-2]
    with np.errstate(all="ignore"):
        Ak, G, H, ok = _eliminate_cross_term(A, B, Q, R, N)
        if batch == ():
            H, done, iterations = _doubling_loop_single(Ak, G, H) if ok else (H, False, 0)
        else:
            Ak, G, H, ok, done, iterations = _doubling_loop(Ak, G, H, ok, _solve_batched)
    converged = np.bool_(ok & done)
    X = np.where(converged[..., None, None], 0.5 * (H + H.swapaxes(-1, -2)), np.nan)
    return DoublingResult(X=X, converged=np.asarray(converged), iterations=iterations)


def _eliminate_cross_term(
    A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, N: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(Â, G, Ĥ, ok)``: ``Â = A - B R⁻¹ Nᵀ``, ``G = B R⁻¹ Bᵀ``, ``Ĥ = Q - N R⁻¹ Nᵀ``.

    With ``R = L Lᵀ`` and ``B̃ = L⁻¹ Bᵀ``, ``Ñ = L⁻¹ Nᵀ``: ``G = B̃ᵀ B̃``, ``Â = A - B̃ᵀ Ñ``,
    ``Ĥ = Q - Ñᵀ Ñ``. ``ok`` (...) is False where ``R`` is not positive definite.
    """
    L, ok = _cholesky(R)
    rhs = B.swapaxes(-1, -2) if N is None else np.concatenate([B, N], -2).swapaxes(-1, -2)
    if L.ndim == 2:
        Y = blas.dtrsm(1.0, L, rhs, lower=1)  # L⁻¹ [Bᵀ; Nᵀ] (m, n or 2n)
    else:
        Y = np.linalg.solve(L, rhs)
    n = A.shape[-1]
    Bt = Y[..., :n]
    G = Bt.swapaxes(-1, -2) @ Bt
    if N is None:
        return A, G, Q, ok
    Nt = Y[..., n:]
    return A - Bt.swapaxes(-1, -2) @ Nt, G, Q - Nt.swapaxes(-1, -2) @ Nt, ok


def _cholesky(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower Cholesky factors of ``R`` (..., m, m) and a PD flag (...); identity where not PD."""
    if R.ndim == 2:
        L, info = lapack.dpotrf(R, lower=1, clean=1)
        return (L, np.bool_(True)) if info == 0 else (np.eye(R.shape[-1]), np.bool_(False))
    try:
        return np.linalg.cholesky(R), np.ones(R.shape[:-2], dtype=bool)
    except np.linalg.LinAlgError:
        L = np.empty_like(R)
        ok = np.ones(R.shape[:-2], dtype=bool)
        for idx in np.ndindex(R.shape[:-2]):
            L[idx], ok[idx] = _cholesky(np.ascontiguousarray(R[idx]))
        return L, ok


Solver = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _solve_unbatched(W: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``W⁻¹ rhs`` by LAPACK ``gesv`` (partial-pivoting LU) and a success flag."""
    _, _, Y, info = lapack.dgesv(W, rhs)
    return Y, np.bool_(info == 0)


def _solve_batched(W: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stacked ``W⁻¹ rhs``; singular elements get a False flag (and an arbitrary value)."""
    try:
        return np.linalg.solve(W, rhs), np.ones(W.shape[:-2], dtype=bool)
    except np.linalg.LinAlgError:
        Y = np.empty_like(rhs)
        ok = np.ones(W.shape[:-2], dtype=bool)
        for idx in np.ndindex(W.shape[:-2]):
            Y[idx], ok[idx] = _solve_unbatched(W[idx], rhs[idx])
        return Y, ok


def _doubling_loop_single(
    A: np.ndarray, G: np.ndarray, H: np.ndarray
) -> tuple[np.ndarray, bool, int]:
    """:func:`_doubling_loop` for one problem, with half the numpy calls per step (LAPACK
    ``gesv``, scalar convergence test); ``(H, converged, steps)``."""
    n = A.shape[-1]
    eye = np.eye(n)
    AG = np.concatenate([A, G], -1)
    for k in range(1, _MAX_ITER + 1):
        _, _, Y, info = lapack.dgesv(eye + G @ H, AG)
        if info != 0:
            return H, False, k
        P = A @ Y  # [A_{k+1} | A_k W⁻¹ G_k]
        dH = A.T @ (H @ Y[:, :n])
        G = G + P[:, n:] @ A.T
        A = P[:, :n]
        H = H + dH
        P[:, n:] = G
        AG = P
        change, size = float(np.vdot(dH, dH)), float(np.vdot(H, H))
        if not (math.isfinite(change) and math.isfinite(size)):
            return H, False, k
        if change <= _TOL * _TOL * size:
            return H, True, k
    return H, False, _MAX_ITER


def _doubling_loop(
    A: np.ndarray, G: np.ndarray, H: np.ndarray, ok: np.ndarray, solve: Solver
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Run SDA steps until every element has converged or failed; ``(A, G, H, ok, done, k)``."""
    n = A.shape[-1]
    eye = np.eye(n)
    done = np.zeros(A.shape[:-2], dtype=bool)
    AG = np.concatenate([A, G], -1)  # [A_k | G_k], the right-hand side of each solve
    for k in range(1, _MAX_ITER + 1):
        Y, solved = solve(eye + G @ H, AG)
        P = A @ Y  # [A_{k+1} | A_k W⁻¹ G_k]
        dH = A.swapaxes(-1, -2) @ (H @ Y[..., :n])
        G = G + P[..., n:] @ A.swapaxes(-1, -2)
        A = P[..., :n]
        H = H + dH
        P[..., n:] = G
        AG = P
        change = (dH * dH).sum((-2, -1))
        size = (H * H).sum((-2, -1))
        ok = ok & solved & np.isfinite(size) & np.isfinite(change)
        done = done | (change <= _TOL * _TOL * size)
        if np.all(done | ~ok):
            return A, G, H, ok, done, k
        if not np.all(ok):  # benign values for failed elements: keep the others' solves regular
            A, G, H, AG = (np.where(ok[..., None, None], a, 0.0) for a in (A, G, H, AG))
    return A, G, H, ok, done, _MAX_ITER


def dare_qz(
    A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, N: np.ndarray | None
) -> np.ndarray | None:
    """Solve one (unbatched) DARE from the stable eigenvectors of the symplectic pencil.

    With ``Â, G, Ĥ`` as in :func:`dare_doubling`, ``[I; X]`` spans the deflating subspace of
    ``L - λM``, ``L = [[Â, 0], [-Ĥ, I]]``, ``M = [[I, G], [0, Âᵀ]]``, for its n eigenvalues
    inside the unit circle (the closed-loop eigenvalues). One LAPACK ``dggev`` call (QZ plus
    eigenvectors) gives a basis ``V = [V₁; V₂]`` of that subspace (for a complex pair, the real
    and imaginary parts of its eigenvector span the same real subspace), and ``X = V₂ V₁⁻¹``.
    Unlike :func:`scipy.linalg.solve_discrete_are` it forms ``R⁻¹``, does not balance and does
    not reorder the Schur form, so it makes a handful of calls instead of dozens: the fast path
    for small n, where call overhead dominates. It is less robust (a defective eigenvalue makes
    ``V₁`` ill-conditioned); the caller checks the residual. Floating-point warnings are not
    suppressed here (wrap the call in ``np.errstate`` if needed).

    Args:
        A: (n, n).  B: (n, m).  Q: (n, n) symmetric.  R: (m, m) symmetric.  N: (n, m) or None.

    Returns:
        X (n, n) symmetrised, or ``None`` when ``R`` is not positive definite, the pencil does
        not have exactly n eigenvalues inside the unit circle, or ``V₁`` is singular.
    """
    n = A.shape[-1]
    Ah, G, H, ok = _eliminate_cross_term(A, B, Q, R, N)
    if not ok:
        return None
    Lp = np.zeros((2 * n, 2 * n), order="F")
    Mp = np.zeros((2 * n, 2 * n), order="F")
    Lp[:n, :n] = Ah
    Lp[n:, :n] = -H
    Mp[:n, n:] = G
    Mp[n:, n:] = Ah.T
    diag = np.arange(n)
    Lp[diag + n, diag + n] = 1.0
    Mp[diag, diag] = 1.0
    alphar, alphai, beta, _, V, _, info = lapack.dggev(Lp, Mp, compute_vl=0, overwrite_a=1,
                                                       overwrite_b=1)  # fmt: skip
    stable = alphar * alphar + alphai * alphai < beta * beta  # |λ| < 1, scale-invariant
    if info != 0 or np.count_nonzero(stable) != n:
        return None
    U = V[:, stable]
    _, _, Xt, info = lapack.dgesv(U[:n].T, U[n:].T)  # X U₁ = U₂
    if info != 0:
        return None
    return 0.5 * (Xt + Xt.T)


def dare_schur(
    A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, N: np.ndarray | None
) -> np.ndarray:
    """Solve the DARE with :func:`scipy.linalg.solve_discrete_are` for each batch element.

    Raises:
        ValueError: scipy found no stabilising solution for some element (the message names its
            batch index when batched).
    """
    X = np.empty_like(Q)
    for idx in np.ndindex(A.shape[:-2]):
        args = (A[idx], B[idx], Q[idx], R[idx], None if N is None else N[idx])
        try:
            with np.errstate(all="ignore"):  # scipy's own overflow warnings on huge entries
                X[idx] = scipy.linalg.solve_discrete_are(*args[:4], s=args[4])
        except (np.linalg.LinAlgError, ValueError) as e:
            where = f" (batch index {idx})" if idx else ""
            largest = max(float(np.abs(a).max(initial=0.0)) for a in args if a is not None)
            raise ValueError(
                f"dlqr: the discrete algebraic Riccati equation has no stabilising solution"
                f"{where} ((A, B) must be stabilisable, R positive definite, no closed-loop "
                f"eigenvalue on the unit circle, and entries well inside the float range: "
                f"largest |entry| {largest:.3g}); scipy said: {e}"
            ) from e
    return X


def dare_gain(
    A: np.ndarray, B: np.ndarray, R: np.ndarray, N: np.ndarray | None, X: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The LQR gain ``K = (R + BᵀXB)⁻¹(BᵀXA + Nᵀ)`` (..., m, n) by Cholesky, and a flag (...)
    that is False where ``R + BᵀXB`` is not positive definite (``K`` is NaN there)."""
    BtX = B.swapaxes(-1, -2) @ X
    Hm = BtX @ A if N is None else BtX @ A + N.swapaxes(-1, -2)
    Gm = BtX @ B + R
    Gm = 0.5 * (Gm + Gm.swapaxes(-1, -2))
    if A.ndim == 2:
        L, info = lapack.dpotrf(Gm, lower=1, clean=1)
        if info != 0:
            return np.full_like(Hm, np.nan), np.bool_(False)
        K = blas.dtrsm(1.0, L, blas.dtrsm(1.0, L, Hm, lower=1), lower=1, trans_a=1)
        return K, np.bool_(True)
    L, ok = _cholesky(Gm)
    K = np.linalg.solve(L.swapaxes(-1, -2), np.linalg.solve(L, Hm))
    return np.where(ok[..., None, None], K, np.nan), ok


def dare_residual(
    A: np.ndarray,
    B: np.ndarray,
    Q: np.ndarray,
    N: np.ndarray | None,
    X: np.ndarray,
    K: np.ndarray,
) -> np.ndarray:
    """Relative DARE residual, shape (...), of ``X`` with its gain ``K`` (:func:`dare_gain`)::

        ‖Q + AᵀXA - (BᵀXA + Nᵀ)ᵀ K - X‖_F / (‖Q‖_F + ‖AᵀXA‖_F + ‖X‖_F)

    (NaN where ``X`` or ``K`` holds NaN; 0 for the trivial solution ``X = Q = 0``).
    """
    XA = X @ A
    Hm = B.swapaxes(-1, -2) @ XA
    if N is not None:
        Hm = Hm + N.swapaxes(-1, -2)
    AtXA = A.swapaxes(-1, -2) @ XA
    res = Q + AtXA - Hm.swapaxes(-1, -2) @ K - X
    if X.ndim == 2:  # fewer, cheaper calls for one problem
        scale = math.sqrt(np.vdot(Q, Q)) + math.sqrt(np.vdot(AtXA, AtXA)) + math.sqrt(np.vdot(X, X))
        return np.float64(math.sqrt(np.vdot(res, res)) / max(scale, _TINY))
    terms = np.stack([res, Q, AtXA, X])
    norms = np.sqrt((terms * terms).sum((-2, -1)))  # (4, ...)
    return norms[0] / np.maximum(norms[1:].sum(0), _TINY)
