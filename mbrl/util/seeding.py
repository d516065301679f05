"""One seeding helper for the whole toolkit."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng_state", "restore_rng_state", "seed_everything"]


def seed_everything(seed: int) -> tuple[np.random.Generator, torch.Generator]:
    """Seed Python's ``random``, numpy's global state and torch; return fresh generators.

    Library code should draw randomness from the returned generators (passed explicitly);
    the global seeds only make third-party code that uses global state reproducible too.

    Args:
        seed: a non-negative integer below ``2**63``.

    Returns:
        ``(np.random.Generator seeded with seed, torch.Generator (CPU) seeded with seed)``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed: expected 0 <= seed < 2**63, got {seed}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (the global state is what we seed here)
    torch.manual_seed(seed)
    torch_gen = torch.Generator()
    torch_gen.manual_seed(seed)
    return np.random.default_rng(seed), torch_gen


def _plain(value: Any) -> Any:
    """numpy arrays inside an RNG state as lists (so ``weights_only`` loads accept them)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def capture_rng_state(
    np_rngs: Mapping[str, np.random.Generator] | None = None,
    torch_gens: Mapping[str, torch.Generator] | None = None,
) -> dict[str, Any]:
    """Every random state a run depends on, as plain data (for a checkpoint).

    Captures Python's ``random``, numpy's global state, torch's global CPU state, and the named
    numpy generators and torch generators. :func:`restore_rng_state` puts them back.
    """
    return {
        "python": random.getstate(),
        "numpy_global": _plain(np.random.get_state(legacy=False)),  # noqa: NPY002
        "torch_global": torch.get_rng_state(),
        "numpy": {k: _plain(g.bit_generator.state) for k, g in (np_rngs or {}).items()},
        "torch": {k: g.get_state() for k, g in (torch_gens or {}).items()},
    }


def restore_rng_state(
    state: Mapping[str, Any],
    np_rngs: Mapping[str, np.random.Generator] | None = None,
    torch_gens: Mapping[str, torch.Generator] | None = None,
) -> None:
    """Put back what :func:`capture_rng_state` captured, into the same named generators.

    Raises ``ValueError`` naming a generator that the state does not hold.
    """
    for kind, named in (("numpy", np_rngs or {}), ("torch", torch_gens or {})):
        missing = sorted(set(named) - set(state.get(kind, {})))
        if missing:
            raise ValueError(f"state: no saved {kind} generator state for {missing}")
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy_global"])  # noqa: NPY002  (restoring the global state)
    torch.set_rng_state(state["torch_global"])
    for name, gen in (np_rngs or {}).items():
        gen.bit_generator.state = state["numpy"][name]
    for name, tgen in (torch_gens or {}).items():
        tgen.set_state(state["torch"][name])
