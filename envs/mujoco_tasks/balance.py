"""Balancing tasks: ``inverted-pendulum`` (InvertedPendulum-v5), ``inverted-double-pendulum``.

InvertedPendulum-v5 observation (4): ``[cart x, pole angle, cart velocity, pole angular velocity]``;
reward 1 while ``|angle| <= 0.2`` and the observation is finite, and the episode terminates
otherwise. Reward and termination are functions of ``next_obs`` alone.

InvertedDoublePendulum-v5 scores the tip *site* position and *unclipped* joint velocities, which
the stock observation lacks (``site_xpos`` lags ``qpos`` by one physics substep, and the stock
``qvel`` is clipped to ``[-10, 10]``), so the task's observation appends them:
indices 0-8 stock v5 observation, 9 tip x, 10 tip z (height), 11-13 unclipped qvel
(cart, hinge 1, hinge 2).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from envs.mujoco_tasks.common import Tensor, check_transition, finish, setup_env
from envs.mujoco_tasks.wrappers import AugmentedObservation, tip_xz_and_raw_qvel
from envs.task import Task

__all__ = ["make_inverted_double_pendulum_task", "make_inverted_pendulum_task"]


def _ip_terminated(next_obs: Tensor, angle_limit: float) -> Tensor:
    return ~torch.isfinite(next_obs).all(dim=-1) | (next_obs[..., 1].abs() > angle_limit)


def inverted_pendulum_reward(
    obs: Tensor, act: Tensor, next_obs: Tensor, *, obs_dim: int, act_dim: int
) -> Tensor:
    """InvertedPendulum-v5 reward ``(...)``: 1 while balanced (``|next_obs[1]| <= 0.2``), else 0."""
    batch, dtype = check_transition("reward_fn", obs, act, next_obs, obs_dim, act_dim)
    return finish((~_ip_terminated(next_obs, 0.2)).to(dtype), batch)


def inverted_pendulum_termination(
    obs: Tensor, act: Tensor, next_obs: Tensor, *, obs_dim: int, act_dim: int
) -> Tensor:
    """InvertedPendulum-v5 ``terminated`` ``(...)`` bool: non-finite obs or ``|angle| > 0.2``."""
    batch, _ = check_transition("termination_fn", obs, act, next_obs, obs_dim, act_dim)
    return finish(_ip_terminated(next_obs, 0.2), batch)


IP_RAIL = 1.0
"""Half-length of InvertedPendulum-v5's rail: the slider joint's range is ``[-1, 1]``."""
IP_RAIL_MARGIN = 1e-3
"""Transitions starting or ending within this distance of a rail end count as rail contact."""


def inverted_pendulum_model_data(
    obs: Tensor, act: Tensor, next_obs: Tensor, *, obs_dim: int, act_dim: int
) -> Tensor:
    """``(...)`` bool: False where the cart is at a rail end before or after the step.

    There the joint limit stops the cart (x_dot drops to 0 within one step), a contact a smooth
    model of ``(obs, act)`` cannot represent; fitting those few transitions made a PETS model
    7-10x worse on ordinary upright states (docs/pets.md, "the regression after reaching 1000").
    """
    batch, _ = check_transition("model_data_fn", obs, act, next_obs, obs_dim, act_dim)
    limit = IP_RAIL - IP_RAIL_MARGIN
    free = (obs[..., 0].abs() < limit) & (next_obs[..., 0].abs() < limit)
    return finish(free, batch)


def make_inverted_pendulum_task(**kwargs: Any) -> Task:
    """InvertedPendulum-v5 task; ``kwargs`` go to ``gymnasium.make`` (or ``max_episode_steps``)."""
    s = setup_env("inverted-pendulum", "InvertedPendulum-v5", kwargs)
    return s.make_task(
        name="inverted-pendulum",
        reward_fn=partial(inverted_pendulum_reward, **s.dims),
        termination_fn=partial(inverted_pendulum_termination, **s.dims),
        description=(
            "InvertedPendulum-v5, stock observation [cart x, angle, cart vel, angular vel]; "
            "reward 1 while |obs[1]| <= 0.2, terminates otherwise"
        ),
        obs_layout={"qpos": (0, 2), "qvel": (2, 4)},
        info={"angle_index": 1},
        model_data_fn=partial(inverted_pendulum_model_data, **s.dims),
    )


def _idp_terminated(next_obs: Tensor, tip_z_index: int) -> Tensor:
    return next_obs[..., tip_z_index] <= 1.0


def inverted_double_pendulum_reward(
    obs: Tensor,
    act: Tensor,
    next_obs: Tensor,
    *,
    obs_dim: int,
    act_dim: int,
    healthy_reward: float,
    tip_index: int,
    qvel_index: int,
) -> Tensor:
    """InvertedDoublePendulum-v5 reward ``(...)``.

    ``healthy_reward * [tip z > 1] - (0.01 tip_x**2 + (tip_z - 2)**2)
    - (1e-3 qvel[1]**2 + 5e-3 qvel[2]**2)``, all read from ``next_obs`` (tip site at
    ``tip_index, tip_index + 1``, unclipped qvel from ``qvel_index``).
    """
    batch, dtype = check_transition("reward_fn", obs, act, next_obs, obs_dim, act_dim)
    x = next_obs[..., tip_index]
    y = next_obs[..., tip_index + 1]
    v1 = next_obs[..., qvel_index + 1]
    v2 = next_obs[..., qvel_index + 2]
    dist_penalty = 0.01 * x**2 + (y - 2) ** 2
    vel_penalty = 1e-3 * v1**2 + 5e-3 * v2**2
    alive_bonus = healthy_reward * (~_idp_terminated(next_obs, tip_index + 1)).to(next_obs.dtype)
    return finish(alive_bonus - dist_penalty - vel_penalty, batch, dtype)


def inverted_double_pendulum_termination(
    obs: Tensor, act: Tensor, next_obs: Tensor, *, obs_dim: int, act_dim: int, tip_index: int
) -> Tensor:
    """InvertedDoublePendulum-v5 ``terminated`` ``(...)`` bool: tip height ``<= 1`` m."""
    batch, _ = check_transition("termination_fn", obs, act, next_obs, obs_dim, act_dim)
    return finish(_idp_terminated(next_obs, tip_index + 1), batch)


def make_inverted_double_pendulum_task(**kwargs: Any) -> Task:
    """InvertedDoublePendulum-v5 with tip position and unclipped qvel appended to the observation.

    ``kwargs`` go to ``gymnasium.make`` (e.g. ``healthy_reward``), plus ``max_episode_steps``.
    """
    wrap = partial(AugmentedObservation, extra_fn=tip_xz_and_raw_qvel)
    s = setup_env("inverted-double-pendulum", "InvertedDoublePendulum-v5", kwargs, wrap=wrap)
    stock = s.obs_dim - 2 - s.nv
    tip, qvel = stock, stock + 2
    return s.make_task(
        name="inverted-double-pendulum",
        reward_fn=partial(
            inverted_double_pendulum_reward,
            **s.dims,
            healthy_reward=float(s.params["healthy_reward"]),
            tip_index=tip,
            qvel_index=qvel,
        ),
        termination_fn=partial(inverted_double_pendulum_termination, **s.dims, tip_index=tip),
        description=(
            f"InvertedDoublePendulum-v5; obs[0:{stock}] stock v5, appended obs[{tip}] tip x, "
            f"obs[{tip + 1}] tip z, obs[{qvel}:{qvel + s.nv}] unclipped qvel; "
            f"terminates when obs[{tip + 1}] <= 1"
        ),
        obs_layout={
            "stock_v5": (0, stock),
            "tip_xz": (tip, tip + 2),
            "raw_qvel": (qvel, qvel + s.nv),
        },
        info={"tip_x_index": tip, "tip_z_index": tip + 1, "raw_qvel_index": qvel},
    )
