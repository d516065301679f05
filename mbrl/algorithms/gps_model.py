"""Guided policy search through a learned ensemble (``dynamics=model``): the data, the model
and the control problem that plans through the model's mean.

The toolkit collects its own data. A run starts with ``data.initial_random_episodes`` episodes
of uniform random torques in the TRUE environment and trains the ensemble
(:func:`mbrl.models.train_on_buffer`, as PETS does). Then every ``data.iterations_per_round``
GPS iterations make a round; before each later round the current distilled policy acts alone
in the true environment from the ``N`` training conditions (``env.reset(seed=s)`` for the
conditions' seeds ``s``; with ``data.action_noise`` Gaussian noise on its actions), its
transitions join the buffer and the ensemble is trained again, warm-started from its previous
weights (``data.retrain=warm``; its normalisers are refit on all the data) or from new weights
(``data.retrain=fresh``, :func:`reinitialise`).

After a retraining the previous trajectories' controls, replayed open loop through the new
model, may no longer swing up, and the trajectory step can stall in a poor local minimum from
them; :func:`rewarm` gives each condition the cheapest (under the new model) of those
controls, the policy's own along its closed-loop rollout through the new model and, with
``data.rewarm=teacher``, the iLQR-MPC teacher's along its rollout through the new model (as at
iteration 0; ``N · T`` more teacher rollout steps per round, counted as teacher labels).

:class:`EnsembleMean` is what the iLQR teacher, the GPS trajectory step and the noisy copies'
gains plan through: the mean over the members of each member's mean next state, from a
float64 copy of the ensemble (the GPS code works in float64; the trained model stays float32),
refreshed after every training round. The running cost is the task's reward on
``(x, u, f̂(x, u))`` (the reward is known, as in PETS; the dynamics are not).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mbrl.algorithms.gps_problem import (
    DTYPE,
    ControlProblem,
    TeacherSettings,
    mpc_rollouts,
    policy_rollouts,
)
from mbrl.data import RandomPolicy, ReplayBuffer, buffer_for_task, collect_episode
from mbrl.models import (
    DynamicsModel,
    ModelConfig,
    build_model,
    build_trainer,
    load_training_state,
    train_on_buffer,
    training_state,
)

Tensor = torch.Tensor

__all__ = [
    "EnsembleMean",
    "LearnedDynamics",
    "RoundMetrics",
    "build_learned",
    "collect_policy_data",
    "collect_random_data",
    "model_problem",
    "rewarm",
    "train_model",
]


class EnsembleMean:
    """``f̂(x (N, n), u (N, m)) -> (N, n)``: the ensemble's mean next state in float64,
    differentiable in ``x`` and ``u`` (a float64 copy of ``model`` with frozen weights;
    :meth:`refresh` copies the weights again after a training round)."""

    def __init__(self, model: DynamicsModel) -> None:
        self.model = copy.deepcopy(model).to(DTYPE).eval().requires_grad_(False)

    def refresh(self, model: DynamicsModel) -> None:
        """Copy ``model``'s current weights, normalisers and elites (cast to float64)."""
        self.model.load_state_dict(model.state_dict())
        self.model.set_elites(torch.nonzero(model.elite_mask).flatten())

    def __call__(self, x: Tensor, u: Tensor) -> Tensor:
        return self.model.mean_next_obs(x.to(DTYPE), u.to(DTYPE))


def model_problem(task: Any, dynamics: EnsembleMean, horizon: int | None = None) -> ControlProblem:
    """The :class:`ControlProblem` of an analytic ``task`` with its dynamics replaced by the
    ensemble mean ``dynamics``: cost ``-reward(x, u, f̂(x, u))``, the task's action box,
    ``horizon`` steps (default the episode length)."""
    reward = task.reward_fn

    def cost(x: Tensor, u: Tensor) -> Tensor:
        return -reward(x, u, dynamics(x, u))

    lo = torch.as_tensor(np.asarray(task.action_low, dtype=np.float64))
    hi = torch.as_tensor(np.asarray(task.action_high, dtype=np.float64))
    return ControlProblem(dynamics, cost, lo, hi, int(horizon or task.max_episode_steps))


@dataclass
class LearnedDynamics:
    """What a model-based run adds: the true environment it collects from, the buffer, the
    ensemble and its trainer, the float64 mean the planners use, and the numpy generator of
    the random and noisy actions."""

    task: Any
    env: Any
    buffer: ReplayBuffer
    model: DynamicsModel
    trainer: Any
    mean: EnsembleMean
    np_rng: np.random.Generator

    def state(self) -> dict[str, Any]:
        """The model's weights and the trainer's state (the buffer and the generator are
        saved by the caller)."""
        return training_state(self.model, self.trainer)

    def load_state(self, state: dict[str, Any], buffer: ReplayBuffer) -> None:
        """Put back :meth:`state` and the buffer; refresh the float64 mean."""
        load_training_state(self.model, self.trainer, state)
        self.buffer = buffer
        self.mean.refresh(self.model)


@dataclass(frozen=True)
class RoundMetrics:
    """One training round: transitions in the buffer, the last epoch's train and holdout MSE
    (normalised targets, mean over members), real environment steps so far."""

    data_size: int
    train_mse: float
    holdout_mse: float
    env_steps: int


def build_learned(
    cfg: ModelConfig, task: Any, capacity: int, gen: torch.Generator, np_rng: np.random.Generator
) -> LearnedDynamics:
    """A fresh ensemble (weights drawn from ``gen``), its trainer and an empty buffer of
    ``capacity`` transitions for ``task``."""
    model = build_model(cfg, task, generator=gen)
    trainer = build_trainer(cfg, model, generator=gen, progress_bar=False)
    buffer = buffer_for_task(task, capacity)
    mean = EnsembleMean(model)
    return LearnedDynamics(task, task.make_env(), buffer, model, trainer, mean, np_rng)


def collect_random_data(
    ld: LearnedDynamics, seeds: list[int], steps: int
) -> tuple[list[float], int]:
    """One episode of uniform random actions in the true environment from
    ``env.reset(seed=s)`` for every seed, ``steps`` steps each. Returns the episodes' returns
    and the transitions added."""
    return _collect(ld, RandomPolicy(ld.task, ld.np_rng), seeds, steps)


def collect_policy_data(
    ld: LearnedDynamics, policy: torch.nn.Module, seeds: list[int], steps: int, noise: float
) -> tuple[list[float], int]:
    """The policy alone in the true environment from ``env.reset(seed=s)`` for every seed,
    ``steps`` steps each, its actions plus Gaussian noise of ``noise ×`` the box's half-width
    (clipped to the box). Returns the episodes' true returns and the transitions added."""
    lo, hi = np.asarray(ld.task.action_low, np.float64), np.asarray(ld.task.action_high, np.float64)
    half = (hi - lo) / 2.0

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        u = policy(torch.as_tensor(obs, dtype=DTYPE).view(1, -1))[0].numpy()
        if noise > 0:
            u = u + noise * half * ld.np_rng.standard_normal(u.shape)
        return np.clip(u, lo, hi)

    return _collect(ld, act, seeds, steps)


def _collect(
    ld: LearnedDynamics, act: Any, seeds: list[int], steps: int
) -> tuple[list[float], int]:
    """One episode of ``act`` into the buffer from ``env.reset(seed=s)`` for every seed,
    ``steps`` steps each: the episodes' returns and the transitions added."""
    returns, added = [], 0
    for s in seeds:
        ret, n = collect_episode(ld.env, act, ld.buffer, max_steps=steps, reset_seed=int(s))
        returns.append(ret)
        added += n
    return returns, added


def reinitialise(cfg: ModelConfig, ld: LearnedDynamics, gen: torch.Generator) -> None:
    """New ensemble weights drawn from ``gen`` (as :func:`build_learned` draws the first ones)
    and a new trainer (a fresh optimizer; same generator ``gen``): the next
    :func:`train_model` starts from scratch instead of from the previous round's weights."""
    fresh = build_model(cfg, ld.task, generator=gen)
    ld.model.load_state_dict(fresh.state_dict())
    ld.model.set_elites(torch.nonzero(ld.model.elite_mask).flatten())
    ld.trainer = build_trainer(cfg, ld.model, generator=gen, progress_bar=False)


def train_model(cfg: ModelConfig, ld: LearnedDynamics, env_steps: int) -> RoundMetrics:
    """One training round on the whole buffer, from the model's current weights (the previous
    round's, or new ones after :func:`reinitialise`); then the float64 mean is refreshed."""
    metrics = train_on_buffer(cfg, ld.trainer, ld.buffer, ld.task).last_metrics()
    ld.mean.refresh(ld.model)
    return RoundMetrics(
        len(ld.buffer), float(metrics["train_mse"]), float(metrics["holdout_mse"]), env_steps
    )


def rewarm(
    problem: ControlProblem,
    policy: torch.nn.Module,
    x0: Tensor,
    u: Tensor,
    teacher: TeacherSettings | None = None,
) -> tuple[Tensor, Tensor]:
    """A warm start for the trajectory step after the model changed.

    Args:
        problem: the control problem through the new model.
        policy: the current policy, ``x (B, n) -> u (B, m)``.
        x0: ``(B, n)`` the conditions. u: ``(B, T, m)`` the previous trajectories' controls.
        teacher: if given, the iLQR-MPC teacher's controls along its rollouts through
            ``problem`` are a third candidate (:func:`~mbrl.algorithms.gps_problem.
            mpc_rollouts`).

    Returns:
        ``(u' (B, T, m), source (B,))``: per condition, the candidate that costs least under
        ``problem`` (ties keep the earlier one): ``u`` replayed open loop from ``x0``
        (``source`` 0), the policy's controls along its rollout from ``x0`` (1), the
        teacher's (2).
    """
    x0 = x0.to(DTYPE)
    if u.shape[0] != x0.shape[0] or u.shape[1] != problem.horizon:
        raise ValueError(
            f"u: expected shape ({x0.shape[0]}, {problem.horizon}, {problem.m}), "
            f"got {tuple(u.shape)}"
        )
    with torch.no_grad():
        xs = [x0]
        for t in range(u.shape[1]):
            xs.append(problem.dynamics(xs[-1], problem.clip(u[:, t])))
        replay = problem.trajectory_cost(torch.stack(xs, 1), problem.clip(u))
        ro = policy_rollouts(problem, policy, x0)
    controls, costs = [u, ro.u], [replay, ro.cost]
    if teacher is not None:
        mpc = mpc_rollouts(problem, teacher, x0)
        controls.append(mpc.u.detach())
        costs.append(mpc.cost.detach())
    source = torch.stack(costs, 1).argmin(1)  # the first of equal minima
    best = torch.stack(controls, 1)[torch.arange(x0.shape[0]), source]
    return best, source
