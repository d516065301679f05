"""Arm tasks: ``reacher`` (Reacher-v5) and ``pusher`` (Pusher-v5), stock v5 observations.

Since Gymnasium 1.0 both v5 environments compute the reward *after* simulating (v4 used the
state before the step), so the reward is a function of ``(act, next_obs)``:

* Reacher-v5 (obs 10): ``[cos q (2), sin q (2), target xy (2), qvel[:2] (2), fingertip - target
  (x, y) (2)]``; reward ``-w_dist * ||next_obs[8:10]|| - w_ctrl * ||a||^2``. The z offset between
  fingertip and target is identically 0 (both bodies stay at z = 0.01: the arm only rotates about
  z), so the planar distance equals Gymnasium's 3-D distance.
* Pusher-v5 (obs 23): ``[qpos[:7], qvel[:7], tips_arm xyz (14:17), object xyz (17:20), goal xyz
  (20:23)]``; reward ``-w_near ||object - tips|| - w_dist ||object - goal|| - w_ctrl ||a||^2``.

Neither task terminates.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from envs.mujoco_tasks.common import Tensor, check_transition, control_cost, finish, setup_env
from envs.task import Task, never_terminates

__all__ = ["make_pusher_task", "make_reacher_task"]


def reacher_reward(
    obs: Tensor,
    act: Tensor,
    next_obs: Tensor,
    *,
    obs_dim: int,
    act_dim: int,
    dist_weight: float,
    control_weight: float,
) -> Tensor:
    """Reacher-v5 reward ``(...)``: ``-w_dist ||next_obs[8:10]|| - w_ctrl ||act||^2``."""
    batch, dtype = check_transition("reward_fn", obs, act, next_obs, obs_dim, act_dim)
    dist = next_obs[..., 8:10].square().sum(dim=-1).sqrt()
    reward = -dist * dist_weight - control_cost(act, control_weight)
    return finish(reward, batch, dtype)


def pusher_reward(
    obs: Tensor,
    act: Tensor,
    next_obs: Tensor,
    *,
    obs_dim: int,
    act_dim: int,
    near_weight: float,
    dist_weight: float,
    control_weight: float,
) -> Tensor:
    """Pusher-v5 reward ``(...)`` from the tip, object and goal positions in ``next_obs``."""
    batch, dtype = check_transition("reward_fn", obs, act, next_obs, obs_dim, act_dim)
    tips, obj, goal = next_obs[..., 14:17], next_obs[..., 17:20], next_obs[..., 20:23]
    near = (obj - tips).square().sum(dim=-1).sqrt()
    dist = (obj - goal).square().sum(dim=-1).sqrt()
    reward = -dist * dist_weight - control_cost(act, control_weight) - near * near_weight
    return finish(reward, batch, dtype)


def _termination(
    obs: Tensor, act: Tensor, next_obs: Tensor, *, obs_dim: int, act_dim: int
) -> Tensor:
    """Never terminates: all False ``(...)`` (inputs checked)."""
    batch, _ = check_transition("termination_fn", obs, act, next_obs, obs_dim, act_dim)
    return finish(never_terminates(obs, act, next_obs), batch)


def make_reacher_task(**kwargs: Any) -> Task:
    """Reacher-v5 task; ``kwargs`` go to ``gymnasium.make`` (e.g. ``reward_dist_weight``)."""
    s = setup_env("reacher", "Reacher-v5", kwargs)
    if s.obs_dim != 10:
        raise ValueError(f"reacher: expected a 10-dim Reacher-v5 observation, got {s.obs_dim}")
    return s.make_task(
        name="reacher",
        reward_fn=partial(
            reacher_reward,
            **s.dims,
            dist_weight=float(s.params["reward_dist_weight"]),
            control_weight=float(s.params["reward_control_weight"]),
        ),
        termination_fn=partial(_termination, **s.dims),
        description=(
            "Reacher-v5, stock observation; obs[8:10] = fingertip - target (x, y), reward "
            "-w_dist*||obs'[8:10]|| - w_ctrl*||a||^2; never terminates"
        ),
        obs_layout={
            "cos_q": (0, 2),
            "sin_q": (2, 4),
            "target_xy": (4, 6),
            "qvel": (6, 8),
            "fingertip_minus_target_xy": (8, 10),
        },
    )


def make_pusher_task(**kwargs: Any) -> Task:
    """Pusher-v5 task; ``kwargs`` go to ``gymnasium.make`` (e.g. ``reward_near_weight``)."""
    s = setup_env("pusher", "Pusher-v5", kwargs)
    if s.obs_dim != 23:
        raise ValueError(f"pusher: expected a 23-dim Pusher-v5 observation, got {s.obs_dim}")
    return s.make_task(
        name="pusher",
        reward_fn=partial(
            pusher_reward,
            **s.dims,
            near_weight=float(s.params["reward_near_weight"]),
            dist_weight=float(s.params["reward_dist_weight"]),
            control_weight=float(s.params["reward_control_weight"]),
        ),
        termination_fn=partial(_termination, **s.dims),
        description=(
            "Pusher-v5, stock observation; obs[14:17] tips_arm, obs[17:20] object, obs[20:23] "
            "goal (xyz); never terminates"
        ),
        obs_layout={
            "qpos": (0, 7),
            "qvel": (7, 14),
            "tips_arm_xyz": (14, 17),
            "object_xyz": (17, 20),
            "goal_xyz": (20, 23),
        },
    )
