"""PETS: probabilistic ensembles with trajectory sampling (MBRL v1.5 with an ensemble model).

The loop (Lec11, "model-based RL version 1.5"; Chua et al., 2018):

1. run a random policy to collect ``D = {(s, a, s')}`` (``initial_random_episodes/steps``);
2. train a bootstrap ensemble of probabilistic networks on ``D``;
3. every step, plan through the ensemble (CEM, iCEM, MPPI, ... with TS∞ particles) from the
   current state, execute the first planned action(s) (MPC), observe ``s'``;
4. append ``(s, a, s')`` to ``D``; retrain every ``train_every`` environment steps, or after
   every trial when ``train_every == 0``.

A run writes its run directory (config, CSV and TensorBoard metrics, checkpoints after the first
training and every ``checkpoint_every`` trials, a learning curve). ``run_pets(cfg,
resume=run_dir)`` continues a stopped run exactly as if it had never stopped.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import envs
from mbrl.agents.mpc_agent import MPCAgent
from mbrl.algorithms.pets_config import PETSConfig, PETSResult, load_pets_config
from mbrl.data import (
    RandomPolicy,
    ReplayBuffer,
    buffer_for_task,
    collect_episode,
    collect_random_data,
)
from mbrl.models import (
    build_model,
    build_trainer,
    load_training_state,
    train_on_buffer,
    training_state,
)
from mbrl.planning import make_planner
from mbrl.util.checkpoint import Checkpointer
from mbrl.util.lifecycle import (
    Restored,
    check_device,
    check_run_root,
    get_task,
    make_training_env,
    open_run,
    setup_errors,
    write_checkpoint,
)
from mbrl.util.logger import GroupLogger
from mbrl.util.plotting import plot_curves
from mbrl.util.progress import progress
from mbrl.util.run_dir import RunDir
from mbrl.util.seeding import capture_rng_state, restore_rng_state, seed_everything
from mbrl.util.video import EpisodeRecorder

__all__ = ["PETSConfig", "PETSResult", "load_pets_config", "run_pets"]


@dataclass
class _Progress:
    """Counters and metrics so far: :class:`PETSResult` without its paths (checkpointed)."""

    env_steps: int = 0
    wall_time: float = 0.0
    random_returns: list[float] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    plan_time_per_step: list[float] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    holdout_losses: list[float] = field(default_factory=list)


@dataclass
class _Parts:
    """Everything a run is made of, built before its run directory exists."""

    task: envs.Task
    env: Any
    buffer: ReplayBuffer
    model: Any
    trainer: Any
    agent: MPCAgent
    np_rng: np.random.Generator
    torch_gen: torch.Generator
    max_steps: int
    recorder: EpisodeRecorder | None = None

    def generators(self) -> tuple[dict[str, np.random.Generator], dict[str, torch.Generator]]:
        return {"policy": self.np_rng, "env": self.env.unwrapped.np_random}, {"run": self.torch_gen}


def run_pets(cfg: PETSConfig, *, resume: str | Path | None = None) -> PETSResult:
    """Run PETS as configured by ``cfg`` in a new run directory, or continue the stopped run
    in directory ``resume`` from its latest checkpoint. Raises :class:`SetupError` (before any
    folder is made) when a setting, the task, the device or the run root is unusable."""
    if not isinstance(cfg, PETSConfig):
        raise TypeError(f"cfg: expected a PETSConfig, got {type(cfg).__name__}")
    parts = _build(cfg)
    try:
        run, restored = open_run(cfg, "pets", cfg.run_name or f"pets-{parts.task.name}", resume)
    except BaseException:
        parts.env.close()
        raise
    try:
        prog = _restore(parts, restored) if restored is not None else _Progress()
        return _loop(cfg, parts, run, prog)
    finally:
        parts.env.close()
        run.close()


def _build(cfg: PETSConfig) -> _Parts:
    with setup_errors():
        cfg.__post_init__()  # fields may have been edited after construction
        device, task = check_device(cfg.device), get_task(cfg.task)
        check_run_root(cfg.run_root)
        max_steps = cfg.trial_length or task.max_episode_steps
        most = max(cfg.initial_random_episodes * max_steps, cfg.initial_random_steps + max_steps)
        cfg.model.check_first_round(most, "trial_length")
        np_rng, torch_gen = seed_everything(cfg.seed)
        model = build_model(cfg.model, task, generator=torch_gen, device=device)
        trainer = build_trainer(cfg.model, model, generator=torch_gen, progress_bar=cfg.progress)
        planner = make_planner(cfg.planner, model, task)
        env = make_training_env(cfg, task)
    agent = MPCAgent(
        planner, replan_every=cfg.replan_every, generator=torch_gen, task=task, device=device
    )
    env.action_space.seed(cfg.seed)
    buffer = buffer_for_task(task, cfg.buffer_capacity)
    return _Parts(task, env, buffer, model, trainer, agent, np_rng, torch_gen, max_steps)


def _loop(cfg: PETSConfig, parts: _Parts, run: RunDir, prog: _Progress) -> PETSResult:
    start = time.perf_counter() - prog.wall_time
    parts.trainer.logger = GroupLogger(run.logger, "model_epochs")
    ckpt = Checkpointer(run.checkpoint_dir, kind="pets", keep=cfg.keep_checkpoints)
    videos = run.path / "videos"
    parts.recorder = EpisodeRecorder(cfg.record_video_every, videos, parts.task.dt, "trial")
    if not prog.train_losses:  # a fresh run (a resumed one restarts after its first training)
        _collect_random(cfg, parts, run, prog)
        _train(cfg, parts, run, prog)
        prog.wall_time = time.perf_counter() - start
        _checkpoint(parts, run, ckpt, prog)
    total, done = cfg.num_trials * parts.max_steps, len(prog.returns) * parts.max_steps
    name = f"PETS {parts.task.name}"
    with progress(None, name, total=total, initial=done, disable=not cfg.progress) as bar:
        for trial in range(len(prog.returns), cfg.num_trials):
            _run_trial(cfg, parts, run, prog, bar)
            bar.write(
                f"trial {trial + 1}/{cfg.num_trials}: return {prog.returns[-1]:.2f}  "
                f"steps {prog.lengths[-1]}  plan {1e3 * prog.plan_time_per_step[-1]:.1f} ms/step  "
                f"model holdout MSE {prog.holdout_losses[-1]:.4g}"
            )
            prog.wall_time = time.perf_counter() - start
            if (trial + 1) % cfg.checkpoint_every == 0 or trial + 1 == cfg.num_trials:
                _checkpoint(parts, run, ckpt, prog)
    return _finish(cfg, parts, run, prog)


def _collect_random(cfg: PETSConfig, parts: _Parts, run: RunDir, prog: _Progress) -> None:
    def on_episode(ret: float, steps: int) -> None:
        prog.random_returns.append(ret)
        metrics = {"return": ret, "length": float(steps - prog.env_steps), "env_steps": steps}
        run.logger.log(metrics, step=len(prog.random_returns) - 1, group="random")
        prog.env_steps = steps

    policy = RandomPolicy(parts.task, parts.np_rng)
    counts = dict(min_episodes=cfg.initial_random_episodes, min_steps=cfg.initial_random_steps)
    collect_random_data(
        parts.env,
        policy,
        parts.buffer,
        **counts,
        max_steps=parts.max_steps,
        seed=cfg.seed,
        on_episode=on_episode,
    )


def _train(cfg: PETSConfig, parts: _Parts, run: RunDir, prog: _Progress) -> None:
    metrics = train_on_buffer(cfg.model, parts.trainer, parts.buffer, parts.task).last_metrics()
    prog.train_losses.append(metrics["train_mse"])
    prog.holdout_losses.append(metrics["holdout_mse"])
    run.logger.log({**metrics, "data_size": len(parts.buffer)}, prog.env_steps, group="model")


def _run_trial(cfg: PETSConfig, parts: _Parts, run: RunDir, prog: _Progress, bar: Any) -> None:
    """One MPC episode: act, append, retrain (every ``train_every`` steps or at the end)."""
    trial = len(prog.returns) + 1
    parts.agent.reset()

    def on_step(step: int, ret: float) -> None:
        prog.env_steps += 1
        frame(step)
        bar.update(1)
        bar.set_postfix(trial=trial, ret=f"{ret:.1f}", refresh=False)
        if cfg.train_every and prog.env_steps % cfg.train_every == 0:
            _train(cfg, parts, run, prog)

    assert parts.recorder is not None
    with parts.recorder.episode(parts.env, trial) as frame:
        ret, n = collect_episode(
            parts.env, parts.agent.act, parts.buffer, max_steps=parts.max_steps, on_step=on_step
        )
    bar.update(parts.max_steps - n)  # an early-terminated episode skips its remaining steps
    if not cfg.train_every:
        _train(cfg, parts, run, prog)
    prog.returns.append(ret)
    prog.lengths.append(n)
    prog.plan_time_per_step.append(parts.agent.mean_step_time)
    metrics = {"trial": trial, "return": ret, "length": n, "env_steps": prog.env_steps}
    metrics["plan_time_per_step"] = parts.agent.mean_step_time
    metrics |= {"train_mse": prog.train_losses[-1], "holdout_mse": prog.holdout_losses[-1]}
    run.logger.log(metrics, step=trial, group="trial")


def _checkpoint(parts: _Parts, run: RunDir, ckpt: Checkpointer, prog: _Progress) -> None:
    state = {**training_state(parts.model, parts.trainer), "progress": dict(vars(prog))}
    state["rng"] = capture_rng_state(*parts.generators())
    files = {"buffer.npz": parts.buffer.save, "model.pt": parts.model.save}
    write_checkpoint(run, ckpt, len(prog.returns), state, files)


def _restore(parts: _Parts, restored: Restored) -> _Progress:
    load_training_state(parts.model, parts.trainer, restored.state)
    parts.buffer = ReplayBuffer.load(restored.path / "buffer.npz")
    restore_rng_state(restored.state["rng"], *parts.generators())
    return _Progress(**restored.state["progress"])


def _finish(cfg: PETSConfig, parts: _Parts, run: RunDir, prog: _Progress) -> PETSResult:
    plot = None
    if prog.returns:
        mean_random = float(np.mean(prog.random_returns))
        plot = plot_curves(
            run.logger.csv_path("trial"),
            "trial",
            "return",
            run.plot_path("learning_curve.png"),
            title=f"PETS on {parts.task.name}",
            hlines={"random policy": mean_random} if prog.random_returns else None,
            integer_x=True,
        )
    run.logger.log(
        {"wall_time_s": prog.wall_time, "env_steps": prog.env_steps},
        step=cfg.num_trials,
        group="summary",
    )
    return PETSResult(**copy.deepcopy(vars(prog)), run_dir=Path(run.path), plot_path=plot)
