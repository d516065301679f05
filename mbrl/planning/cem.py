"""Cross-entropy method (CEM) trajectory optimisation, as used by PETS (Chua et al., 2018).

Each iteration samples ``population`` sequences from a diagonal Gaussian over ``(H, act_dim)``
(truncated at two standard deviations, then clipped to the action bounds), scores them through
the model in one batched rollout, and refits the Gaussian to the ``num_elites`` best:
``mean <- alpha * mean + (1 - alpha) * elite_mean`` (same for the standard deviation).
By default the best sequence ever sampled is returned; with ``return_mean_elites=True`` the
final refitted mean is returned instead (as mbrl-lib's ``CEMOptimizer(return_mean_elites=True)``),
which averages out the sampling noise of tied or nearly tied sequences (flat rewards such as
InvertedPendulum's 1 per balanced step) and so gives smoother MPC actions.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from mbrl.planning.base import (
    BestTracker,
    PlanResult,
    SamplingPlanner,
    check_positive_int,
    check_range_fraction,
    truncated_normal,
)
from mbrl.planning.config import SamplingPlannerConfig
from mbrl.planning.objective import SequenceObjective
from mbrl.util.config import default_of

Tensor = torch.Tensor


def check_population(population: int, num_elites: int, iterations: int) -> None:
    """Validate the population / elite / iteration counts shared by CEM and iCEM."""
    check_positive_int("population", population)
    check_positive_int("num_elites", num_elites)
    if num_elites > population:
        raise ValueError(f"num_elites: expected <= population ({population}), got {num_elites}")
    check_positive_int("iterations", iterations)


def check_cem_settings(
    population: int, num_elites: int, iterations: int, alpha: float, init_std: float
) -> None:
    """Validate the settings shared by CEM and iCEM (counts, smoothing ``alpha``, ``init_std``)."""
    check_population(population, num_elites, iterations)
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha: expected 0 <= alpha < 1, got {alpha}")
    check_range_fraction("init_std", init_std)


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a ``bool``; raise ``TypeError`` naming ``name`` otherwise."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {value!r}")
    return value


def refit(samples: Tensor, scores: Tensor, num_elites: int) -> tuple[Tensor, Tensor] | None:
    """Mean and std ``(H, A)`` of the top ``num_elites`` finite-scoring samples (None if none)."""
    n_finite = int(torch.isfinite(scores).sum())
    if n_finite == 0:
        return None
    k = min(num_elites, n_finite)
    idx = torch.topk(scores, k).indices
    elites = samples[idx]
    return elites.mean(0), elites.std(0, unbiased=False)


def mean_result(
    planner: SamplingPlanner,
    obs: Tensor,
    mean: Tensor,
    best: BestTracker,
    generator: torch.Generator | None,
    info: dict[str, float],
) -> PlanResult:
    """Plan result for the refitted ``mean (H, A)``: its own objective value (one extra
    sequence scored; its particle-steps and seconds are added to ``info["model_steps"]`` and
    ``info["time_s"]``).

    Falls back to ``best``'s sequence if the mean scores non-finitely (a diverging model).
    """
    t0 = time.perf_counter()
    score, used = planner.evaluate(obs, mean.unsqueeze(0), generator)
    info["model_steps"] = info.get("model_steps", 0.0) + float(used)
    info["time_s"] = info.get("time_s", 0.0) + (time.perf_counter() - t0)
    value = float(score[0])
    if not math.isfinite(value):
        return best.result(info)
    return PlanResult(actions=mean.clone(), value=value, info=info)


class CEMPlanner(SamplingPlanner):
    """CEM over open-loop action sequences.

    Args:
        objective: scores ``(P, H, act_dim)`` sequences (see :class:`SequenceObjective`).
        horizon: planning horizon ``H``.
        action_low: ``(act_dim,)`` lower bounds.
        action_high: ``(act_dim,)`` upper bounds.
        population: sequences sampled per iteration.
        num_elites: sequences the Gaussian is refitted to.
        iterations: refits per :meth:`plan` call.
        alpha: smoothing: weight of the *previous* mean/std in the update (0 = no smoothing).
        init_std: initial standard deviation as a fraction of the action range ``high - low``.
        return_mean_elites: return the final refitted mean instead of the best sample seen.
    """

    def __init__(
        self,
        objective: SequenceObjective,
        horizon: int,
        action_low: Tensor | np.ndarray | float,
        action_high: Tensor | np.ndarray | float,
        *,
        population: int = 500,
        num_elites: int = 50,
        iterations: int = 5,
        alpha: float = 0.1,
        init_std: float = 0.25,
        return_mean_elites: bool = False,
    ) -> None:
        super().__init__(objective, horizon, action_low, action_high)
        check_cem_settings(population, num_elites, iterations, alpha, init_std)
        self.population = population
        self.num_elites = num_elites
        self.iterations = iterations
        self.alpha = float(alpha)
        self.init_std = float(init_std)
        self.return_mean_elites = check_bool("return_mean_elites", return_mean_elites)

    def plan(
        self,
        obs: Tensor,
        init_actions: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PlanResult:
        """Run CEM from ``obs (obs_dim,)``; see :meth:`Planner.plan`."""
        t0 = time.perf_counter()
        obs, low, high = self.prepare(obs)
        mean = self.initial_mean(obs, init_actions)
        std = (self.init_std * (high - low)).expand_as(mean).clone()
        best = BestTracker()
        steps = 0
        shape = (self.population, self.horizon, self.act_dim)
        for _ in range(self.iterations):
            noise = truncated_normal(shape, generator, mean)
            samples = torch.clamp(mean + std * noise, low, high)
            scores, used = self.evaluate(obs, samples, generator)
            steps += used
            best.update(samples, scores)
            fit = refit(samples, scores, self.num_elites)
            if fit is None:
                continue
            mean = self.alpha * mean + (1 - self.alpha) * fit[0]
            std = self.alpha * std + (1 - self.alpha) * fit[1]
        info = self.plan_info(t0, self.iterations, steps, final_std=float(std.mean()))
        if self.return_mean_elites:
            return mean_result(self, obs, mean, best, generator, info)
        return best.result(info)


@dataclass
class CEMConfig(SamplingPlannerConfig):
    """:class:`CEMPlanner` settings (defaults from its signature); shared ones in
    :class:`~mbrl.planning.config.SamplingPlannerConfig`.

    Attributes:
        population: sequences sampled per iteration.
        num_elites: elites refitted per iteration.
        iterations: optimisation iterations per plan.
        alpha: smoothing, weight of the previous mean/std.
        init_std: initial sampling std as a fraction of the action range.
        return_mean_elites: return the final refitted elite mean instead of the best sample.
    """

    name: str = "cem"
    planner_class = CEMPlanner
    population: int = default_of(CEMPlanner, "population")
    num_elites: int = default_of(CEMPlanner, "num_elites")
    iterations: int = default_of(CEMPlanner, "iterations")
    alpha: float = default_of(CEMPlanner, "alpha")
    init_std: float = default_of(CEMPlanner, "init_std")
    return_mean_elites: bool = default_of(CEMPlanner, "return_mean_elites")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_cem_settings(
            self.population, self.num_elites, self.iterations, self.alpha, self.init_std
        )
