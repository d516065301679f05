"""Angle wrapping shared by every analytic task (one implementation for torch and numpy)."""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

_ArrayT = TypeVar("_ArrayT", torch.Tensor, np.ndarray, float)


def angle_normalize(x: _ArrayT) -> _ArrayT:
    """Wrap angles (radians) into ``[-pi, pi)``, elementwise; any shape.

    Accepts a torch tensor (differentiable: the gradient is 1 everywhere except at the jump
    ``pi -> -pi``; dtype and device kept), a numpy array, or a Python float (returned as
    ``numpy.float64``). Same formula as Gymnasium's Pendulum: ``((x + pi) mod 2 pi) - pi``.
    """
    if isinstance(x, torch.Tensor):
        return torch.remainder(x + math.pi, 2.0 * math.pi) - math.pi
    return np.remainder(np.asarray(x, dtype=np.float64) + np.pi, 2.0 * np.pi) - np.pi
