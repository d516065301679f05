"""Planner configuration (:class:`PlannerConfig`) and the factory :func:`make_planner`.

Example::

    from envs import get_task
    from mbrl.planning import PlannerConfig, make_planner

    task = get_task("pendulum-swingup")
    planner = make_planner(PlannerConfig(name="cem", horizon=20), task.dynamics_fn, task)
    result = planner.plan(obs)          # result.actions: (20, act_dim)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from envs.task import Task
from mbrl.models.model_env import PROPAGATIONS, EnsembleModel, ModelEnv
from mbrl.planning.base import Planner
from mbrl.planning.objective import OBJECTIVES, PRECISIONS, SequenceObjective

Tensor = torch.Tensor
PLANNERS: tuple[str, ...] = ("random", "cem", "icem", "mppi", "mcts", "ilqr")


@dataclass
class PlannerConfig:
    """Flat planner settings; every planner reads the fields it needs and ignores the rest.

    Shared:
        name: ``"random"``, ``"cem"``, ``"icem"``, ``"mppi"``, ``"mcts"`` or ``"ilqr"``.
        horizon: planned steps ``H``.
        population: sequences sampled per iteration (random/CEM/iCEM-initial/MPPI).
        num_elites: elites refitted by CEM/iCEM.
        iterations: optimisation iterations per plan (CEM/iCEM/MPPI; random uses 1).
        alpha: CEM/iCEM smoothing, weight of the previous mean/std.
        init_std: initial sampling std as a fraction of the action range (CEM/iCEM).
        return_mean_elites: CEM/iCEM return the final refitted elite mean instead of the best
            sampled sequence (default ``False``: best sample).
        num_particles: model particles per sequence ``K``.
        propagation: ensemble propagation ``"tsinf"``, ``"ts1"``, ``"expectation"`` or
            ``"random_model"`` (MCTS and iLQR always use the deterministic mean model).
        objective: ``"mean"``, ``"mean_minus_std"`` or ``"worst_member"``.
        risk_beta: ``beta`` in ``mean - beta * std`` over ensemble members.
        discount: per-step discount of predicted returns.
        precision: ``"float32"`` (default) or ``"bfloat16"``: the sampling planners' model
            rollouts run under bfloat16 autocast (matrix products in bfloat16). Not used by
            MCTS and iLQR.
    iCEM (Pinneri et al., 2020):
        icem_noise_beta: colored-noise exponent (0 white, 2 Brownian-like, larger smoother).
        icem_keep_elites_fraction: fraction of elites carried into the next iteration.
        icem_population_decay: population shrinks by this factor per iteration (>= 1).
    MPPI (Williams et al., 2017):
        mppi_temperature: ``lambda`` of the weights ``exp((R - max R) / lambda)``.
        mppi_noise_std: perturbation std as a fraction of the action range.
        mppi_normalize_returns: temperature in units of the population's return std (so it
            does not depend on the reward scale).
    MCTS:
        mcts_simulations: tree simulations (selection-expansion-evaluation-backup) per plan.
        mcts_c_uct: exploration constant ``c`` of ``Q/N + c sqrt(ln N_parent / N)``.
        mcts_rollout_horizon: steps of the random default-policy rollout from a leaf.
        mcts_rollouts_per_leaf: random rollouts averaged per leaf evaluation (batched).
        mcts_widening_k, mcts_widening_alpha: progressive widening (continuous actions):
            at most ``ceil(k * N ** alpha)`` children after ``N`` visits.
        mcts_leaf_batch: leaves selected (with virtual loss) and evaluated per batched model call.
    iLQR:
        ilqr_iterations: maximum iLQR iterations per plan.
        ilqr_uncertainty_penalty: ``lambda`` of the cost ``lambda * Var_e[mean_e]`` (ensembles).
    Reward:
        use_learned_reward: take rewards from the model's learned reward head instead of the
            task's ``reward_fn``; ``None`` (default): exactly when the model has
            ``learn_reward = True`` (as :class:`mbrl.models.DynamicsModel` built so).
        obs_cost_weights: optional planning-only shaping, ``obs_dim`` weights ``w >= 0``: every
            predicted reward becomes ``reward - sum_i w_i * next_obs_i ** 2`` (a quadratic pull
            of the predicted observation towards 0). The environment's own reward, and so every
            reported return, is unchanged. Use it when the task's reward gives the planner no
            signal that matters over its horizon (e.g. InvertedPendulum's flat reward says
            nothing about the cart nearing the rail end). Needs the task's ``reward_fn``.
    """

    name: str = "cem"
    horizon: int = 15
    population: int = 500
    num_elites: int = 50
    iterations: int = 5
    alpha: float = 0.1
    init_std: float = 0.25
    return_mean_elites: bool = False
    num_particles: int = 20
    propagation: str = "tsinf"
    objective: str = "mean"
    risk_beta: float = 1.0
    discount: float = 1.0
    precision: str = "float32"
    icem_noise_beta: float = 2.0
    icem_keep_elites_fraction: float = 0.3
    icem_population_decay: float = 1.25
    mppi_temperature: float = 1.0
    mppi_noise_std: float = 0.3
    mppi_normalize_returns: bool = False
    mcts_simulations: int = 200
    mcts_c_uct: float = 1.0
    mcts_rollout_horizon: int = 20
    mcts_rollouts_per_leaf: int = 8
    mcts_widening_k: float = 1.0
    mcts_widening_alpha: float = 0.5
    mcts_leaf_batch: int = 8
    ilqr_iterations: int = 50
    ilqr_uncertainty_penalty: float = 0.0
    use_learned_reward: bool | None = None
    obs_cost_weights: list[float] | None = None

    def __post_init__(self) -> None:
        if self.name not in PLANNERS:
            raise ValueError(f"name: expected one of {PLANNERS}, got {self.name!r}")
        if self.propagation not in PROPAGATIONS:
            raise ValueError(
                f"propagation: expected one of {PROPAGATIONS}, got {self.propagation!r}"
            )
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective: expected one of {OBJECTIVES}, got {self.objective!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {PRECISIONS}, got {self.precision!r}")
        if self.precision != "float32" and self.name in ("mcts", "ilqr"):
            raise ValueError(
                f"precision: {self.precision!r} applies to the sampling planners; {self.name!r} "
                "runs in the model's dtype (use precision='float32')"
            )
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type == "int" and (isinstance(v, bool) or not isinstance(v, int)):
                raise TypeError(f"{f.name}: expected an int, got {v!r}")
            if f.type == "float" and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise TypeError(f"{f.name}: expected a float, got {v!r}")
        for flag in ("return_mean_elites", "mppi_normalize_returns"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag}: expected a bool, got {getattr(self, flag)!r}")
        if self.use_learned_reward is not None and not isinstance(self.use_learned_reward, bool):
            raise TypeError(
                f"use_learned_reward: expected a bool or None, got {self.use_learned_reward!r}"
            )
        if self.obs_cost_weights is not None:
            w = self.obs_cost_weights
            if not isinstance(w, list | tuple) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in w
            ):
                raise TypeError(f"obs_cost_weights: expected a list of floats or None, got {w!r}")
            if not all(math.isfinite(v) and v >= 0 for v in w):
                raise ValueError(f"obs_cost_weights: expected finite weights >= 0, got {list(w)}")
            self.obs_cost_weights = [float(v) for v in w]
        positive = ("horizon", "population", "num_elites", "iterations", "num_particles")
        positive += (
            "mcts_simulations",
            "mcts_rollouts_per_leaf",
            "mcts_leaf_batch",
            "ilqr_iterations",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlannerConfig:
        """Build from a mapping (e.g. ``yaml.safe_load`` output); unknown keys raise."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"PlannerConfig: unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of all fields."""
        return dataclasses.asdict(self)


def shaped_task(task: Task, obs_cost_weights: list[float]) -> Task:
    """A copy of ``task`` whose ``reward_fn`` subtracts ``sum_i w_i * next_obs_i ** 2``.

    ``obs_cost_weights`` has ``task.obs_dim`` entries; the copy is only for planning (its
    environment is the original one).
    """
    if len(obs_cost_weights) != task.obs_dim:
        raise ValueError(
            f"obs_cost_weights: expected {task.obs_dim} weights (obs_dim of task "
            f"{task.name!r}), got {len(obs_cost_weights)}"
        )
    weights = torch.tensor(obs_cost_weights, dtype=torch.float64)
    base = task.reward_fn

    def reward_fn(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
        w = weights.to(dtype=next_obs.dtype, device=next_obs.device)
        return base(obs, act, next_obs) - (w * next_obs.square()).sum(-1)

    return dataclasses.replace(task, reward_fn=reward_fn)


def make_planner(
    cfg: PlannerConfig,
    model: Callable[[Tensor, Tensor], Tensor] | EnsembleModel,
    task: Task,
) -> Planner:
    """Build the planner ``cfg.name`` over ``model`` for ``task``.

    Args:
        cfg: planner settings.
        model: a callable ``(obs (B, obs_dim), act (B, act_dim)) -> next_obs (B, obs_dim)``
            (e.g. ``task.dynamics_fn`` or a user ``torch.nn.Module``) or an ensemble
            (:class:`mbrl.models.model_env.EnsembleModel`, e.g. ``mbrl.models.DynamicsModel``).
        task: supplies reward/termination functions and action bounds.

    Returns:
        a :class:`Planner`.
    """
    if not isinstance(cfg, PlannerConfig):
        raise TypeError(f"cfg: expected a PlannerConfig, got {type(cfg).__name__}")
    if not isinstance(task, Task):
        raise TypeError(f"task: expected an envs.Task, got {type(task).__name__}")
    low, high = task.action_low, task.action_high
    learned = cfg.use_learned_reward
    if learned is None:
        learned = bool(getattr(model, "learn_reward", False))
    if cfg.obs_cost_weights is not None:
        if learned:
            raise ValueError(
                "obs_cost_weights: shapes the task's reward_fn, but the planner would use the "
                "model's learned reward (set use_learned_reward=False or drop the weights)"
            )
        task = shaped_task(task, cfg.obs_cost_weights)
    if cfg.name == "mcts":
        from mbrl.planning.mcts import MCTSPlanner

        env = ModelEnv(model, task, propagation="expectation", use_learned_reward=learned)
        return MCTSPlanner(
            env,
            cfg.horizon,
            low,
            high,
            num_actions=task.num_actions,
            simulations=cfg.mcts_simulations,
            c_uct=cfg.mcts_c_uct,
            rollout_horizon=cfg.mcts_rollout_horizon,
            rollouts_per_leaf=cfg.mcts_rollouts_per_leaf,
            widening_k=cfg.mcts_widening_k,
            widening_alpha=cfg.mcts_widening_alpha,
            discount=cfg.discount,
            leaf_batch=cfg.mcts_leaf_batch,
        )
    if task.is_discrete and cfg.name != "random":
        raise ValueError(
            f"name: planner {cfg.name!r} needs continuous actions; task {task.name!r} is "
            "discrete (use 'mcts' or 'random')"
        )
    if cfg.name == "ilqr":
        from mbrl.planning.ilqr_planner import ILQRPlanner

        return ILQRPlanner(
            model,
            task,
            cfg.horizon,
            max_iter=cfg.ilqr_iterations,
            uncertainty_penalty=cfg.ilqr_uncertainty_penalty,
            use_learned_reward=learned,
        )
    env = ModelEnv(
        model,
        task,
        propagation=cfg.propagation,  # type: ignore[arg-type]
        use_learned_reward=learned,
    )
    objective = SequenceObjective(
        env,
        num_particles=cfg.num_particles,
        objective=cfg.objective,  # type: ignore[arg-type]
        risk_beta=cfg.risk_beta,
        discount=cfg.discount,
        precision=cfg.precision,  # type: ignore[arg-type]
    )
    if cfg.name == "random":
        from mbrl.planning.random_shooting import RandomShootingPlanner

        return RandomShootingPlanner(
            objective,
            cfg.horizon,
            low,
            high,
            population=cfg.population,
            num_actions=task.num_actions,
        )
    # Settings CEM and iCEM share (iCEM adds its own below).
    cem_settings: dict[str, Any] = {
        "population": cfg.population,
        "num_elites": cfg.num_elites,
        "iterations": cfg.iterations,
        "alpha": cfg.alpha,
        "init_std": cfg.init_std,
        "return_mean_elites": cfg.return_mean_elites,
    }
    if cfg.name == "cem":
        from mbrl.planning.cem import CEMPlanner

        return CEMPlanner(objective, cfg.horizon, low, high, **cem_settings)
    if cfg.name == "icem":
        from mbrl.planning.icem import ICEMPlanner

        return ICEMPlanner(
            objective,
            cfg.horizon,
            low,
            high,
            **cem_settings,
            noise_beta=cfg.icem_noise_beta,
            keep_elites_fraction=cfg.icem_keep_elites_fraction,
            population_decay=cfg.icem_population_decay,
        )
    from mbrl.planning.mppi import MPPIPlanner

    return MPPIPlanner(
        objective,
        cfg.horizon,
        low,
        high,
        population=cfg.population,
        iterations=cfg.iterations,
        temperature=cfg.mppi_temperature,
        noise_std=cfg.mppi_noise_std,
        normalize_returns=cfg.mppi_normalize_returns,
    )
