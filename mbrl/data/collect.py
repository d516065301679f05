"""Running a policy in an environment and recording what it sees.

>>> buffer = buffer_for_task(task, capacity=100_000)
>>> ret, steps = collect_episode(env, RandomPolicy(task, rng), buffer, max_steps=1000)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mbrl.data.replay_buffer import ReplayBuffer

__all__ = [
    "Policy",
    "RandomPolicy",
    "buffer_for_task",
    "collect_episode",
    "collect_random_data",
]

Policy = Callable[[np.ndarray], "np.ndarray | int"]
"""``policy(obs (obs_dim,)) -> action``: an ``(act_dim,)`` array, or an ``int`` (discrete)."""


class RandomPolicy:
    """Uniform random actions within the task's bounds, drawn from ``rng``.

    Args:
        task: an :class:`envs.Task` (continuous: uniform in ``[action_low, action_high]``;
            discrete: a uniform index in ``[0, num_actions)``).
        rng: the numpy generator every action is drawn from.
    """

    def __init__(self, task: Any, rng: np.random.Generator) -> None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng: expected a numpy Generator, got {type(rng).__name__}")
        self.rng = rng
        self.num_actions = task.num_actions
        self.low = np.asarray(task.action_low, np.float64)
        self.high = np.asarray(task.action_high, np.float64)

    def __call__(self, obs: np.ndarray) -> np.ndarray | int:
        """A random action (``obs`` is ignored)."""
        if self.num_actions is not None:
            return int(self.rng.integers(self.num_actions))
        return self.rng.uniform(self.low, self.high).astype(np.float32)


def buffer_for_task(task: Any, capacity: int) -> ReplayBuffer:
    """An empty :class:`ReplayBuffer` sized for ``task`` (one action column if discrete)."""
    act_dim = 1 if task.num_actions is not None else task.act_dim
    return ReplayBuffer(capacity, task.obs_dim, act_dim)


def collect_episode(
    env: Any,
    policy: Policy,
    buffer: ReplayBuffer | None = None,
    *,
    max_steps: int,
    reset_seed: int | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[float, int]:
    """Run one episode of ``policy`` in ``env``, appending every transition to ``buffer``.

    With ``buffer=None`` it only evaluates the policy.

    Args:
        env: a Gymnasium environment.
        policy: ``policy(obs (obs_dim,)) -> action``.
        buffer: receives ``(obs, act, next_obs, reward, terminated, truncated)`` per step, if given
            (``truncated`` is also set on the last step when ``max_steps`` cuts the episode).
        max_steps: stop after this many steps even if the episode goes on.
        reset_seed: passed to ``env.reset(seed=...)`` (``None`` continues the env's RNG).
        on_step: called as ``on_step(step, return_so_far)`` after each step.

    Returns:
        ``(return, steps)`` of the episode.
    """
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps: expected a positive int, got {max_steps!r}")
    obs, _ = env.reset(seed=reset_seed)
    total, steps = 0.0, 0
    for steps in range(1, max_steps + 1):  # noqa: B007  (steps is read after the loop)
        action = policy(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        truncated = bool(truncated) or steps == max_steps
        if buffer is not None:
            act = np.atleast_1d(np.asarray(action, np.float32))
            buffer.add(obs, act, next_obs, reward, terminated, truncated)
        total += float(reward)
        if on_step is not None:
            on_step(steps, total)
        if terminated or truncated:
            break
        obs = next_obs
    return total, steps


def collect_random_data(
    env: Any,
    policy: Policy,
    buffer: ReplayBuffer,
    *,
    min_episodes: int,
    min_steps: int,
    max_steps: int,
    seed: int | None = None,
    on_episode: Callable[[float, int], None] | None = None,
) -> tuple[list[float], int]:
    """Collect whole episodes of ``policy`` until at least ``min_episodes`` episodes and
    ``min_steps`` steps are in ``buffer``; the first reset uses ``seed``.

    ``on_episode(return, steps)`` is called after each episode. Returns the episodes' returns
    and the total steps.
    """
    returns: list[float] = []
    steps = 0
    while len(returns) < min_episodes or steps < min_steps:
        reset_seed = seed if not returns else None
        ret, n = collect_episode(env, policy, buffer, max_steps=max_steps, reset_seed=reset_seed)
        returns.append(ret)
        steps += n
        if on_episode is not None:
            on_episode(ret, steps)
    return returns, steps
