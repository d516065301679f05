"""Predictive sampling (Howell et al., 2022, "Predictive Sampling: Real-time Behaviour Synthesis
with MuJoCo"; the default planner of mujoco_mpc).

The plan is a spline through ``K`` knots ``(K, act_dim)`` at times ``linspace(0, H - 1, K)``
(steps), held between knots (``interpolation="zero"``) or joined linearly (``"linear"``). Each
iteration scores the nominal knots unperturbed together with ``population - 1`` copies perturbed
by Gaussian noise (std ``noise_std`` times the action range, then clipped to the bounds), and the
best-scoring candidate, the nominal included, becomes the nominal. So the nominal's score never
decreases. A warm start (the previous plan shifted) is resampled at the knot times.

Both interpolations are linear maps of the knots, ``actions = W @ knots`` with ``W (H, K)``
rows of convex weights, so a spline through in-bound knots stays within the bounds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from mbrl.planning.base import (
    BestTracker,
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
Interpolation = Literal["zero", "linear"]
INTERPOLATIONS: tuple[str, ...] = ("zero", "linear")


def knot_times(horizon: int, num_knots: int) -> np.ndarray:
    """``(K,)`` knot times in steps: ``linspace(0, H - 1, K)`` (``[0]`` for one knot)."""
    if num_knots == 1:
        return np.zeros(1)
    return np.linspace(0.0, horizon - 1.0, num_knots)


def spline_matrix(horizon: int, num_knots: int, interpolation: Interpolation) -> np.ndarray:
    """``W (H, K)`` with ``actions = W @ knots``: each row convex weights over the knots.

    ``"zero"``: step ``t`` takes the last knot at or before ``t``; ``"linear"``: the linear
    interpolation of the two knots around ``t``.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation: expected one of {INTERPOLATIONS}, got {interpolation!r}")
    times = knot_times(horizon, num_knots)
    w = np.zeros((horizon, num_knots))
    for t in range(horizon):
        k = int(np.searchsorted(times, t, side="right")) - 1  # last knot at or before t
        if interpolation == "zero" or k == num_knots - 1:
            w[t, k] = 1.0
        else:
            frac = (t - times[k]) / (times[k + 1] - times[k])
            w[t, k], w[t, k + 1] = 1.0 - frac, frac
    return w


class PredictiveSamplingPlanner(SamplingPlanner):
    """Predictive sampling over a spline-parameterised open-loop action sequence.

    Args:
        objective: scores ``(P, H, act_dim)`` sequences.
        horizon: planning horizon ``H`` (see :class:`~mbrl.planning.base.Planner`).
        action_low: ``(act_dim,)`` lower action bounds.
        action_high: ``(act_dim,)`` upper action bounds.
        population: candidates per iteration, the unperturbed nominal included (>= 1; 1 only
            re-scores the nominal).
        iterations: perturb-and-keep-the-best rounds per :meth:`plan` call.
        noise_std: perturbation std of each knot entry as a fraction of the action range.
        num_knots: spline knots ``K`` (``1 <= K <= H``).
        interpolation: ``"zero"`` (hold each knot) or ``"linear"``.
    """

    def __init__(
        self,
        objective: SequenceObjective,
        horizon: int,
        action_low: Tensor | np.ndarray | float,
        action_high: Tensor | np.ndarray | float,
        *,
        population: int = 32,
        iterations: int = 1,
        noise_std: float = 0.1,
        num_knots: int = 4,
        interpolation: Interpolation = "zero",
    ) -> None:
        super().__init__(objective, horizon, action_low, action_high)
        check_positive_int("population", population)
        check_positive_int("iterations", iterations)
        check_positive_int("num_knots", num_knots)
        if num_knots > horizon:
            raise ValueError(f"num_knots: expected <= horizon ({horizon}), got {num_knots}")
        check_range_fraction("noise_std", noise_std)
        self.population = population
        self.iterations = iterations
        self.noise_std = float(noise_std)
        self.num_knots = num_knots
        self.interpolation = interpolation
        self.spline = torch.as_tensor(spline_matrix(horizon, num_knots, interpolation))
        self.knot_steps = torch.as_tensor(np.rint(knot_times(horizon, num_knots)).astype(np.int64))

    def actions_of(self, knots: Tensor) -> Tensor:
        """``(..., H, act_dim)`` actions of ``knots (..., K, act_dim)``."""
        return self.spline.to(knots) @ knots

    def plan(
        self,
        obs: Tensor,
        init_actions: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PlanResult:
        """Predictive sampling from ``obs (obs_dim,)``; see :meth:`Planner.plan`."""
        t0 = time.perf_counter()
        obs, low, high = self.prepare(obs)
        nominal = self.initial_mean(obs, init_actions)[self.knot_steps.to(obs.device)]
        std = self.noise_std * (high - low)
        shape = (self.population - 1, self.num_knots, self.act_dim)
        best = BestTracker()
        steps = 0
        for _ in range(self.iterations):
            noisy = torch.clamp(nominal + std * randn(shape, generator, nominal), low, high)
            knots = torch.cat([nominal.unsqueeze(0), noisy], 0)
            scores, used = self.evaluate(obs, self.actions_of(knots), generator)
            steps += used
            i = int(torch.argmax(scores))
            if torch.isfinite(scores[i]):
                nominal = knots[i]
            best.update(knots, scores)
        result = best.result(self.plan_info(t0, self.iterations, steps))
        return PlanResult(self.actions_of(result.actions), result.value, result.info)


@dataclass
class PredictiveSamplingConfig(SamplingPlannerConfig):
    """:class:`PredictiveSamplingPlanner` settings (defaults from its signature); shared ones in
    :class:`~mbrl.planning.config.SamplingPlannerConfig`.

    Attributes:
        population: candidates per iteration, the unperturbed nominal included.
        iterations: perturb-and-keep-the-best rounds per plan.
        noise_std: knot perturbation std as a fraction of the action range.
        num_knots: spline knots (at most ``horizon``).
        interpolation: ``"zero"`` or ``"linear"``.
    """

    name: str = "predictive_sampling"
    planner_class = PredictiveSamplingPlanner
    population: int = default_of(PredictiveSamplingPlanner, "population")
    iterations: int = default_of(PredictiveSamplingPlanner, "iterations")
    noise_std: float = default_of(PredictiveSamplingPlanner, "noise_std")
    num_knots: int = default_of(PredictiveSamplingPlanner, "num_knots")
    interpolation: str = default_of(PredictiveSamplingPlanner, "interpolation")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("population", "iterations", "num_knots")
        if self.num_knots > self.horizon:
            raise ValueError(
                f"num_knots: expected <= horizon ({self.horizon}), got {self.num_knots}"
            )
        if not self.noise_std > 0:
            raise ValueError(f"noise_std: expected > 0, got {self.noise_std}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation: expected one of {INTERPOLATIONS}, got {self.interpolation!r}"
            )
