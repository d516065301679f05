"""Model predictive path integral control (MPPI; Williams et al., 2017), sampling form.

Each iteration perturbs the current mean sequence with Gaussian noise, scores the ``population``
perturbed (and bound-clipped) sequences, and replaces the mean by their softmax-weighted average
with weights ``w_i ∝ exp((R_i - max_j R_j) / temperature)``. The final mean is scored once more
and returned.

With ``normalize_returns=True`` the temperature is in units of the population's return std,
``w_i ∝ exp((R_i - max_j R_j) / (temperature * std_j R_j))``. The weighting is then the same
whatever the reward scale, and so is the trust in small return differences: with a fixed
temperature, a young model whose predicted returns differ by much less than ``temperature``
gives near-uniform weights, whose average of zero-mean perturbations is a timid plan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from mbrl.planning.base import (
    PlanResult,
    SamplingPlanner,
    check_positive_int,
    check_range_fraction,
    randn,
)
from mbrl.planning.config import SamplingPlannerConfig
from mbrl.planning.objective import SequenceObjective
from mbrl.util.config import default_of

Tensor = torch.Tensor


class MPPIPlanner(SamplingPlanner):
    """MPPI over open-loop action sequences.

    Args:
        objective: scores ``(P, H, act_dim)`` sequences.
        horizon: planning horizon ``H`` (see :class:`~mbrl.planning.base.Planner`).
        action_low: ``(act_dim,)`` lower action bounds.
        action_high: ``(act_dim,)`` upper action bounds.
        population: perturbed sequences per iteration.
        iterations: weighted-mean updates per :meth:`plan` call.
        temperature: ``lambda`` (> 0, in return units): small values approach arg-max.
        noise_std: perturbation std as a fraction of the action range ``high - low``.
        normalize_returns: divide the temperature-scaled return gaps by the population's
            return std (finite scores only), making ``temperature`` unitless.
    """

    def __init__(
        self,
        objective: SequenceObjective,
        horizon: int,
        action_low: Tensor | np.ndarray | float,
        action_high: Tensor | np.ndarray | float,
        *,
        population: int = 500,
        iterations: int = 1,
        temperature: float = 1.0,
        noise_std: float = 0.3,
        normalize_returns: bool = False,
    ) -> None:
        super().__init__(objective, horizon, action_low, action_high)
        check_positive_int("population", population)
        check_positive_int("iterations", iterations)
        if not temperature > 0:
            raise ValueError(f"temperature: expected > 0, got {temperature}")
        check_range_fraction("noise_std", noise_std)
        self.population = population
        self.iterations = iterations
        self.temperature = float(temperature)
        self.noise_std = float(noise_std)
        if not isinstance(normalize_returns, bool):
            raise TypeError(f"normalize_returns: expected a bool, got {normalize_returns!r}")
        self.normalize_returns = normalize_returns

    def plan(
        self,
        obs: Tensor,
        init_actions: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PlanResult:
        """Run MPPI from ``obs (obs_dim,)``; see :meth:`Planner.plan`."""
        t0 = time.perf_counter()
        obs, low, high = self.prepare(obs)
        mean = self.initial_mean(obs, init_actions)
        std = self.noise_std * (high - low)
        shape = (self.population, self.horizon, self.act_dim)
        steps = 0
        for _ in range(self.iterations):
            samples = torch.clamp(mean + std * randn(shape, generator, mean), low, high)
            scores, used = self.evaluate(obs, samples, generator)
            steps += used
            finite = torch.isfinite(scores)
            if not finite.any():
                continue
            top = scores[finite].max()
            scale = self.temperature
            if self.normalize_returns and int(finite.sum()) > 1:
                # all-equal scores: std 0, gaps 0, uniform weights
                scale = scale * scores[finite].std().clamp_min(torch.finfo(scores.dtype).tiny)
            logits = torch.where(finite, (scores - top) / scale, float("-inf"))
            weights = torch.softmax(logits, dim=0)
            mean = torch.einsum("p,pha->ha", weights, samples)
        value, used = self.evaluate(obs, mean.unsqueeze(0), generator)
        steps += used
        if not torch.isfinite(value).all():
            raise RuntimeError(
                "planning failed: the MPPI mean sequence has a non-finite return "
                "(the model produced NaN/inf); check the model and the observation"
            )
        info = self.plan_info(t0, self.iterations, steps)
        return PlanResult(actions=mean, value=float(value[0]), info=info)


@dataclass
class MPPIConfig(SamplingPlannerConfig):
    """:class:`MPPIPlanner` settings (defaults from its signature); shared ones in
    :class:`~mbrl.planning.config.SamplingPlannerConfig`.

    Attributes:
        population: sequences sampled per iteration.
        iterations: weighted-average updates per plan.
        temperature: ``lambda`` of the weights ``exp((R - max R) / lambda)``.
        noise_std: perturbation std as a fraction of the action range.
        normalize_returns: temperature in units of the population's return std (so it does
            not depend on the reward scale).
    """

    name: str = "mppi"
    planner_class = MPPIPlanner
    population: int = default_of(MPPIPlanner, "population")
    iterations: int = default_of(MPPIPlanner, "iterations")
    temperature: float = default_of(MPPIPlanner, "temperature")
    noise_std: float = default_of(MPPIPlanner, "noise_std")
    normalize_returns: bool = default_of(MPPIPlanner, "normalize_returns")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("population", "iterations")
        if not self.temperature > 0:
            raise ValueError(f"temperature: expected > 0, got {self.temperature}")
        if not self.noise_std > 0:
            raise ValueError(f"noise_std: expected > 0, got {self.noise_std}")
