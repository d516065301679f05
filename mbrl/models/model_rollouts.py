"""Dyna-style short model rollouts for MBPO (Janner et al., 2019): the building blocks.

* :class:`RolloutSchedule`: MBPO's linear rollout-length schedule ``[epoch_a, epoch_b, k_min,
  k_max]``: ``k_min`` up to ``epoch_a``, then linear in the epoch, ``k_max`` from ``epoch_b``
  on, rounded down (as MBPO does).
* :func:`branched_rollouts`: ``k``-step rollouts of a policy through a :class:`ModelEnv`
  branched from real start states; rows stop at predicted termination, and transitions whose
  prediction holds NaN or inf are dropped (and counted), never returned.
* :func:`model_buffer_capacity` and :func:`resize_buffer`: the model buffer holds
  ``rollout_batch_size * k * retain_epochs`` transitions, resized (newest kept) when ``k``
  changes.
* :class:`MixedSampler`: SAC batches with a fixed share ``real_ratio`` of real transitions,
  the rest model transitions.

MBPO acts "through the elites, with a random member per transition". With a
:class:`mbrl.models.DynamicsModel` built with ``use_elites=True`` and a :class:`ModelEnv` with
``propagation="ts1"`` every step assigns the rows to the elites at random in equal shares (one
forward pass per row); ``"random_model"`` (one random elite for all rows of a step) gives every
transition the same marginal but evaluates every elite on every row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mbrl.data.replay_buffer import Batch, ReplayBuffer
from mbrl.models.model_env import ModelEnv, nonfinite_rows

Tensor = torch.Tensor
RolloutPolicy = Callable[..., Any]
"""``policy(obs (N, obs_dim), generator=...) -> act (N, act_dim)`` or ``(act, log_prob)``
(a :class:`mbrl.agents.networks.GaussianPolicy` qualifies)."""

__all__ = [
    "BranchedRollouts",
    "MixedSampler",
    "RolloutSchedule",
    "branched_rollouts",
    "model_buffer_capacity",
    "resize_buffer",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


# ---------------------------------------------------------------------- schedule
@dataclass(frozen=True)
class RolloutSchedule:
    """MBPO's rollout length ``k`` as a function of the epoch.

    ``k(epoch) = k_min`` for ``epoch <= epoch_a``; ``k_max`` for ``epoch >= epoch_b``; in between
    ``floor(k_min + (epoch - epoch_a) / (epoch_b - epoch_a) * (k_max - k_min))``.

    Attributes:
        epoch_a: last epoch at ``k_min`` (``>= 0``).
        epoch_b: first epoch at ``k_max`` (``>= epoch_a``).
        k_min: rollout length at the start (``>= 1``).
        k_max: rollout length at the end (``>= 1``).
    """

    epoch_a: int
    epoch_b: int
    k_min: int
    k_max: int

    def __post_init__(self) -> None:
        fields = (self.epoch_a, self.epoch_b, self.k_min, self.k_max)
        if not all(_is_int(v) for v in fields):
            raise ValueError(
                f"rollout_schedule: expected 4 ints [epoch_a, epoch_b, k_min, k_max], "
                f"got {list(fields)}"
            )
        if not 0 <= self.epoch_a <= self.epoch_b:
            raise ValueError(
                f"rollout_schedule: expected 0 <= epoch_a <= epoch_b, got epoch_a={self.epoch_a}, "
                f"epoch_b={self.epoch_b}"
            )
        if self.k_min < 1 or self.k_max < 1:
            raise ValueError(
                f"rollout_schedule: expected rollout lengths k_min, k_max >= 1, got "
                f"k_min={self.k_min}, k_max={self.k_max}"
            )

    @classmethod
    def parse(cls, value: int | Sequence[int] | RolloutSchedule) -> RolloutSchedule:
        """From a config value: an int ``k`` (constant) or ``[epoch_a, epoch_b, k_min, k_max]``.

        Raises ``ValueError`` naming ``rollout_schedule`` for anything else.
        """
        if isinstance(value, RolloutSchedule):
            return value
        if _is_int(value):
            return cls(0, 0, int(value), int(value))  # type: ignore[arg-type]
        if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 4:
            raise ValueError(
                "rollout_schedule: expected an int k or a list [epoch_a, epoch_b, k_min, k_max], "
                f"got {value!r}"
            )
        return cls(*value)

    def length(self, epoch: int) -> int:
        """Rollout length ``k`` at ``epoch`` (``>= 0``)."""
        if not _is_int(epoch) or epoch < 0:
            raise ValueError(f"epoch: expected an int >= 0, got {epoch!r}")
        if epoch <= self.epoch_a:
            return self.k_min
        if epoch >= self.epoch_b:
            return self.k_max
        frac = (epoch - self.epoch_a) / (self.epoch_b - self.epoch_a)
        return int(self.k_min + frac * (self.k_max - self.k_min))

    @property
    def max_length(self) -> int:
        """Largest ``k`` the schedule ever gives."""
        return max(self.k_min, self.k_max)


# ---------------------------------------------------------------------- rollouts
@dataclass(frozen=True)
class BranchedRollouts:
    """Transitions from :func:`branched_rollouts` (tensors, rows in step-major order).

    Attributes:
        obs, act, next_obs: ``(M, obs_dim)``, ``(M, act_dim)``, ``(M, obs_dim)``.
        reward: ``(M,)``.
        terminated: ``(M,)`` bool: the model predicted termination on this transition (the
            row's last one).
        num_rollouts: rollouts started (rows of ``start_obs``).
        num_terminated: rollouts stopped by predicted termination.
        num_dropped: transitions dropped because the prediction (next state or reward) held
            NaN or inf; each stops its rollout.
        steps: steps actually taken (``<= k``; fewer when every rollout stopped early).
    """

    obs: Tensor
    act: Tensor
    next_obs: Tensor
    reward: Tensor
    terminated: Tensor
    num_rollouts: int
    num_terminated: int
    num_dropped: int
    steps: int

    def __len__(self) -> int:
        return int(self.reward.shape[0])

    @property
    def fraction_terminated(self) -> float:
        """Share of the rollouts stopped by predicted termination."""
        return self.num_terminated / self.num_rollouts

    @property
    def fraction_dropped(self) -> float:
        """Share of the rollouts stopped by a NaN or inf prediction."""
        return self.num_dropped / self.num_rollouts

    def to_batch(self) -> Batch:
        """As a numpy :class:`Batch` (``truncated`` all False: the rollout end bootstraps)."""
        n = len(self)
        return Batch(
            self.obs.cpu().numpy(),
            self.act.cpu().numpy(),
            self.next_obs.cpu().numpy(),
            self.reward.cpu().numpy(),
            self.terminated.cpu().numpy(),
            np.zeros(n, dtype=bool),
        )


def _actions(policy: RolloutPolicy, obs: Tensor, generator: torch.Generator | None) -> Tensor:
    out = policy(obs, generator=generator)
    act = out[0] if isinstance(out, tuple) else out
    if not isinstance(act, torch.Tensor) or act.ndim != 2 or act.shape[0] != obs.shape[0]:
        raise ValueError(
            f"policy: expected actions of shape ({obs.shape[0]}, act_dim), got "
            f"{tuple(getattr(act, 'shape', ()))}"
        )
    return act


@torch.no_grad()
def branched_rollouts(
    model_env: ModelEnv,
    policy: RolloutPolicy,
    start_obs: Tensor,
    k: int,
    generator: torch.Generator | None = None,
) -> BranchedRollouts:
    """Roll ``policy`` out for up to ``k`` steps through ``model_env`` from ``start_obs``.

    Args:
        model_env: the shared rollout engine (:class:`ModelEnv`): its ``step`` (ensemble
            propagation, reward) and ``termination_fn`` are used every step.
        policy: ``policy(obs (N, obs_dim), generator=...)`` returning actions ``(N, act_dim)``
            (or a tuple whose first entry they are), e.g. the SAC agent's
            :class:`~mbrl.agents.networks.GaussianPolicy` (stochastic).
        start_obs: ``(B, obs_dim)`` real states to branch from.
        k: rollout length (``>= 1``).
        generator: noise for the model's sampling and the policy.

    Each step every live row takes an action and a model step. A row whose predicted next state
    or reward holds NaN or inf is dropped (its transition is not returned) and stops; a row
    whose transition the task's ``termination_fn`` marks terminal is returned with
    ``terminated=True`` and stops. The other rows continue from their predicted next state.
    """
    if not isinstance(model_env, ModelEnv):
        raise TypeError(f"model_env: expected a ModelEnv, got {type(model_env).__name__}")
    if not _is_int(k) or k < 1:
        raise ValueError(f"k: expected an int >= 1, got {k!r}")
    if not isinstance(start_obs, torch.Tensor) or start_obs.ndim != 2 or start_obs.shape[0] < 1:
        shape = tuple(getattr(start_obs, "shape", ()))
        raise ValueError(f"start_obs: expected a tensor (B, obs_dim), got shape {shape}")
    if not torch.isfinite(start_obs).all():
        raise ValueError("start_obs: contains NaN or inf")
    parts: list[tuple[Tensor, ...]] = []
    obs = start_obs
    dropped = terminated = steps = 0
    for _ in range(int(k)):
        act = _actions(policy, obs, generator)
        next_obs, reward = model_env.step(obs, act, generator)
        reward = reward.reshape(obs.shape[0])
        bad = nonfinite_rows(next_obs) | ~torch.isfinite(reward)
        done = model_env.termination_fn(obs, act, next_obs).reshape(obs.shape[0]).to(torch.bool)
        done = done & ~bad
        good = ~bad
        parts.append((obs[good], act[good], next_obs[good], reward[good], done[good]))
        dropped += int(bad.sum())
        terminated += int(done.sum())
        steps += 1
        obs = next_obs[good & ~done]
        if obs.shape[0] == 0:
            break
    cols = [torch.cat(col, 0) for col in zip(*parts, strict=True)]
    return BranchedRollouts(*cols, int(start_obs.shape[0]), terminated, dropped, steps)


# ---------------------------------------------------------------------- model buffer
def model_buffer_capacity(rollout_batch_size: int, k: int, retain_epochs: int) -> int:
    """Transitions the model buffer holds: ``rollout_batch_size * k * retain_epochs``.

    ``rollout_batch_size`` is the number of rollouts branched per epoch (as the caller counts
    epochs), ``k`` the current rollout length, ``retain_epochs`` how many epochs of model data
    are kept. Every argument must be an int ``>= 1``.
    """
    for name, value in (
        ("rollout_batch_size", rollout_batch_size),
        ("k", k),
        ("retain_epochs", retain_epochs),
    ):
        if not _is_int(value) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return int(rollout_batch_size) * int(k) * int(retain_epochs)


def resize_buffer(buffer: ReplayBuffer, capacity: int) -> ReplayBuffer:
    """``buffer`` itself if its capacity is ``capacity``, else a new buffer of that capacity
    holding the newest ``min(len(buffer), capacity)`` transitions (oldest first)."""
    if buffer.capacity == capacity:
        return buffer
    out = ReplayBuffer(
        capacity,
        buffer.obs_dim,
        buffer.act_dim,
        obs_dtype=buffer.obs_dtype,
        act_dtype=buffer.act_dtype,
    )
    if len(buffer):
        out.add_batch(*buffer.get_all())
    return out


# ---------------------------------------------------------------------- mixed batches
class MixedSampler:
    """Batches of ``round(real_ratio * B)`` real and ``B - round(real_ratio * B)`` model rows.

    Args:
        real: the buffer of environment transitions.
        model: the buffer of model transitions (may be replaced later: :attr:`model` is public).
        real_ratio: share of real data in every batch, in ``[0, 1]`` (MBPO: 0.05).

    Rows are drawn uniformly with replacement within each buffer; real rows come first.
    """

    def __init__(self, real: ReplayBuffer, model: ReplayBuffer, real_ratio: float) -> None:
        if (
            isinstance(real_ratio, bool)
            or not isinstance(real_ratio, int | float | np.floating | np.integer)
            or not 0.0 <= float(real_ratio) <= 1.0
        ):
            raise ValueError(f"real_ratio: expected a number in [0, 1], got {real_ratio!r}")
        for name, buf in (("real", real), ("model", model)):
            if not isinstance(buf, ReplayBuffer):
                raise TypeError(f"{name}: expected a ReplayBuffer, got {type(buf).__name__}")
        if (real.obs_dim, real.act_dim) != (model.obs_dim, model.act_dim):
            raise ValueError(
                f"model: obs_dim/act_dim ({model.obs_dim}, {model.act_dim}) differ from the real "
                f"buffer's ({real.obs_dim}, {real.act_dim})"
            )
        self.real = real
        self.model = model
        self.real_ratio = float(real_ratio)

    def split(self, batch_size: int) -> tuple[int, int]:
        """``(real rows, model rows)`` in a batch of ``batch_size``."""
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
        n_real = int(round(self.real_ratio * batch_size))
        return n_real, int(batch_size) - n_real

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """A :class:`Batch` of numpy arrays, real rows first. Raises ``ValueError`` if a buffer
        that must contribute rows is empty."""
        n_real, n_model = self.split(batch_size)
        parts = []
        for name, buf, n in (("real", self.real, n_real), ("model", self.model, n_model)):
            if n == 0:
                continue
            if len(buf) == 0:
                raise ValueError(f"{name}: the buffer is empty but the batch needs {n} rows")
            parts.append(buf.sample(n, rng))
        if len(parts) == 1:
            return parts[0]
        return Batch(*(np.concatenate(cols, 0) for cols in zip(*parts, strict=True)))
