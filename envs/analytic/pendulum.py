"""Pendulum swing-up with Gymnasium Pendulum-v1's physics, unwrapped angle as observation.

State/observation ``[theta, theta_dot]`` (rad, rad/s), ``theta = 0`` upright, not wrapped.
Action ``[u]`` torque (N m), clipped to ``[-max_torque, max_torque]``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from envs.analytic.angles import angle_normalize
from envs.analytic.base import (
    AnalyticEnv,
    check_batch,
    check_nonnegative,
    check_obs,
    check_positive,
    check_steps,
    make_env,
)
from envs.task import AtLeastFloat32, Task, never_terminates

ENV_ID = "mbrl/PendulumSwingup-v0"


@dataclass(frozen=True)
class PendulumSystem:
    """Constants of the pendulum and its batched torch functions (Gymnasium Pendulum-v1 defaults).

    Attributes:
        g: gravity (m/s^2). m: mass (kg). l: length (m). dt: step (s).
        max_torque: torque bound (N m). max_speed: ``|theta_dot|`` clip (rad/s), ``None`` = no clip.
        init_noise: half-width of the uniform noise added to the start ``[pi, 0]``.
    """

    g: float = 10.0
    m: float = 1.0
    l: float = 1.0
    dt: float = 0.05
    max_torque: float = 2.0
    max_speed: float | None = 8.0
    init_noise: float = 0.05

    def __post_init__(self) -> None:
        for name in ("g", "m", "l", "dt", "max_torque"):
            object.__setattr__(self, name, check_positive(name, getattr(self, name)))
        if self.max_speed is not None:
            object.__setattr__(self, "max_speed", check_positive("max_speed", self.max_speed))
        object.__setattr__(self, "init_noise", check_nonnegative("init_noise", self.init_noise))

    def dynamics(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """``(..., 2), (..., 1) -> (..., 2)``: one semi-implicit Euler step (Gymnasium's)."""
        obs, act = check_batch(obs, act, 2, 1)
        th, thdot = obs[..., 0], obs[..., 1]
        u = torch.clamp(act[..., 0], -self.max_torque, self.max_torque)
        acc = 3.0 * self.g / (2.0 * self.l) * torch.sin(th) + 3.0 / (self.m * self.l**2) * u
        new_thdot = thdot + acc * self.dt
        if self.max_speed is not None:
            new_thdot = torch.clamp(new_thdot, -self.max_speed, self.max_speed)
        new_th = th + new_thdot * self.dt
        return torch.stack((new_th, new_thdot), dim=-1)

    def reward(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """``-(angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2)``, pre-step state and clipped u.

        Shapes ``(..., 2), (..., 1), (..., 2) -> (...)``.
        """
        obs, act = check_batch(obs, act, 2, 1)
        u = torch.clamp(act[..., 0], -self.max_torque, self.max_torque)
        th, thdot = obs[..., 0], obs[..., 1]
        return -(angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2)


def pendulum_preprocess(obs: torch.Tensor) -> torch.Tensor:
    """``[theta, theta_dot] (..., 2) -> [cos theta, sin theta, theta_dot] (..., 3)``."""
    check_obs(obs, 2)
    th = obs[..., 0]
    return torch.stack((torch.cos(th), torch.sin(th), obs[..., 1]), dim=-1)


class PendulumSwingupEnv(AnalyticEnv):
    """Gymnasium environment of the pendulum swing-up (numpy float64 step, no torch).

    Keyword arguments are :class:`PendulumSystem`'s fields. Starts at ``[pi, 0]`` plus uniform
    noise in ``[-init_noise, init_noise]`` on both entries; never terminates.
    """

    def __init__(
        self,
        g: float = 10.0,
        m: float = 1.0,
        l: float = 1.0,
        dt: float = 0.05,
        max_torque: float = 2.0,
        max_speed: float | None = 8.0,
        init_noise: float = 0.05,
    ) -> None:
        super().__init__()
        self.system = PendulumSystem(g, m, l, dt, max_torque, max_speed, init_noise)
        s = self.system
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), dtype=np.float64)
        self.action_space = gym.spaces.Box(-s.max_torque, s.max_torque, (1,), dtype=np.float64)

    def _initial_state(self, rng: np.random.Generator) -> np.ndarray:
        noise = self.system.init_noise
        return np.array([np.pi, 0.0]) + rng.uniform(-noise, noise, size=2)

    def _transition(self, state: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        s = self.system
        th, thdot = float(state[0]), float(state[1])
        u = float(np.clip(action[0], -s.max_torque, s.max_torque))
        cost = float(angle_normalize(th)) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
        new_thdot = thdot + (3.0 * s.g / (2.0 * s.l) * np.sin(th) + 3.0 / (s.m * s.l**2) * u) * s.dt
        if s.max_speed is not None:
            new_thdot = min(max(new_thdot, -s.max_speed), s.max_speed)
        new_th = th + new_thdot * s.dt
        return np.array([new_th, new_thdot]), -cost, False


def pendulum_swingup_task(
    *,
    g: float = 10.0,
    m: float = 1.0,
    l: float = 1.0,
    dt: float = 0.05,
    max_torque: float = 2.0,
    max_speed: float | None = 8.0,
    init_noise: float = 0.05,
    max_episode_steps: int = 200,
) -> Task:
    """The ``pendulum-swingup`` task (defaults: Gymnasium Pendulum-v1's constants, 200 steps)."""
    system = PendulumSystem(g, m, l, dt, max_torque, max_speed, init_noise)
    steps = check_steps(max_episode_steps)
    env_kwargs = {
        "g": system.g,
        "m": system.m,
        "l": system.l,
        "dt": system.dt,
        "max_torque": system.max_torque,
        "max_speed": system.max_speed,
        "init_noise": system.init_noise,
    }
    return Task(
        name="pendulum-swingup",
        obs_dim=2,
        act_dim=1,
        action_low=np.array([-system.max_torque]),
        action_high=np.array([system.max_torque]),
        max_episode_steps=steps,
        reward_fn=AtLeastFloat32(system.reward),
        termination_fn=never_terminates,
        env_factory=functools.partial(make_env, ENV_ID, steps, env_kwargs),
        dynamics_fn=system.dynamics,
        obs_preprocess_fn=pendulum_preprocess,
        dt=system.dt,
        description=(
            "Pendulum swing-up (Gymnasium Pendulum-v1 physics); obs [theta (0 upright, not "
            "wrapped), theta_dot], act [torque]"
        ),
        info={"theta_index": 0, "theta_dot_index": 1, "env_id": ENV_ID, "system": system},
    )
