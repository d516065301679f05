"""Model-predictive control agent: replan every ``k`` steps, execute the plan in between.

MBRL v1.5 (Lec11): plan through the model, execute the first planned action(s), observe, replan.
The agent keeps the plan between replanning steps and warm-starts the next call to the planner
with the not-yet-executed part of the previous plan, shifted to the front and padded by
repeating its last action. Planners themselves are stateless.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np
import torch

from envs.task import Task

Tensor = torch.Tensor

__all__ = ["MPCAgent", "PlannerLike", "shift_plan"]


class PlannerLike(Protocol):
    """What :class:`MPCAgent` needs from a planner (see :mod:`mbrl.planning`)."""

    def plan(
        self,
        obs: Tensor,
        init_actions: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Any:
        """Return a result with ``actions`` ``(H, act_dim)`` for the start state ``obs``."""
        ...


def shift_plan(actions: Tensor, steps: int) -> Tensor:
    """Drop the first ``steps`` actions of ``actions (H, act_dim)``; pad by repeating the last.

    Returns a new ``(H, act_dim)`` tensor. ``0 <= steps <= H``.
    """
    if actions.ndim != 2:
        raise ValueError(f"actions: expected shape (H, act_dim), got {tuple(actions.shape)}")
    h = actions.shape[0]
    if not 0 <= steps <= h:
        raise ValueError(f"steps: expected 0 <= steps <= H={h}, got {steps}")
    if steps == 0:
        return actions.clone()
    pad = actions[-1:].expand(steps, -1)
    return torch.cat([actions[steps:], pad], 0)


class MPCAgent:
    """Receding-horizon controller around a planner.

    Args:
        planner: an object with ``plan(obs (obs_dim,), init_actions (H, act_dim) | None,
            generator) -> PlanResult`` whose ``actions`` is ``(H, act_dim)``.
        replan_every: replan every ``k`` environment steps (``1`` = classic MPC); in between, the
            agent executes the stored plan's next actions. Must not exceed the planning horizon.
        generator: torch generator handed to the planner (the agent's only randomness).
        task: the task; gives the action bounds (actions are clipped to them) and, for discrete
            tasks (``task.num_actions`` set), makes :meth:`act` return an ``int``. Defaults to
            ``planner.task`` when the planner has one.
        warm_start: shift the remaining plan into ``init_actions`` of the next call (default);
            ``False`` calls the planner with ``init_actions=None`` every time.
        device: device of the observation tensor handed to the planner.
        dtype: dtype of that tensor.

    Attributes:
        last_plan: ``(H, act_dim)`` the current plan (``None`` before the first step).
        last_result: the planner's last ``PlanResult``.
        step_times: seconds spent in :meth:`act` for each step since :meth:`reset`
            (planning included; near zero on steps that only read the stored plan).
        num_replans: planner calls since :meth:`reset`.
    """

    def __init__(
        self,
        planner: PlannerLike,
        *,
        replan_every: int = 1,
        generator: torch.Generator | None = None,
        task: Task | None = None,
        warm_start: bool = True,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if isinstance(replan_every, bool) or not isinstance(replan_every, int) or replan_every < 1:
            raise ValueError(f"replan_every: expected a positive int, got {replan_every!r}")
        self.planner = planner
        self.replan_every = replan_every
        self.generator = generator
        self.task = task if task is not None else getattr(planner, "task", None)
        self.warm_start = warm_start
        self.device = torch.device(device)
        self.dtype = dtype
        self.reset()

    # ------------------------------------------------------------------ episode state
    def reset(self) -> None:
        """Forget the stored plan and timing (call at the start of every episode)."""
        self.last_plan: Tensor | None = None
        self.last_result: Any = None
        self._steps_since_plan = 0
        self.step_times: list[float] = []
        self.num_replans = 0

    @property
    def mean_step_time(self) -> float:
        """Mean seconds per :meth:`act` call since :meth:`reset` (``nan`` before any step)."""
        return float(np.mean(self.step_times)) if self.step_times else float("nan")

    # ------------------------------------------------------------------ acting
    def act(self, obs: np.ndarray | Tensor) -> np.ndarray | int:
        """Action for observation ``obs (obs_dim,)``.

        Returns a float32 ``np.ndarray (act_dim,)`` clipped to the task's bounds, or an ``int``
        in ``[0, num_actions)`` for discrete tasks.
        """
        start = time.perf_counter()
        obs_t = self._as_obs_tensor(obs)
        if self.last_plan is None or self._steps_since_plan >= self.replan_every:
            self._replan(obs_t)
        action = self.last_plan[self._steps_since_plan]
        self._steps_since_plan += 1
        out = self._to_env_action(action)
        self.step_times.append(time.perf_counter() - start)
        return out

    def _replan(self, obs: Tensor) -> None:
        init = None
        if self.warm_start and self.last_plan is not None:
            init = shift_plan(self.last_plan, self._steps_since_plan)
        result = self.planner.plan(obs, init_actions=init, generator=self.generator)
        actions = result.actions
        if not isinstance(actions, Tensor) or actions.ndim != 2:
            raise ValueError(
                "planner: expected PlanResult.actions of shape (H, act_dim), got "
                f"{getattr(actions, 'shape', type(actions))}"
            )
        if actions.shape[0] < self.replan_every:
            raise ValueError(
                f"replan_every: {self.replan_every} exceeds the planning horizon {actions.shape[0]}"
            )
        if not torch.isfinite(actions).all():
            raise FloatingPointError("planner returned non-finite actions")
        self.last_plan = actions.detach()
        self.last_result = result
        self._steps_since_plan = 0
        self.num_replans += 1

    def _as_obs_tensor(self, obs: np.ndarray | Tensor) -> Tensor:
        obs_t = torch.as_tensor(np.asarray(obs) if not isinstance(obs, Tensor) else obs)
        obs_t = obs_t.to(device=self.device, dtype=self.dtype)
        if obs_t.ndim != 1:
            raise ValueError(f"obs: expected shape (obs_dim,), got {tuple(obs_t.shape)}")
        if self.task is not None and obs_t.shape[0] != self.task.obs_dim:
            raise ValueError(
                f"obs: expected shape ({self.task.obs_dim},), got {tuple(obs_t.shape)}"
            )
        if not torch.isfinite(obs_t).all():
            raise ValueError("obs: contains NaN or inf")
        return obs_t

    def _to_env_action(self, action: Tensor) -> np.ndarray | int:
        a = action.detach().to("cpu", torch.float64).numpy()
        task = self.task
        if task is not None and task.num_actions is not None:
            return int(np.clip(np.rint(a[0]), 0, task.num_actions - 1))
        if task is not None:
            a = np.clip(a, task.action_low, task.action_high)
        return a.astype(np.float32)
