"""One seeding helper for the whole toolkit."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_everything"]


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
