"""Optimal-control solvers usable on their own.

* :func:`lqr` — finite-horizon, time-varying LQR with affine terms (F, f, C, c notation).
* :func:`dlqr` — infinite-horizon discrete LQR (python-control's convention, ``u = -K x``).
* :func:`ilqr` — batched iLQR / box-DDP with control limits; with a sequence of ``K`` models, one
  control sequence robust over them (mean or smooth worst-case cost, :mod:`control.robust`).
* :class:`LinearMPC` — constrained linear MPC compiled once with cvxpy.
* :class:`MuJoCoDynamics` — MuJoCo physics with Jacobians, for :func:`ilqr` on true dynamics.
* :class:`MuJoCoSimulator` — batched MuJoCo rollouts over the full physics state.
* :func:`scale_model` — perturbed MuJoCo models (masses, inertias, friction) for robust planning.
* :class:`RecedingHorizonILQR` — receding-horizon iLQR with warm-start shifting.

Note: this top-level package shadows the python-control package (also named ``control``) when
both are installed in one environment.
"""

from control.boxqp import BoxQPResult, box_qp
from control.derivatives import numpy_function
from control.ilqr import ILQRResult, ilqr
from control.linear_mpc import InfeasibleError, LinearMPC, MPCResult
from control.linear_quadratic import (
    LQROverflowError,
    LQRSolution,
    NotPositiveDefiniteError,
    dlqr,
    lqr,
)
from control.mujoco_model import MuJoCoDynamics
from control.mujoco_perturb import scale_model
from control.mujoco_rollout import MuJoCoSimulator
from control.receding_horizon import RecedingHorizonILQR

__all__ = [
    "BoxQPResult",
    "ILQRResult",
    "InfeasibleError",
    "LQROverflowError",
    "LQRSolution",
    "LinearMPC",
    "MPCResult",
    "MuJoCoDynamics",
    "MuJoCoSimulator",
    "NotPositiveDefiniteError",
    "RecedingHorizonILQR",
    "box_qp",
    "dlqr",
    "ilqr",
    "lqr",
    "numpy_function",
    "scale_model",
]
