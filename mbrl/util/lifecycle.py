"""The life of a run shared by every algorithm: check, start or resume, checkpoint.

An algorithm:

1. checks its config and builds everything it needs (raising :class:`SetupError` for anything
   wrong) *before* any run directory exists, so a bad setting leaves nothing behind;
2. calls :func:`start_run` (a new run directory with ``config.yaml`` and ``run.yaml``) or
   :func:`resume_run` (an existing one: leftovers of a killed checkpoint write removed, the
   latest complete checkpoint verified and loaded, the logs rewound to it);
3. calls :func:`write_checkpoint` at its checkpoint points with everything needed to continue
   exactly (see :mod:`mbrl.util.checkpoint`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from mbrl.util.checkpoint import Checkpointer, CheckpointError, load_state, save_state
from mbrl.util.config import require_ints, save_config
from mbrl.util.io import atomic_open
from mbrl.util.logger import log_row_counts, rewind_logs
from mbrl.util.run_dir import RunDir

__all__ = [
    "RUN_FORMAT",
    "Restored",
    "RunSettings",
    "SetupError",
    "check_device",
    "check_run_root",
    "get_task",
    "make_training_env",
    "open_run",
    "setup_errors",
    "read_run_info",
    "resume_run",
    "start_run",
    "write_checkpoint",
]

RUN_FORMAT = 1
"""Version of ``run.yaml`` (the record of which algorithm a run directory belongs to)."""

STATE_FILE = "state.pt"


class SetupError(ValueError):
    """A run cannot start: a setting, the task, the device or the run folder is unusable."""


@dataclass
class RunSettings:
    """The settings every algorithm's run has, declared once (the algorithms' configs extend it).

    Attributes:
        task: task name (``envs.list_tasks()``).
        seed: seeds Python, numpy, torch, the environment and every generator of the run.
        device: torch device of the networks (``"cpu"``, ``"cuda"``).
        buffer_capacity: replay buffer size (transitions).
        run_root: folder the run directory is created in.
        run_name: run directory name prefix (``None``: ``<algorithm>-<task>``).
        progress: show the progress bar.
        keep_checkpoints: how many checkpoints to keep.
        record_video_every: record every ``N``-th training episode (PETS: trial) as a video in
            ``<run>/videos/`` (:class:`mbrl.util.video.EpisodeRecorder`); ``0``: off. MuJoCo
            tasks only; needs an offscreen OpenGL back end (see ``docs/video.md``).
    """

    task: str = ""
    seed: int = 0
    device: str = "cpu"
    buffer_capacity: int = 1_000_000
    run_root: str = "runs"
    run_name: str | None = None
    progress: bool = True
    keep_checkpoints: int = 3
    record_video_every: int = 0

    def __post_init__(self) -> None:
        minimum = {"seed": 0, "buffer_capacity": 1, "keep_checkpoints": 1, "record_video_every": 0}
        require_ints(self, minimum)


@dataclass(frozen=True)
class Restored:
    """The checkpoint a resumed run continues from.

    Attributes:
        path: the checkpoint folder.
        step: its counter (e.g. the episodes finished).
        state: the contents of its ``state.pt``.
    """

    path: Path
    step: int
    state: dict[str, Any]


def check_device(device: str) -> torch.device:
    """``torch.device(device)``, or :class:`SetupError` if it is malformed or absent here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise SetupError(f"device: {device!r} is not a torch device ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SetupError(f"device: {device!r} requested, but CUDA is not available here")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SetupError(f"device: {device!r}, but only {torch.cuda.device_count()} CUDA devices")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise SetupError(f"device: expected 'cpu', 'cuda[:i]' or 'mps', got {device!r}")
    return dev


def check_run_root(root: str | os.PathLike) -> Path:
    """The run root as a path, or :class:`SetupError` if it cannot be created or written."""
    path = Path(root).expanduser()
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise SetupError(f"run_root: {str(probe)!r} exists and is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SetupError(f"run_root: {str(probe)!r} is not writable")
    return path


@contextlib.contextmanager
def setup_errors() -> Iterator[None]:
    """Turn a ``ValueError``/``TypeError`` raised while a run is set up into a
    :class:`SetupError` with the same message (the CLI prints it as one line)."""
    try:
        yield
    except SetupError:
        raise
    except (ValueError, TypeError) as exc:
        raise SetupError(str(exc)) from None


def get_task(name: str) -> Any:
    """``envs.get_task(name)``, or :class:`SetupError` naming ``task`` if it is unknown."""
    import envs

    try:
        return envs.get_task(name)
    except KeyError as exc:
        raise SetupError(f"task: {exc.args[0] if exc.args else name}") from None


def make_training_env(cfg: RunSettings, task: Any) -> Any:
    """The environment a run trains on: ``task.make_env()``, or, when
    ``cfg.record_video_every > 0``, one that renders offscreen (the GL back end is checked here,
    so a machine without one fails with :class:`SetupError` before any run directory exists)."""
    if not cfg.record_video_every:
        return task.make_env()
    from mbrl.util.video import RenderError, make_render_env

    try:
        return make_render_env(task)
    except RenderError as exc:
        raise SetupError(f"record_video_every: {exc}") from None


def read_run_info(path: str | os.PathLike) -> dict[str, Any]:
    """The ``run.yaml`` of run directory ``path`` (``algorithm``, ``format_version``)."""
    info_path = Path(path) / "run.yaml"
    if not info_path.is_file():
        raise SetupError(f"{str(path)!r}: not a run directory of this toolkit (no run.yaml)")
    info = yaml.safe_load(info_path.read_text())
    if not isinstance(info, dict) or not isinstance(info.get("algorithm"), str):
        raise SetupError(f"{str(info_path)!r}: not a run record")
    if info.get("format_version") != RUN_FORMAT:
        raise SetupError(
            f"{str(info_path)!r}: format_version {info.get('format_version')!r}, "
            f"expected {RUN_FORMAT}"
        )
    return info


def start_run(cfg: Any, root: str | os.PathLike, name: str, algorithm: str) -> RunDir:
    """A new run directory ``<root>/<name>-<time>`` with ``config.yaml`` and ``run.yaml``."""
    run = RunDir.create(root, name, cfg)
    with atomic_open(run.path / "run.yaml", "w") as f:
        yaml.safe_dump({"algorithm": algorithm, "format_version": RUN_FORMAT}, f)
    return run


def resume_run(path: str | os.PathLike, algorithm: str, cfg: Any) -> tuple[RunDir, Restored | None]:
    """Re-open run directory ``path`` to continue it.

    Removes the leftovers of an interrupted checkpoint write, verifies and loads the latest
    complete checkpoint (``None`` if the run was stopped before its first one), and rewinds the
    CSV/TensorBoard logs to that checkpoint so nothing is logged twice. ``cfg`` (the config the
    run continues with) is written back to ``config.yaml``.
    """
    path = Path(path)
    info = read_run_info(path)
    if info["algorithm"] != algorithm:
        raise SetupError(f"{str(path)!r} is a {info['algorithm']!r} run, not {algorithm!r}")
    ckpt = Checkpointer(path / "checkpoints", kind=algorithm)
    ckpt.clean()
    try:
        latest = ckpt.load_latest()
    except CheckpointError as exc:
        raise SetupError(str(exc)) from None
    restored = None
    if latest is not None:
        folder, manifest = latest
        state = load_state(folder / STATE_FILE)
        restored = Restored(folder, int(manifest["step"]), state)
    counts = restored.state.get("log_rows", {}) if restored is not None else {}
    rewind_logs(path, counts)
    save_config(cfg, path / "config.yaml")
    return RunDir.open(path), restored


def open_run(
    cfg: Any, algorithm: str, name: str, resume: str | os.PathLike | None
) -> tuple[RunDir, Restored | None]:
    """:func:`start_run` under ``cfg.run_root`` (``resume=None``) or :func:`resume_run`."""
    if resume is None:
        return start_run(cfg, cfg.run_root, name, algorithm), None
    return resume_run(resume, algorithm, cfg)


def write_checkpoint(
    run: RunDir,
    checkpointer: Checkpointer,
    step: int,
    state: Mapping[str, Any],
    files: Mapping[str, Callable[[Path], Any]] | None = None,
) -> Path:
    """Write checkpoint ``step``: ``state`` (plus the log row counts) as ``state.pt`` and the
    extra ``files`` (``{name: writer(path)}``), as one unit. Returns the checkpoint folder."""
    run.logger.flush()
    full = {**state, "log_rows": log_row_counts(run.path)}
    return checkpointer.save(step, {STATE_FILE: save_state(full), **(files or {})})
