"""Model-based RL algorithms: PETS (MBRL v1.5 with an ensemble and MPC), and more.

Importing this package imports every algorithm module in it, so that each registers its
``mbrl <command>`` (``mbrl.cli`` imports this package before building its parser).
"""

import importlib as _importlib
import pkgutil as _pkgutil

from mbrl.algorithms.pets import (
    ModelConfig,
    PETSConfig,
    PETSResult,
    load_pets_config,
    run_pets,
)

for _module in _pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ModelConfig", "PETSConfig", "PETSResult", "load_pets_config", "run_pets"]
