"""Perturbed MuJoCo models, for robust planning ("movement with model uncertainty").

:func:`scale_model` scales, in place, the masses of the bodies (and their inertias by the same
factor: each body becomes uniformly denser or lighter, so its centre of mass and shape stay) and the
friction coefficients of the geoms, then recomputes the constants MuJoCo derives from them
(``mj_setConst``).  Apply it to a model before building a simulator on it (e.g.
:class:`~control.mujoco_rollout.MuJoCoSimulator`, or a Gymnasium environment's
``unwrapped.model`` to make the "true" system differ from the planning model).
"""

from __future__ import annotations

import mujoco
import numpy as np

__all__ = ["scale_model"]


def _scale(name: str, value: object, size: int) -> np.ndarray:
    s = np.asarray(value, dtype=np.float64)
    if s.ndim == 0:
        s = np.full(size, float(s))
    if s.shape != (size,):
        raise ValueError(f"{name}: expected a scalar or shape ({size},), got shape {s.shape}")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise ValueError(f"{name}: expected finite factors > 0, got {s.tolist()}")
    return s


def scale_model(
    model: mujoco.MjModel,
    *,
    body_mass: float | np.ndarray = 1.0,
    friction: float | np.ndarray = 1.0,
) -> mujoco.MjModel:
    """Scale ``model`` in place and return it.

    Args:
        model: the ``mujoco.MjModel`` to modify.
        body_mass: factor on ``body_mass`` and ``body_inertia``, a scalar or ``(nbody,)`` (one
            per body; body 0, the world, has no mass).
        friction: factor on ``geom_friction`` (sliding, torsional, rolling), a scalar or
            ``(ngeom,)``.

    Raises:
        ValueError: a factor that is not finite and > 0, or of the wrong shape (names it).
    """
    if not isinstance(model, mujoco.MjModel):
        raise TypeError(f"model: expected a mujoco.MjModel, got {type(model).__name__}")
    sm = _scale("body_mass", body_mass, model.nbody)
    sf = _scale("friction", friction, model.ngeom)
    if (sm == 1.0).all() and (sf == 1.0).all():
        return model  # unchanged, constants included
    model.body_mass[:] = model.body_mass * sm
    model.body_inertia[:] = model.body_inertia * sm[:, None]
    model.geom_friction[:] = model.geom_friction * sf[:, None]
    # the constants MuJoCo derives from the masses at compile time (subtree masses, the
    # inverse weights that scale constraint softness) as if the model had been compiled so
    mujoco.mj_setConst(model, mujoco.MjData(model))
    return model
