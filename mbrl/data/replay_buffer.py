"""Fixed-capacity ring buffer of transitions with episode boundaries, sampling and save/load."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from mbrl.util.io import CheckpointError, read_verified, write_verified

__all__ = ["Batch", "ReplayBuffer"]

# 2: a verified file (kind, version, SHA-256) around the .npz payload, dtypes in "dtypes";
# 1: the bare .npz (zip CRC only), still read
_FORMAT_VERSION = 2
_KIND = "replay buffer"
_FIELDS = ("obs", "act", "next_obs", "reward", "terminated", "truncated")


class Batch(NamedTuple):
    """Transitions, batch dimension first (numpy arrays or torch tensors).

    Attributes:
        obs: ``(B, obs_dim)`` observations.
        act: ``(B, act_dim)`` actions.
        next_obs: ``(B, obs_dim)`` observations after the action.
        reward: ``(B,)`` rewards.
        terminated: ``(B,)`` bool, True where the episode ended in a terminal state.
        truncated: ``(B,)`` bool, True where the episode was cut (time limit).
    """

    obs: Any
    act: Any
    next_obs: Any
    reward: Any
    terminated: Any
    truncated: Any

    @property
    def done(self) -> Any:
        """``terminated | truncated``: ``(B,)`` bool, True at the last step of an episode."""
        return self.terminated | self.truncated

    @property
    def batch_size(self) -> int:
        """Number of transitions ``B``."""
        return int(self.reward.shape[0])

    def to_torch(
        self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> Batch:
        """Torch copy on ``device``: obs/act/next_obs/reward as ``dtype``, flags as bool.

        Integer actions (discrete) are converted to ``dtype`` as well.
        """

        def conv(x: np.ndarray, dt: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(x)).to(device=device, dtype=dt)

        return Batch(
            conv(self.obs, dtype),
            conv(self.act, dtype),
            conv(self.next_obs, dtype),
            conv(self.reward, dtype),
            conv(self.terminated, torch.bool),
            conv(self.truncated, torch.bool),
        )


def _check_numeric_dtype(dtype: Any, name: str) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"{name}: not a numpy dtype: {dtype!r}") from exc
    if dt.kind not in "fiu":
        raise ValueError(f"{name}: expected a float or integer dtype, got {dt}")
    return dt


def _check_dim(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


class ReplayBuffer:
    """Ring buffer of ``(obs, act, next_obs, reward, terminated, truncated)`` transitions.

    When full, new transitions overwrite the oldest. Transitions are assumed to be added in the
    order they were collected from one environment, so that :meth:`trajectories` can cut them
    into episodes (an episode ends at a step with ``terminated or truncated``).

    Args:
        capacity: maximum number of transitions kept.
        obs_dim: observation length.
        act_dim: action length (1 for a discrete action index).
        obs_dtype: storage dtype of observations (float or integer).
        act_dtype: storage dtype of actions (float, or integer for discrete actions).

    Rewards are stored as float32 and the flags as bool. Every added value is validated:
    wrong shapes, non-numeric data, non-integral values for integer dtypes and NaN/inf raise
    ``ValueError`` naming the field.
    """

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        *,
        obs_dtype: Any = np.float32,
        act_dtype: Any = np.float32,
    ) -> None:
        self._capacity = _check_dim(capacity, "capacity")
        self.obs_dim = _check_dim(obs_dim, "obs_dim")
        self.act_dim = _check_dim(act_dim, "act_dim")
        self.obs_dtype = _check_numeric_dtype(obs_dtype, "obs_dtype")
        self.act_dtype = _check_numeric_dtype(act_dtype, "act_dtype")
        c = self._capacity
        self._obs = np.zeros((c, self.obs_dim), dtype=self.obs_dtype)
        self._act = np.zeros((c, self.act_dim), dtype=self.act_dtype)
        self._next_obs = np.zeros((c, self.obs_dim), dtype=self.obs_dtype)
        self._reward = np.zeros((c,), dtype=np.float32)
        self._terminated = np.zeros((c,), dtype=bool)
        self._truncated = np.zeros((c,), dtype=bool)
        # True where the slot holds the first transition of an episode.
        self._episode_start = np.zeros((c,), dtype=bool)
        self._ptr = 0  # next slot to write
        self._size = 0
        self._last_done = True  # was the last added transition the end of an episode?

    # ------------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        """Maximum number of transitions kept."""
        return self._capacity

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return (
            f"ReplayBuffer(size={self._size}, capacity={self._capacity}, "
            f"obs_dim={self.obs_dim}, act_dim={self.act_dim})"
        )

    # ------------------------------------------------------------------------------------
    def _validate(self, x: Any, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"{name}: cannot convert to an array: {exc}") from exc
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name}: expected numeric values, got dtype {arr.dtype}")
        if arr.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
        if dtype.kind == "b":
            if arr.dtype.kind != "b":
                if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                    raise ValueError(f"{name}: contains NaN or inf")
                if not np.isin(arr, (0, 1)).all():
                    raise ValueError(f"{name}: expected booleans (or 0/1), got {arr!r}")
            return arr.astype(bool)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValueError(f"{name}: contains NaN or inf")
        if dtype.kind in "iu":
            if arr.dtype.kind == "f" and not (arr == np.round(arr)).all():
                raise ValueError(f"{name}: expected integral values for dtype {dtype}")
            info = np.iinfo(dtype)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise ValueError(f"{name}: values out of range for dtype {dtype}")
            return arr.astype(dtype)
        with np.errstate(over="ignore"):
            out = arr.astype(dtype)
        if not np.isfinite(out).all():
            raise ValueError(f"{name}: values overflow dtype {dtype} (inf after conversion)")
        return out

    def add(
        self,
        obs: Any,
        act: Any,
        next_obs: Any,
        reward: Any,
        terminated: Any,
        truncated: Any,
    ) -> None:
        """Add one transition: ``obs (obs_dim,)``, ``act (act_dim,)``, ``next_obs (obs_dim,)``,
        scalar ``reward``, bool ``terminated`` and ``truncated``."""
        self._write(
            self._validate(obs, "obs", (self.obs_dim,), self.obs_dtype)[None],
            self._validate(act, "act", (self.act_dim,), self.act_dtype)[None],
            self._validate(next_obs, "next_obs", (self.obs_dim,), self.obs_dtype)[None],
            self._validate(reward, "reward", (), np.dtype(np.float32))[None],
            self._validate(terminated, "terminated", (), np.dtype(bool))[None],
            self._validate(truncated, "truncated", (), np.dtype(bool))[None],
        )

    def add_batch(
        self,
        obs: Any,
        act: Any,
        next_obs: Any,
        reward: Any,
        terminated: Any,
        truncated: Any,
    ) -> None:
        """Add ``N`` consecutive transitions: ``obs (N, obs_dim)``, ``act (N, act_dim)``,
        ``next_obs (N, obs_dim)``, ``reward (N,)``, ``terminated (N,)``, ``truncated (N,)``.

        If ``N > capacity`` only the last ``capacity`` transitions are kept.
        """
        n_arr = np.asarray(reward)
        if n_arr.ndim != 1:
            raise ValueError(f"reward: expected shape (N,), got {n_arr.shape}")
        n = n_arr.shape[0]
        self._write(
            self._validate(obs, "obs", (n, self.obs_dim), self.obs_dtype),
            self._validate(act, "act", (n, self.act_dim), self.act_dtype),
            self._validate(next_obs, "next_obs", (n, self.obs_dim), self.obs_dtype),
            self._validate(reward, "reward", (n,), np.dtype(np.float32)),
            self._validate(terminated, "terminated", (n,), np.dtype(bool)),
            self._validate(truncated, "truncated", (n,), np.dtype(bool)),
        )

    def _write(self, *arrays: np.ndarray) -> None:
        obs, act, next_obs, reward, terminated, truncated = arrays
        n = reward.shape[0]
        if n == 0:
            return
        done = terminated | truncated
        start = np.empty(n, dtype=bool)
        start[0] = self._last_done
        start[1:] = done[:-1]
        self._last_done = bool(done[-1])
        c = self._capacity
        if n > c:
            obs, act, next_obs, reward, terminated, truncated, start = (
                a[-c:] for a in (obs, act, next_obs, reward, terminated, truncated, start)
            )
            n = c
        idx = (self._ptr + np.arange(n)) % c
        self._obs[idx] = obs
        self._act[idx] = act
        self._next_obs[idx] = next_obs
        self._reward[idx] = reward
        self._terminated[idx] = terminated
        self._truncated[idx] = truncated
        self._episode_start[idx] = start
        self._ptr = int((self._ptr + n) % c)
        self._size = min(self._size + n, c)

    def clear(self) -> None:
        """Remove all transitions (capacity and dtypes are kept)."""
        self._ptr = 0
        self._size = 0
        self._last_done = True

    # ------------------------------------------------------------------------------------
    def _ordered_indices(self) -> np.ndarray:
        """Physical slots of the stored transitions, oldest first."""
        oldest = (self._ptr - self._size) % self._capacity
        return (oldest + np.arange(self._size)) % self._capacity

    def _gather(self, idx: np.ndarray) -> Batch:
        return Batch(
            self._obs[idx],
            self._act[idx],
            self._next_obs[idx],
            self._reward[idx],
            self._terminated[idx],
            self._truncated[idx],
        )

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """``batch_size`` transitions drawn uniformly with replacement using ``rng``.

        Returns a :class:`Batch` of numpy arrays (copies); the same ``rng`` state gives the
        same batch.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        if self._size == 0:
            raise ValueError("sample: the buffer is empty")
        # While not full, the stored slots are 0..size-1; when full, all slots.
        return self._gather(rng.integers(0, self._size, size=int(batch_size)))

    def get_all(self) -> Batch:
        """All stored transitions, oldest first, as a :class:`Batch` of numpy arrays (copies)."""
        return self._gather(self._ordered_indices())

    def trajectories(self, include_incomplete: bool = True) -> Iterator[Batch]:
        """Yield the stored episodes in insertion order, each a :class:`Batch` in time order.

        An episode ends at a transition with ``terminated or truncated``. With
        ``include_incomplete=True`` (default) two kinds of partial episodes are yielded too:
        the oldest one when its first steps were overwritten by the ring wrap-around, and the
        newest one when it has not ended yet. With ``include_incomplete=False`` only episodes
        whose first and last steps are both stored are yielded.
        """
        order = self._ordered_indices()
        if order.size == 0:
            return
        done = self._terminated[order] | self._truncated[order]
        bounds = np.unique(np.concatenate(([0], np.flatnonzero(done) + 1, [order.size])))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            seg = order[a:b]
            complete = bool(self._episode_start[seg[0]]) and bool(done[b - 1])
            if complete or include_incomplete:
                yield self._gather(seg)

    # ------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the buffer (data, ring position, episode boundaries) to ``path`` atomically.

        The file is a verified file (:func:`mbrl.util.io.write_verified`: kind
        ``"replay buffer"``, a ``format_version`` and a SHA-256 checksum) around an
        uncompressed ``.npz`` archive; a crash while saving leaves any previous file at
        ``path`` intact. Returns ``Path(path)``.
        """
        path = Path(path)
        n = self._size  # not full: data in slots 0..n-1; full: n == capacity
        arrays: dict[str, np.ndarray] = {
            "obs": self._obs[:n],
            "act": self._act[:n],
            "next_obs": self._next_obs[:n],
            "reward": self._reward[:n],
            "terminated": self._terminated[:n],
            "truncated": self._truncated[:n],
            "episode_start": self._episode_start[:n],
            "meta": np.array(
                [
                    _FORMAT_VERSION,
                    self._capacity,
                    self.obs_dim,
                    self.act_dim,
                    self._ptr,
                    self._size,
                    int(self._last_done),
                ],
                dtype=np.int64,
            ),
            "dtypes": np.array([self.obs_dtype.str, self.act_dtype.str]),
        }
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return write_verified(path, buf.getvalue(), _KIND, _FORMAT_VERSION)

    @classmethod
    def load(cls, path: str | Path) -> ReplayBuffer:
        """Restore a buffer written by :meth:`save` (contents, dtypes and ring position).

        Raises ``FileNotFoundError`` if ``path`` is missing and
        :class:`mbrl.util.io.CheckpointError` (a ``ValueError``) naming ``path`` if it is not a
        valid buffer file: foreign, truncated, corrupt (checksum), inconsistent metadata,
        dtypes other than the declared ones, NaN/inf data, or a declared capacity that would
        not fit in this machine's memory. Files of format 1 (a bare ``.npz``) are still read.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"ReplayBuffer.load: no such file {str(path)!r}")
        with open(path, "rb") as f:
            legacy = f.read(4) == b"PK\x03\x04"
        data = path.read_bytes() if legacy else read_verified(path, _KIND, _FORMAT_VERSION).data
        arrays = _read_npz(data, path, 1 if legacy else _FORMAT_VERSION)
        meta = arrays.pop("meta")
        capacity, obs_dim, act_dim, ptr, size, last_done = _check_meta(meta, arrays, path)
        obs_dtype, act_dtype = _check_arrays(arrays, path)
        _check_allocation(path, capacity, obs_dim, act_dim, obs_dtype, act_dtype)
        buf = cls(capacity, obs_dim, act_dim, obs_dtype=obs_dtype, act_dtype=act_dtype)
        buf._obs[:size] = arrays["obs"]
        buf._act[:size] = arrays["act"]
        buf._next_obs[:size] = arrays["next_obs"]
        buf._reward[:size] = arrays["reward"]
        buf._terminated[:size] = arrays["terminated"]
        buf._truncated[:size] = arrays["truncated"]
        buf._episode_start[:size] = arrays["episode_start"]
        buf._ptr, buf._size, buf._last_done = ptr, size, bool(last_done)
        return buf


def _bad_file(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(f"ReplayBuffer.load: {str(path)!r}: not a valid {_KIND} file ({reason})")


def _read_npz(data: bytes, path: Path, version: int) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` payload (no pickles); ``dtypes`` added for format 1."""
    keys = (*_FIELDS, "episode_start", "meta") + (("dtypes",) if version >= 2 else ())
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in keys}
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as exc:
        raise _bad_file(path, f"unreadable .npz payload: {exc}") from exc
    if version == 1:
        arrays["dtypes"] = np.array([arrays["obs"].dtype.str, arrays["act"].dtype.str])
    return arrays


def _check_meta(
    meta: np.ndarray, arrays: dict[str, np.ndarray], path: Path
) -> tuple[int, int, int, int, int, int]:
    """``(capacity, obs_dim, act_dim, ptr, size, last_done)`` checked against the arrays."""
    if meta.shape != (7,) or meta.dtype.kind not in "iu" or int(meta[0]) not in (1, 2):
        raise _bad_file(path, f"unknown format (meta={meta.tolist()})")
    _, capacity, obs_dim, act_dim, ptr, size, last_done = (int(v) for v in meta)
    if min(capacity, obs_dim, act_dim) < 1 or last_done not in (0, 1):
        raise _bad_file(path, f"capacity={capacity}, obs_dim={obs_dim}, act_dim={act_dim}")
    if not (0 <= size <= capacity and 0 <= ptr < capacity):
        raise _bad_file(path, f"size={size}, ptr={ptr}, capacity={capacity}")
    if size < capacity and ptr != size:
        raise _bad_file(path, f"ptr={ptr} != size={size} for a buffer that is not full")
    expected = {
        "obs": (size, obs_dim),
        "act": (size, act_dim),
        "next_obs": (size, obs_dim),
        "reward": (size,),
        "terminated": (size,),
        "truncated": (size,),
        "episode_start": (size,),
    }
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise _bad_file(path, f"{key} has shape {arrays[key].shape}, expected {shape}")
    return capacity, obs_dim, act_dim, ptr, size, last_done


def _check_arrays(arrays: dict[str, np.ndarray], path: Path) -> tuple[np.dtype, np.dtype]:
    """Check dtypes against the declared ones and the values as :meth:`ReplayBuffer.add` does;
    return ``(obs_dtype, act_dtype)``."""
    dtypes = arrays.pop("dtypes")
    if dtypes.shape != (2,) or dtypes.dtype.kind != "U":
        raise _bad_file(path, f"dtypes: expected two dtype names, got {dtypes!r}")
    try:
        obs_dtype = _check_numeric_dtype(str(dtypes[0]), "obs_dtype")
        act_dtype = _check_numeric_dtype(str(dtypes[1]), "act_dtype")
    except ValueError as exc:
        raise _bad_file(path, str(exc)) from exc
    want = {
        "obs": obs_dtype,
        "act": act_dtype,
        "next_obs": obs_dtype,
        "reward": np.dtype(np.float32),
        "terminated": np.dtype(bool),
        "truncated": np.dtype(bool),
        "episode_start": np.dtype(bool),
    }
    for key, dtype in want.items():
        arr = arrays[key]
        if arr.dtype != dtype:
            raise _bad_file(path, f"{key} has dtype {arr.dtype}, expected {dtype}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise _bad_file(path, f"{key} contains NaN or inf")
    return obs_dtype, act_dtype


def _check_allocation(
    path: Path, capacity: int, obs_dim: int, act_dim: int, obs_dt: np.dtype, act_dt: np.dtype
) -> None:
    """Refuse a declared capacity whose storage exceeds this machine's physical memory."""
    row = 2 * obs_dim * obs_dt.itemsize + act_dim * act_dt.itemsize + 4 + 3
    need = capacity * row
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not available on this platform
        return
    if need > memory:
        raise _bad_file(
            path,
            f"declares capacity={capacity} x (obs_dim={obs_dim}, act_dim={act_dim}): "
            f"{need / 2**30:.1f} GiB of storage, more than this machine's memory "
            f"({memory / 2**30:.1f} GiB)",
        )
