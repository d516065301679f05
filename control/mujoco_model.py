"""True MuJoCo physics as batched dynamics (with Jacobians) for trajectory optimisation.

:class:`MuJoCoDynamics` wraps a ``mujoco.MjModel`` (from XML or from a Gymnasium MuJoCo
environment's ``unwrapped.model``).  The state is ``x = [qpos, qvel, act]`` (``act`` only when the
model has activations, ``na > 0``), the control is ``ctrl`` (``nu``), and one step advances the
physics by ``frame_skip`` MuJoCo steps with the control held constant — exactly what a Gymnasium
``MujocoEnv.step`` does.  Jacobians come from ``mujoco.mjd_transitionFD`` at every sub-step,
chained over ``frame_skip``:

    A = A_{k-1} ⋯ A_0,     B = Σ_j A_{k-1} ⋯ A_{j+1} B_j.

``mjd_transitionFD`` does not support the RK4 integrator (which Gymnasium's InvertedPendulum and
Reacher use); for such models, or with ``jacobian_method="central"``, the Jacobians are central
differences of the whole ``frame_skip`` step instead (``2 (nx + nu)`` extra steps per point).

Limitation: the state must be a vector space, so models whose ``nq != nv`` (free or ball joints,
i.e. quaternions) are rejected — ``mjd_transitionFD`` differentiates in the tangent space there.

Everything runs in NumPy float64 on the CPU, one batch row after another; the torch interface
(:meth:`__call__`, :meth:`jacobians`) converts at the boundary, so an instance can be passed to
:func:`control.ddp.ilqr` as ``dynamics=model, derivatives="analytic", jacobians=model.jacobians``.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np
import torch

Tensor = torch.Tensor

__all__ = ["MuJoCoDynamics"]

# MuJoCo warnings after which the step did not simulate the given (x, u): bad qpos/qvel/qacc
# reset the data (mj_resetData, which also zeroes the warning counters); a bad ctrl is zeroed.
_DIVERGED = (
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQACC,
    mujoco.mjtWarning.mjWARN_BADCTRL,
)


class MuJoCoDynamics:
    """Batched MuJoCo step ``x_next = f(x, u)`` with finite-difference Jacobians.

    Args:
        model: the ``mujoco.MjModel`` (it is not modified).
        frame_skip: MuJoCo steps per call (Gymnasium's ``frame_skip``), ``>= 1``.
        fd_eps: perturbation of ``mjd_transitionFD``.
        centered: centred (True) or forward differences in ``mjd_transitionFD``.
        jacobian_method: ``"transitionFD"`` (``mjd_transitionFD``, chained over sub-steps),
            ``"central"`` (central differences of :meth:`step_numpy` with step ``fd_eps``), or
            ``"auto"``: ``"transitionFD"`` unless the model integrates with RK4.

    Attributes:
        nx: state size ``nq + nv + na``; nu: control size; dt: seconds per call;
        jacobian_method: the method in use.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        frame_skip: int = 1,
        *,
        fd_eps: float = 1e-6,
        centered: bool = True,
        jacobian_method: str = "auto",
    ) -> None:
        if not isinstance(model, mujoco.MjModel):
            raise TypeError(f"model must be a mujoco.MjModel, got {type(model).__name__}")
        if int(frame_skip) < 1:
            raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
        if model.nq != model.nv:
            raise NotImplementedError(
                f"MuJoCoDynamics needs nq == nv (no free/ball joints); this model has nq={model.nq}"
                f", nv={model.nv}"
            )
        if not fd_eps > 0:
            raise ValueError(f"fd_eps must be > 0, got {fd_eps}")
        self.model = model
        self.data = mujoco.MjData(model)
        self.frame_skip = int(frame_skip)
        if jacobian_method not in ("auto", "transitionFD", "central"):
            raise ValueError(
                "jacobian_method must be 'auto', 'transitionFD' or 'central', "
                f"got {jacobian_method!r}"
            )
        rk4 = model.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4
        if jacobian_method == "transitionFD" and rk4:
            raise ValueError("mjd_transitionFD does not support the RK4 integrator of this model")
        if jacobian_method == "auto":
            jacobian_method = "central" if rk4 else "transitionFD"
        self.jacobian_method = jacobian_method
        self.fd_eps = float(fd_eps)
        self.centered = bool(centered)
        self.nq, self.nv, self.na, self.nu = model.nq, model.nv, model.na, model.nu
        self.nx = self.nq + self.nv + self.na
        self.dt = float(model.opt.timestep) * self.frame_skip
        self._A = np.zeros((2 * self.nv + self.na, 2 * self.nv + self.na))
        self._B = np.zeros((2 * self.nv + self.na, self.nu))

    @classmethod
    def from_env(cls, env: object, **kwargs: object) -> MuJoCoDynamics:
        """Build from a Gymnasium MuJoCo environment (uses ``unwrapped.model``/``frame_skip``)."""
        raw = getattr(env, "unwrapped", env)
        if not hasattr(raw, "model") or not hasattr(raw, "frame_skip"):
            raise TypeError("env must be a Gymnasium MujocoEnv (needs .unwrapped.model/frame_skip)")
        return cls(raw.model, raw.frame_skip, **kwargs)

    @classmethod
    def from_xml(cls, xml: str, frame_skip: int = 1, **kwargs: object) -> MuJoCoDynamics:
        """Build from an MJCF file path or an XML string."""
        if os.path.exists(xml):
            model = mujoco.MjModel.from_xml_path(xml)
        else:
            model = mujoco.MjModel.from_xml_string(xml)
        return cls(model, frame_skip, **kwargs)

    # ---- state helpers -------------------------------------------------------------------
    def get_state(self, data: mujoco.MjData) -> np.ndarray:
        """``[qpos, qvel, act]`` ``(nx,)`` of an ``MjData`` (e.g. a Gymnasium env's data)."""
        return np.concatenate([data.qpos, data.qvel, data.act]).astype(np.float64)

    def _set(self, x: np.ndarray, u: np.ndarray) -> None:
        d = self.data
        d.qpos[:] = x[: self.nq]
        d.qvel[:] = x[self.nq : self.nq + self.nv]
        if self.na:
            d.act[:] = x[self.nq + self.nv :]
        d.ctrl[:] = u
        d.qacc_warmstart[:] = 0.0
        d.time = 0.0

    def _check(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float64)
        u = np.asarray(u, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.nx:
            raise ValueError(f"x must have shape (B, {self.nx}), got {x.shape}")
        if u.ndim != 2 or u.shape != (x.shape[0], self.nu):
            raise ValueError(f"u must have shape ({x.shape[0]}, {self.nu}), got {u.shape}")
        return x, u

    # ---- NumPy interface -----------------------------------------------------------------
    def step_numpy(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``x (B, nx), u (B, nu) -> x_next (B, nx)`` after ``frame_skip`` MuJoCo steps.

        Rows whose input is non-finite, or whose simulation diverges (MuJoCo's warnings
        ``BADQPOS``/``BADQVEL``/``BADQACC`` reset the data, ``BADCTRL`` zeroes the control), return
        NaN rather than a silently reset state.
        """
        x, u = self._check(x, u)
        out = np.empty_like(x)
        m, d = self.model, self.data
        for i in range(x.shape[0]):
            if not (np.isfinite(x[i]).all() and np.isfinite(u[i]).all()):
                out[i] = np.nan
                continue
            self._set(x[i], u[i])
            for w in _DIVERGED:
                d.warning[w].number = 0
            mujoco.mj_step(m, d, nstep=self.frame_skip)
            if any(d.warning[w].number for w in _DIVERGED):
                out[i] = np.nan
            else:
                out[i] = self.get_state(d)
        return out

    def jacobians_numpy(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(A (B, nx, nx), B (B, nx, nu))`` of :meth:`step_numpy` via ``mjd_transitionFD``."""
        x, u = self._check(x, u)
        N = x.shape[0]
        if self.jacobian_method == "central":
            return self._central_jacobians(x, u)
        A_out = np.empty((N, self.nx, self.nx))
        B_out = np.empty((N, self.nx, self.nu))
        m, d = self.model, self.data
        for i in range(N):
            self._set(x[i], u[i])
            A_tot = np.eye(self.nx)
            B_tot = np.zeros((self.nx, self.nu))
            for j in range(self.frame_skip):
                mujoco.mjd_transitionFD(
                    m, d, self.fd_eps, self.centered, self._A, self._B, None, None
                )
                A_tot = self._A @ A_tot
                B_tot = self._A @ B_tot + self._B
                if j + 1 < self.frame_skip:
                    mujoco.mj_step(m, d)
            A_out[i], B_out[i] = A_tot, B_tot
        return A_out, B_out

    def _central_jacobians(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        N, nx, nu = x.shape[0], self.nx, self.nu
        d = nx + nu
        z = np.concatenate([x, u], axis=1)
        h = self.fd_eps * (1.0 + np.abs(z))  # (N, d)
        pert = np.eye(d)[None] * h[:, None, :]  # (N, d, d)
        zz = np.concatenate([z[:, None] + pert, z[:, None] - pert], axis=1).reshape(-1, d)
        out = self.step_numpy(zz[:, :nx], zz[:, nx:]).reshape(N, 2, d, nx)
        J = (out[:, 0] - out[:, 1]) / (2.0 * h[:, :, None])  # (N, d, nx)
        J = J.transpose(0, 2, 1)
        return np.ascontiguousarray(J[:, :, :nx]), np.ascontiguousarray(J[:, :, nx:])

    # ---- torch interface (for control.ddp.ilqr) ------------------------------------------
    def __call__(self, x: Tensor, u: Tensor) -> Tensor:
        """Torch wrapper of :meth:`step_numpy` (no autograd): ``(B, nx), (B, nu) -> (B, nx)``."""
        out = self.step_numpy(x.detach().cpu().numpy(), u.detach().cpu().numpy())
        return torch.as_tensor(out, dtype=x.dtype, device=x.device)

    def jacobians(self, x: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """Torch wrapper of :meth:`jacobians_numpy`: ``(f_x (B, nx, nx), f_u (B, nx, nu))``."""
        A, Bm = self.jacobians_numpy(x.detach().cpu().numpy(), u.detach().cpu().numpy())
        return (
            torch.as_tensor(A, dtype=x.dtype, device=x.device),
            torch.as_tensor(Bm, dtype=x.dtype, device=x.device),
        )
