"""Shared run infrastructure: configs, logging, run directories, checkpoints and resume,
seeding, progress, atomic IO.

Submodules are imported on use (``from mbrl.util.config import load_config``); the names below
are re-exported lazily so ``import mbrl.util`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Checkpointer": "mbrl.util.checkpoint",
    "ConfigError": "mbrl.util.config",
    "GroupLogger": "mbrl.util.logger",
    "SetupError": "mbrl.util.lifecycle",
    "capture_rng_state": "mbrl.util.seeding",
    "default_of": "mbrl.util.config",
    "restore_rng_state": "mbrl.util.seeding",
    "config_from_dict": "mbrl.util.config",
    "config_to_dict": "mbrl.util.config",
    "load_config": "mbrl.util.config",
    "preset_path": "mbrl.util.config",
    "save_config": "mbrl.util.config",
    "Logger": "mbrl.util.logger",
    "RunDir": "mbrl.util.run_dir",
    "plot_curves": "mbrl.util.plotting",
    "progress": "mbrl.util.progress",
    "seed_everything": "mbrl.util.seeding",
    "atomic_open": "mbrl.util.io",
    "atomic_write": "mbrl.util.io",
    "atomic_torch_save": "mbrl.util.io",
    "torch_load": "mbrl.util.io",
    "CheckpointError": "mbrl.util.io",
    "read_verified": "mbrl.util.io",
    "write_verified": "mbrl.util.io",
    "save_verified": "mbrl.util.io",
    "load_verified": "mbrl.util.io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mbrl.util' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
