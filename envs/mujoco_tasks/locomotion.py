"""Planar locomotion: ``halfcheetah``, ``hopper``, ``walker2d``, ``swimmer`` (Gymnasium v5).

Gymnasium's forward reward is ``w_forward * (x_after - x_before) / dt`` with ``x = qpos[0]``
before and after the step. These tasks build the env with
``exclude_current_positions_from_observation=False`` so ``x`` is ``obs[0]`` (Swimmer: ``obs[0:2]``
is ``(x, y)``) and the forward reward is exact from ``(obs, next_obs)``. Layouts (nq, nv from the
model: HalfCheetah 9/9, Hopper 6/6, Walker2d 9/9, Swimmer 5/5):

* HalfCheetah, Swimmer: ``[qpos (nq), qvel (nv)]``.
* Walker2d: ``[qpos (nq), clip(qvel, -10, 10) (nv)]`` (stock clipping).
* Hopper: ``[qpos (nq), clip(qvel, -10, 10) (nv), unclipped qvel (nv)]``: the healthy check
  bounds ``(qpos[2:], qvel)`` with the *unclipped* qvel, so it is appended.

Healthy checks (strict inequalities, as in Gymnasium): Hopper ``z = qpos[1]``,
``angle = qpos[2]`` and every entry of ``(qpos[2:], qvel)`` inside its open range; Walker2d
``z = qpos[1]`` and ``angle = qpos[2]`` inside their open ranges. The healthy reward is paid while
healthy; ``terminated = (not healthy) and terminate_when_unhealthy``.

``obs_preprocess_fn`` drops the absolute position(s) (``obs[0]``; Swimmer ``obs[0:2]``): the
dynamics do not depend on them, so a learned model should not see them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from envs.mujoco_tasks.common import (
    EnvSetup,
    Tensor,
    as_range,
    check_transition,
    control_cost,
    drop_leading,
    finish,
    in_open_range,
    setup_env,
)
from envs.mujoco_tasks.wrappers import AugmentedObservation, raw_qvel
from envs.task import Task

__all__ = [
    "make_halfcheetah_task",
    "make_hopper_task",
    "make_swimmer_task",
    "make_walker2d_task",
]

_KEEP_X = {
    "exclude_current_positions_from_observation": (
        False,
        "x position must be in the observation for an exact forward reward",
    )
}


def _forward_reward(obs: Tensor, next_obs: Tensor, weight: float, dt: float) -> Tensor:
    """``weight * (next_obs[..., 0] - obs[..., 0]) / dt``, as Gymnasium computes it."""
    return weight * ((next_obs[..., 0] - obs[..., 0]) / dt)


def forward_ctrl_reward(
    obs: Tensor,
    act: Tensor,
    next_obs: Tensor,
    *,
    obs_dim: int,
    act_dim: int,
    dt: float,
    forward_weight: float,
    ctrl_weight: float,
) -> Tensor:
    """HalfCheetah/Swimmer reward ``(...)``: ``w_f (x' - x) / dt - w_c ||a||^2`` (x at index 0)."""
    batch, dtype = check_transition("reward_fn", obs, act, next_obs, obs_dim, act_dim)
    reward = _forward_reward(obs, next_obs, forward_weight, dt) - control_cost(act, ctrl_weight)
    return finish(reward, batch, dtype)


def hopper_healthy(
    next_obs: Tensor,
    *,
    nq: int,
    nv: int,
    state_range: tuple[float, float],
    z_range: tuple[float, float],
    angle_range: tuple[float, float],
) -> Tensor:
    """Hopper-v5 ``is_healthy`` ``(...)`` bool from the task's 18-dim observation layout."""
    state = torch.cat([next_obs[..., 2:nq], next_obs[..., nq + nv : nq + 2 * nv]], dim=-1)
    return (
        in_open_range(state, state_range).all(dim=-1)
        & in_open_range(next_obs[..., 1], z_range)
        & in_open_range(next_obs[..., 2], angle_range)
    )


def walker2d_healthy(
    next_obs: Tensor, *, z_range: tuple[float, float], angle_range: tuple[float, float]
) -> Tensor:
    """Walker2d-v5 ``is_healthy`` ``(...)`` bool: ``z = obs[1]``, ``angle = obs[2]`` in range."""
    return in_open_range(next_obs[..., 1], z_range) & in_open_range(next_obs[..., 2], angle_range)


def healthy_forward_reward(
    obs: Tensor,
    act: Tensor,
    next_obs: Tensor,
    *,
    obs_dim: int,
    act_dim: int,
    dt: float,
    forward_weight: float,
    ctrl_weight: float,
    healthy_reward: float,
    healthy_fn: Callable[[Tensor], Tensor],
) -> Tensor:
    """Hopper/Walker2d reward ``(...)``: ``w_f (x' - x)/dt + r_h [healthy(obs')] - w_c ||a||^2``."""
    batch, dtype = check_transition("reward_fn", obs, act, next_obs, obs_dim, act_dim)
    healthy = healthy_fn(next_obs).to(next_obs.dtype) * healthy_reward
    rewards = _forward_reward(obs, next_obs, forward_weight, dt) + healthy
    return finish(rewards - control_cost(act, ctrl_weight), batch, dtype)


def unhealthy_termination(
    obs: Tensor,
    act: Tensor,
    next_obs: Tensor,
    *,
    obs_dim: int,
    act_dim: int,
    healthy_fn: Callable[[Tensor], Tensor],
    terminate_when_unhealthy: bool,
) -> Tensor:
    """``terminated`` ``(...)`` bool: ``not healthy(next_obs) and terminate_when_unhealthy``."""
    batch, _ = check_transition("termination_fn", obs, act, next_obs, obs_dim, act_dim)
    terminated = ~healthy_fn(next_obs)
    if not terminate_when_unhealthy:
        terminated = torch.zeros_like(terminated)
    return finish(terminated, batch)


def _no_termination(
    obs: Tensor, act: Tensor, next_obs: Tensor, *, obs_dim: int, act_dim: int
) -> Tensor:
    """Never terminates: all False ``(...)`` (inputs checked)."""
    batch, _ = check_transition("termination_fn", obs, act, next_obs, obs_dim, act_dim)
    return torch.zeros(batch, dtype=torch.bool, device=next_obs.device)


def _forward_ctrl_task(name: str, gym_id: str, n_pos: int, kwargs: dict[str, Any]) -> Task:
    s = setup_env(name, gym_id, kwargs, fixed=_KEEP_X)
    pos = "x at obs[0]" if n_pos == 1 else "(x, y) at obs[0:2]"
    return s.make_task(
        name=name,
        reward_fn=partial(forward_ctrl_reward, **s.forward_reward_kwargs()),
        termination_fn=partial(_no_termination, **s.dims),
        description=(
            f"{gym_id} with exclude_current_positions_from_observation=False: obs[0:{s.nq}] qpos "
            f"({pos}), obs[{s.nq}:{s.nq + s.nv}] qvel; reward "
            f"w_f*(obs'[0]-obs[0])/dt - w_c*||a||^2; never terminates"
        ),
        obs_layout={"qpos": (0, s.nq), "qvel": (s.nq, s.nq + s.nv)},
        obs_preprocess_fn=partial(drop_leading, count=n_pos, obs_dim=s.obs_dim),
        info={"x_index": 0, "model_input_dim": s.obs_dim - n_pos},
    )


def make_halfcheetah_task(**kwargs: Any) -> Task:
    """HalfCheetah-v5 task (x at obs[0]); ``kwargs`` go to ``gymnasium.make``."""
    return _forward_ctrl_task("halfcheetah", "HalfCheetah-v5", 1, kwargs)


def make_swimmer_task(**kwargs: Any) -> Task:
    """Swimmer-v5 task ((x, y) at obs[0:2]); ``kwargs`` go to ``gymnasium.make``."""
    return _forward_ctrl_task("swimmer", "Swimmer-v5", 2, kwargs)


def _healthy_task(
    name: str,
    s: EnvSetup,
    healthy_fn: Callable[[Tensor], Tensor],
    description: str,
    obs_layout: dict[str, tuple[int, int]],
) -> Task:
    return s.make_task(
        name=name,
        reward_fn=partial(
            healthy_forward_reward,
            **s.forward_reward_kwargs(),
            healthy_reward=float(s.params["healthy_reward"]),
            healthy_fn=healthy_fn,
        ),
        termination_fn=partial(
            unhealthy_termination,
            **s.dims,
            healthy_fn=healthy_fn,
            terminate_when_unhealthy=bool(s.params["terminate_when_unhealthy"]),
        ),
        description=description,
        obs_layout=obs_layout,
        obs_preprocess_fn=partial(drop_leading, count=1, obs_dim=s.obs_dim),
        info={"x_index": 0, "z_index": 1, "angle_index": 2, "model_input_dim": s.obs_dim - 1},
    )


def make_hopper_task(**kwargs: Any) -> Task:
    """Hopper-v5 task: x at obs[0], unclipped qvel appended; ``kwargs`` go to ``gymnasium.make``."""
    wrap = partial(AugmentedObservation, extra_fn=raw_qvel)
    s = setup_env("hopper", "Hopper-v5", kwargs, fixed=_KEEP_X, wrap=wrap)
    nq, nv = s.nq, s.nv
    healthy_fn = partial(
        hopper_healthy,
        nq=nq,
        nv=nv,
        state_range=as_range(s.params["healthy_state_range"], "healthy_state_range"),
        z_range=as_range(s.params["healthy_z_range"], "healthy_z_range"),
        angle_range=as_range(s.params["healthy_angle_range"], "healthy_angle_range"),
    )
    description = (
        f"Hopper-v5 with exclude_current_positions_from_observation=False plus unclipped qvel: "
        f"obs[0:{nq}] qpos (x obs[0], z obs[1], angle obs[2]), obs[{nq}:{nq + nv}] "
        f"clip(qvel, +-10), appended obs[{nq + nv}:{nq + 2 * nv}] unclipped qvel; healthy uses "
        f"obs[2:{nq}] and obs[{nq + nv}:{nq + 2 * nv}]"
    )
    layout = {
        "qpos": (0, nq),
        "clipped_qvel": (nq, nq + nv),
        "raw_qvel": (nq + nv, nq + 2 * nv),
    }
    return _healthy_task("hopper", s, healthy_fn, description, layout)


def make_walker2d_task(**kwargs: Any) -> Task:
    """Walker2d-v5 task (x at obs[0]); ``kwargs`` go to ``gymnasium.make``."""
    s = setup_env("walker2d", "Walker2d-v5", kwargs, fixed=_KEEP_X)
    nq, nv = s.nq, s.nv
    healthy_fn = partial(
        walker2d_healthy,
        z_range=as_range(s.params["healthy_z_range"], "healthy_z_range"),
        angle_range=as_range(s.params["healthy_angle_range"], "healthy_angle_range"),
    )
    description = (
        f"Walker2d-v5 with exclude_current_positions_from_observation=False: obs[0:{nq}] qpos "
        f"(x obs[0], z obs[1], angle obs[2]), obs[{nq}:{nq + nv}] clip(qvel, +-10); healthy "
        "uses obs[1], obs[2]"
    )
    layout = {"qpos": (0, nq), "clipped_qvel": (nq, nq + nv)}
    return _healthy_task("walker2d", s, healthy_fn, description, layout)
