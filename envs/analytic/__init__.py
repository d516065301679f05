"""Analytic tasks (pendulum, cart-pole, linear systems) with differentiable torch dynamics.

Importing this package registers the tasks with :mod:`envs.registry` (``pendulum-swingup``,
``cartpole-swingup``, ``cartpole-balance``, ``cartpole-discrete``, ``linear``) and their
environments with Gymnasium (``mbrl/PendulumSwingup-v0``, ``mbrl/CartPoleSwingup-v0``,
``mbrl/CartPoleBalance-v0``, ``mbrl/Linear-v0``; ``cartpole-discrete`` is ``CartPole-v1``).
See ``docs/tasks_analytic.md``.
"""

import gymnasium as gym

from envs.analytic import cartpole, linear, pendulum
from envs.analytic.angles import angle_normalize
from envs.analytic.cartpole import (
    CartPoleBalanceEnv,
    CartPoleSwingupEnv,
    CartPoleSystem,
    cartpole_balance_task,
    cartpole_discrete_task,
    cartpole_swingup_task,
)
from envs.analytic.linear import LinearEnv, LinearSystem, double_integrator, linear_task
from envs.analytic.pendulum import PendulumSwingupEnv, PendulumSystem, pendulum_swingup_task
from envs.registry import register_task

_GYM_ENVS = {
    pendulum.ENV_ID: ("envs.analytic.pendulum:PendulumSwingupEnv", 200),
    cartpole.SWINGUP_ENV_ID: ("envs.analytic.cartpole:CartPoleSwingupEnv", 200),
    cartpole.BALANCE_ENV_ID: ("envs.analytic.cartpole:CartPoleBalanceEnv", 500),
    linear.ENV_ID: ("envs.analytic.linear:LinearEnv", 100),
}
for _env_id, (_entry_point, _steps) in _GYM_ENVS.items():
    if _env_id not in gym.registry:
        gym.register(id=_env_id, entry_point=_entry_point, max_episode_steps=_steps)

register_task("pendulum-swingup", pendulum_swingup_task)
register_task("cartpole-swingup", cartpole_swingup_task)
register_task("cartpole-balance", cartpole_balance_task)
register_task("cartpole-discrete", cartpole_discrete_task)
register_task("linear", linear_task)

__all__ = [
    "CartPoleBalanceEnv",
    "CartPoleSwingupEnv",
    "CartPoleSystem",
    "LinearEnv",
    "LinearSystem",
    "PendulumSwingupEnv",
    "PendulumSystem",
    "angle_normalize",
    "cartpole_balance_task",
    "cartpole_discrete_task",
    "cartpole_swingup_task",
    "double_integrator",
    "linear_task",
    "pendulum_swingup_task",
]
