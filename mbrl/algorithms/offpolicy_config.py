"""Configs and result of the off-policy learners: plain SAC (:class:`SACRunConfig`, ``mbrl
sac``) and MBPO (:class:`MBPOConfig`, ``mbrl mbpo``: SAC on real and short model rollouts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mbrl.agents.sac import SACConfig
from mbrl.models import ModelConfig
from mbrl.models.model_rollouts import RolloutSchedule
from mbrl.util.config import require_ints
from mbrl.util.lifecycle import RunSettings

__all__ = ["MBPOConfig", "OffPolicyResult", "SACRunConfig"]


@dataclass
class SACRunConfig(RunSettings):
    """One SAC run on a task (the model-free baseline MBPO is compared with); the run's own
    settings (``task``, ``seed``, ``device``, ``run_root``, ...) are those of
    :class:`mbrl.util.lifecycle.RunSettings`. The task needs continuous actions.

    Attributes:
        total_steps: environment steps of the run.
        initial_random_steps: uniform random actions before the policy acts (and learns).
        updates_per_step: SAC updates ``G`` per environment step once learning starts.
        eval_every: evaluate the deterministic policy every ``N`` environment steps.
        eval_episodes: episodes per evaluation (start states from fixed seeds).
        checkpoint_every: checkpoint at the first episode end after every ``N`` env steps.
        agent: SAC's hyper-parameters (:class:`mbrl.agents.SACConfig`; its seed is set from
            ``seed``).
    """

    task: str = "inverted-pendulum"
    total_steps: int = 100_000
    initial_random_steps: int = 5000
    updates_per_step: int = 1
    eval_every: int = 1000
    eval_episodes: int = 5
    checkpoint_every: int = 5000
    agent: SACConfig = field(default_factory=SACConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        low = dict(total_steps=1, initial_random_steps=0, updates_per_step=1, eval_every=1)
        require_ints(self, low | dict(eval_episodes=1, checkpoint_every=1))


@dataclass
class MBPOConfig(SACRunConfig):
    """One MBPO run (Janner et al., 2019): SAC trained on batches mixing ``real_ratio`` real
    transitions with transitions of short rollouts of the policy through the learned model.

    Attributes (beyond :class:`SACRunConfig`):
        model: the ensemble (learns the reward; rollouts go through its elites).
        model_train_freq: retrain the model (warm-started, at most ``model.max_epochs``
            epochs) and branch new rollouts every ``N`` environment steps.
        rollout_batch_size: rollouts branched from uniformly drawn real states per retrain.
        rollout_schedule: ``[epoch_a, epoch_b, k_min, k_max]``: rollout length ``k`` per epoch
            (MBPO's linear schedule), or one int for a fixed ``k``.
        epoch_length: environment steps per epoch (for the schedule and the model buffer).
        retain_epochs: epochs of model rollouts the model buffer keeps.
        real_ratio: share of real transitions in every SAC batch, in ``[0, 1]``.
    """

    model: ModelConfig = field(
        default_factory=lambda: ModelConfig(learn_reward=True, use_elites=True, max_epochs=20)
    )
    model_train_freq: int = 250
    rollout_batch_size: int = 100_000
    rollout_schedule: list[int] = field(default_factory=lambda: [20, 100, 1, 1])
    epoch_length: int = 1000
    retain_epochs: int = 1
    real_ratio: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        require_ints(self, dict(model_train_freq=1, rollout_batch_size=1, epoch_length=1))
        require_ints(self, dict(retain_epochs=1))
        RolloutSchedule.parse(self.rollout_schedule)
        if isinstance(self.real_ratio, bool) or not 0.0 <= self.real_ratio <= 1.0:
            raise ValueError(f"real_ratio: expected a number in [0, 1], got {self.real_ratio!r}")
        if not self.model.learn_reward:
            raise ValueError("model.learn_reward: MBPO's rollouts need the learned reward (true)")

    @property
    def schedule(self) -> RolloutSchedule:
        """The rollout-length schedule."""
        return RolloutSchedule.parse(self.rollout_schedule)


@dataclass(frozen=True)
class OffPolicyResult:
    """What a SAC or MBPO run returns (everything is also in its run directory).

    Attributes:
        eval_steps: environment steps at each evaluation.
        eval_returns: mean return of the deterministic policy at each evaluation.
        episode_returns: return of every training episode.
        env_steps: environment steps taken.
        updates: SAC updates made.
        wall_time: seconds the run took (over every resumed part).
        run_dir: the run directory.
        plot_path: the learning-curve PNG (``None`` before the first evaluation).
    """

    eval_steps: list[int]
    eval_returns: list[float]
    episode_returns: list[float]
    env_steps: int
    updates: int
    wall_time: float
    run_dir: Path
    plot_path: Path | None = None

    def summary(self) -> str:
        """One line per evaluation, then where the run is."""
        lines = ["env steps  eval return"]
        pairs = zip(self.eval_steps, self.eval_returns, strict=True)
        lines += [f"{s:9d}  {r:11.2f}" for s, r in pairs]
        lines.append(f"wall time: {self.wall_time:.1f} s, environment steps: {self.env_steps}")
        lines.append(f"run directory: {self.run_dir}")
        if self.plot_path is not None:
            lines.append(f"learning curve: {self.plot_path}")
        return "\n".join(lines)
