"""Discrete-time linear system ``x' = A x + B u`` with quadratic reward ``-(x^T Q x + u^T R u)``.

Default: the double integrator with ``dt = 0.1`` (position, velocity; force per unit mass).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

from envs.analytic.base import AnalyticEnv, check_batch, check_positive, check_steps, make_env
from envs.task import AtLeastFloat32, Task, never_terminates

ENV_ID = "mbrl/Linear-v0"

ArrayLike = np.ndarray | Sequence[float] | Sequence[Sequence[float]] | float


def double_integrator(dt: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``(A (2, 2), B (2, 1))``: the exactly discretised double integrator, step ``dt`` (s)."""
    dt = check_positive("dt", dt)
    return np.array([[1.0, dt], [0.0, 1.0]]), np.array([[0.5 * dt**2], [dt]])


def _matrix(name: str, value: ArrayLike, shape: tuple[int, int] | None) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected a real matrix, got {value!r}") from err
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D matrix, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf")
    arr.setflags(write=False)
    return arr


def _psd(name: str, mat: np.ndarray) -> None:
    if not np.allclose(mat, mat.T, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name}: expected a symmetric matrix")
    eig_min = float(np.linalg.eigvalsh(mat).min())
    if eig_min < -1e-10 * max(1.0, float(np.abs(mat).max())):
        raise ValueError(
            f"{name}: expected positive semi-definite, smallest eigenvalue {eig_min:g}"
        )


def _vector(name: str, value: ArrayLike, n: int, allow_inf: bool) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected a number or a vector, got {value!r}") from err
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected a scalar or shape ({n},), got {arr.shape}")
    if np.isnan(arr).any() or (not allow_inf and not np.all(np.isfinite(arr))):
        raise ValueError(f"{name}: contains NaN{'' if allow_inf else ' or inf'}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class LinearSystem:
    """``x' = A x + clip(u)`` system, quadratic reward, and their batched torch functions.

    Attributes:
        A: ``(n, n)`` state matrix. B: ``(n, m)`` input matrix.
        Q: ``(n, n)`` symmetric PSD state cost. R: ``(m, m)`` symmetric PSD action cost.
        action_low, action_high: ``(m,)`` action bounds (may be infinite); actions are clipped.
        x0_scale: ``(n,)`` half-widths of the uniform initial-state distribution.
        dt: seconds per step (informational when ``A``, ``B`` are given).
    """

    A: np.ndarray
    B: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    action_low: np.ndarray
    action_high: np.ndarray
    x0_scale: np.ndarray
    dt: float
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        A: ArrayLike | None = None,
        B: ArrayLike | None = None,
        Q: ArrayLike | None = None,
        R: ArrayLike | None = None,
        action_low: ArrayLike = -np.inf,
        action_high: ArrayLike = np.inf,
        x0_scale: ArrayLike = 1.0,
        dt: float = 0.1,
    ) -> LinearSystem:
        """Validate the arguments (``ValueError`` naming the bad one) and build the system.

        ``A`` and ``B`` default together to :func:`double_integrator` ``(dt)``; ``Q`` to ``I``,
        ``R`` to ``0.1 I``; scalar bounds / ``x0_scale`` are broadcast to vectors.
        """
        dt = check_positive("dt", dt)
        if (A is None) != (B is None):
            raise ValueError("A, B: give both matrices or neither (default: double integrator)")
        if A is None:
            A, B = double_integrator(dt)
        a = _matrix("A", A, None)
        n = a.shape[0]
        if a.shape != (n, n):
            raise ValueError(f"A: expected a square (n, n) matrix, got shape {a.shape}")
        b = _matrix("B", B, None)
        if b.shape[0] != n:
            raise ValueError(f"B: expected shape ({n}, m) to match A {a.shape}, got {b.shape}")
        m = b.shape[1]
        if m == 0:
            raise ValueError("B: expected at least one column (m >= 1)")
        q = _matrix("Q", np.eye(n) if Q is None else Q, (n, n))
        r = _matrix("R", 0.1 * np.eye(m) if R is None else R, (m, m))
        _psd("Q", q)
        _psd("R", r)
        low = _vector("action_low", action_low, m, allow_inf=True)
        high = _vector("action_high", action_high, m, allow_inf=True)
        if np.any(low > high):
            raise ValueError(f"action_low, action_high: expected low <= high, got {low}, {high}")
        scale = _vector("x0_scale", x0_scale, n, allow_inf=False)
        if np.any(scale < 0):
            raise ValueError(f"x0_scale: expected values >= 0, got {scale}")
        return cls(a, b, q, r, low, high, scale, dt)

    @property
    def n(self) -> int:
        """State dimension."""
        return self.A.shape[0]

    @property
    def m(self) -> int:
        """Action dimension."""
        return self.B.shape[1]

    def _tensors(self, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        key = (like.dtype, like.device)
        if key not in self._cache:
            self._cache[key] = tuple(
                torch.tensor(v, dtype=like.dtype, device=like.device)
                for v in (self.A, self.B, self.Q, self.R, self.action_low, self.action_high)
            )
        return self._cache[key]

    def dynamics(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """``x (..., n), u (..., m) -> A x + B clip(u) (..., n)``."""
        obs, act = check_batch(obs, act, self.n, self.m)
        dtype = torch.promote_types(obs.dtype, act.dtype) if act.is_floating_point() else obs.dtype
        x, u = obs.to(dtype), act.to(dtype)
        a, b, _, _, low, high = self._tensors(x)
        u = torch.clamp(u, low, high)
        return x @ a.T + u @ b.T

    def reward(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """``-(x^T Q x + u^T R u)``, pre-step ``x (..., n)`` and clipped ``u``: ``(...)``."""
        obs, act = check_batch(obs, act, self.n, self.m)
        dtype = torch.promote_types(obs.dtype, act.dtype) if act.is_floating_point() else obs.dtype
        x, u = obs.to(dtype), act.to(dtype)
        _, _, q, r, low, high = self._tensors(x)
        u = torch.clamp(u, low, high)
        return -(((x @ q) * x).sum(-1) + ((u @ r) * u).sum(-1))


class LinearEnv(AnalyticEnv):
    """Gymnasium environment of :class:`LinearSystem` (numpy float64 step, no torch).

    Keyword arguments as :meth:`LinearSystem.build`. Starts uniform in
    ``[-x0_scale, x0_scale]``; never terminates.
    """

    def __init__(
        self,
        A: ArrayLike | None = None,
        B: ArrayLike | None = None,
        Q: ArrayLike | None = None,
        R: ArrayLike | None = None,
        action_low: ArrayLike = -np.inf,
        action_high: ArrayLike = np.inf,
        x0_scale: ArrayLike = 1.0,
        dt: float = 0.1,
    ) -> None:
        super().__init__()
        self.system = LinearSystem.build(A, B, Q, R, action_low, action_high, x0_scale, dt)
        s = self.system
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (s.n,), dtype=np.float64)
        self.action_space = gym.spaces.Box(s.action_low, s.action_high, dtype=np.float64)

    def _initial_state(self, rng: np.random.Generator) -> np.ndarray:
        scale = self.system.x0_scale
        return rng.uniform(-scale, scale)

    def _transition(self, state: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        s = self.system
        u = np.clip(action, s.action_low, s.action_high)
        cost = float(state @ s.Q @ state + u @ s.R @ u)
        return s.A @ state + s.B @ u, -cost, False


def linear_task(
    *,
    A: ArrayLike | None = None,
    B: ArrayLike | None = None,
    Q: ArrayLike | None = None,
    R: ArrayLike | None = None,
    action_low: ArrayLike = -np.inf,
    action_high: ArrayLike = np.inf,
    x0_scale: ArrayLike = 1.0,
    dt: float = 0.1,
    max_episode_steps: int = 100,
) -> Task:
    """The ``linear`` task; default the double integrator (dt 0.1), ``Q = I``, ``R = 0.1 I``."""
    system = LinearSystem.build(A, B, Q, R, action_low, action_high, x0_scale, dt)
    steps = check_steps(max_episode_steps)
    env_kwargs = {
        "A": system.A,
        "B": system.B,
        "Q": system.Q,
        "R": system.R,
        "action_low": system.action_low,
        "action_high": system.action_high,
        "x0_scale": system.x0_scale,
        "dt": system.dt,
    }
    return Task(
        name="linear",
        obs_dim=system.n,
        act_dim=system.m,
        action_low=system.action_low.copy(),
        action_high=system.action_high.copy(),
        max_episode_steps=steps,
        reward_fn=AtLeastFloat32(system.reward),
        termination_fn=never_terminates,
        env_factory=functools.partial(make_env, ENV_ID, steps, env_kwargs),
        dynamics_fn=system.dynamics,
        dt=system.dt,
        description=(
            f"Linear system x' = A x + B u (n={system.n}, m={system.m}), reward -(x'Qx + u'Ru)"
        ),
        info={
            "A": system.A.copy(),
            "B": system.B.copy(),
            "Q": system.Q.copy(),
            "R": system.R.copy(),
            "env_id": ENV_ID,
            "system": system,
        },
    )
