"""What a PETS run is configured by (:class:`PETSConfig`) and what it returns
(:class:`PETSResult`); the algorithm is :mod:`mbrl.algorithms.pets`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mbrl.models import ModelConfig
from mbrl.planning import CEMConfig, PlannerConfig
from mbrl.util.config import load_config, require_ints, task_preset
from mbrl.util.lifecycle import RunSettings

__all__ = ["PETSConfig", "PETSResult", "load_pets_config"]


@dataclass
class PETSConfig(RunSettings):
    """One PETS run (the run's own settings, ``task``, ``seed``, ``device``, ``run_root``, ...,
    are those of :class:`mbrl.util.lifecycle.RunSettings`).

    Attributes:
        num_trials: MPC episodes after the random ones.
        trial_length: steps per trial (``None``: the task's ``max_episode_steps``).
        initial_random_episodes: random-policy episodes collected before the first training.
        initial_random_steps: keep collecting random episodes until at least this many steps.
        train_every: retrain every ``N`` environment steps during trials; ``0``: after each trial.
        replan_every: replan every ``k`` steps (``1`` = classic MPC).
        checkpoint_every: write a checkpoint every ``N`` trials (and after the last one).
        model: the ensemble and its training (:class:`mbrl.models.ModelConfig`).
        planner: the planner's config (``planner=icem`` selects :class:`ICEMConfig`, ...).
    """

    task: str = "cartpole-swingup"
    num_trials: int = 10
    trial_length: int | None = None
    initial_random_episodes: int = 1
    initial_random_steps: int = 0
    train_every: int = 0
    replan_every: int = 1
    checkpoint_every: int = 1
    model: ModelConfig = field(default_factory=ModelConfig)
    planner: PlannerConfig = field(default_factory=CEMConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        low = dict(num_trials=0, initial_random_episodes=0, initial_random_steps=0)
        low |= dict(train_every=0, replan_every=1, trial_length=1, checkpoint_every=1)
        require_ints(self, low, optional=("trial_length",))
        if self.initial_random_episodes == 0 and self.initial_random_steps == 0:
            raise ValueError(
                "initial_random_episodes, initial_random_steps: at least one must be positive "
                "(the model needs data before the first plan)"
            )
        if self.replan_every > self.planner.horizon:
            raise ValueError(
                f"replan_every: {self.replan_every} exceeds planner.horizon {self.planner.horizon}"
            )


@dataclass(frozen=True)
class PETSResult:
    """What a PETS run returns (everything is also in the run directory).

    Attributes:
        returns: ``(num_trials,)`` undiscounted return of each MPC trial.
        lengths: steps of each MPC trial.
        random_returns: returns of the initial random-policy episodes.
        plan_time_per_step: mean seconds per agent step of each trial (planning included).
        train_losses: last-epoch training MSE (normalised units) of each training round.
        holdout_losses: last-epoch holdout MSE (normalised units) of each training round.
        env_steps: total environment steps (random ones included).
        wall_time: seconds the run took (over every resumed part).
        run_dir: the run directory.
        plot_path: the learning-curve PNG (``None`` when no trial ran).
    """

    returns: list[float]
    lengths: list[int]
    random_returns: list[float]
    plan_time_per_step: list[float]
    train_losses: list[float]
    holdout_losses: list[float]
    env_steps: int
    wall_time: float
    run_dir: Path
    plot_path: Path | None = None

    def summary(self) -> str:
        """A short report: one line per trial, the random baseline, where the run is."""
        lines = ["trial  return      steps  ms/step"]
        for i, (ret, n, t) in enumerate(
            zip(self.returns, self.lengths, self.plan_time_per_step, strict=True), 1
        ):
            lines.append(f"{i:5d}  {ret:10.2f}  {n:5d}  {1e3 * t:7.1f}")
        if self.random_returns:
            k = len(self.random_returns)
            mean = sum(self.random_returns) / k
            lines.append(f"random policy: mean return {mean:.2f} over {k} episode{'s' * (k != 1)}")
        lines.append("returns per trial: " + ", ".join(f"{r:.2f}" for r in self.returns))
        lines.append(f"wall time: {self.wall_time:.1f} s, environment steps: {self.env_steps}")
        lines.append(f"run directory: {self.run_dir}")
        if self.plot_path is not None:
            lines.append(f"learning curve: {self.plot_path}")
        return "\n".join(lines)


def load_pets_config(
    task: str | None = None, preset: str | Path | None = None, overrides: Sequence[str] = ()
) -> PETSConfig:
    """The :class:`PETSConfig` that ``mbrl pets --task TASK [--preset P] OVERRIDES`` runs:
    the preset ``P`` (name or YAML path), else the task's ``pets_<task>`` preset if there is
    one, else the defaults; then ``task``, then the dotted ``overrides``."""
    if preset is None and task is not None:
        preset = task_preset("pets", task)
    extra = [f"task={task}"] if task is not None else []
    return load_config(PETSConfig, preset, [*extra, *overrides])
