"""Ant tasks: ``ant`` (Ant-v5) and ``ant-truncated`` (MBPO's 27-dim observation + position).

Ant-v5 measures forward velocity with the *main body's frame position*
``data.body(main_body).xpos`` before and after the step. After ``mj_step`` that position lags
``qpos`` by one physics substep (MuJoCo computes kinematics before integrating), so it differs
from ``qpos[0:2]`` and must be observed: both tasks *prepend* the main body's ``(x, y)`` to the
stock observation built with ``exclude_current_positions_from_observation=True``:

* ``ant`` (obs 107): ``[body x, body y (0:2), qpos[2:] (2:15), qvel (15:29),
  clip(cfrc_ext[1:], contact_force_range) (29:107)]``. The contact cost
  ``w_contact * sum(clip(cfrc_ext)**2)`` runs over all bodies including the world body, whose
  ``cfrc_ext`` MuJoCo leaves at zero, so it equals ``w_contact * sum(next_obs[29:]**2)``.
* ``ant-truncated`` (obs 29): ``[body x, body y (0:2), qpos[2:] (2:15), qvel (15:29)]``; no
  contact forces (``include_cfrc_ext_in_observation=False``) and ``contact_cost_weight=0``
  (fixed) so the reward is exact. ``obs_preprocess_fn`` returns the 27-dim
  ``[qpos[2:], qvel]`` observation that MBPO uses.

Reward: ``w_f (x' - x)/dt + r_h [healthy] - w_c ||a||^2 - contact cost`` with ``x = obs[0]``.
Healthy (inclusive, as Gymnasium): ``min_z <= qpos[2] = obs[2] <= max_z`` and the state is
finite (checked on ``obs[0:29]``: body position, ``qpos[2:]`` and ``qvel``).
``terminated = (not healthy) and terminate_when_unhealthy``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from envs.mujoco_tasks.common import (
    Tensor,
    as_range,
    check_transition,
    control_cost,
    drop_leading,
    finish,
    setup_env,
)
from envs.mujoco_tasks.wrappers import AugmentedObservation, main_body_xy
from envs.task import Task

__all__ = ["make_ant_task", "make_ant_truncated_task"]

_DEFAULT_MAIN_BODY = 1  # Ant-v5's default ``main_body`` (the torso)


def ant_healthy(next_obs: Tensor, *, state_end: int, z_range: tuple[float, float]) -> Tensor:
    """Ant-v5 ``is_healthy`` ``(...)`` bool: finite ``next_obs[:state_end]``, z in closed range."""
    z = next_obs[..., 2]
    finite = torch.isfinite(next_obs[..., :state_end]).all(dim=-1)
    return finite & (z >= z_range[0]) & (z <= z_range[1])


def ant_reward(
    obs: Tensor,
    act: Tensor,
    next_obs: Tensor,
    *,
    obs_dim: int,
    act_dim: int,
    dt: float,
    forward_weight: float,
    ctrl_weight: float,
    contact_weight: float,
    healthy_reward: float,
    state_end: int,
    z_range: tuple[float, float],
) -> Tensor:
    """Ant-v5 reward ``(...)``; contact forces are ``next_obs[state_end:]`` (empty if truncated)."""
    batch, dtype = check_transition("reward_fn", obs, act, next_obs, obs_dim, act_dim)
    forward = forward_weight * ((next_obs[..., 0] - obs[..., 0]) / dt)
    healthy = ant_healthy(next_obs, state_end=state_end, z_range=z_range)
    rewards = forward + healthy.to(next_obs.dtype) * healthy_reward
    costs = control_cost(act, ctrl_weight)
    if state_end < obs_dim:
        costs = costs + contact_weight * next_obs[..., state_end:].square().sum(dim=-1)
    return finish(rewards - costs, batch, dtype)


def ant_termination(
    obs: Tensor,
    act: Tensor,
    next_obs: Tensor,
    *,
    obs_dim: int,
    act_dim: int,
    state_end: int,
    z_range: tuple[float, float],
    terminate_when_unhealthy: bool,
) -> Tensor:
    """Ant-v5 ``terminated`` ``(...)`` bool: ``not healthy and terminate_when_unhealthy``."""
    batch, _ = check_transition("termination_fn", obs, act, next_obs, obs_dim, act_dim)
    terminated = ~ant_healthy(next_obs, state_end=state_end, z_range=z_range)
    if not terminate_when_unhealthy:
        terminated = torch.zeros_like(terminated)
    return finish(terminated, batch)


def _ant_task(name: str, kwargs: dict[str, Any], truncated: bool) -> Task:
    main_body = kwargs.get("main_body", _DEFAULT_MAIN_BODY)
    wrap = partial(
        AugmentedObservation, extra_fn=partial(main_body_xy, main_body=main_body), prepend=True
    )
    fixed: dict[str, tuple[Any, str]] = {
        "exclude_current_positions_from_observation": (
            True,
            "the main body's (x, y) is prepended to the observation instead",
        ),
        "include_cfrc_ext_in_observation": (
            not truncated,
            "MBPO's truncated observation has no contact forces"
            if truncated
            else "the contact cost needs the contact forces; use 'ant-truncated' without them",
        ),
    }
    if truncated:
        fixed["contact_cost_weight"] = (
            0.0,
            "without contact forces in the observation the contact cost is not computable",
        )
    s = setup_env(name, "Ant-v5", kwargs, fixed=fixed, wrap=wrap)
    if s.params["main_body"] != main_body:
        raise RuntimeError(
            f"{name}: Ant-v5's default main_body changed to {s.params['main_body']!r}; "
            "pass main_body explicitly"
        )
    state_end = s.nq + s.nv  # 2 body coordinates + (nq - 2) qpos[2:] + nv qvel
    z_range = as_range(s.params["healthy_z_range"], "healthy_z_range")
    contact = "" if truncated else f", obs[{state_end}:{s.obs_dim}] clipped cfrc_ext[1:]"
    return s.make_task(
        name=name,
        reward_fn=partial(
            ant_reward,
            **s.forward_reward_kwargs(),
            contact_weight=float(s.params["contact_cost_weight"]),
            healthy_reward=float(s.params["healthy_reward"]),
            state_end=state_end,
            z_range=z_range,
        ),
        termination_fn=partial(
            ant_termination,
            **s.dims,
            state_end=state_end,
            z_range=z_range,
            terminate_when_unhealthy=bool(s.params["terminate_when_unhealthy"]),
        ),
        description=(
            f"Ant-v5{' (MBPO truncated obs, contact_cost_weight=0)' if truncated else ''}: "
            f"prepended obs[0:2] main body (x, y) xpos, obs[2:{2 + s.nq - 2}] qpos[2:] "
            f"(z obs[2]), obs[{s.nq}:{state_end}] qvel{contact}; reward "
            "w_f*(obs'[0]-obs[0])/dt + healthy - costs"
        ),
        obs_layout={
            "main_body_xy": (0, 2),
            "qpos_from_2": (2, s.nq),
            "qvel": (s.nq, state_end),
            **({} if truncated else {"clipped_cfrc_ext": (state_end, s.obs_dim)}),
        },
        obs_preprocess_fn=partial(drop_leading, count=2, obs_dim=s.obs_dim),
        info={"x_index": 0, "z_index": 2, "model_input_dim": s.obs_dim - 2},
    )


def make_ant_task(**kwargs: Any) -> Task:
    """Ant-v5 task (main body (x, y) prepended); ``kwargs`` go to ``gymnasium.make``."""
    return _ant_task("ant", kwargs, truncated=False)


def make_ant_truncated_task(**kwargs: Any) -> Task:
    """Ant-v5 with MBPO's 27-dim observation plus the main body's (x, y) (29 in all).

    ``include_cfrc_ext_in_observation=False`` and ``contact_cost_weight=0`` are fixed; other
    ``kwargs`` go to ``gymnasium.make``.
    """
    return _ant_task("ant-truncated", kwargs, truncated=True)
