"""Planner configs and the factory :func:`make_planner`.

Each planner has its own config, defined beside the planner (``CEMConfig`` in
:mod:`mbrl.planning.cem`, ``MPPIConfig`` in :mod:`mbrl.planning.mppi`, ...). They share:

* :class:`PlannerConfig` (every planner): ``name``, ``horizon``, ``use_learned_reward``,
  ``obs_cost_weights``, ``obs_limits``;
* :class:`SamplingPlannerConfig` (random shooting, CEM, iCEM, MPPI, predictive sampling): the
  particle rollouts and how they are scored (``num_particles``, ``propagation``,
  ``objective``, ``risk_beta``, ``discount``, ``precision``).

A config accepts only the keys its planner reads, and takes every default from the signature of
the class it builds (:func:`mbrl.util.config.default_of`), so the config and the class cannot
disagree. Example::

    from envs import get_task
    from mbrl.planning import CEMConfig, make_planner, planner_config

    task = get_task("pendulum-swingup")
    planner = make_planner(CEMConfig(horizon=20), task.dynamics_fn, task)
    planner = make_planner(planner_config("icem", horizon=20, noise_beta=2.5), ...)
    result = planner.plan(obs)          # result.actions: (20, act_dim)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from envs.task import Task
from mbrl.models.model_env import PROPAGATIONS, EnsembleModel, ModelEnv
from mbrl.planning.base import Planner
from mbrl.planning.objective import OBJECTIVES, PRECISIONS, SequenceObjective
from mbrl.util.config import ConfigError, config_from_dict, default_of

Tensor = torch.Tensor
Model = Callable[[Tensor, Tensor], Tensor] | EnsembleModel
PLANNERS: tuple[str, ...] = (
    "random",
    "cem",
    "icem",
    "mppi",
    "mcts",
    "ilqr",
    "predictive_sampling",
)

__all__ = [
    "PLANNERS",
    "PlannerConfig",
    "SamplingPlannerConfig",
    "make_planner",
    "planner_config",
    "shaped_task",
]


@dataclass
class PlannerConfig:
    """Settings every planner reads. Use a planner's own config (``CEMConfig``, ...), or
    :func:`planner_config` by name.

    Attributes:
        name: the planner (fixed by the config class: ``"cem"`` for ``CEMConfig``, ...).
        horizon: planned steps ``H``.
        use_learned_reward: take rewards from the model's learned reward head instead of the
            task's ``reward_fn``; ``None`` (default): exactly when the model has
            ``learn_reward = True`` (as :class:`mbrl.models.DynamicsModel` built so).
        obs_cost_weights: optional planning-only shaping, ``obs_dim`` weights ``w >= 0``: every
            predicted reward becomes ``reward - sum_i w_i * next_obs_i ** 2`` (a quadratic pull
            of the predicted observation towards 0). The environment's own reward, and so every
            reported return, is unchanged. Use it when the task's reward gives the planner no
            signal that matters over its horizon (e.g. InvertedPendulum's flat reward says
            nothing about the cart nearing the rail end). Needs the task's ``reward_fn``.
        obs_limits: optional planning-only termination, ``obs_dim`` entries, each a limit
            ``> 0`` or ``None`` (no limit): a predicted ``next_obs`` with ``|next_obs_i| >
            obs_limits_i`` ends that predicted episode, as the task's own termination would
            (no reward after it). It turns a state the model cannot represent (a hard stop) into
            lost future reward, which a flat reward cannot express. The environment's episodes
            are unchanged. Honoured by every planner that honours termination (the sampling
            planners and MCTS; iLQR plans on smooth costs and ignores termination).
    """

    name: str = ""
    horizon: int = 15
    use_learned_reward: bool | None = None
    obs_cost_weights: list[float] | None = None
    obs_limits: list[float | None] | None = None

    @classmethod
    def config_variants(cls) -> dict[str, type[PlannerConfig]]:
        """``{name: config class}`` of every planner (the ``name`` key selects one)."""
        from mbrl.planning.cem import CEMConfig
        from mbrl.planning.icem import ICEMConfig
        from mbrl.planning.ilqr_planner import ILQRConfig
        from mbrl.planning.mcts import MCTSConfig
        from mbrl.planning.mppi import MPPIConfig
        from mbrl.planning.predictive_sampling import PredictiveSamplingConfig
        from mbrl.planning.random_shooting import RandomShootingConfig

        return {
            "random": RandomShootingConfig,
            "cem": CEMConfig,
            "icem": ICEMConfig,
            "mppi": MPPIConfig,
            "mcts": MCTSConfig,
            "ilqr": ILQRConfig,
            "predictive_sampling": PredictiveSamplingConfig,
        }

    def __post_init__(self) -> None:
        variants = self.config_variants()
        own = [n for n, c in variants.items() if c is type(self)]
        if not own:
            raise TypeError(
                f"{type(self).__name__} is not a planner's config; use one of "
                f"{', '.join(c.__name__ for c in variants.values())} or planner_config(name, ...)"
            )
        if self.name != own[0]:
            raise ValueError(
                f"name: {type(self).__name__} configures {own[0]!r}, got name={self.name!r} "
                f"(use planner_config({self.name!r}, ...))"
            )
        self._check_types()
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
        if self.obs_limits is not None:
            self.obs_limits = _checked_limits(self.obs_limits)
        if self.horizon < 1:
            raise ValueError(f"horizon: expected >= 1, got {self.horizon}")

    def _check_types(self) -> None:
        """Type-check every ``int``, ``float`` and ``bool`` field (bools are not ints here)."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type == "int" and (isinstance(v, bool) or not isinstance(v, int)):
                raise TypeError(f"{f.name}: expected an int, got {v!r}")
            if f.type == "float" and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise TypeError(f"{f.name}: expected a float, got {v!r}")
            if f.type == "float" and not math.isfinite(v):
                raise ValueError(f"{f.name}: expected a finite float, got {v!r}")
            if f.type == "bool" and not isinstance(v, bool):
                raise TypeError(f"{f.name}: expected a bool, got {v!r}")

    def check_positive(self, *names: str) -> None:
        """Raise ``ValueError`` naming the first of ``names`` whose value is below 1."""
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlannerConfig:
        """Build the config that ``d["name"]`` selects (e.g. ``yaml.safe_load`` output).

        A key the selected planner does not read raises ``ValueError`` listing the valid keys.
        """
        try:
            return config_from_dict(PlannerConfig, d)
        except ConfigError as exc:
            msg = str(exc).removeprefix("config: ").replace(" at top level", "")
            raise ValueError(f"planner {d.get('name')!r}: {msg}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of all fields (``from_dict`` rebuilds the config)."""
        return dataclasses.asdict(self)

    def create(self, model: Model, task: Task, use_learned_reward: bool) -> Planner:
        """Build the planner over ``model`` for ``task`` (called by :func:`make_planner`)."""
        raise NotImplementedError


@dataclass
class SamplingPlannerConfig(PlannerConfig):
    """Settings of the planners that score sampled action sequences by particle rollouts
    (random shooting, CEM, iCEM, MPPI).

    Attributes:
        num_particles: model particles per sequence ``K``.
        propagation: ensemble propagation ``"tsinf"``, ``"ts1"``, ``"expectation"`` or
            ``"random_model"``.
        objective: ``"mean"``, ``"mean_minus_std"`` or ``"worst_member"``.
        risk_beta: ``beta`` in ``mean - beta * std`` over ensemble members.
        discount: per-step discount of predicted returns.
        precision: ``"float32"`` or ``"bfloat16"`` (model rollouts under bfloat16 autocast;
            scores stay float32).
    """

    num_particles: int = default_of(SequenceObjective, "num_particles")
    propagation: str = default_of(ModelEnv, "propagation")
    objective: str = default_of(SequenceObjective, "objective")
    risk_beta: float = default_of(SequenceObjective, "risk_beta")
    discount: float = default_of(SequenceObjective, "discount")
    precision: str = default_of(SequenceObjective, "precision")

    #: whether the planner handles discrete-action tasks
    supports_discrete = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.propagation not in PROPAGATIONS:
            raise ValueError(
                f"propagation: expected one of {PROPAGATIONS}, got {self.propagation!r}"
            )
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective: expected one of {OBJECTIVES}, got {self.objective!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {PRECISIONS}, got {self.precision!r}")
        self.check_positive("num_particles")

    def create(self, model: Model, task: Task, use_learned_reward: bool) -> Planner:
        if task.is_discrete and not self.supports_discrete:
            raise ValueError(
                f"name: planner {self.name!r} needs continuous actions; task {task.name!r} is "
                "discrete (use 'mcts' or 'random')"
            )
        env = ModelEnv(
            model,
            task,
            propagation=self.propagation,  # type: ignore[arg-type]
            use_learned_reward=use_learned_reward,
        )
        objective = SequenceObjective(
            env,
            num_particles=self.num_particles,
            objective=self.objective,  # type: ignore[arg-type]
            risk_beta=self.risk_beta,
            discount=self.discount,
            precision=self.precision,  # type: ignore[arg-type]
        )
        return self.create_sampler(objective, task)

    #: the planner class; its keyword arguments are this config's own fields
    planner_class: ClassVar[type[Planner]]

    def create_sampler(self, objective: SequenceObjective, task: Task, **extra: Any) -> Planner:
        """Build :attr:`planner_class` around its sequence ``objective``: the planner-specific
        fields (those not in :class:`SamplingPlannerConfig`) are its keyword arguments."""
        shared = {f.name for f in dataclasses.fields(SamplingPlannerConfig)}
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        settings = {k: v for k, v in own.items() if k not in shared}
        low, high = task.action_low, task.action_high
        return self.planner_class(objective, self.horizon, low, high, **settings, **extra)


def planner_config(name: str, **settings: Any) -> PlannerConfig:
    """The config of planner ``name`` with ``settings``; a key it does not read raises
    ``ValueError`` listing the valid keys. ``planner_config("mppi", temperature=0.5)``."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a planner name, got {name!r}")
    return PlannerConfig.from_dict({"name": name, **settings})


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


def _checked_limits(limits: object) -> list[float | None]:
    """``obs_limits`` as a list of floats ``> 0`` and ``None``s; raise naming it otherwise."""
    if not isinstance(limits, list | tuple) or not all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in limits
    ):
        raise TypeError(f"obs_limits: expected a list of floats or None entries, got {limits!r}")
    if not any(v is not None for v in limits):
        raise ValueError(f"obs_limits: expected at least one limit, got {list(limits)}")
    if not all(v is None or (math.isfinite(v) and v > 0) for v in limits):
        raise ValueError(f"obs_limits: expected finite limits > 0 or None, got {list(limits)}")
    return [None if v is None else float(v) for v in limits]


def bounded_task(task: Task, obs_limits: list[float | None]) -> Task:
    """A copy of ``task`` that also terminates where ``|next_obs_i| > obs_limits_i``.

    ``obs_limits`` has ``task.obs_dim`` entries (``None``: no limit on that entry); the copy is
    only for planning (its environment is the original one).
    """
    if len(obs_limits) != task.obs_dim:
        raise ValueError(
            f"obs_limits: expected {task.obs_dim} entries (obs_dim of task {task.name!r}), "
            f"got {len(obs_limits)}"
        )
    index = torch.tensor([i for i, v in enumerate(obs_limits) if v is not None])
    bound = torch.tensor([v for v in obs_limits if v is not None], dtype=torch.float64)
    base = task.termination_fn

    def termination_fn(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
        lim = bound.to(dtype=next_obs.dtype, device=next_obs.device)
        outside = (next_obs[..., index.to(next_obs.device)].abs() > lim).any(-1)
        return base(obs, act, next_obs) | outside

    return dataclasses.replace(task, termination_fn=termination_fn)


def make_planner(cfg: PlannerConfig, model: Model, task: Task) -> Planner:
    """Build the planner that ``cfg`` configures, over ``model``, for ``task``.

    Args:
        cfg: a planner's config (``CEMConfig``, ..., or :func:`planner_config`).
        model: a callable ``(obs (B, obs_dim), act (B, act_dim)) -> next_obs (B, obs_dim)``
            (e.g. ``task.dynamics_fn`` or a user ``torch.nn.Module``) or an ensemble
            (:class:`mbrl.models.model_env.EnsembleModel`, e.g. ``mbrl.models.DynamicsModel``),
            or :class:`mbrl.models.simulator_model.SimulatorModel` (the true MuJoCo simulator;
            anything with ``planning_task(task) -> Task``: the planner then uses that view of
            ``task``, and ``plan`` takes the model's planning state).
        task: supplies reward/termination functions and action bounds.

    Returns:
        a :class:`Planner`.
    """
    if not isinstance(cfg, PlannerConfig):
        raise TypeError(f"cfg: expected a PlannerConfig, got {type(cfg).__name__}")
    if not isinstance(task, Task):
        raise TypeError(f"task: expected an envs.Task, got {type(task).__name__}")
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
    if cfg.obs_limits is not None:
        task = bounded_task(task, cfg.obs_limits)
    planning_task = getattr(model, "planning_task", None)
    if planning_task is not None:  # e.g. SimulatorModel: the task's view over its states
        task = planning_task(task)
    return cfg.create(model, task, learned)
