"""Gymnasium MuJoCo v5 tasks with exact batched reward and termination functions.

Importing this package registers every task (and its Gymnasium id as an alias):

=========================== ============================= =======
name                        Gymnasium id                  obs_dim
=========================== ============================= =======
``inverted-pendulum``       ``InvertedPendulum-v5``       4
``inverted-double-pendulum`` ``InvertedDoublePendulum-v5`` 14
``reacher``                 ``Reacher-v5``                10
``pusher``                  ``Pusher-v5``                 23
``halfcheetah``             ``HalfCheetah-v5``            18
``hopper``                  ``Hopper-v5``                 18
``walker2d``                ``Walker2d-v5``               18
``swimmer``                 ``Swimmer-v5``                10
``ant``                     ``Ant-v5``                    107
``ant-truncated``           (MBPO's 27-dim Ant + x, y)    29
=========================== ============================= =======

Keyword arguments of ``get_task(name, **kwargs)`` go to ``gymnasium.make`` (e.g.
``ctrl_cost_weight``; also ``max_episode_steps`` and rendering options), and the reward function
uses the same weights. Where the stock v5 observation lacks what the reward needs, the task's
environment appends it; each task's ``description`` and ``info["obs_layout"]`` give the indices
(see docs/tasks_mujoco.md).
"""

from envs.mujoco_tasks.ant import make_ant_task, make_ant_truncated_task
from envs.mujoco_tasks.arms import make_pusher_task, make_reacher_task
from envs.mujoco_tasks.balance import (
    make_inverted_double_pendulum_task,
    make_inverted_pendulum_task,
)
from envs.mujoco_tasks.locomotion import (
    make_halfcheetah_task,
    make_hopper_task,
    make_swimmer_task,
    make_walker2d_task,
)
from envs.registry import register_task

__all__ = [
    "make_ant_task",
    "make_ant_truncated_task",
    "make_halfcheetah_task",
    "make_hopper_task",
    "make_inverted_double_pendulum_task",
    "make_inverted_pendulum_task",
    "make_pusher_task",
    "make_reacher_task",
    "make_swimmer_task",
    "make_walker2d_task",
]

register_task("inverted-pendulum", make_inverted_pendulum_task, aliases=("InvertedPendulum-v5",))
register_task(
    "inverted-double-pendulum",
    make_inverted_double_pendulum_task,
    aliases=("InvertedDoublePendulum-v5",),
)
register_task("reacher", make_reacher_task, aliases=("Reacher-v5",))
register_task("pusher", make_pusher_task, aliases=("Pusher-v5",))
register_task("halfcheetah", make_halfcheetah_task, aliases=("HalfCheetah-v5",))
register_task("hopper", make_hopper_task, aliases=("Hopper-v5",))
register_task("walker2d", make_walker2d_task, aliases=("Walker2d-v5",))
register_task("swimmer", make_swimmer_task, aliases=("Swimmer-v5",))
register_task("ant", make_ant_task, aliases=("Ant-v5",))
register_task("ant-truncated", make_ant_truncated_task)
