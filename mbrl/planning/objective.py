"""Scoring a population of action sequences through a model: the one objective all planners share.

Given a start observation and ``P`` action sequences ``(P, H, act_dim)``, :class:`SequenceObjective`
builds ``B = P * K`` particles (``K`` = ``num_particles`` per sequence), rolls all of them out in
*one* batched :meth:`ModelEnv.rollout` call, and reduces the ``(P, K)`` particle returns to one
score per sequence:

* ``"mean"``: mean return over particles (and so over ensemble members), as in PETS.
* ``"mean_minus_std"``: ``mean_e R_e - risk_beta * std_e R_e`` where ``R_e`` is the mean return
  of the particles propagated by member ``e`` (needs TS∞ for ensembles, which fixes a member
  per particle).
* ``"worst_member"``: ``min_e R_e``.

With a :class:`~mbrl.models.multi_model.MultiModel` of ``K`` models (robust planning), TS∞ and
``num_particles`` a multiple of ``K`` are required, so that every sequence is scored under every
model: ``"mean"`` is then the mean return over the models and ``"worst_member"`` the worst.

A sequence any of whose particles has a non-finite return or a non-finite predicted state (NaN
from a diverging model, ``inf``) scores ``-inf`` and is never selected.
"""

from __future__ import annotations

from typing import Literal

import torch

from mbrl.models.model_env import ModelEnv
from mbrl.models.multi_model import MultiModel

Tensor = torch.Tensor
Objective = Literal["mean", "mean_minus_std", "worst_member"]
OBJECTIVES: tuple[str, ...] = ("mean", "mean_minus_std", "worst_member")
Precision = Literal["float32", "bfloat16"]
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16")


class SequenceObjective:
    """Batched evaluation of action sequences through a :class:`ModelEnv`.

    Args:
        model_env: the rollout engine (model, reward, termination, propagation).
        num_particles: particles ``K`` per action sequence (>= 1).
        objective: ``"mean"``, ``"mean_minus_std"`` or ``"worst_member"``.
        risk_beta: ``beta`` of ``"mean_minus_std"`` (>= 0).
        discount: per-step discount of the return, in ``(0, 1]``.
        precision: ``"float32"``, or ``"bfloat16"`` to run the rollouts under
            ``torch.autocast(dtype=torch.bfloat16)``: the model's matrix products in bfloat16,
            everything else (states, rewards, returns) in the model's dtype.

    Attributes:
        model_steps: running count of particle-steps evaluated (``B * H`` per call).
    """

    def __init__(
        self,
        model_env: ModelEnv,
        num_particles: int = 1,
        objective: Objective = "mean",
        risk_beta: float = 1.0,
        discount: float = 1.0,
        precision: Precision = "float32",
    ) -> None:
        if not isinstance(model_env, ModelEnv):
            raise TypeError(f"model_env: expected a ModelEnv, got {type(model_env).__name__}")
        if isinstance(num_particles, bool) or not isinstance(num_particles, int):
            raise TypeError(f"num_particles: expected an int, got {num_particles!r}")
        if num_particles < 1:
            raise ValueError(f"num_particles: expected >= 1, got {num_particles}")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective: expected one of {OBJECTIVES}, got {objective!r}")
        if not risk_beta >= 0:
            raise ValueError(f"risk_beta: expected >= 0, got {risk_beta}")
        if not 0 < discount <= 1:
            raise ValueError(f"discount: expected 0 < discount <= 1, got {discount}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
        if (
            objective != "mean"
            and model_env.is_ensemble
            and model_env.propagation != "tsinf"
            and model_env.model.num_members > 1
        ):
            raise ValueError(
                f"objective={objective!r} needs per-member returns: use propagation='tsinf' "
                f"(got {model_env.propagation!r})"
            )
        if isinstance(model_env.model, MultiModel):
            check_every_model_scored(model_env, num_particles)
        self.model_env = model_env
        self.num_particles = num_particles
        self.objective = objective
        self.risk_beta = float(risk_beta)
        self.discount = float(discount)
        self.precision = precision
        self.model_steps = 0

    @property
    def num_members(self) -> int:
        """Ensemble size ``E`` seen by the objective (1 for a plain callable model)."""
        if self.model_env.is_ensemble:
            return int(self.model_env.model.num_members)
        return 1

    def __call__(
        self, obs: Tensor, actions: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Score sequences.

        Args:
            obs: ``(obs_dim,)`` start observation.
            actions: ``(P, H, act_dim)`` action sequences.
            generator: randomness of the model's sampling (TS1/TS∞/random-model).

        Returns:
            ``(P,)`` scores (higher is better); ``-inf`` for sequences with a non-finite return.
        """
        if actions.ndim != 3:
            raise ValueError(f"actions: expected shape (P, H, act_dim), got {tuple(actions.shape)}")
        p, h, _ = actions.shape
        k = self.num_particles
        # Particle index b = i * K + j: particles of one sequence are contiguous.
        acts = actions.repeat_interleave(k, dim=0) if k > 1 else actions
        obs0 = obs.reshape(1, -1).expand(p * k, -1)
        bf16 = self.precision == "bfloat16"
        with (
            torch.no_grad(),
            torch.autocast(device_type=obs.device.type, dtype=torch.bfloat16, enabled=bf16),
        ):
            res = self.model_env.rollout_returns(
                obs0, acts, discount=self.discount, generator=generator
            )
        self.model_steps += p * k * h
        # a particle whose predicted states diverged counts as non-finite even if the reward
        # function ignored those states
        returns = torch.where(res.diverged, torch.full_like(res.returns, float("nan")), res.returns)
        return self.reduce(returns.reshape(p, k), res.member)

    def reduce(self, returns: Tensor, member: Tensor | None) -> Tensor:
        """Reduce particle returns ``(P, K)`` (members ``(P*K,)`` or None) to ``(P,)`` scores."""
        p, k = returns.shape
        finite = torch.isfinite(returns).all(dim=1)
        safe = torch.where(torch.isfinite(returns), returns, torch.zeros_like(returns))
        if self.objective == "mean" or member is None:
            # Without a per-particle member (plain callable model, or an ensemble propagated by
            # expectation with one member), all particles share one member: std 0, worst = mean.
            score = safe.mean(dim=1)
        else:
            e = self.num_members
            m = member.reshape(p, k).to(returns.device)
            onehot = torch.nn.functional.one_hot(m, e).to(safe.dtype)  # (P, K, E)
            counts = onehot.sum(dim=1)  # (P, E)
            present = counts > 0
            member_mean = (onehot * safe.unsqueeze(-1)).sum(dim=1) / counts.clamp_min(1)
            n_present = present.sum(dim=1).to(safe.dtype)
            mean = (member_mean * present).sum(dim=1) / n_present
            if self.objective == "mean_minus_std":
                dev2 = ((member_mean - mean.unsqueeze(1)) ** 2) * present
                std = (dev2.sum(dim=1) / n_present).sqrt()  # population std over members
                score = mean - self.risk_beta * std
            else:
                inf = torch.full_like(member_mean, float("inf"))
                score = torch.where(present, member_mean, inf).min(dim=1).values
        return torch.where(finite, score, torch.full_like(score, float("-inf")))


def check_every_model_scored(model_env: ModelEnv, num_particles: int) -> None:
    """Raise ``ValueError`` unless every particle group of a sequence covers all ``K`` models of
    ``model_env``'s :class:`MultiModel`: TS∞ propagation and ``num_particles`` a multiple of K."""
    k = model_env.model.num_members
    if model_env.propagation != "tsinf":
        raise ValueError(
            f"propagation: a MultiModel of {k} models needs 'tsinf' (each particle keeps one "
            f"model), got {model_env.propagation!r}"
        )
    if num_particles % k:
        raise ValueError(
            f"num_particles: expected a multiple of the {k} models of the MultiModel (so every "
            f"sequence is scored under every model), got {num_particles}"
        )
