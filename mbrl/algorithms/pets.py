"""PETS: probabilistic ensembles with trajectory sampling (MBRL v1.5 with an ensemble model).

The loop (Lec11, "model-based RL version 1.5"; Chua et al., 2018):

1. run a random policy to collect ``D = {(s, a, s')}`` (``initial_random_episodes/steps``);
2. train a bootstrap ensemble of probabilistic networks on ``D``;
3. every step, plan through the ensemble (CEM, iCEM, MPPI, ... with TS∞ particles) from the
   current state, execute the first planned action(s) (MPC), observe ``s'``;
4. append ``(s, a, s')`` to ``D``; retrain every ``train_every`` environment steps, or after
   every trial when ``train_every == 0``.

Everything a run produces goes to its run directory: ``config.yaml``, ``metrics.csv`` (episode
returns, model train/holdout losses, planning seconds per step), atomic checkpoints of the model
and the replay buffer, and ``learning_curve.png``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import envs
from envs.task import Task
from mbrl.agents.mpc_agent import MPCAgent
from mbrl.cli import register_command
from mbrl.data import ReplayBuffer
from mbrl.models import DynamicsModel, ModelTrainer
from mbrl.planning import PlannerConfig, make_planner
from mbrl.util.config import ConfigError, list_presets, load_config
from mbrl.util.plotting import plot_curves
from mbrl.util.progress import progress
from mbrl.util.run_dir import RunDir
from mbrl.util.seeding import seed_everything

__all__ = [
    "ModelConfig",
    "PETSConfig",
    "PETSResult",
    "collect_episode",
    "default_preset",
    "load_pets_config",
    "run_pets",
]


@dataclass
class ModelConfig:
    """Probabilistic ensemble and its training.

    Attributes:
        num_members: ensemble size ``E``.
        num_elites: members with the lowest holdout loss (selected after each training round).
        use_elites: plan with the elites only (PETS uses every member: ``False``).
        hidden: width of each hidden layer.
        num_layers: number of hidden layers.
        activation: hidden activation (``"silu"``, ``"relu"``, ...).
        learn_reward: also learn the reward (planners then use it instead of the task's, unless
            ``planner.use_learned_reward=false``).
        lr: AdamW learning rate.
        weight_decay: decoupled (AdamW) weight decay of the weight matrices.
        batch_size: minibatch size per member.
        holdout_ratio: fraction of the data held out for early stopping / elite selection.
        patience: epochs without holdout improvement before training stops.
        max_epochs: cap on the epochs of one early-stopped training round (``None``: no cap).
        epochs: train exactly this many epochs per round instead of early stopping.
    """

    num_members: int = 5
    num_elites: int = 5
    use_elites: bool = False
    hidden: int = 200
    num_layers: int = 3
    activation: str = "silu"
    learn_reward: bool = False
    lr: float = 1e-3
    weight_decay: float = 5e-5
    batch_size: int = 256
    holdout_ratio: float = 0.1
    patience: int = 5
    max_epochs: int | None = 50
    epochs: int | None = None


@dataclass
class PETSConfig:
    """One PETS run.

    Attributes:
        task: task name (``envs.list_tasks()``).
        seed: seeds numpy, torch, the environment and every generator of the run.
        num_trials: MPC episodes after the random ones.
        trial_length: steps per trial (``None``: the task's ``max_episode_steps``).
        initial_random_episodes: random-policy episodes collected before the first training.
        initial_random_steps: keep collecting random episodes until at least this many steps.
        train_every: retrain every ``N`` environment steps during trials; ``0``: after each trial.
        replan_every: replan every ``k`` steps (``1`` = classic MPC).
        buffer_capacity: replay buffer size (transitions).
        device: torch device of the model and the planner (``"cpu"``, ``"cuda"``).
        run_root: folder the run directory is created in.
        run_name: run directory name prefix (``None``: ``pets-<task>``).
        progress: show the tqdm progress bar.
        model: the ensemble (:class:`ModelConfig`).
        planner: the planner (:class:`mbrl.planning.PlannerConfig`).
    """

    task: str = "cartpole-swingup"
    seed: int = 0
    num_trials: int = 10
    trial_length: int | None = None
    initial_random_episodes: int = 1
    initial_random_steps: int = 0
    train_every: int = 0
    replan_every: int = 1
    buffer_capacity: int = 1_000_000
    device: str = "cpu"
    run_root: str = "runs"
    run_name: str | None = None
    progress: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)

    def __post_init__(self) -> None:
        minimum = {
            "seed": 0,
            "num_trials": 0,
            "initial_random_episodes": 0,
            "initial_random_steps": 0,
            "train_every": 0,
            "replan_every": 1,
            "buffer_capacity": 1,
        }
        for name, low in minimum.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        if self.trial_length is not None and (
            isinstance(self.trial_length, bool)
            or not isinstance(self.trial_length, int)
            or self.trial_length < 1
        ):
            raise ValueError(
                f"trial_length: expected a positive int or None, got {self.trial_length!r}"
            )
        if self.initial_random_episodes == 0 and self.initial_random_steps == 0:
            raise ValueError(
                "initial_random_episodes, initial_random_steps: at least one must be positive "
                "(the model needs data before the first plan)"
            )
        if self.replan_every > self.planner.horizon:
            raise ValueError(
                f"replan_every: {self.replan_every} exceeds planner.horizon {self.planner.horizon}"
            )


@dataclass
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
        wall_time: seconds the run took.
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


def collect_episode(
    env: Any,
    policy: Callable[[np.ndarray], np.ndarray | int],
    buffer: ReplayBuffer | None = None,
    *,
    max_steps: int,
    reset_seed: int | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[float, int]:
    """Run one episode of ``policy`` in ``env``, appending every transition to ``buffer``.

    With ``buffer=None`` it only evaluates the policy.

    Args:
        env: a Gymnasium environment.
        policy: ``policy(obs (obs_dim,)) -> action``.
        buffer: receives ``(obs, act, next_obs, reward, terminated, truncated)`` per step, if given
            (``truncated`` is also set on the last step when ``max_steps`` cuts the episode).
        max_steps: stop after this many steps even if the episode goes on.
        reset_seed: passed to ``env.reset(seed=...)`` (``None`` continues the env's RNG).
        on_step: called as ``on_step(step, return_so_far)`` after each step.

    Returns:
        ``(return, steps)`` of the episode.
    """
    obs, _ = env.reset(seed=reset_seed)
    total, steps = 0.0, 0
    for steps in range(1, max_steps + 1):  # noqa: B007  (steps is read after the loop)
        action = policy(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        truncated = bool(truncated) or steps == max_steps
        if buffer is not None:
            act = np.atleast_1d(np.asarray(action, np.float32))
            buffer.add(obs, act, next_obs, reward, terminated, truncated)
        total += float(reward)
        if on_step is not None:
            on_step(steps, total)
        if terminated or truncated:
            break
        obs = next_obs
    return total, steps


def _random_policy(task: Task, rng: np.random.Generator) -> Callable[[np.ndarray], Any]:
    if task.num_actions is not None:
        n = task.num_actions
        return lambda obs: int(rng.integers(n))
    low = np.asarray(task.action_low, np.float64)
    high = np.asarray(task.action_high, np.float64)
    return lambda obs: rng.uniform(low, high).astype(np.float32)


def run_pets(cfg: PETSConfig) -> PETSResult:
    """Run PETS as configured by ``cfg``; write everything to a new run directory.

    Returns the per-trial returns and the rest of :class:`PETSResult`.
    """
    if not isinstance(cfg, PETSConfig):
        raise TypeError(f"cfg: expected a PETSConfig, got {type(cfg).__name__}")
    cfg.__post_init__()  # fields may have been edited after construction
    start = time.perf_counter()
    np_rng, torch_gen = seed_everything(cfg.seed)
    task = envs.get_task(cfg.task)
    env = task.make_env()
    env.action_space.seed(cfg.seed)
    run = RunDir.create(cfg.run_root, cfg.run_name or f"pets-{task.name}", cfg)
    try:
        return _pets_loop(cfg, task, env, run, np_rng, torch_gen, start)
    finally:
        env.close()
        run.close()


def _pets_loop(
    cfg: PETSConfig,
    task: Task,
    env: Any,
    run: RunDir,
    np_rng: np.random.Generator,
    torch_gen: torch.Generator,
    start: float,
) -> PETSResult:
    """The body of :func:`run_pets` (the caller closes ``env`` and ``run``)."""
    device = torch.device(cfg.device)
    max_steps = cfg.trial_length or task.max_episode_steps
    logger = run.logger

    act_dim_buffer = 1 if task.num_actions is not None else task.act_dim
    buffer = ReplayBuffer(cfg.buffer_capacity, task.obs_dim, act_dim_buffer)
    mc = cfg.model
    model = DynamicsModel.for_task(
        task,
        num_members=mc.num_members,
        hidden=mc.hidden,
        num_layers=mc.num_layers,
        activation=mc.activation,
        learn_reward=mc.learn_reward,
        num_elites=mc.num_elites,
        use_elites=mc.use_elites,
        generator=torch_gen,
    ).to(device)
    trainer = ModelTrainer(
        model,
        lr=mc.lr,
        weight_decay=mc.weight_decay,
        batch_size=mc.batch_size,
        holdout_ratio=mc.holdout_ratio,
        max_epochs=mc.max_epochs,
        patience=mc.patience,
        num_elites=mc.num_elites,
        logger=_GroupLogger(logger, "model_epochs"),
        generator=torch_gen,
        progress_bar=cfg.progress,
    )
    planner = make_planner(cfg.planner, model, task)
    agent = MPCAgent(
        planner, replan_every=cfg.replan_every, generator=torch_gen, task=task, device=device
    )

    train_losses: list[float] = []
    holdout_losses: list[float] = []

    def train_model() -> None:
        data = buffer.get_all()
        res = trainer.train(
            data.obs,
            data.act,
            data.next_obs,
            data.reward if mc.learn_reward else None,
            epochs=mc.epochs,
        )
        train_losses.append(res.train_mse[-1] if res.train_mse else math.nan)
        holdout_losses.append(res.holdout_mse[-1] if res.holdout_mse else math.nan)
        elite_mse = math.nan
        if res.best_holdout_mse is not None:
            elite_mse = float(res.best_holdout_mse[res.elite_indices].mean())
        logger.log(
            {
                "train_mse": train_losses[-1],
                "train_nll": res.train_nll[-1] if res.train_nll else math.nan,
                "holdout_mse": holdout_losses[-1],
                "holdout_nll": res.holdout_nll[-1] if res.holdout_nll else math.nan,
                "elite_holdout_mse": elite_mse,
                "epochs": res.epochs,
                "data_size": len(buffer),
            },
            step=env_steps,
            group="model",
        )

    # 1. random data
    random_returns: list[float] = []
    random_policy = _random_policy(task, np_rng)
    env_steps = 0
    first_reset: int | None = cfg.seed
    while len(random_returns) < cfg.initial_random_episodes or env_steps < cfg.initial_random_steps:
        ret, n = collect_episode(
            env, random_policy, buffer, max_steps=max_steps, reset_seed=first_reset
        )
        first_reset = None
        env_steps += n
        random_returns.append(ret)
        logger.log(
            {"return": ret, "length": float(n), "env_steps": float(env_steps)},
            step=len(random_returns) - 1,
            group="random",
        )

    # 2.-4. train, plan, act, append, retrain
    train_model()
    returns: list[float] = []
    lengths: list[int] = []
    plan_times: list[float] = []
    bar = progress(
        None,
        f"PETS {task.name}",
        total=cfg.num_trials * max_steps,
        unit="step",
        disable=not cfg.progress,
    )
    try:
        for trial in range(cfg.num_trials):
            agent.reset()

            def on_step(step: int, ret: float, trial: int = trial) -> None:
                nonlocal env_steps
                env_steps += 1
                bar.update(1)
                bar.set_postfix(trial=trial + 1, ret=f"{ret:.1f}", refresh=False)
                if cfg.train_every and env_steps % cfg.train_every == 0:
                    train_model()

            ret, n = collect_episode(
                env, agent.act, buffer, max_steps=max_steps, reset_seed=first_reset, on_step=on_step
            )
            first_reset = None
            bar.update(max_steps - n)  # an early-terminated episode skips its remaining steps
            if not cfg.train_every:
                train_model()
            returns.append(ret)
            lengths.append(n)
            plan_times.append(agent.mean_step_time)
            logger.log(
                {
                    "trial": float(trial + 1),
                    "return": ret,
                    "length": float(n),
                    "env_steps": float(env_steps),
                    "plan_time_per_step": agent.mean_step_time,
                    "train_mse": train_losses[-1],
                    "holdout_mse": holdout_losses[-1],
                },
                step=trial + 1,
                group="trial",
            )
            bar.write(
                f"trial {trial + 1}/{cfg.num_trials}: return {ret:.2f}  steps {n}  "
                f"plan {1e3 * agent.mean_step_time:.1f} ms/step  "
                f"model holdout MSE {holdout_losses[-1]:.4g}"
            )
            _save_checkpoints(run, model, buffer, trial, returns, torch_gen)
    finally:
        bar.close()

    if cfg.num_trials == 0:
        _save_checkpoints(run, model, buffer, -1, returns, torch_gen)
    wall = time.perf_counter() - start
    plot = None
    if returns:
        plot = plot_curves(
            run.logger.csv_path("trial"),
            "trial",
            "return",
            run.plot_path("learning_curve.png"),
            title=f"PETS on {task.name}",
            hlines={"random policy": float(np.mean(random_returns))} if random_returns else None,
            integer_x=True,
        )
    logger.log({"wall_time_s": wall, "env_steps": env_steps}, step=cfg.num_trials, group="summary")
    return PETSResult(
        returns=returns,
        lengths=lengths,
        random_returns=random_returns,
        plan_time_per_step=plan_times,
        train_losses=train_losses,
        holdout_losses=holdout_losses,
        env_steps=env_steps,
        wall_time=wall,
        run_dir=Path(run.path),
        plot_path=plot,
    )


class _GroupLogger:
    """Adapter: ``log(metrics, step)`` into one group of a :class:`~mbrl.util.logger.Logger`."""

    def __init__(self, logger: Any, group: str) -> None:
        self.logger = logger
        self.group = group

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Log ``metrics`` at ``step`` under this adapter's group (``/`` in keys becomes ``_``)."""
        self.logger.log({k.replace("/", "_"): v for k, v in metrics.items()}, step, self.group)


def _save_checkpoints(
    run: RunDir,
    model: DynamicsModel,
    buffer: ReplayBuffer,
    trial: int,
    returns: list[float],
    torch_gen: torch.Generator,
) -> None:
    """Model, buffer and loop state, each written atomically under ``checkpoints/``."""
    model.save(run.checkpoint_dir / "model.pt")
    buffer.save(run.checkpoint_dir / "buffer.npz")
    run.save_checkpoint(
        {"trial": trial, "returns": list(returns), "torch_rng": torch_gen.get_state()}, "pets_state"
    )


# ------------------------------------------------------------------------------------------
# Command line: mbrl pets [--task NAME] [--preset NAME] [key=value ...]
# ------------------------------------------------------------------------------------------


def default_preset(task: str) -> str | None:
    """Name of the packaged preset ``pets_<task>`` (dashes as underscores), if there is one."""
    name = f"pets_{task.replace('-', '_')}"
    return name if name in list_presets() else None


def load_pets_config(
    task: str | None = None, preset: str | None = None, overrides: Sequence[str] = ()
) -> PETSConfig:
    """Build a :class:`PETSConfig` the way ``mbrl pets`` does.

    ``preset`` (name or YAML path) wins; else the task's default preset (``pets_<task>``) if
    one exists; else the dataclass defaults. ``task`` then sets ``cfg.task``, and the dotted
    ``overrides`` (``"planner.horizon=20"``) are applied last. Unknown keys raise
    :class:`~mbrl.util.config.ConfigError` listing the valid keys.
    """
    if preset is None and task is not None:
        preset = default_preset(task)
    extra = [f"task={task}"] if task is not None else []
    return load_config(PETSConfig, preset, [*extra, *overrides])


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task", default=None, help="task name (mbrl tasks); picks its default preset"
    )
    parser.add_argument(
        "--preset",
        default=None,
        help="YAML preset name (mbrl/configs/<name>.yaml) or path; default: pets_<task>",
    )
    parser.add_argument("--run-root", default=None, help="folder the run directory goes in")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help=(
            "dotted PETSConfig overrides, e.g. planner=icem (short for planner.name=icem) "
            "num_trials=10 model.hidden=200"
        ),
    )


def _run_command(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.run_root is not None:
        overrides.append(f"run_root={args.run_root}")
    try:
        cfg = load_pets_config(args.task, args.preset, overrides)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"mbrl pets: {exc}", file=sys.stderr)
        return 2
    result = run_pets(cfg)
    print("returns per trial: " + ", ".join(f"{r:.2f}" for r in result.returns))
    print(f"wall time: {result.wall_time:.1f} s; run directory: {result.run_dir}")
    if result.plot_path is not None:
        print(f"learning curve: {result.plot_path}")
    return 0


register_command(
    "pets",
    "train PETS (ensemble model + MPC planner) on a task",
    _add_arguments,
    _run_command,
)
