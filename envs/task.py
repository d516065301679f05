"""The :class:`Task` record: everything a planner or learner needs to know about an environment.

Reward, termination and (for analytic systems) dynamics functions are batched torch functions:
they accept tensors with any number of leading batch dimensions ``(..., dim)`` and return
``(...)`` for rewards and terminations, ``(..., obs_dim)`` for dynamics. The registered tasks
wrap their reward and termination functions in :class:`AtLeastFloat32`: float16/bfloat16 inputs
are computed (and rewards returned) in float32.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

Tensor = torch.Tensor
RewardFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``reward_fn(obs (..., obs_dim), act (..., act_dim), next_obs (..., obs_dim)) -> (...)``."""
TerminationFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``termination_fn(obs, act, next_obs) -> (...)`` bool tensor, True where the episode ends."""
DynamicsFn = Callable[[Tensor, Tensor], Tensor]
"""``dynamics_fn(obs (..., obs_dim), act (..., act_dim)) -> next_obs (..., obs_dim)``."""
ObsPreprocessFn = Callable[[Tensor], Tensor]
"""``obs_preprocess_fn(obs (..., obs_dim)) -> (..., d)``: model-input features (e.g. sin/cos)."""
ModelDataFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``model_data_fn(obs, act, next_obs) -> (...)`` bool tensor, True where the transition is one a
smooth dynamics model should learn (False e.g. where a hard joint stop acted)."""


@dataclass(frozen=True)
class Task:
    """A control task: dimensions, bounds, horizon, and exact batched reward/termination.

    Attributes:
        name: registry name, e.g. ``"halfcheetah"`` or ``"pendulum-swingup"``.
        obs_dim: length of the observation vector the task's environment returns.
        act_dim: length of the action vector.
        action_low: ``(act_dim,)`` lower action bounds.
        action_high: ``(act_dim,)`` upper action bounds.
        max_episode_steps: episode length (truncation) of the environment.
        reward_fn: batched reward, exact with respect to the environment's reward.
        termination_fn: batched termination flag (not truncation).
        env_factory: ``env_factory(**kwargs) -> gymnasium.Env`` building the environment whose
            observations match this task (wrappers included).
        dynamics_fn: analytic, differentiable dynamics (analytic tasks only), else ``None``.
        obs_preprocess_fn: optional transform of observations into model inputs.
        dt: seconds of simulated time per environment step.
        num_actions: for a ``Discrete(n)`` action space, ``n``; torch functions then receive the
            action index as a float tensor ``(..., 1)`` (``act_dim == 1``, bounds ``[0, n - 1]``).
        description: one line on the task, including any observation indices it documents.
        model_data_fn: optional batched predicate, False on transitions a learned model should
            not be fitted to (a contact the smooth model cannot represent); ``None``: all.
        info: free-form extra facts (e.g. index of the x position in the observation).
    """

    name: str
    obs_dim: int
    act_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    max_episode_steps: int
    reward_fn: RewardFn
    termination_fn: TerminationFn
    env_factory: Callable[..., gym.Env]
    dynamics_fn: DynamicsFn | None = None
    obs_preprocess_fn: ObsPreprocessFn | None = None
    dt: float | None = None
    num_actions: int | None = None
    description: str = ""
    info: Mapping[str, Any] = field(default_factory=dict)
    model_data_fn: ModelDataFn | None = None

    def make_env(self, **kwargs: Any) -> gym.Env:
        """Build a fresh environment for this task (keyword arguments go to its factory)."""
        return self.env_factory(**kwargs)

    @property
    def is_discrete(self) -> bool:
        """True when the action space is ``Discrete(num_actions)``."""
        return self.num_actions is not None

    @property
    def is_analytic(self) -> bool:
        """True when the task carries differentiable ``dynamics_fn``."""
        return self.dynamics_fn is not None


class AtLeastFloat32:
    """Call ``fn(obs, act, next_obs)`` with float16/bfloat16 tensors upcast to float32.

    Wraps a task's ``reward_fn`` / ``termination_fn`` (picklable if ``fn`` is). Half-precision
    arithmetic loses what the inputs still hold (e.g. ``x' - x`` at ``x`` about 50, divided by
    ``dt``); in float32 the only error left is the inputs' own rounding.
    """

    def __init__(self, fn: Callable[[Tensor, Tensor, Tensor], Tensor]) -> None:
        self.fn = fn

    def __call__(self, obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
        """``fn(obs, act, next_obs)``; low-precision floating tensors go in as float32."""
        if _low(obs) or _low(act) or _low(next_obs):
            obs, act, next_obs = (t.float() if _low(t) else t for t in (obs, act, next_obs))
        return self.fn(obs, act, next_obs)

    def __repr__(self) -> str:
        return f"AtLeastFloat32({self.fn!r})"


def _low(t: object) -> bool:
    return isinstance(t, torch.Tensor) and t.dtype in (torch.float16, torch.bfloat16)


def never_terminates(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """Termination of tasks that never terminate: all False, shape ``next_obs.shape[:-1]``."""
    return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)
