"""Former home of :func:`ilqr`; kept so that ``from control.ddp import ilqr`` keeps working.

The solver now lives in :mod:`control.ilqr` (driver and result), :mod:`control.ilqr_phases`
(the phases of an iteration and the solver state) and :mod:`control.riccati` (the backward
recursion).
"""

from __future__ import annotations

from control.ilqr import DEFAULT_ALPHAS, ILQRResult, ilqr
from control.riccati import backward_pass

__all__ = ["DEFAULT_ALPHAS", "ILQRResult", "ilqr"]

_backward_pass = backward_pass
"""The backward pass under its former private name (the equivalence tests use it)."""
