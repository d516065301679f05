"""Run directories: one folder per experiment holding its config, metrics and checkpoints.

Layout of ``RunDir.create("runs", "pets-cartpole", cfg)``::

    runs/pets-cartpole-20261122-041500/
        config.yaml        resolved config (load back with load_config(type(cfg), path))
        metrics.csv        long-format scalars of all groups (see mbrl.util.logger)
        train.csv ...      wide-format scalars, one file per group
        tb/                TensorBoard events
        checkpoints/       complete checkpoints and a latest pointer (mbrl.util.checkpoint)
        plots/             figures (plot_path)
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mbrl.util.config import save_config
from mbrl.util.logger import Logger

__all__ = ["RunDir"]


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name or name in (".", ".."):
        raise ValueError(f"{what}: expected a non-empty name, got {name!r}")
    if "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"{what}: must not contain path separators, got {name!r}")
    return name


class RunDir:
    """A run's folder with its :class:`~mbrl.util.logger.Logger` and checkpoint helpers.

    Build one with :meth:`create` (new run) or :meth:`open` (resume an existing run); the
    checkpoints in ``checkpoints/`` are written by :class:`mbrl.util.checkpoint.Checkpointer`.
    Use as a context manager, or call :meth:`close` to close the logger.
    """

    def __init__(self, path: str | Path, *, tensorboard: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"run directory {str(self.path)!r} does not exist")
        self.checkpoint_dir.mkdir(exist_ok=True)
        self.logger = Logger(self.path, tensorboard=tensorboard)

    @classmethod
    def create(
        cls,
        root: str | Path = "runs",
        name: str = "run",
        config: Any = None,
        *,
        tensorboard: bool = True,
    ) -> RunDir:
        """Make ``<root>/<name>-<YYYYmmdd-HHMMSS>[-k]/`` (unique) and write ``config.yaml``.

        Args:
            root: parent folder (created if missing).
            name: run name (no path separators).
            config: dataclass config or mapping, saved as ``config.yaml``; ``None`` writes none.
            tensorboard: whether the logger also writes TensorBoard events.
        """
        _check_name(name, "name")
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        stem = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        path = root / stem
        k = 0
        while True:
            try:
                path.mkdir()
                break
            except FileExistsError:
                k += 1
                path = root / f"{stem}-{k}"
        if config is not None:
            is_config = isinstance(config, Mapping) or (
                dataclasses.is_dataclass(config) and not isinstance(config, type)
            )
            if not is_config:
                shutil.rmtree(path)
                raise TypeError(
                    f"config: expected a dataclass instance, a mapping or None, "
                    f"got {type(config).__name__}"
                )
            try:
                save_config(config, path / "config.yaml")
            except Exception:
                shutil.rmtree(path)
                raise
        return cls(path, tensorboard=tensorboard)

    @classmethod
    def open(cls, path: str | Path, *, tensorboard: bool = True) -> RunDir:
        """Re-open an existing run directory (the logger appends to its files)."""
        return cls(path, tensorboard=tensorboard)

    # ------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The folder name, e.g. ``"pets-cartpole-20261122-041500"``."""
        return self.path.name

    @property
    def config_path(self) -> Path:
        """``<run>/config.yaml``."""
        return self.path / "config.yaml"

    @property
    def checkpoint_dir(self) -> Path:
        """``<run>/checkpoints``."""
        return self.path / "checkpoints"

    def plot_path(self, name: str) -> Path:
        """``<run>/plots/<name>`` (``.png`` added if ``name`` has no suffix); makes the folder."""
        _check_name(name, "name")
        plots = self.path / "plots"
        plots.mkdir(exist_ok=True)
        return plots / (name if Path(name).suffix else f"{name}.png")

    # ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the logger."""
        self.logger.close()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"
