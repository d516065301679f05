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

Batched evaluation (everything in NumPy float64 on the CPU; the torch interface converts at the
boundary, so an instance can be passed to :func:`control.ddp.ilqr` as ``dynamics=model,
derivatives="analytic", jacobians=model.jacobians``):

* :meth:`MuJoCoDynamics.step_numpy` maps ``x`` to MuJoCo's full physics state (``time = 0``, every
  other input at the model's defaults) and makes one ``mujoco.rollout`` call over the batch through
  :class:`control.mujoco_rollout.MuJoCoSimulator` (``nthread`` C++ threads);
  :meth:`~MuJoCoDynamics.step_numpy_sequential` is the reference loop of ``mj_step`` (equal
  bit for bit, tested).
* :meth:`MuJoCoDynamics.jacobians_numpy` splits the batch over ``nthread`` Python threads, each
  with its own ``MjData`` (``mjd_transitionFD`` and ``mj_step`` release the GIL, so the threads
  run in parallel); every row starts from the same inputs (``qacc_warmstart = 0``, ``time = 0``),
  so the result equals :meth:`~MuJoCoDynamics.jacobians_numpy_sequential` exactly.

Diverging rows: a row whose step is NaN (non-finite input, or a MuJoCo divergence warning
``BADQPOS``/``BADQVEL``/``BADQACC``/``BADCTRL`` during the step, see
:mod:`control.mujoco_rollout`) gets NaN Jacobians, ``A`` and ``B`` whole; so does a row where such a
warning fires in any of the perturbed evaluations of the finite differences (MuJoCo reset the data
there, so the differences are not derivatives of the physics).  Nothing is raised: NaN rows are
for the caller (e.g. the line search of :func:`control.ddp.ilqr`) to reject, as for the step.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
import torch

from control.mujoco_rollout import FULLPHYSICS, MuJoCoSimulator, clear_divergence, diverged

Tensor = torch.Tensor

__all__ = ["MuJoCoDynamics"]


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
        nthread: int = 1,
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
        self.simulator = MuJoCoSimulator(model, self.frame_skip, nthread=nthread)
        self.nthread = self.simulator.nthread
        self._fd_datas = [mujoco.MjData(model) for _ in range(self.nthread)]
        self._template = np.empty(self.simulator.nstate)  # defaults of a fresh MjData, time 0
        mujoco.mj_getState(model, mujoco.MjData(model), self._template, FULLPHYSICS)
        self._template[self.simulator.layout.time] = 0.0

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

    def _set(self, d: mujoco.MjData, x: np.ndarray, u: np.ndarray) -> None:
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

    def to_physics_state(self, x: np.ndarray) -> np.ndarray:
        """``x = [qpos, qvel, act] (B, nx) -> (B, nstate)`` full physics state at ``time = 0``."""
        lay = self.simulator.layout
        full = np.tile(self._template, (x.shape[0], 1))
        full[:, lay.qpos] = x[:, : self.nq]
        full[:, lay.qvel] = x[:, self.nq : self.nq + self.nv]
        full[:, lay.act] = x[:, self.nq + self.nv :]
        return full

    def from_physics_state(self, full: np.ndarray) -> np.ndarray:
        """``(B, nstate) -> x = [qpos, qvel, act] (B, nx)``."""
        lay = self.simulator.layout
        return np.concatenate([full[:, lay.qpos], full[:, lay.qvel], full[:, lay.act]], axis=1)

    # ---- NumPy interface -----------------------------------------------------------------
    def step_numpy(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``x (B, nx), u (B, nu) -> x_next (B, nx)`` after ``frame_skip`` MuJoCo steps.

        One ``mujoco.rollout`` call for the batch.  Rows whose input is non-finite, or whose
        simulation diverges (MuJoCo's warnings ``BADQPOS``/``BADQVEL``/``BADQACC`` reset the data,
        ``BADCTRL`` zeroes the control), return NaN rather than a silently reset state.
        """
        x, u = self._check(x, u)
        full = self.simulator.rollout(self.to_physics_state(x), u[:, None])
        return self.from_physics_state(full[:, 1])

    def step_numpy_sequential(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Reference of :meth:`step_numpy`: a Python loop of ``mj_step`` over the rows."""
        x, u = self._check(x, u)
        out = np.empty_like(x)
        m, d = self.model, self.data
        for i in range(x.shape[0]):
            if not (np.isfinite(x[i]).all() and np.isfinite(u[i]).all()):
                out[i] = np.nan
                continue
            self._set(d, x[i], u[i])
            clear_divergence(d)
            mujoco.mj_step(m, d, nstep=self.frame_skip)
            out[i] = np.nan if diverged(d) else self.get_state(d)
        return out

    def jacobians_numpy(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(A (B, nx, nx), B (B, nx, nu))`` of :meth:`step_numpy`; NaN for diverging rows.

        ``mjd_transitionFD`` chained over ``frame_skip``, the rows split over ``nthread``
        threads (or central differences of the batched step, see ``jacobian_method``).
        """
        x, u = self._check(x, u)
        if self.jacobian_method == "central":
            return self._central_jacobians(x, u)
        N = x.shape[0]
        A_out = np.empty((N, self.nx, self.nx))
        B_out = np.empty((N, self.nx, self.nu))
        chunks = [c for c in np.array_split(np.arange(N), self.nthread) if c.size]
        if len(chunks) <= 1:
            self._fd_rows(self._fd_datas[0], x, u, np.arange(N), A_out, B_out)
            return A_out, B_out
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            jobs = [
                pool.submit(self._fd_rows, self._fd_datas[k], x, u, rows, A_out, B_out)
                for k, rows in enumerate(chunks)
            ]
            for job in jobs:
                job.result()
        return A_out, B_out

    def jacobians_numpy_sequential(
        self, x: np.ndarray, u: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Reference of :meth:`jacobians_numpy` (``transitionFD``): one loop on one ``MjData``."""
        x, u = self._check(x, u)
        if self.jacobian_method == "central":
            raise ValueError("jacobians_numpy_sequential needs jacobian_method='transitionFD'")
        N = x.shape[0]
        A_out = np.empty((N, self.nx, self.nx))
        B_out = np.empty((N, self.nx, self.nu))
        self._fd_rows(self.data, x, u, np.arange(N), A_out, B_out)
        return A_out, B_out

    def _fd_rows(
        self,
        d: mujoco.MjData,
        x: np.ndarray,
        u: np.ndarray,
        rows: np.ndarray,
        A_out: np.ndarray,
        B_out: np.ndarray,
    ) -> None:
        """``mjd_transitionFD`` Jacobians of ``rows`` on ``d``, written into ``A_out``/``B_out``."""
        m, nx = self.model, self.nx
        A = np.zeros((nx, nx))
        Bj = np.zeros((nx, self.nu))
        for i in rows:
            if not (np.isfinite(x[i]).all() and np.isfinite(u[i]).all()):
                A_out[i], B_out[i] = np.nan, np.nan
                continue
            self._set(d, x[i], u[i])
            clear_divergence(d)
            A_tot = np.eye(nx)
            B_tot = np.zeros((nx, self.nu))
            for j in range(self.frame_skip):
                mujoco.mjd_transitionFD(m, d, self.fd_eps, self.centered, A, Bj, None, None)
                A_tot = A @ A_tot
                B_tot = A @ B_tot + Bj
                if j + 1 < self.frame_skip:
                    mujoco.mj_step(m, d)
            if diverged(d) or not (np.isfinite(A_tot).all() and np.isfinite(B_tot).all()):
                A_out[i], B_out[i] = np.nan, np.nan
            else:
                A_out[i], B_out[i] = A_tot, B_tot

    def _central_jacobians(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        N, nx, nu = x.shape[0], self.nx, self.nu
        d = nx + nu
        z = np.concatenate([x, u], axis=1)
        h = self.fd_eps * (1.0 + np.abs(z))  # (N, d)
        with np.errstate(invalid="ignore"):  # NaN rows stay NaN (their step is NaN too)
            pert = np.eye(d)[None] * h[:, None, :]  # (N, d, d)
            zz = np.concatenate([z[:, None] + pert, z[:, None] - pert, z[:, None]], axis=1)
        out = self.step_numpy(zz[..., :nx].reshape(-1, nx), zz[..., nx:].reshape(-1, nu))
        out = out.reshape(N, 2 * d + 1, nx)
        J = (out[:, :d] - out[:, d : 2 * d]) / (2.0 * h[:, :, None])  # (N, d, nx)
        J = J.transpose(0, 2, 1)
        bad = ~(np.isfinite(out).all(axis=(1, 2)) & np.isfinite(J).all(axis=(1, 2)))
        J[bad] = np.nan  # a diverging nominal or perturbed step: no derivative
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
