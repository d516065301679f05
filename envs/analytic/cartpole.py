"""Cart-pole tasks with Gymnasium CartPole's physics: continuous-force swing-up and balance,
and Gymnasium's own discrete ``CartPole-v1``.

State/observation ``[x, x_dot, theta, theta_dot]`` (m, m/s, rad, rad/s), ``theta = 0`` upright,
not wrapped. Explicit ("euler") integration exactly as Gymnasium: accelerations from the
pre-step state, then ``x += dt x_dot; x_dot += dt x_acc; theta += dt theta_dot;
theta_dot += dt theta_acc``.
"""

from __future__ import annotations

import functools
import math
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

SWINGUP_ENV_ID = "mbrl/CartPoleSwingup-v0"
BALANCE_ENV_ID = "mbrl/CartPoleBalance-v0"
DISCRETE_ENV_ID = "CartPole-v1"

X_THRESHOLD = 2.4
"""Balance/discrete tasks terminate when ``|x| > X_THRESHOLD`` (m), as Gymnasium."""
THETA_THRESHOLD = 12 * 2 * math.pi / 360
"""Balance/discrete tasks terminate when ``|theta| > THETA_THRESHOLD`` (12 deg), as Gymnasium."""


@dataclass(frozen=True)
class CartPoleSystem:
    """Cart-pole constants (Gymnasium CartPole's) and batched torch dynamics.

    Attributes:
        gravity (m/s^2), masscart (kg), masspole (kg), length: half the pole's length (m),
        force_max: force bound (N), dt: step (s).
    """

    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5
    force_max: float = 10.0
    dt: float = 0.05

    def __post_init__(self) -> None:
        for name in ("gravity", "masscart", "masspole", "length", "force_max", "dt"):
            object.__setattr__(self, name, check_positive(name, getattr(self, name)))

    def _step(self, obs: torch.Tensor, force: torch.Tensor) -> torch.Tensor:
        """``obs (..., 4)``, ``force (...)`` (N, already bounded) ``-> next_obs (..., 4)``."""
        x, x_dot, th, th_dot = obs.unbind(dim=-1)
        total_mass = self.masspole + self.masscart
        polemass_length = self.masspole * self.length
        cos, sin = torch.cos(th), torch.sin(th)
        temp = (force + polemass_length * th_dot**2 * sin) / total_mass
        th_acc = (self.gravity * sin - cos * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * cos**2 / total_mass)
        )
        x_acc = temp - polemass_length * th_acc * cos / total_mass
        return torch.stack(
            (
                x + self.dt * x_dot,
                x_dot + self.dt * x_acc,
                th + self.dt * th_dot,
                th_dot + self.dt * th_acc,
            ),
            dim=-1,
        )

    def dynamics(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Continuous force: ``(..., 4), (..., 1) -> (..., 4)``, force ``clip(u, +-force_max)``."""
        obs, act = check_batch(obs, act, 4, 1)
        return self._step(obs, torch.clamp(act[..., 0], -self.force_max, self.force_max))

    def discrete_dynamics(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Discrete action index ``(..., 1)`` in {0, 1} (float or int): force ``-/+ force_max``.

        ``obs (..., 4) -> (..., 4)``; differentiable with respect to ``obs``.
        """
        obs, act = check_batch(obs, act, 4, 1)
        a = act[..., 0]
        if not bool(((a == 0) | (a == 1)).all()):
            raise ValueError("act: discrete CartPole action indices must be 0 or 1")
        force = torch.where(a == 1, self.force_max, -self.force_max).to(obs.dtype)
        return self._step(obs, force)

    def swingup_reward(
        self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor:
        """``-(0.1 x^2 + 0.01 x_dot^2 + angle_normalize(theta)^2 + 0.01 theta_dot^2 + 0.001 u^2)``.

        Pre-step state, clipped ``u``; shape ``(...)``.
        """
        obs, act = check_batch(obs, act, 4, 1)
        x, x_dot, th, th_dot = obs.unbind(dim=-1)
        u = torch.clamp(act[..., 0], -self.force_max, self.force_max)
        return -(
            0.1 * x**2
            + 0.01 * x_dot**2
            + angle_normalize(th) ** 2
            + 0.01 * th_dot**2
            + 0.001 * u**2
        )


def balance_reward(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """1 per step, also on the terminating step (as Gymnasium CartPole): ``(...)``."""
    check_obs(next_obs, 4, "next_obs")
    batch = torch.broadcast_shapes(obs.shape[:-1], act.shape[:-1], next_obs.shape[:-1])
    return torch.ones(batch, dtype=next_obs.dtype, device=next_obs.device)


def balance_termination(
    obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """True where ``|x| > 2.4`` or ``|theta| > 12 deg`` in ``next_obs (..., 4)``: bool ``(...)``."""
    check_obs(next_obs, 4, "next_obs")
    x, th = next_obs[..., 0], next_obs[..., 2]
    done = (x < -X_THRESHOLD) | (x > X_THRESHOLD) | (th < -THETA_THRESHOLD) | (th > THETA_THRESHOLD)
    batch = torch.broadcast_shapes(obs.shape[:-1], act.shape[:-1], next_obs.shape[:-1])
    return done.expand(batch)


def cartpole_preprocess(obs: torch.Tensor) -> torch.Tensor:
    """``[x, x_dot, theta, theta_dot] (..., 4) -> [x, x_dot, cos, sin, theta_dot] (..., 5)``."""
    check_obs(obs, 4)
    th = obs[..., 2]
    return torch.stack((obs[..., 0], obs[..., 1], torch.cos(th), torch.sin(th), obs[..., 3]), -1)


class _ContinuousCartPoleEnv(AnalyticEnv):
    """Continuous-force cart-pole, numpy float64 step (no torch)."""

    def __init__(
        self,
        gravity: float,
        masscart: float,
        masspole: float,
        length: float,
        force_max: float,
        dt: float,
        init_noise: float,
    ) -> None:
        super().__init__()
        self.system = CartPoleSystem(gravity, masscart, masspole, length, force_max, dt)
        self.init_noise = check_nonnegative("init_noise", init_noise)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), dtype=np.float64)
        f = self.system.force_max
        self.action_space = gym.spaces.Box(-f, f, (1,), dtype=np.float64)

    def _physics(self, state: np.ndarray, u: float) -> np.ndarray:
        s = self.system
        x, x_dot, th, th_dot = (float(v) for v in state)
        force = min(max(u, -s.force_max), s.force_max)
        total_mass = s.masspole + s.masscart
        pml = s.masspole * s.length
        c, si = math.cos(th), math.sin(th)
        temp = (force + pml * th_dot * th_dot * si) / total_mass
        th_acc = (s.gravity * si - c * temp) / (
            s.length * (4.0 / 3.0 - s.masspole * c * c / total_mass)
        )
        x_acc = temp - pml * th_acc * c / total_mass
        return np.array(
            [x + s.dt * x_dot, x_dot + s.dt * x_acc, th + s.dt * th_dot, th_dot + s.dt * th_acc]
        )


class CartPoleSwingupEnv(_ContinuousCartPoleEnv):
    """Cart-pole swing-up: starts hanging (``theta = pi``) plus uniform noise of half-width
    ``init_noise`` on every state entry; never terminates; quadratic cost (see the module doc)."""

    def __init__(
        self,
        gravity: float = 9.8,
        masscart: float = 1.0,
        masspole: float = 0.1,
        length: float = 0.5,
        force_max: float = 10.0,
        dt: float = 0.05,
        init_noise: float = 0.05,
    ) -> None:
        super().__init__(gravity, masscart, masspole, length, force_max, dt, init_noise)

    def _initial_state(self, rng: np.random.Generator) -> np.ndarray:
        noise = self.init_noise
        return np.array([0.0, 0.0, np.pi, 0.0]) + rng.uniform(-noise, noise, size=4)

    def _transition(self, state: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        f = self.system.force_max
        u = float(np.clip(action[0], -f, f))
        x, x_dot, th, th_dot = (float(v) for v in state)
        cost = (
            0.1 * x**2
            + 0.01 * x_dot**2
            + float(angle_normalize(th)) ** 2
            + 0.01 * th_dot**2
            + 0.001 * u**2
        )
        return self._physics(state, u), -cost, False


class CartPoleBalanceEnv(_ContinuousCartPoleEnv):
    """Continuous-force cart-pole balance: starts uniform in ``[-init_noise, init_noise]^4``,
    reward 1 per step, terminates when ``|x| > 2.4`` or ``|theta| > 12 deg`` (Gymnasium's)."""

    def __init__(
        self,
        gravity: float = 9.8,
        masscart: float = 1.0,
        masspole: float = 0.1,
        length: float = 0.5,
        force_max: float = 10.0,
        dt: float = 0.02,
        init_noise: float = 0.05,
    ) -> None:
        super().__init__(gravity, masscart, masspole, length, force_max, dt, init_noise)

    def _initial_state(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-self.init_noise, self.init_noise, size=4)

    def _transition(self, state: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        nxt = self._physics(state, float(action[0]))
        x, th = float(nxt[0]), float(nxt[2])
        terminated = abs(x) > X_THRESHOLD or abs(th) > THETA_THRESHOLD
        return nxt, 1.0, terminated


def _continuous_task(
    name: str,
    env_id: str,
    system: CartPoleSystem,
    init_noise: float,
    max_episode_steps: int,
    balance: bool,
) -> Task:
    steps = check_steps(max_episode_steps)
    env_kwargs = {
        "gravity": system.gravity,
        "masscart": system.masscart,
        "masspole": system.masspole,
        "length": system.length,
        "force_max": system.force_max,
        "dt": system.dt,
        "init_noise": check_nonnegative("init_noise", init_noise),
    }
    what = "balance (reward 1/step, ends at |x|>2.4 or |theta|>12 deg)" if balance else "swing-up"
    return Task(
        name=name,
        obs_dim=4,
        act_dim=1,
        action_low=np.array([-system.force_max]),
        action_high=np.array([system.force_max]),
        max_episode_steps=steps,
        reward_fn=AtLeastFloat32(balance_reward if balance else system.swingup_reward),
        termination_fn=AtLeastFloat32(balance_termination if balance else never_terminates),
        env_factory=functools.partial(make_env, env_id, steps, env_kwargs),
        dynamics_fn=system.dynamics,
        obs_preprocess_fn=cartpole_preprocess,
        dt=system.dt,
        description=(
            f"Cart-pole {what}, continuous force; obs [x, x_dot, theta (0 upright, not wrapped), "
            "theta_dot], act [force]"
        ),
        info={"x_index": 0, "theta_index": 2, "env_id": env_id, "system": system},
    )


def cartpole_swingup_task(
    *,
    gravity: float = 9.8,
    masscart: float = 1.0,
    masspole: float = 0.1,
    length: float = 0.5,
    force_max: float = 10.0,
    dt: float = 0.05,
    init_noise: float = 0.05,
    max_episode_steps: int = 200,
) -> Task:
    """The ``cartpole-swingup`` task (continuous force, start hanging, 200 steps, dt 0.05 s)."""
    system = CartPoleSystem(gravity, masscart, masspole, length, force_max, dt)
    return _continuous_task(
        "cartpole-swingup", SWINGUP_ENV_ID, system, init_noise, max_episode_steps, balance=False
    )


def cartpole_balance_task(
    *,
    gravity: float = 9.8,
    masscart: float = 1.0,
    masspole: float = 0.1,
    length: float = 0.5,
    force_max: float = 10.0,
    dt: float = 0.02,
    init_noise: float = 0.05,
    max_episode_steps: int = 500,
) -> Task:
    """The ``cartpole-balance`` task (continuous force, starts near upright, 500 steps, dt 0.02)."""
    system = CartPoleSystem(gravity, masscart, masspole, length, force_max, dt)
    return _continuous_task(
        "cartpole-balance", BALANCE_ENV_ID, system, init_noise, max_episode_steps, balance=True
    )


def cartpole_discrete_task(*, max_episode_steps: int = 500) -> Task:
    """The ``cartpole-discrete`` task: Gymnasium's own ``CartPole-v1`` (actions 0/1 = push
    left/right with 10 N, dt 0.02 s). Its observations are float32 (Gymnasium's); its internal
    float64 state is ``env.unwrapped.state``."""
    steps = check_steps(max_episode_steps)
    system = CartPoleSystem(dt=0.02)
    return Task(
        name="cartpole-discrete",
        obs_dim=4,
        act_dim=1,
        action_low=np.array([0.0]),
        action_high=np.array([1.0]),
        max_episode_steps=steps,
        reward_fn=AtLeastFloat32(balance_reward),
        termination_fn=AtLeastFloat32(balance_termination),
        env_factory=functools.partial(make_env, DISCRETE_ENV_ID, steps, {}),
        dynamics_fn=system.discrete_dynamics,
        obs_preprocess_fn=cartpole_preprocess,
        dt=system.dt,
        num_actions=2,
        description=(
            "Gymnasium CartPole-v1, discrete actions {0: push left, 1: push right}; obs [x, "
            "x_dot, theta, theta_dot] (float32)"
        ),
        info={"x_index": 0, "theta_index": 2, "env_id": DISCRETE_ENV_ID, "system": system},
    )
