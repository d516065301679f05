"""Shared machinery of the analytic tasks: a numpy float64 Gymnasium base environment,
input checks of the batched torch functions, and the environment factory used by the tasks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch


class AnalyticEnv(gym.Env[np.ndarray, np.ndarray]):
    """Base class of the analytic environments: the state *is* the observation (float64).

    Subclasses set ``observation_space`` and ``action_space`` (float64 ``Box`` spaces) and
    implement :meth:`_initial_state` and :meth:`_transition` in numpy float64. Truncation is
    left to Gymnasium's ``TimeLimit`` (``gymnasium.make(..., max_episode_steps=...)``).

    ``reset(options={"state": s})`` starts from the given state ``s`` (shape ``(obs_dim,)``)
    instead of sampling one.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self) -> None:
        self._state: np.ndarray | None = None

    @property
    def state(self) -> np.ndarray | None:
        """A copy of the current state ``(obs_dim,)`` float64, or ``None`` before ``reset``."""
        return None if self._state is None else self._state.copy()

    def _initial_state(self, rng: np.random.Generator) -> np.ndarray:
        """Sample an initial state ``(obs_dim,)`` with ``rng``."""
        raise NotImplementedError

    def _transition(self, state: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """One step from ``state`` with ``action``: ``(next_state, reward, terminated)``."""
        raise NotImplementedError

    def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; returns ``(obs (obs_dim,) float64, {})``."""
        super().reset(seed=seed)
        shape = self.observation_space.shape
        if options is not None and options.get("state") is not None:
            state = np.array(options["state"], dtype=np.float64)
            if state.shape != shape:
                raise ValueError(f"options['state']: expected shape {shape}, got {state.shape}")
            if not np.all(np.isfinite(state)):
                raise ValueError("options['state']: contains NaN or inf")
        else:
            state = np.asarray(self._initial_state(self.np_random), dtype=np.float64)
        self._state = state
        return state.copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance one step; returns ``(obs, reward, terminated, False, {})``."""
        if self._state is None:
            raise RuntimeError("step() called before reset()")
        act = np.asarray(action, dtype=np.float64)
        shape = self.action_space.shape
        if act.shape != shape:
            if act.size == int(np.prod(shape)):
                act = act.reshape(shape)
            else:
                raise ValueError(f"action: expected shape {shape}, got {act.shape}")
        if not np.isfinite(act).all():
            raise ValueError(f"action: expected finite values, got {act.tolist()}")
        next_state, reward, terminated = self._transition(self._state, act)
        self._state = np.asarray(next_state, dtype=np.float64)
        return self._state.copy(), float(reward), bool(terminated), False, {}


def check_batch(
    obs: torch.Tensor, act: torch.Tensor, obs_dim: int, act_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check ``obs (..., obs_dim)`` and ``act (..., act_dim)``; broadcast their leading dims.

    Returns ``(obs, act)`` expanded to a common batch shape (views, autograd-safe). Raises
    ``ValueError`` naming the argument on a wrong trailing size, a non-floating ``obs`` or
    leading dims that do not broadcast.
    """
    if not isinstance(obs, torch.Tensor):
        raise TypeError(f"obs: expected a torch.Tensor, got {type(obs).__name__}")
    if not isinstance(act, torch.Tensor):
        raise TypeError(f"act: expected a torch.Tensor, got {type(act).__name__}")
    if obs.ndim == 0 or obs.shape[-1] != obs_dim:
        raise ValueError(f"obs: expected shape (..., {obs_dim}), got {tuple(obs.shape)}")
    if act.ndim == 0 or act.shape[-1] != act_dim:
        raise ValueError(f"act: expected shape (..., {act_dim}), got {tuple(act.shape)}")
    if not obs.is_floating_point():
        raise ValueError(f"obs: expected a floating-point tensor, got {obs.dtype}")
    if obs.shape[:-1] == act.shape[:-1]:
        return obs, act
    try:
        batch = torch.broadcast_shapes(obs.shape[:-1], act.shape[:-1])
    except RuntimeError as err:
        raise ValueError(
            f"obs {tuple(obs.shape)} and act {tuple(act.shape)}: leading dims do not broadcast"
        ) from err
    return obs.expand(*batch, obs_dim), act.expand(*batch, act_dim)


def check_obs(obs: torch.Tensor, obs_dim: int, name: str = "obs") -> None:
    """Raise ``ValueError`` naming ``name`` unless ``obs`` is a float tensor ``(..., obs_dim)``."""
    if not isinstance(obs, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(obs).__name__}")
    if obs.ndim == 0 or obs.shape[-1] != obs_dim:
        raise ValueError(f"{name}: expected shape (..., {obs_dim}), got {tuple(obs.shape)}")
    if not obs.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got {obs.dtype}")


def make_env(
    env_id: str,
    max_episode_steps: int,
    env_kwargs: Mapping[str, Any],
    **kwargs: Any,
) -> gym.Env:
    """``gymnasium.make(env_id, max_episode_steps=..., **env_kwargs, **kwargs)``.

    ``env_kwargs`` are the task's physical parameters; ``kwargs`` are extra options for
    ``gymnasium.make`` (e.g. ``disable_env_checker``). Overriding a task parameter here is refused
    because the environment would then disagree with the task's reward and dynamics functions:
    configure the task instead (``get_task(name, **params)``).
    """
    clash = sorted(set(kwargs) & (set(env_kwargs) | {"max_episode_steps"}))
    if clash:
        raise ValueError(
            f"{', '.join(clash)}: task parameters cannot be changed in make_env(); pass them "
            "to get_task(name, ...) so the task's functions match the environment"
        )
    return gym.make(env_id, max_episode_steps=max_episode_steps, **env_kwargs, **kwargs)


def check_positive(name: str, value: float) -> float:
    """Return ``float(value)``; raise ``ValueError`` naming ``name`` unless finite and > 0."""
    v = float(value)
    if not np.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name}: expected a finite positive number, got {value!r}")
    return v


def check_nonnegative(name: str, value: float) -> float:
    """Return ``float(value)``; raise ``ValueError`` naming ``name`` unless finite and >= 0."""
    v = float(value)
    if not np.isfinite(v) or v < 0.0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return v


def check_steps(max_episode_steps: int) -> int:
    """Return ``max_episode_steps`` as int; raise ``ValueError`` unless it is a positive integer."""
    if isinstance(max_episode_steps, bool) or int(max_episode_steps) != max_episode_steps:
        raise ValueError(f"max_episode_steps: expected a positive int, got {max_episode_steps!r}")
    if max_episode_steps <= 0:
        raise ValueError(f"max_episode_steps: expected a positive int, got {max_episode_steps!r}")
    return int(max_episode_steps)
