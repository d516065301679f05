"""Receding-horizon (MPC) control with warm-started iLQR.

:class:`RecedingHorizonILQR` re-plans a ``horizon``-step control sequence from the current state
at every call of :meth:`~RecedingHorizonILQR.act` and returns its first control.  The previous
plan, shifted by one step (its last control repeated), warm-starts the next solve, so a few iLQR
iterations per call suffice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from control.ilqr import ILQRResult, ilqr

Tensor = torch.Tensor

__all__ = ["RecedingHorizonILQR"]


class RecedingHorizonILQR:
    """Model-predictive control by iLQR over a sliding horizon.

    Args:
        dynamics: ``dynamics(x (N, n), u (N, m)) -> (N, n)`` (see :func:`control.ilqr.ilqr`).
        cost: ``cost(x (N, n), u (N, m)) -> (N,)`` running cost.
        horizon: planning horizon ``T`` (steps).
        act_dim: control size ``m``.
        terminal_cost: optional ``terminal_cost(x (N, n)) -> (N,)``.
        u_min: lower control bounds (scalar or ``(m,)``).
        u_max: upper control bounds (scalar or ``(m,)``).
        iters_per_step: iLQR iterations per :meth:`act` call (``max_iter`` of each solve).
        first_iters: iterations of the first solve (from ``u_init``); default ``10 × iters``.
        u_init: ``(T, m)`` first plan; zeros (projected onto the bounds) when ``None``.
        **ilqr_kwargs: further keyword arguments of :func:`control.ilqr.ilqr` (``derivatives``,
            ``jacobians``, ``alphas``, ``tol``, ``dtype``, ...).

    Attributes:
        plan: ``(T, m)`` current control plan (``None`` before the first call).
        last_result: the :class:`~control.ilqr.ILQRResult` of the last solve.
    """

    def __init__(
        self,
        dynamics: Callable[[Tensor, Tensor], Tensor],
        cost: Callable[[Tensor, Tensor], Tensor],
        horizon: int,
        act_dim: int,
        *,
        terminal_cost: Callable[[Tensor], Tensor] | None = None,
        u_min: float | np.ndarray | Tensor | None = None,
        u_max: float | np.ndarray | Tensor | None = None,
        iters_per_step: int = 3,
        first_iters: int | None = None,
        u_init: Tensor | np.ndarray | None = None,
        **ilqr_kwargs: Any,
    ) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if act_dim < 1:
            raise ValueError(f"act_dim must be >= 1, got {act_dim}")
        if iters_per_step < 1:
            raise ValueError(f"iters_per_step must be >= 1, got {iters_per_step}")
        self.dynamics = dynamics
        self.cost = cost
        self.terminal_cost = terminal_cost
        self.horizon = int(horizon)
        self.act_dim = int(act_dim)
        self.u_min, self.u_max = u_min, u_max
        self.iters_per_step = int(iters_per_step)
        self.first_iters = 10 * self.iters_per_step if first_iters is None else int(first_iters)
        if "max_iter" in ilqr_kwargs:
            raise TypeError(
                "max_iter: set iters_per_step (and first_iters) instead; they are max_iter of "
                "each solve"
            )
        self.dtype = ilqr_kwargs.pop("dtype", torch.float64)
        self.ilqr_kwargs = ilqr_kwargs
        self._u_init = None
        if u_init is not None:
            u0 = torch.as_tensor(np.asarray(u_init) if not isinstance(u_init, Tensor) else u_init)
            if tuple(u0.shape) != (self.horizon, self.act_dim):
                raise ValueError(
                    f"u_init must have shape ({self.horizon}, {self.act_dim}), "
                    f"got {tuple(u0.shape)}"
                )
            self._u_init = u0.to(self.dtype)
        self.plan: Tensor | None = None
        self.last_result: ILQRResult | None = None

    def reset(self) -> None:
        """Forget the current plan (the next :meth:`act` starts from ``u_init`` again)."""
        self.plan = None
        self.last_result = None

    def act(self, x: Tensor | np.ndarray) -> Tensor:
        """Plan from state ``x`` ``(n,)`` and return the first control ``(m,)``."""
        x_t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).to(self.dtype)
        if x_t.dim() != 1:
            raise ValueError(f"x must have shape (n,), got {tuple(x_t.shape)}")
        if self.plan is None:
            if self._u_init is not None:
                u0 = self._u_init.clone()
            else:
                u0 = torch.zeros(self.horizon, self.act_dim, dtype=self.dtype)
            iters = self.first_iters
        else:
            u0 = torch.cat([self.plan[1:], self.plan[-1:]], dim=0)
            iters = self.iters_per_step
        res = ilqr(
            self.dynamics,
            self.cost,
            x_t,
            u0,
            terminal_cost=self.terminal_cost,
            u_min=self.u_min,
            u_max=self.u_max,
            max_iter=iters,
            dtype=self.dtype,
            **self.ilqr_kwargs,
        )
        self.last_result = res
        self.plan = res.u_best.clone()
        return self.plan[0].clone()
