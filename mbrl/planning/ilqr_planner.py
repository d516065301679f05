"""iLQR planning through a (learned) model's mean dynamics, using :func:`control.ddp.ilqr`.

The problem solved from the current observation ``x_0`` is

    min_u  Σ_{t<H}  cost(x_t, u_t),      x_{t+1} = f(x_t, u_t),      low <= u_t <= high,
    cost(x, u) = -reward_fn(x, u, f(x, u)) + λ · Σ_d Var_e[μ_e(x, u)]_d,

where ``f`` is the model's mean prediction: a plain callable ``(obs, act) -> next_obs`` as is,
or for an ensemble the mean over members of each member's mean (``μ_e``). The reward needs the
next observation, so the *cost recomputes* ``f(x, u)`` (one extra model evaluation per step; this
keeps the state equal to the observation and works with any ``reward_fn``). The optional
uncertainty penalty ``λ`` (ensembles only) charges the disagreement of the members' means. With
``use_learned_reward`` the reward term is the ensemble's learned reward (mean of member means).
Termination functions are not used by iLQR. Derivatives come from autodiff through the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from envs.task import Task
from mbrl.models.model_env import EnsembleModel
from mbrl.planning.base import Planner, PlanResult
from mbrl.planning.config import Model, PlannerConfig
from mbrl.util.config import default_of

Tensor = torch.Tensor


class ILQRPlanner(Planner):
    """Box-constrained iLQR over the model's mean dynamics (continuous actions only).

    Args:
        model: a callable ``(obs (B, obs_dim), act (B, act_dim)) -> next_obs (B, obs_dim)``,
            differentiable by autodiff, or an :class:`EnsembleModel` (its members' means are
            averaged, e.g. :class:`mbrl.models.DynamicsModel`).
        task: supplies ``reward_fn`` and the action bounds.
        horizon: planning horizon ``H``.
        max_iter: iLQR iteration limit per :meth:`plan` call.
        uncertainty_penalty: ``λ >= 0`` on the ensemble variance of member means (0: off).
        use_learned_reward: use the ensemble's learned reward (mean over members of the
            members' reward means) instead of ``task.reward_fn``.
        dtype: dtype of the iLQR computation (float64 by default); the model is called in its
            own parameter dtype when it is an ``nn.Module``.
        **ilqr_kwargs: further keyword arguments of :func:`control.ddp.ilqr` (``tol``, ...).
    """

    def __init__(
        self,
        model: Callable[[Tensor, Tensor], Tensor] | EnsembleModel,
        task: Task,
        horizon: int,
        *,
        max_iter: int = 50,
        uncertainty_penalty: float = 0.0,
        use_learned_reward: bool = False,
        dtype: torch.dtype = torch.float64,
        **ilqr_kwargs: object,
    ) -> None:
        super().__init__(horizon, task.action_low, task.action_high)
        if task.is_discrete:
            raise ValueError(f"task: iLQR needs continuous actions; {task.name!r} is discrete")
        self.is_ensemble = isinstance(model, EnsembleModel)
        if not self.is_ensemble and not callable(model):
            raise TypeError("model: expected a callable (obs, act) -> next_obs or an ensemble")
        if not uncertainty_penalty >= 0:
            raise ValueError(f"uncertainty_penalty: expected >= 0, got {uncertainty_penalty}")
        if uncertainty_penalty > 0 and not self.is_ensemble:
            raise ValueError("uncertainty_penalty: needs an ensemble model (got a plain callable)")
        if use_learned_reward and not self.is_ensemble:
            raise ValueError("use_learned_reward: needs an ensemble with a learned reward head")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"max_iter: expected a positive int, got {max_iter!r}")
        self.model = model
        self.reward_fn = task.reward_fn
        self.use_learned_reward = bool(use_learned_reward)
        self.max_iter = max_iter
        self.uncertainty_penalty = float(uncertainty_penalty)
        self.dtype = dtype
        self.ilqr_kwargs = ilqr_kwargs
        self._model_dtype: torch.dtype | None = None
        if isinstance(model, nn.Module):
            p = next(iter(model.parameters()), None)
            self._model_dtype = None if p is None else p.dtype

    # ------------------------------------------------------------------ model pieces
    def _cast(self, x: Tensor) -> Tensor:
        return x if self._model_dtype is None else x.to(self._model_dtype)

    def _query(self, x: Tensor, u: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Mean next state ``(N, n)``, summed member-mean variance ``(N,)`` and learned reward
        ``(N,)`` (the last two ``None`` for a plain callable / without a reward head)."""
        if not self.is_ensemble:
            return self.model(self._cast(x), self._cast(u)).to(x.dtype), None, None
        pred = self.model.predict(self._cast(x), self._cast(u))
        means = pred.next_obs_mean.to(x.dtype)  # (E, N, n)
        var = means.var(dim=0, unbiased=False).sum(-1) if means.shape[0] > 1 else None
        rew = None if pred.reward_mean is None else pred.reward_mean.to(x.dtype).mean(0)
        return means.mean(0), var, rew

    def dynamics(self, x: Tensor, u: Tensor) -> Tensor:
        """Mean model step ``x (N, n), u (N, m) -> (N, n)``."""
        return self._query(x, u)[0]

    def cost(self, x: Tensor, u: Tensor) -> Tensor:
        """Running cost ``(N,)``: ``-reward(x, u, f(x, u)) + λ · variance`` (see module docs)."""
        nxt, var, learned = self._query(x, u)
        if self.use_learned_reward:
            if learned is None:
                raise ValueError("use_learned_reward: the model has no learned reward output")
            c = -learned
        else:
            c = -self.reward_fn(x, u, nxt)
        if self.uncertainty_penalty > 0 and var is not None:
            c = c + self.uncertainty_penalty * var
        return c

    # ------------------------------------------------------------------ plan
    def plan(
        self,
        obs: Tensor,
        init_actions: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PlanResult:
        """Run iLQR from ``obs (obs_dim,)`` (``generator`` is unused: iLQR is deterministic).

        ``value`` is minus the optimised cost (the predicted return, less the penalty).
        """
        from control.ddp import ilqr

        t0 = time.perf_counter()
        obs, low, high = self.prepare(obs)
        u_init = self.initial_mean(obs, init_actions)
        res = ilqr(
            self.dynamics,
            self.cost,
            obs.to(self.dtype),
            u_init.to(self.dtype),
            u_min=low.to(self.dtype),
            u_max=high.to(self.dtype),
            max_iter=self.max_iter,
            dtype=self.dtype,
            **self.ilqr_kwargs,
        )
        actions = res.u_best.detach().to(dtype=obs.dtype, device=obs.device)
        info = {
            "iterations": float(res.iterations[res.best]),
            "converged": float(bool(res.converged[res.best])),
            "cost": res.cost_best,
            "time_s": time.perf_counter() - t0,
        }
        return PlanResult(actions=actions, value=-res.cost_best, info=info)


@dataclass
class ILQRConfig(PlannerConfig):
    """:class:`ILQRPlanner` settings (defaults from its signature). iLQR plans through the
    model's mean dynamics, undiscounted, with continuous actions only.

    Attributes:
        max_iter: maximum iLQR iterations per plan.
        uncertainty_penalty: ``lambda`` of the cost ``lambda * Var_e[mean_e]`` (ensembles).
    """

    name: str = "ilqr"
    max_iter: int = default_of(ILQRPlanner, "max_iter")
    uncertainty_penalty: float = default_of(ILQRPlanner, "uncertainty_penalty")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("max_iter")
        if self.obs_limits is not None:
            raise ValueError(
                "obs_limits: iLQR does not use terminations, so a planning-only limit would be "
                "ignored; use obs_cost_weights, or a sampling planner (cem, icem, mppi)"
            )
        if self.uncertainty_penalty < 0:
            raise ValueError(f"uncertainty_penalty: expected >= 0, got {self.uncertainty_penalty}")

    def create(self, model: Model, task: Task, use_learned_reward: bool) -> ILQRPlanner:
        if task.is_discrete:
            raise ValueError(
                f"name: planner 'ilqr' needs continuous actions; task {task.name!r} is "
                "discrete (use 'mcts' or 'random')"
            )
        return ILQRPlanner(
            model,
            task,
            self.horizon,
            max_iter=self.max_iter,
            uncertainty_penalty=self.uncertainty_penalty,
            use_learned_reward=use_learned_reward,
        )
