"""Shared fixtures for the model tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Run these small-model tests on one intra-op thread, restoring the setting afterwards.

    The test machine is shared and has two cores; for models this small a second thread gains
    nothing and, on a loaded machine, oversubscription made training steps ~25x slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
