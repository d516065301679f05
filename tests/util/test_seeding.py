"""Tests of mbrl.util.seeding.seed_everything."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mbrl.util.seeding import seed_everything


def draw(seed: int):
    np_rng, torch_gen = seed_everything(seed)
    return (
        random.random(),
        np.random.rand(3).tolist(),  # noqa: NPY002  (global state is part of the contract)
        torch.rand(3).tolist(),
        np_rng.normal(size=3).tolist(),
        torch.randn(3, generator=torch_gen).tolist(),
    )


def test_same_seed_same_numbers():
    assert draw(7) == draw(7)


def test_different_seed_different_numbers():
    a, b = draw(7), draw(8)
    assert all(x != y for x, y in zip(a, b, strict=True))


def test_returned_generators_are_independent_of_global_state():
    np_rng, torch_gen = seed_everything(3)
    expected = (np_rng.random(), torch.rand(1, generator=torch_gen).item())
    np_rng, torch_gen = seed_everything(3)
    random.random()
    np.random.rand(10)  # noqa: NPY002
    torch.rand(10)
    assert (np_rng.random(), torch.rand(1, generator=torch_gen).item()) == expected
    assert isinstance(np_rng, np.random.Generator) and isinstance(torch_gen, torch.Generator)


def test_large_seed_and_errors():
    a, _ = seed_everything(2**40)
    b, _ = seed_everything(2**40)
    assert a.integers(1 << 30) == b.integers(1 << 30)
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)
    with pytest.raises(TypeError, match="seed"):
        seed_everything(1.5)
    with pytest.raises(TypeError, match="seed"):
        seed_everything(True)
