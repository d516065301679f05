"""A MuJoCo task's observation computed from full physics states (for planning through the
true simulator).

After a Gymnasium step, ``qpos``/``qvel``/``act`` are the state after the last physics substep,
while everything MuJoCo derives from the state (body and site positions, constraint forces,
``cfrc_ext``) was computed *before* that substep's integration. So the observation an
environment returns after a step is a function of two full physics states (``mjSTATE_FULLPHYSICS``,
as :func:`control.mujoco_rollout.read_physics_state` reads them) and the control:

* ``pre``: the state at the start of the last substep (derived quantities: MuJoCo computes them
  in that substep, at ``pre`` with the Euler integrators, at the last Runge-Kutta stage with
  RK4), and
* ``post``: the state after it (``qpos``, ``qvel``, ``act``, time).

:class:`PhysicsObservation` reproduces that. Its reference path runs the task's own environment
code on a private environment: ``mj_setState(pre)``, ``ctrl = a``, one ``mj_step`` (the last
substep again, from ``qacc_warmstart = 0``), ``mj_setState(post)``, ``mj_rnePostConstraint`` (as
Gymnasium does after ``mj_step``), then the
environment's ``_get_obs`` followed by every observation wrapper of the task's environment (the
appended extras). Tasks whose observation holds only ``qpos``, ``qvel`` and clipped ``qvel``
blocks (per ``Task.info["obs_layout"]``: HalfCheetah, Swimmer, Walker2d, Hopper,
InvertedPendulum) get a vectorised fast path that reads ``post`` alone; both paths agree (tested).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from control.mujoco_rollout import StateLayout
from envs.task import Task

__all__ = ["QVEL_CLIP", "PhysicsObservation"]

FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS
QVEL_CLIP = 10.0
"""Gymnasium v5 clips the observed ``qvel`` to ``[-10, 10]`` (Hopper, Walker2d)."""
_VECTOR_BLOCKS = frozenset({"qpos", "qvel", "clipped_qvel", "raw_qvel"})


class PhysicsObservation:
    """Observation of a Gymnasium MuJoCo :class:`~envs.task.Task` from full physics states.

    Args:
        task: a MuJoCo task (its ``env_factory`` builds the private environment used by the
            reference path; it is never stepped).

    Attributes:
        obs_dim: the task's observation length.
        nstate: full physics state length of the task's model.
        vectorized: whether :meth:`__call__` takes the vectorised fast path.
        env: the private environment (closed by :meth:`close`).
    """

    def __init__(self, task: Task) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"task: expected an envs.Task, got {type(task).__name__}")
        self.task = task
        self.env = task.make_env()
        raw = self.env.unwrapped
        if not hasattr(raw, "model") or not hasattr(raw, "data"):
            raise TypeError(f"task: {task.name!r} is not a MuJoCo task (its env has no .model)")
        self.raw: Any = raw
        self.model: mujoco.MjModel = raw.model
        self.data: mujoco.MjData = raw.data  # the env's code reads it; the env is never stepped
        self.layout = StateLayout.of(self.model)
        self.obs_dim = task.obs_dim
        self.nstate = mujoco.mj_stateSize(self.model, FULLPHYSICS)
        self.nq, self.nv = self.model.nq, self.model.nv
        self._wrappers = _observation_wrappers(self.env)
        self._blocks = _vector_blocks(task, self.nq, self.nv)
        self.vectorized = self._blocks is not None

    def close(self) -> None:
        """Close the private environment."""
        self.env.close()

    def __call__(self, pre: np.ndarray, post: np.ndarray, ctrl: np.ndarray) -> np.ndarray:
        """Observations ``(N, obs_dim)`` float64 after steps ending in ``post``.

        Args:
            pre: ``(N, nstate)`` states at the start of each step's last substep.
            post: ``(N, nstate)`` states after each step.
            ctrl: ``(N, nu)`` the actions of those steps.

        Rows with a non-finite ``post`` give NaN observations.
        """
        pre, post, ctrl = self._check(pre, post, ctrl)
        if self._blocks is not None:
            return self.vectorized_obs(post)
        return self.reference(pre, post, ctrl)

    def _check(
        self, pre: np.ndarray, post: np.ndarray, ctrl: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pre = np.asarray(pre, dtype=np.float64)
        post = np.asarray(post, dtype=np.float64)
        ctrl = np.asarray(ctrl, dtype=np.float64)
        n = post.shape[0] if post.ndim == 2 else -1
        if post.ndim != 2 or post.shape[1] != self.nstate:
            raise ValueError(f"post: expected shape (N, {self.nstate}), got {post.shape}")
        if pre.shape != post.shape:
            raise ValueError(f"pre: expected shape {post.shape} (as post), got {pre.shape}")
        if ctrl.shape != (n, self.model.nu):
            raise ValueError(f"ctrl: expected shape ({n}, {self.model.nu}), got {ctrl.shape}")
        return pre, post, ctrl

    def vectorized_obs(self, post: np.ndarray) -> np.ndarray:
        """Fast path: the observation assembled from ``post``'s ``qpos``/``qvel`` blocks."""
        if self._blocks is None:
            raise ValueError(f"task {self.task.name!r}: its observation is not qpos/qvel blocks")
        qpos, qvel = post[:, self.layout.qpos], post[:, self.layout.qvel]
        parts = {
            "qpos": qpos,
            "qvel": qvel,
            "raw_qvel": qvel,
            "clipped_qvel": np.clip(qvel, -QVEL_CLIP, QVEL_CLIP),
        }
        return np.concatenate([parts[name] for name in self._blocks], axis=1)

    def reference(self, pre: np.ndarray, post: np.ndarray, ctrl: np.ndarray) -> np.ndarray:
        """Reference path: the environment's own observation code, one row at a time."""
        m, d, raw = self.model, self.data, self.raw
        out = np.full((post.shape[0], self.obs_dim), np.nan)
        for i in range(post.shape[0]):
            if not (np.isfinite(post[i]).all() and np.isfinite(pre[i]).all()):
                continue
            mujoco.mj_setState(m, d, pre[i], FULLPHYSICS)
            d.ctrl[:] = ctrl[i]
            d.qacc_warmstart[:] = 0.0
            mujoco.mj_step(m, d)  # the last substep again: derived quantities as the env's
            mujoco.mj_setState(m, d, post[i], FULLPHYSICS)
            mujoco.mj_rnePostConstraint(m, d)
            obs = np.asarray(raw._get_obs(), dtype=np.float64)
            for wrapper in self._wrappers:  # the task's appended extras
                obs = np.asarray(wrapper.observation(obs), dtype=np.float64)
            out[i] = obs
        return out


def _observation_wrappers(env: gym.Env) -> list[gym.ObservationWrapper]:
    """The observation wrappers of ``env``, innermost first."""
    found = []
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.ObservationWrapper):
            found.append(env)
        env = env.env
    return found[::-1]


def _vector_blocks(task: Task, nq: int, nv: int) -> tuple[str, ...] | None:
    """The observation's block names when it is ``qpos``/``qvel`` blocks end to end, else None."""
    layout = task.info.get("obs_layout")
    if not layout or not set(layout) <= _VECTOR_BLOCKS:
        return None
    size = {"qpos": nq, "qvel": nv, "clipped_qvel": nv, "raw_qvel": nv}
    start = 0
    names = []
    for name, (lo, hi) in sorted(layout.items(), key=lambda kv: kv[1][0]):
        if lo != start or hi - lo != size[name]:
            return None
        names.append(name)
        start = hi
    return tuple(names) if start == task.obs_dim else None
