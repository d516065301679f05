"""Shared fixtures of the algorithm tests."""

import pytest
import torch

from envs import get_task
from mbrl.algorithms.gps_config import EVAL_SEED_BASE
from mbrl.algorithms.gps_problem import policy_rollouts, problem_from_task, start_states


@pytest.fixture
def pendulum_random_return() -> float:
    """Mean return, over 60 steps, of uniform random torques in [-2, 2] from the first three
    held-out pendulum swing-up starts that ``mbrl gps`` evaluates on (the baseline a short
    distillation must beat)."""
    task = get_task("pendulum-swingup")
    problem = problem_from_task(task, 60)
    x0 = start_states(task, [EVAL_SEED_BASE + i for i in range(3)])
    g = torch.Generator().manual_seed(0)

    def random_policy(x: torch.Tensor) -> torch.Tensor:
        return 4.0 * torch.rand(x.shape[0], 1, generator=g, dtype=torch.float64) - 2.0

    return float((-policy_rollouts(problem, random_policy, x0).cost).mean())
