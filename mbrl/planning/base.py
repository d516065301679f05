"""The planner contract: :class:`Planner` and its result :class:`PlanResult`.

A planner maps the current observation ``obs (obs_dim,)`` to an open-loop action sequence
``actions (H, act_dim)`` that maximises an objective computed through a dynamics model. Planners
are stateless between calls: the caller (an MPC agent) passes the warm start ``init_actions``
(typically the previous plan shifted by one step), so one planner can be reused across episodes.

Discrete-action planners return the action *indices* as floats, shape ``(H, 1)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from mbrl.planning.objective import SequenceObjective

Tensor = torch.Tensor


@dataclass
class PlanResult:
    """Output of :meth:`Planner.plan`.

    Attributes:
        actions: ``(H, act_dim)`` planned action sequence (within the action bounds); for a
            discrete task ``(H, 1)`` float action indices.
        value: the planner's objective for ``actions`` (e.g. mean predicted return).
        info: diagnostics as floats, e.g. ``iterations``, ``model_steps`` (particle-steps
            through the model), ``time_s`` (wall-clock seconds of the call).
    """

    actions: Tensor
    value: float
    info: dict[str, float] = field(default_factory=dict)


def as_bound(value: Tensor | np.ndarray | float | list[float], name: str, act_dim: int) -> Tensor:
    """Convert an action bound to a float64 CPU tensor of shape ``(act_dim,)``."""
    t = torch.as_tensor(np.asarray(value, dtype=np.float64))
    if t.ndim == 0:
        t = t.expand(act_dim).clone()
    if t.shape != (act_dim,):
        raise ValueError(f"{name}: expected shape ({act_dim},), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: expected finite action bounds, got {t.tolist()}")
    return t


def check_positive_int(name: str, value: object) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an ``int >= 1`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")


def check_range_fraction(name: str, value: float) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value > 0`` (a std as a fraction of the
    action range ``high - low``)."""
    if not value > 0:
        raise ValueError(f"{name}: expected > 0 (fraction of the action range), got {value}")


class Planner:
    """Base class of all planners.

    Args:
        horizon: number of planned steps ``H`` (>= 1).
        action_low: ``(act_dim,)`` lower action bounds.
        action_high: ``(act_dim,)`` upper action bounds (``> action_low``).

    Attributes:
        horizon: ``H``.
        act_dim: action dimension.
        action_low, action_high: ``(act_dim,)`` float64 CPU tensors; :meth:`bounds_like` gives
            them on the device/dtype of an observation.
    """

    def __init__(
        self,
        horizon: int,
        action_low: Tensor | np.ndarray | float,
        action_high: Tensor | np.ndarray | float,
    ) -> None:
        check_positive_int("horizon", horizon)
        low = torch.as_tensor(np.asarray(action_low, dtype=np.float64)).reshape(-1)
        self.act_dim = int(low.numel())
        if self.act_dim < 1:
            raise ValueError("action_low: expected at least one action dimension")
        self.action_low = as_bound(action_low, "action_low", self.act_dim)
        self.action_high = as_bound(action_high, "action_high", self.act_dim)
        if not (self.action_high > self.action_low).all():
            raise ValueError(
                "action_high: expected action_high > action_low elementwise, got "
                f"low={self.action_low.tolist()}, high={self.action_high.tolist()}"
            )
        self.horizon = horizon

    # ------------------------------------------------------------------ contract
    def plan(
        self,
        obs: Tensor,
        init_actions: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PlanResult:
        """Plan from ``obs (obs_dim,)``.

        Args:
            obs: current observation, on the model's device and in the model's dtype.
            init_actions: ``(H, act_dim)`` warm start (e.g. the previous plan shifted by one
                step), or ``None`` for a cold start at the middle of the action bounds.
            generator: source of randomness; the same seed gives the same plan.

        Returns:
            a :class:`PlanResult`.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def bounds_like(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Action bounds as ``(act_dim,)`` tensors on ``obs``'s device and floating dtype."""
        dtype = obs.dtype if obs.is_floating_point() else torch.get_default_dtype()
        return (
            self.action_low.to(device=obs.device, dtype=dtype),
            self.action_high.to(device=obs.device, dtype=dtype),
        )

    def check_obs(self, obs: Tensor) -> Tensor:
        """Validate ``obs``: a 1-D finite floating tensor. Returns it unchanged."""
        if not isinstance(obs, Tensor):
            raise TypeError(f"obs: expected a torch.Tensor, got {type(obs).__name__}")
        if obs.ndim != 1:
            raise ValueError(f"obs: expected shape (obs_dim,), got {tuple(obs.shape)}")
        if not obs.is_floating_point():
            raise TypeError(f"obs: expected a floating dtype, got {obs.dtype}")
        if not torch.isfinite(obs).all():
            raise ValueError("obs: contains NaN or inf")
        return obs

    def prepare(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Start of every :meth:`plan`: ``(obs, low, high)`` from :meth:`check_obs` and
        :meth:`bounds_like`."""
        obs = self.check_obs(obs)
        low, high = self.bounds_like(obs)
        return obs, low, high

    def warm_start(
        self, obs: Tensor, init_actions: Tensor | None, num_actions: int | None
    ) -> Tensor | None:
        """``init_actions`` as an ``(H, act_dim)`` candidate, or ``None`` when not given.

        Clipped to the bounds by :meth:`initial_mean`; for a discrete task (``num_actions`` not
        ``None``) rounded to the nearest action index.
        """
        if init_actions is None:
            return None
        init = self.initial_mean(obs, init_actions)
        if num_actions is not None:
            init = init.round()
        return init

    def initial_mean(self, obs: Tensor, init_actions: Tensor | None) -> Tensor:
        """``(H, act_dim)`` start: ``init_actions`` clipped to bounds, or the bounds' middle."""
        low, high = self.bounds_like(obs)
        if init_actions is None:
            return ((low + high) / 2).expand(self.horizon, self.act_dim).clone()
        if not isinstance(init_actions, Tensor):
            raise TypeError(
                f"init_actions: expected a torch.Tensor or None, got {type(init_actions).__name__}"
            )
        if init_actions.shape != (self.horizon, self.act_dim):
            raise ValueError(
                f"init_actions: expected shape ({self.horizon}, {self.act_dim}), "
                f"got {tuple(init_actions.shape)}"
            )
        if not torch.isfinite(init_actions).all():
            raise ValueError("init_actions: contains NaN or inf")
        init = init_actions.to(device=obs.device, dtype=low.dtype)
        return torch.minimum(torch.maximum(init, low), high)


def randn(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    """Standard normal samples drawn on the generator's device, returned like ``like``."""
    dev = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


def rand(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    """Uniform ``[0, 1)`` samples drawn on the generator's device, returned like ``like``."""
    dev = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


def truncated_normal(
    shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor, bound: float = 2.0
) -> Tensor:
    """Standard normal samples truncated to ``[-bound, bound]`` (inverse-CDF sampling)."""
    lo = 0.5 * (1.0 + math.erf(-bound / math.sqrt(2.0)))
    u = lo + (1.0 - 2.0 * lo) * rand(shape, generator, like)
    return math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)


class SamplingPlanner(Planner):
    """Base of the sampling planners (random shooting, CEM, iCEM, MPPI).

    Holds the shared :class:`~mbrl.planning.objective.SequenceObjective` and tracks the best
    sequence seen during one :meth:`plan` call.

    Args:
        objective: scores ``(P, H, act_dim)`` sequences from an observation.
        horizon: planning horizon ``H`` (see :class:`Planner`).
        action_low: ``(act_dim,)`` lower action bounds.
        action_high: ``(act_dim,)`` upper action bounds.
    """

    def __init__(
        self,
        objective: SequenceObjective,
        horizon: int,
        action_low: Tensor | np.ndarray | float,
        action_high: Tensor | np.ndarray | float,
    ) -> None:
        super().__init__(horizon, action_low, action_high)
        if not callable(objective):
            raise TypeError(f"objective: expected a SequenceObjective, got {objective!r}")
        self.objective = objective

    def evaluate(
        self, obs: Tensor, actions: Tensor, generator: torch.Generator | None
    ) -> tuple[Tensor, int]:
        """Score ``actions (P, H, act_dim)``; returns ``((P,) scores, particle-steps used)``."""
        before = getattr(self.objective, "model_steps", 0)
        scores = self.objective(obs, actions, generator)
        used = getattr(self.objective, "model_steps", 0) - before
        return scores, int(used)

    def plan_info(
        self, t0: float, iterations: float, model_steps: int, **extra: float
    ) -> dict[str, float]:
        """:attr:`PlanResult.info` of a call started at ``t0`` (``time.perf_counter()``).

        Keys: ``iterations``, ``model_steps``, then ``extra`` in order, then ``time_s``.
        """
        return {
            "iterations": float(iterations),
            "model_steps": float(model_steps),
            **extra,
            "time_s": time.perf_counter() - t0,
        }


class BestTracker:
    """Keeps the best-scoring sequence seen so far (ties keep the earlier one)."""

    def __init__(self) -> None:
        self.actions: Tensor | None = None
        self.value = float("-inf")

    def update(self, actions: Tensor, scores: Tensor) -> None:
        """Consider candidates ``actions (P, H, A)`` with ``scores (P,)``."""
        i = int(torch.argmax(scores))
        v = float(scores[i])
        if v > self.value:
            self.value = v
            self.actions = actions[i].clone()

    def result(self, info: dict[str, float]) -> PlanResult:
        """The best sequence as a :class:`PlanResult`; raises if nothing scored finitely."""
        if self.actions is None:
            raise RuntimeError(
                "planning failed: every candidate action sequence diverged or had a non-finite "
                "return (the model produced NaN/inf); check the model and the observation"
            )
        return PlanResult(actions=self.actions, value=self.value, info=info)
