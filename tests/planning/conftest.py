"""Fixtures of the planner tests: a scalar linear-quadratic task with a closed-form optimum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy.optimize import lsq_linear

from envs import get_task
from envs.task import Task

A, B, R = 0.9, 0.5, 0.1


@dataclass
class LQProblem:
    """``x' = a x + b u``, reward ``-(x^2 + r u^2)`` (pre-step x), ``H`` steps from ``x0``."""

    task: Task
    horizon: int
    x0: float

    def optimum(self, low: float = -np.inf, high: float = np.inf) -> tuple[np.ndarray, float]:
        """Open-loop optimum ``(u* (H,), return*)`` by (bounded) linear least squares (scipy).

        ``Σ_t x_t^2 + r u_t^2`` with ``x_t = a^t x0 + Σ_{s<t} a^{t-1-s} b u_s`` is
        ``||G u + g||^2 + r ||u||^2``: least squares on ``[G; sqrt(r) I] u ≈ [-g; 0]``.
        """
        h = self.horizon
        g = np.array([A**t * self.x0 for t in range(h)])
        G = np.zeros((h, h))
        for t in range(h):
            for s in range(t):
                G[t, s] = A ** (t - 1 - s) * B
        M = np.vstack([G, np.sqrt(R) * np.eye(h)])
        rhs = np.concatenate([-g, np.zeros(h)])
        sol = lsq_linear(M, rhs, bounds=(low, high), tol=1e-12, method="bvls")
        u = sol.x
        ret = -(np.sum((G @ u + g) ** 2) + R * np.sum(u**2))
        return u, float(ret)


def lq_task(low: float, high: float) -> Task:
    """The registry's ``linear`` task with scalar ``a, b, Q = 1, R = r`` and bounds."""
    return get_task(
        "linear", A=[[A]], B=[[B]], Q=[[1.0]], R=[[R]], action_low=low, action_high=high
    )


@pytest.fixture
def lq() -> LQProblem:
    """Unbounded-in-effect problem: bounds ``[-3, 3]`` contain the optimum."""
    return LQProblem(lq_task(-3.0, 3.0), horizon=5, x0=2.0)


@pytest.fixture
def lq_tight() -> LQProblem:
    """Same system with bounds ``[-0.5, 0.5]``, active at the optimum."""
    return LQProblem(lq_task(-0.5, 0.5), horizon=5, x0=2.0)


@pytest.fixture
def obs64() -> torch.Tensor:
    """Start observation ``[2.0]`` in float64."""
    return torch.tensor([2.0], dtype=torch.float64)
