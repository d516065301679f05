"""Random shooting ("guess and check"): sample sequences uniformly, keep the best one."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from envs.task import Task
from mbrl.planning.base import BestTracker, PlanResult, SamplingPlanner, check_positive_int, rand
from mbrl.planning.config import SamplingPlannerConfig
from mbrl.planning.objective import SequenceObjective
from mbrl.util.config import default_of

Tensor = torch.Tensor


class RandomShootingPlanner(SamplingPlanner):
    """Score ``population`` uniformly random sequences in one batched rollout; return the best.

    The warm start ``init_actions`` (if given) is scored as one extra candidate.

    Args:
        objective: scores ``(P, H, act_dim)`` sequences.
        horizon: planning horizon ``H`` (see :class:`~mbrl.planning.base.Planner`).
        action_low: ``(act_dim,)`` lower action bounds.
        action_high: ``(act_dim,)`` upper action bounds.
        population: number of random sequences.
        num_actions: for a discrete task, ``n``: actions are then uniform integer indices in
            ``[0, n - 1]`` (as floats, ``act_dim == 1``).
    """

    def __init__(
        self,
        objective: SequenceObjective,
        horizon: int,
        action_low: Tensor | np.ndarray | float,
        action_high: Tensor | np.ndarray | float,
        *,
        population: int = 1000,
        num_actions: int | None = None,
    ) -> None:
        super().__init__(objective, horizon, action_low, action_high)
        check_positive_int("population", population)
        if num_actions is not None and (self.act_dim != 1 or num_actions < 1):
            raise ValueError(f"num_actions: expected >= 1 with act_dim 1, got {num_actions}")
        self.population = population
        self.num_actions = num_actions

    def plan(
        self,
        obs: Tensor,
        init_actions: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PlanResult:
        """Random shooting from ``obs (obs_dim,)``; see :meth:`Planner.plan`."""
        t0 = time.perf_counter()
        obs, low, high = self.prepare(obs)
        shape = (self.population, self.horizon, self.act_dim)
        u = rand(shape, generator, low)
        if self.num_actions is not None:
            samples = torch.floor(u * self.num_actions).clamp(max=self.num_actions - 1)
        else:
            samples = low + u * (high - low)
        init = self.warm_start(obs, init_actions, self.num_actions)
        if init is not None:
            samples = torch.cat([init.unsqueeze(0), samples], 0)
        scores, used = self.evaluate(obs, samples, generator)
        best = BestTracker()
        best.update(samples, scores)
        return best.result(self.plan_info(t0, 1, used))


@dataclass
class RandomShootingConfig(SamplingPlannerConfig):
    """:class:`RandomShootingPlanner` settings (defaults from its signature); shared ones in
    :class:`~mbrl.planning.config.SamplingPlannerConfig`.

    Attributes:
        population: uniformly sampled sequences per plan.
    """

    name: str = "random"
    planner_class = RandomShootingPlanner
    population: int = default_of(RandomShootingPlanner, "population")

    supports_discrete = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("population")

    def create_sampler(
        self, objective: SequenceObjective, task: Task, **extra: object
    ) -> RandomShootingPlanner:
        return super().create_sampler(objective, task, num_actions=task.num_actions, **extra)
