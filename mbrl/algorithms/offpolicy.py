"""Off-policy learning with SAC, from real data only (``run_sac``) or Dyna-style with short
model rollouts (``run_mbpo``: MBPO, model-based RL "v3.0", Janner et al. 2019).

MBPO's loop (lecture notes, "model-based RL with short rollouts"):

1. collect data (``initial_random_steps`` uniform actions, then the SAC policy);
2. every ``model_train_freq`` steps, retrain the ensemble on all real data (warm-started,
   capped epochs), pick real states uniformly and roll the current policy out for ``k``
   steps through the model's elites (``k`` from MBPO's linear schedule); rollouts stop at the
   task's predicted termination, and non-finite predictions are dropped and counted;
3. every environment step, ``updates_per_step`` SAC updates on batches mixing ``real_ratio``
   real transitions with model transitions;
4. act with the stochastic policy and append to the data.

Plain SAC is the same loop without steps 2 and the model data (``real_ratio = 1``). Every
``eval_every`` steps the deterministic policy is evaluated; checkpoints are written at episode
ends and resume exactly.

Wall-time split, logged with the metrics (two clock reads per phase): the ``model`` group has
``train_seconds`` and ``rollout_seconds`` of each model round and ``model_steps_per_second``
(transitions generated per rollout second); the ``sac`` group has ``update_seconds``, the
wall time of the SAC updates (replay sampling included) since its previous row.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbrl.agents.sac import SAC
from mbrl.algorithms.offpolicy_config import MBPOConfig, OffPolicyResult, SACRunConfig

__all__ = ["MBPOConfig", "OffPolicyResult", "SACRunConfig", "run_mbpo", "run_sac"]
from mbrl.data import RandomPolicy, ReplayBuffer, collect_episode
from mbrl.models import (
    ModelEnv,
    build_model,
    build_trainer,
    load_training_state,
    train_on_buffer,
    training_state,
)
from mbrl.models.model_rollouts import (
    MixedSampler,
    branched_rollouts,
    model_buffer_capacity,
    resize_buffer,
)
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

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation episode ``i`` resets with seed ``seed + EVAL_SEED_OFFSET + i`` (fixed states)."""


@dataclass
class _Progress:
    """Counters and metrics so far (checkpointed)."""

    env_steps: int = 0
    updates: int = 0
    wall_time: float = 0.0
    eval_steps: list[int] = field(default_factory=list)
    eval_returns: list[float] = field(default_factory=list)
    episode_returns: list[float] = field(default_factory=list)
    last_checkpoint: int = 0


@dataclass
class _Parts:
    """Everything a run is made of, built before its run directory exists."""

    cfg: SACRunConfig
    task: Any
    env: Any
    eval_env: Any
    agent: SAC
    real: ReplayBuffer
    np_rng: np.random.Generator
    torch_gen: torch.Generator
    model: Any = None
    trainer: Any = None
    model_env: ModelEnv | None = None
    model_data: ReplayBuffer | None = None
    recorder: EpisodeRecorder | None = None
    update_seconds: float = 0.0  # since the last ``sac`` log row (not checkpointed)

    def generators(self) -> tuple[dict[str, np.random.Generator], dict[str, torch.Generator]]:
        return {"run": self.np_rng, "env": self.env.unwrapped.np_random}, {"run": self.torch_gen}


def run_sac(cfg: SACRunConfig, *, resume: str | Path | None = None) -> OffPolicyResult:
    """Train SAC on ``cfg.task`` from real data only (a new run, or continue ``resume``)."""
    if type(cfg) is not SACRunConfig:
        raise TypeError(f"cfg: expected a SACRunConfig, got {type(cfg).__name__}")
    return _run(cfg, "sac", resume)


def run_mbpo(cfg: MBPOConfig, *, resume: str | Path | None = None) -> OffPolicyResult:
    """Train SAC with MBPO's model rollouts on ``cfg.task`` (a new run, or continue ``resume``)."""
    if not isinstance(cfg, MBPOConfig):
        raise TypeError(f"cfg: expected an MBPOConfig, got {type(cfg).__name__}")
    return _run(cfg, "mbpo", resume)


def _run(cfg: SACRunConfig, algorithm: str, resume: str | Path | None) -> OffPolicyResult:
    parts = _build(cfg)
    try:
        name = cfg.run_name or f"{algorithm}-{parts.task.name}"
        run, restored = open_run(cfg, algorithm, name, resume)
    except BaseException:
        parts.env.close()
        parts.eval_env.close()
        raise
    try:
        prog = _restore(parts, restored) if restored is not None else _Progress()
        ckpt = Checkpointer(run.checkpoint_dir, kind=algorithm, keep=cfg.keep_checkpoints)
        return _loop(parts, run, ckpt, prog)
    finally:
        parts.env.close()
        parts.eval_env.close()
        run.close()


def _build(cfg: SACRunConfig) -> _Parts:
    with setup_errors():
        cfg.__post_init__()
        device, task = check_device(cfg.device), get_task(cfg.task)
        check_run_root(cfg.run_root)
        np_rng, torch_gen = seed_everything(cfg.seed)
        agent = SAC.for_task(task, dataclasses.replace(cfg.agent, seed=cfg.seed), device=device)
        real = ReplayBuffer(cfg.buffer_capacity, task.obs_dim, task.act_dim)
        env = make_training_env(cfg, task)
        parts = _Parts(cfg, task, env, task.make_env(), agent, real, np_rng, torch_gen)
        if isinstance(cfg, MBPOConfig):
            if task.termination_fn is None:
                raise ValueError(f"task: {task.name!r} has no termination_fn for the rollouts")
            parts.model = build_model(cfg.model, task, generator=torch_gen, device=device)
            parts.trainer = build_trainer(
                cfg.model, parts.model, generator=torch_gen, progress_bar=False
            )
            parts.model_env = ModelEnv(
                parts.model, task, propagation="ts1", use_learned_reward=True
            )
            capacity = _model_capacity(cfg, cfg.schedule.length(0))
            parts.model_data = ReplayBuffer(capacity, task.obs_dim, task.act_dim)
    parts.env.action_space.seed(cfg.seed)
    return parts


def _loop(parts: _Parts, run: RunDir, ckpt: Checkpointer, prog: _Progress) -> OffPolicyResult:
    cfg = parts.cfg
    start = time.perf_counter() - prog.wall_time
    if parts.trainer is not None:
        parts.trainer.logger = GroupLogger(run.logger, "model_epochs")
    name = f"{type(cfg).__name__.removesuffix('Config').removesuffix('Run')} {parts.task.name}"
    videos = run.path / "videos"
    parts.recorder = EpisodeRecorder(cfg.record_video_every, videos, parts.task.dt, "episode")
    with progress(
        None, name, total=cfg.total_steps, initial=prog.env_steps, disable=not cfg.progress
    ) as bar:
        while prog.env_steps < cfg.total_steps:
            _episode(parts, run, prog, bar)
            prog.wall_time = time.perf_counter() - start
            done = prog.env_steps >= cfg.total_steps
            if done or prog.env_steps - prog.last_checkpoint >= cfg.checkpoint_every:
                prog.last_checkpoint = prog.env_steps
                _checkpoint(parts, run, ckpt, prog)
    return _finish(parts, run, prog)


def _episode(parts: _Parts, run: RunDir, prog: _Progress, bar: Any) -> None:
    """One training episode: act, store, (retrain and roll out,) update, evaluate."""
    cfg = parts.cfg
    random_policy = RandomPolicy(parts.task, parts.np_rng)

    def policy(obs: np.ndarray) -> np.ndarray:
        if prog.env_steps < cfg.initial_random_steps:
            return random_policy(obs)
        return parts.agent.act(obs)

    def on_step(step: int, ret: float) -> None:
        prog.env_steps += 1
        frame(step)
        bar.update(1)
        if parts.model is not None and prog.env_steps % cfg.model_train_freq == 0:
            _model_round(parts, run, prog)
        if prog.env_steps >= cfg.initial_random_steps:
            _updates(parts, run, prog)
        if prog.env_steps % cfg.eval_every == 0:
            _evaluate(parts, run, prog)
            bar.set_postfix(eval=f"{prog.eval_returns[-1]:.1f}", refresh=False)

    seed = cfg.seed if not prog.episode_returns and prog.env_steps == 0 else None
    remaining = cfg.total_steps - prog.env_steps
    max_steps = min(parts.task.max_episode_steps, remaining)
    assert parts.recorder is not None
    with parts.recorder.episode(parts.env, len(prog.episode_returns) + 1) as frame:
        ret, n = collect_episode(
            parts.env, policy, parts.real, max_steps=max_steps, reset_seed=seed, on_step=on_step
        )
    prog.episode_returns.append(ret)
    run.logger.log({"return": ret, "length": n}, prog.env_steps, group="episode")


def _updates(parts: _Parts, run: RunDir, prog: _Progress) -> None:
    cfg = parts.cfg
    if parts.model_data is not None and len(parts.model_data) > 0:
        sampler = MixedSampler(parts.real, parts.model_data, cfg.real_ratio)
        draw = sampler.sample
    else:
        draw = parts.real.sample
    start = time.perf_counter()
    for _ in range(cfg.updates_per_step):
        metrics = parts.agent.update(draw(cfg.agent.batch_size, parts.np_rng))
        prog.updates += 1
    parts.update_seconds += time.perf_counter() - start
    if prog.env_steps % 250 == 0:
        metrics |= {"alpha": parts.agent.alpha, "update_seconds": parts.update_seconds}
        run.logger.log(metrics, prog.env_steps, group="sac")
        parts.update_seconds = 0.0


def _model_round(parts: _Parts, run: RunDir, prog: _Progress) -> None:
    """Retrain on all real data, then branch ``rollout_batch_size`` rollouts of length ``k``."""
    cfg = parts.cfg
    assert isinstance(cfg, MBPOConfig) and parts.model_data is not None
    t_train = time.perf_counter()
    metrics = train_on_buffer(cfg.model, parts.trainer, parts.real, parts.task).last_metrics()
    t_roll = time.perf_counter()
    k = cfg.schedule.length(prog.env_steps // cfg.epoch_length)
    parts.model_data = resize_buffer(parts.model_data, _model_capacity(cfg, k))
    start = parts.real.sample(cfg.rollout_batch_size, parts.np_rng).obs
    start_t = torch.as_tensor(start, dtype=parts.model.dtype, device=parts.model.device)
    roll = branched_rollouts(parts.model_env, parts.agent.policy, start_t, k, parts.torch_gen)
    if len(roll):
        parts.model_data.add_batch(*roll.to_batch())
    t_end = time.perf_counter()
    metrics |= {"rollout_length": k, "model_transitions": len(roll)}
    metrics |= {"train_seconds": t_roll - t_train, "rollout_seconds": t_end - t_roll}
    metrics |= {"model_steps_per_second": len(roll) / max(t_end - t_roll, 1e-9)}
    metrics |= {"fraction_terminated": roll.fraction_terminated}
    metrics |= {"fraction_dropped": roll.fraction_dropped, "data_size": len(parts.real)}
    run.logger.log(metrics, prog.env_steps, group="model")


def _model_capacity(cfg: MBPOConfig, k: int) -> int:
    """Model buffer size for rollout length ``k``: the rollouts of ``retain_epochs`` epochs."""
    per_epoch = cfg.rollout_batch_size * max(1, cfg.epoch_length // cfg.model_train_freq)
    return model_buffer_capacity(per_epoch, k, cfg.retain_epochs)


def _evaluate(parts: _Parts, run: RunDir, prog: _Progress) -> None:
    cfg = parts.cfg
    returns = []
    for i in range(cfg.eval_episodes):
        ret, _ = collect_episode(
            parts.eval_env,
            lambda obs: parts.agent.act(obs, deterministic=True),
            max_steps=parts.task.max_episode_steps,
            reset_seed=cfg.seed + EVAL_SEED_OFFSET + i,
        )
        returns.append(ret)
    prog.eval_steps.append(prog.env_steps)
    prog.eval_returns.append(float(np.mean(returns)))
    metrics = {"return": prog.eval_returns[-1], "return_std": float(np.std(returns))}
    metrics |= {"updates": prog.updates}
    run.logger.log(metrics, prog.env_steps, group="eval")


def _checkpoint(parts: _Parts, run: RunDir, ckpt: Checkpointer, prog: _Progress) -> None:
    state: dict[str, Any] = {"progress": dict(vars(prog)), "agent": parts.agent.state_dict()}
    state["rng"] = capture_rng_state(*parts.generators())
    files = {"buffer.npz": parts.real.save}
    if parts.model is not None and parts.model_data is not None:
        state |= training_state(parts.model, parts.trainer)
        files |= {"model_buffer.npz": parts.model_data.save, "model.pt": parts.model.save}
    write_checkpoint(run, ckpt, prog.env_steps, state, files)


def _restore(parts: _Parts, restored: Restored) -> _Progress:
    parts.agent.load_state_dict(restored.state["agent"])
    parts.real = ReplayBuffer.load(restored.path / "buffer.npz")
    if parts.model is not None:
        load_training_state(parts.model, parts.trainer, restored.state)
        parts.model_data = ReplayBuffer.load(restored.path / "model_buffer.npz")
    restore_rng_state(restored.state["rng"], *parts.generators())
    return _Progress(**restored.state["progress"])


def _finish(parts: _Parts, run: RunDir, prog: _Progress) -> OffPolicyResult:
    plot = None
    if prog.eval_returns:
        plot = plot_curves(
            run.logger.csv_path("eval"),
            "step",
            "return",
            run.plot_path("learning_curve.png"),
            title=f"{run.name.split('-')[0].upper()} on {parts.task.name}: evaluation return",
        )
    return OffPolicyResult(
        eval_steps=list(prog.eval_steps),
        eval_returns=list(prog.eval_returns),
        episode_returns=list(prog.episode_returns),
        env_steps=prog.env_steps,
        updates=prog.updates,
        wall_time=prog.wall_time,
        run_dir=Path(run.path),
        plot_path=plot,
    )
