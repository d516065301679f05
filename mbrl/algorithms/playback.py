"""The saved agent of a run directory, rebuilt to act again (``mbrl video RUN_DIR``).

* PETS runs: the MPC agent rebuilt from the run's ``config.yaml`` (planner, ``replan_every``)
  around the ensemble of its latest checkpoint (``model.pt``);
* SAC and MBPO runs: the SAC policy of the latest checkpoint, acting deterministically (the
  mean action squashed into the bounds).

The config class comes from the caller (the CLI's algorithm table), so the algorithms are
listed in one place only.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbrl.algorithms.offpolicy_config import SACRunConfig
from mbrl.algorithms.pets_config import PETSConfig
from mbrl.util.checkpoint import Checkpointer, CheckpointError, load_state
from mbrl.util.config import load_config
from mbrl.util.lifecycle import STATE_FILE, SetupError, check_device, get_task, read_run_info
from mbrl.util.seeding import seed_everything
from mbrl.util.video import VideoResult, default_suffix, record_episodes

__all__ = ["SavedPolicy", "load_saved_policy", "render_run"]


@dataclass(frozen=True)
class SavedPolicy:
    """A run's agent, ready to act.

    Attributes:
        algorithm: the run's algorithm (``run.yaml``), e.g. ``"pets"``.
        task: the task (:class:`envs.Task`) the run trained on.
        checkpoint: the checkpoint folder the agent was loaded from.
        step: the checkpoint's counter (PETS: trials; SAC/MBPO: environment steps).
        act: ``act(obs (obs_dim,)) -> action (act_dim,)``.
        reset: to call at the start of every episode (``None``: nothing to reset).
    """

    algorithm: str
    task: Any
    checkpoint: Path
    step: int
    act: Callable[[np.ndarray], Any]
    reset: Callable[[], None] | None


def load_saved_policy(
    run_dir: str | os.PathLike, config_cls: type, *, seed: int = 0, device: str = "cpu"
) -> SavedPolicy:
    """Rebuild the agent of run directory ``run_dir`` from its latest checkpoint.

    Args:
        run_dir: a run directory (``run.yaml``, ``config.yaml``, ``checkpoints/``).
        config_cls: the config class of the run's algorithm (e.g. :class:`PETSConfig`).
        seed: seeds the planner's sampling (PETS); SAC's deterministic policy draws nothing.
        device: torch device the networks are loaded onto.

    Raises:
        SetupError: not a run directory, no checkpoint yet, a corrupted checkpoint, or an
            algorithm without a saved agent to play back.
    """
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    cfg = load_config(config_cls, run_dir / "config.yaml")
    dev = check_device(device)
    task = get_task(cfg.task)
    ckpt = Checkpointer(run_dir / "checkpoints", kind=info["algorithm"])
    try:
        latest = ckpt.load_latest()
    except CheckpointError as exc:
        raise SetupError(str(exc)) from None
    if latest is None:
        raise SetupError(f"{str(run_dir)!r}: no checkpoint yet (nothing trained to play back)")
    folder, manifest = latest
    if isinstance(cfg, PETSConfig):
        act, reset = _mpc_agent(cfg, task, folder, seed, dev)
    elif isinstance(cfg, SACRunConfig):
        act, reset = _sac_policy(cfg, task, folder, dev), None
    else:
        raise SetupError(f"{str(run_dir)!r}: a {info['algorithm']!r} run has no agent to play back")
    return SavedPolicy(info["algorithm"], task, folder, int(manifest["step"]), act, reset)


def _mpc_agent(
    cfg: PETSConfig, task: Any, folder: Path, seed: int, device: torch.device
) -> tuple[Callable[[np.ndarray], Any], Callable[[], None]]:
    from mbrl.agents.mpc_agent import MPCAgent
    from mbrl.models import DynamicsModel
    from mbrl.planning import make_planner

    model = DynamicsModel.load(folder / "model.pt", map_location=device)
    _, generator = seed_everything(seed)
    planner = make_planner(cfg.planner, model, task)
    agent = MPCAgent(
        planner, replan_every=cfg.replan_every, generator=generator, task=task, device=device
    )
    return agent.act, agent.reset


def _sac_policy(
    cfg: SACRunConfig, task: Any, folder: Path, device: torch.device
) -> Callable[[np.ndarray], Any]:
    from mbrl.agents.sac import SAC

    agent = SAC.for_task(task, dataclasses.replace(cfg.agent, seed=cfg.seed), device=device)
    try:
        agent.load_state_dict(load_state(folder / STATE_FILE)["agent"])
    except (KeyError, ValueError) as exc:
        raise SetupError(
            f"{str(folder)!r}: no usable SAC agent in the checkpoint ({exc})"
        ) from None
    return lambda obs: agent.act(obs, deterministic=True)


def render_run(
    run_dir: str | os.PathLike,
    config_cls: type,
    out: str | os.PathLike | None = None,
    *,
    episodes: int = 1,
    seed: int = 0,
    device: str = "cpu",
    max_steps: int | None = None,
    width: int = 320,
    height: int = 320,
) -> VideoResult:
    """Record ``episodes`` episodes of the saved agent of ``run_dir`` (:func:`load_saved_policy`)
    to ``out`` (``.mp4`` or ``.gif``; default ``<run_dir>/videos/playback-<step>.mp4``, or
    ``.gif`` without imageio-ffmpeg). Episode ``i`` starts from reset seed ``seed + i``."""
    saved = load_saved_policy(run_dir, config_cls, seed=seed, device=device)
    if out is None:
        out = Path(run_dir) / "videos" / f"playback-{saved.step:08d}{default_suffix()}"
    return record_episodes(
        saved.task,
        saved.act,
        out,
        episodes=episodes,
        seed=seed,
        reset=saved.reset,
        width=width,
        height=height,
        max_steps=max_steps,
    )
