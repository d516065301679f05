"""Observation augmentation: put simulator quantities the reward needs into the observation.

MuJoCo's ``mj_step`` computes body and site positions (``xpos``, ``site_xpos``) *before* its
final integration, so after a Gymnasium step they lag ``qpos`` by one physics substep; and some
v5 observations clip ``qvel``. Rewards and healthy checks that use those raw quantities can only
be reproduced exactly if the observation carries them, which :class:`AugmentedObservation` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["AugmentedObservation", "main_body_xy", "raw_qvel", "tip_xz_and_raw_qvel"]


class AugmentedObservation(gym.ObservationWrapper):
    """Concatenate ``extra_fn(env.unwrapped)`` to every observation (after reset and each step).

    Args:
        env: the (MuJoCo) environment to wrap.
        extra_fn: ``extra_fn(mujoco_env) -> (extra_dim,)`` array read from the simulator state;
            a module-level function (or ``functools.partial``) keeps the wrapper picklable. Its
            length is read once from the freshly built environment.
        prepend: put the extras before the stock observation instead of after it.
    """

    def __init__(
        self,
        env: gym.Env,
        extra_fn: Callable[[Any], np.ndarray],
        prepend: bool = False,
    ) -> None:
        super().__init__(env)
        base_shape = env.observation_space.shape
        if base_shape is None or len(base_shape) != 1:
            raise ValueError(f"env: expected a flat Box observation space, got {base_shape}")
        extra_dim = np.asarray(extra_fn(env.unwrapped)).size
        if extra_dim < 1:
            raise ValueError("extra_fn: returned an empty array")
        self._extra_fn = extra_fn
        self._extra_dim = int(extra_dim)
        self._prepend = bool(prepend)
        self.observation_space = gym.spaces.Box(
            low=-np.inf, high=np.inf, shape=(base_shape[0] + extra_dim,), dtype=np.float64
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Return the stock observation with the extras attached, ``(obs_dim,)`` float64."""
        extra = np.asarray(self._extra_fn(self.env.unwrapped), dtype=np.float64).ravel()
        if extra.shape != (self._extra_dim,):
            raise RuntimeError(
                f"extra_fn returned shape {extra.shape}, expected ({self._extra_dim},)"
            )
        parts = (extra, observation) if self._prepend else (observation, extra)
        return np.concatenate(parts).astype(np.float64, copy=False)


def raw_qvel(env: Any) -> np.ndarray:
    """Unclipped generalized velocities ``data.qvel``, ``(nv,)``."""
    return env.data.qvel.copy()


def tip_xz_and_raw_qvel(env: Any) -> np.ndarray:
    """InvertedDoublePendulum: tip site ``(x, z)`` (``site_xpos[0]``) then unclipped ``qvel``."""
    return np.concatenate([env.data.site_xpos[0][[0, 2]], env.data.qvel])


def main_body_xy(env: Any, main_body: int | str = 1) -> np.ndarray:
    """Ant: ``(x, y)`` of the main body's frame, ``data.body(main_body).xpos[:2]``."""
    return env.data.body(main_body).xpos[:2].copy()
