"""Array helpers for the linear-quadratic solvers: numpy/torch conversion, validation, and the
small set of linear-algebra kernels the Riccati recursion needs on each backend.

Three kernel sets implement the same interface (``cholesky``, ``failed``, ``solve_lower``,
``solve_lower_t``, ``cat``, ``stack``, ``zeros``):

* :class:`NumpyLapackOps` calls LAPACK ``potrf`` and BLAS ``trsm`` directly on 2-D numpy arrays
  (lowest per-call overhead; unbatched problems).
* :class:`NumpyBatchedOps` uses numpy's stacked gufuncs (batched problems).
* :class:`TorchOps` uses batched ``torch.linalg`` kernels, keeping device and autograd (used when
  a torch input needs gradients or lives off the CPU).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg.blas as blas
import scipy.linalg.lapack as lapack
import torch

Array = np.ndarray | torch.Tensor


def is_torch(x: Any) -> bool:
    """True when ``x`` is a torch tensor."""
    return isinstance(x, torch.Tensor)


def float_dtype_numpy(*arrays: np.ndarray) -> np.dtype:
    """The floating dtype numpy inputs are computed in: float32 only when all are float32."""
    dt = np.result_type(*arrays)
    if dt.kind == "c":
        raise TypeError(f"complex inputs are not supported (got dtype {dt})")
    if dt in (np.float32, np.float64):
        return dt
    return np.dtype(np.float64)


def float_dtype_torch(*arrays: Any) -> torch.dtype:
    """The floating dtype a mixed torch/numpy input set is computed in."""
    dt: torch.dtype | None = None
    for a in arrays:
        if is_torch(a):
            d = a.dtype
        else:
            d = torch.from_numpy(np.zeros((), dtype=np.asarray(a).dtype)).dtype
        if d.is_complex:
            raise TypeError(f"complex inputs are not supported (got dtype {d})")
        dt = d if dt is None else torch.promote_types(dt, d)
    if dt is None or not dt.is_floating_point:
        return torch.get_default_dtype()
    return dt


def check_finite(x: Array, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` when ``x`` holds NaN or inf."""
    if is_torch(x) and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        x = x.detach().numpy()  # zero-copy; numpy's check is single-threaded and fast
    ok = bool(torch.isfinite(x).all()) if is_torch(x) else bool(np.isfinite(x).all())
    if not ok:
        raise ValueError(f"{name} contains NaN or inf")


def to_numpy(x: Any, name: str) -> np.ndarray:
    """``x`` as a numpy array (torch tensors are detached and moved to CPU)."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as e:  # pragma: no cover - defensive
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from e


class NumpyLapackOps:
    """Kernels for unbatched (2-D) numpy arrays, calling LAPACK/BLAS directly."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        probe = np.zeros((1, 1), dtype=dtype)
        self._potrf = lapack.get_lapack_funcs("potrf", (probe,))
        # BLAS trsm, not LAPACK trtrs: OpenBLAS's trtrs spawns threads even for tiny matrices and
        # is ~10x slower here (far more on a busy machine).
        self._trsm = blas.get_blas_funcs("trsm", (probe,))

    def cholesky(self, a: np.ndarray) -> tuple[np.ndarray, Any]:
        """Lower Cholesky factor of SPD ``a`` (m, m) and a failure flag (LAPACK ``info``)."""
        low, info = self._potrf(a, lower=1, clean=1)
        return low, info

    @staticmethod
    def failed(info: Any) -> tuple[bool, tuple[int, ...], int]:
        """(failed?, batch index, order of the failing leading minor) for one ``cholesky`` flag."""
        return info != 0, (), int(info)

    def solve_lower(self, low: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Solve ``low @ X = b`` with ``low`` lower triangular."""
        return self._trsm(1.0, low, b, lower=1)

    def solve_lower_t(self, low: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Solve ``low.T @ X = b`` with ``low`` lower triangular."""
        return self._trsm(1.0, low, b, lower=1, trans_a=1)

    @staticmethod
    def cat(arrays: list[np.ndarray], dim: int) -> np.ndarray:
        return np.concatenate(arrays, axis=dim)

    @staticmethod
    def stack(arrays: list[np.ndarray], dim: int) -> np.ndarray:
        return np.stack(arrays, axis=dim)

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=self.dtype)


class NumpyBatchedOps(NumpyLapackOps):
    """Kernels for batched numpy arrays (..., m, m): numpy's stacked gufuncs, no threading.

    numpy has no stacked triangular solve, so ``np.linalg.solve`` (partial-pivoting LU, backward
    stable) is applied to the Cholesky factor. On a busy machine this is far more robust than
    torch's multi-threaded CPU kernels for the many small matrices of the recursion.
    """

    def cholesky(self, a: np.ndarray) -> tuple[np.ndarray, Any]:
        """Lower Cholesky factor of SPD ``a`` (..., m, m); the flag holds the original matrices."""
        try:
            return np.linalg.cholesky(a), None
        except np.linalg.LinAlgError:
            return np.full_like(a, np.nan), a

    @staticmethod
    def failed(info: Any) -> tuple[bool, tuple[int, ...], int]:
        if info is None:
            return False, (), 0
        for idx in np.ndindex(info.shape[:-2]):
            low, code = NumpyLapackOps(info.dtype).cholesky(np.array(info[idx]))
            if code != 0:
                return True, tuple(int(i) for i in idx), int(code)
        return True, (), 0  # pragma: no cover - numpy and LAPACK disagree

    def solve_lower(self, low: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.solve(low, b)

    def solve_lower_t(self, low: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.solve(low.swapaxes(-1, -2), b)


class TorchOps:
    """Batched kernels on torch tensors (any device and floating dtype; differentiable)."""

    def __init__(self, dtype: torch.dtype, device: torch.device) -> None:
        self.dtype = dtype
        self.device = device

    @staticmethod
    def cholesky(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower Cholesky factor of SPD ``a`` (..., m, m) and per-batch ``info`` (0 = success)."""
        return torch.linalg.cholesky_ex(a)

    @staticmethod
    def failed(info: torch.Tensor) -> tuple[bool, tuple[int, ...], int]:
        """(failed?, first failing batch index, order of its failing leading minor)."""
        bad = info != 0
        if not bool(bad.any()):
            return False, (), 0
        idx = tuple(int(i) for i in torch.nonzero(bad)[0])
        return True, idx, int(info[idx]) if idx else int(info)

    @staticmethod
    def solve_lower(low: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve_triangular(low, b, upper=False)

    @staticmethod
    def solve_lower_t(low: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve_triangular(low.mT, b, upper=True)

    @staticmethod
    def cat(arrays: list[torch.Tensor], dim: int) -> torch.Tensor:
        return torch.cat(arrays, dim=dim)

    @staticmethod
    def stack(arrays: list[torch.Tensor], dim: int) -> torch.Tensor:
        return torch.stack(arrays, dim=dim)

    def zeros(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.zeros(shape, dtype=self.dtype, device=self.device)
