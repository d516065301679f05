"""Batched MuJoCo simulation over the full physics state, through ``mujoco.rollout``.

:class:`MuJoCoSimulator` is a planning model that *is* the simulator: a plain callable
``(state (B, nstate), act (B, nu)) -> next_state (B, nstate)`` and a multi-step
:meth:`~MuJoCoSimulator.rollout` ``(state0 (B, nstate), actions (B, H, nu)) -> (B, H+1, nstate)``.
The state is MuJoCo's full physics state ``mjSTATE_FULLPHYSICS`` (``[time, qpos, qvel, act,
history, plugin, ...]``, as ``mujoco.mj_getState`` writes it; :class:`StateLayout` gives the
slices), so models with free/ball joints (``nq != nv``) are fine.  One action is held for
``frame_skip`` MuJoCo steps, exactly as a Gymnasium ``MujocoEnv.step`` does
(``data.ctrl[:] = a; mj_step(model, data, nstep=frame_skip)``).

Fast path and reference
-----------------------
:meth:`~MuJoCoSimulator.rollout` makes ONE ``mujoco.rollout`` call for all ``B`` rows and all
``H * frame_skip`` sub-steps (multi-threaded C++, the GIL released, ``nthread`` threads, one
``MjData`` per thread).  :meth:`~MuJoCoSimulator.rollout_sequential` is the reference: a Python
loop of ``mujoco.mj_step`` on one ``MjData``; both give bit-identical states (tested).  Each row
starts from ``qacc_warmstart = 0`` unless a ``warmstart (B, nv)`` is given (the constraint
solver's warm start is not part of the physics state; pass :func:`read_warmstart` of an env to
reproduce its next ``env.step`` exactly), and from MuJoCo's defaults for every input not in the
state (``qfrc_applied = xfrc_applied = 0``, mocap bodies at the model's pose, ``eq_active0``).

Diverging rows
--------------
A row whose simulation MuJoCo cannot carry out is NaN from that action step on, in both paths:
a non-finite state or action, or a step during which MuJoCo raised ``mjWARN_BADQPOS``,
``mjWARN_BADQVEL``, ``mjWARN_BADQACC`` (MuJoCo then resets the data to the model's defaults and
carries on from there) or ``mjWARN_BADCTRL`` (MuJoCo then zeroes the control).  ``mujoco.rollout``
stops a row at its first warning of any kind and repeats the last state, but does not return the
warnings; the fast path reads them from the time instead.  Every sub-step advances the time by
``timestep``; a stopped row's time stands still, and a reset row's time restarts from 0.  So a
row is recomputed by the reference loop (which ignores the harmless
warnings ``CONTACTFULL`` and ``CNSTRFULL`` and NaNs the diverging ones) when any sub-step's time
differs from the expected sum, or when its input is unusual: an entry non-finite or over
``mjMAXVAL`` (beyond which MuJoCo rejects qpos, qvel and ctrl), or a time that ``+ timestep``
cannot change.  The one case the time cannot tell (a reset on the only sub-step from time 0: the
reset state's time is also ``timestep``) gets one extra sub-step, whose time stands still if a
warning fired.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import mujoco.rollout
import numpy as np
import torch

Tensor = torch.Tensor

__all__ = [
    "DIVERGENCE_WARNINGS",
    "MuJoCoSimulator",
    "StateLayout",
    "diverged",
    "read_physics_state",
    "read_warmstart",
]

FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS
# MuJoCo warnings after which a step did not simulate the given (state, ctrl): bad qpos/qvel/qacc
# reset the data (mj_resetData), a bad ctrl is zeroed.
DIVERGENCE_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQACC,
    mujoco.mjtWarning.mjWARN_BADCTRL,
)


def clear_divergence(data: mujoco.MjData) -> None:
    """Zero the counters of :data:`DIVERGENCE_WARNINGS` in ``data``."""
    for w in DIVERGENCE_WARNINGS:
        data.warning[w].number = 0


def diverged(data: mujoco.MjData) -> bool:
    """Whether any of :data:`DIVERGENCE_WARNINGS` fired since :func:`clear_divergence`."""
    return any(data.warning[w].number for w in DIVERGENCE_WARNINGS)


@dataclass(frozen=True)
class StateLayout:
    """Where ``time``, ``qpos``, ``qvel`` and ``act`` sit in a ``mjSTATE_FULLPHYSICS`` vector."""

    nstate: int
    time: int
    qpos: slice
    qvel: slice
    act: slice

    @classmethod
    def of(cls, model: mujoco.MjModel) -> StateLayout:
        """The layout for ``model`` (components are stored in ``mjtState`` bit order)."""

        def size(spec: mujoco.mjtState) -> int:
            return mujoco.mj_stateSize(model, int(spec) & int(FULLPHYSICS))

        S = mujoco.mjtState
        q0 = size(S.mjSTATE_TIME)
        v0 = size(S.mjSTATE_TIME | S.mjSTATE_QPOS)
        a0 = size(S.mjSTATE_TIME | S.mjSTATE_QPOS | S.mjSTATE_QVEL)
        return cls(
            nstate=mujoco.mj_stateSize(model, FULLPHYSICS),
            time=0,
            qpos=slice(q0, q0 + model.nq),
            qvel=slice(v0, v0 + model.nv),
            act=slice(a0, a0 + model.na),
        )


def _raw_env(env: object) -> object:
    raw = getattr(env, "unwrapped", env)
    if not hasattr(raw, "model") or not hasattr(raw, "data"):
        raise TypeError(
            f"env must be a Gymnasium MuJoCo env (needs .unwrapped.model/.data), got "
            f"{type(env).__name__}"
        )
    return raw


def read_physics_state(env: object) -> np.ndarray:
    """Full physics state ``(nstate,)`` float64 of a Gymnasium MuJoCo env (``mj_getState``)."""
    raw = _raw_env(env)
    out = np.empty(mujoco.mj_stateSize(raw.model, FULLPHYSICS))
    mujoco.mj_getState(raw.model, raw.data, out, FULLPHYSICS)
    return out


def read_warmstart(env: object) -> np.ndarray:
    """The env's constraint-solver warm start ``qacc_warmstart`` ``(nv,)`` (a copy)."""
    return np.array(_raw_env(env).data.qacc_warmstart, dtype=np.float64)


class MuJoCoSimulator:
    """The true simulator as a batched planning model over the full physics state.

    Args:
        model: the ``mujoco.MjModel`` (not modified; keep it unchanged while this object lives).
        frame_skip: MuJoCo steps per action (Gymnasium's ``frame_skip``), ``>= 1``.
        nthread: threads of ``mujoco.rollout`` (``1``: the calling thread only).

    Attributes:
        nstate: full physics state size; nu: action size; dt: seconds per action;
        layout: :class:`StateLayout` of the state.

    Use :meth:`close` (or ``with``) to stop the thread pool early; it also stops on collection.
    """

    def __init__(self, model: mujoco.MjModel, frame_skip: int = 1, *, nthread: int = 1) -> None:
        if not isinstance(model, mujoco.MjModel):
            raise TypeError(f"model must be a mujoco.MjModel, got {type(model).__name__}")
        if isinstance(frame_skip, bool) or int(frame_skip) != frame_skip or frame_skip < 1:
            raise ValueError(f"frame_skip must be an integer >= 1, got {frame_skip!r}")
        if isinstance(nthread, bool) or int(nthread) != nthread or nthread < 1:
            raise ValueError(f"nthread must be an integer >= 1, got {nthread!r}")
        self.model = model
        self.frame_skip = int(frame_skip)
        self.nthread = int(nthread)
        self.layout = StateLayout.of(model)
        self.nstate, self.nu, self.nv = self.layout.nstate, model.nu, model.nv
        self.dt = float(model.opt.timestep) * self.frame_skip
        self._datas = [mujoco.MjData(model) for _ in range(self.nthread)]
        self._ref_data = mujoco.MjData(model)
        self._pool: mujoco.rollout.Rollout | None = mujoco.rollout.Rollout(
            nthread=self.nthread if self.nthread > 1 else 0
        )

    @classmethod
    def from_env(cls, env: object, **kwargs: object) -> MuJoCoSimulator:
        """Build from a Gymnasium MuJoCo env (its ``unwrapped.model`` and ``frame_skip``)."""
        raw = _raw_env(env)
        return cls(raw.model, getattr(raw, "frame_skip", 1), **kwargs)

    def close(self) -> None:
        """Stop the ``mujoco.rollout`` thread pool (further rollouts raise ``RuntimeError``)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> MuJoCoSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()

    # ---- checks --------------------------------------------------------------------------
    def _check(
        self, state0: np.ndarray, actions: np.ndarray, warmstart: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        state0 = np.ascontiguousarray(state0, dtype=np.float64)
        actions = np.ascontiguousarray(actions, dtype=np.float64)
        if state0.ndim != 2 or state0.shape[1] != self.nstate:
            raise ValueError(f"state0 must have shape (B, {self.nstate}), got {state0.shape}")
        B = state0.shape[0]
        if actions.ndim != 3 or actions.shape[0] != B or actions.shape[2] != self.nu:
            raise ValueError(f"actions must have shape ({B}, H, {self.nu}), got {actions.shape}")
        if warmstart is not None:
            warmstart = np.ascontiguousarray(warmstart, dtype=np.float64)
            if warmstart.shape != (B, self.nv):
                raise ValueError(
                    f"warmstart must have shape ({B}, {self.nv}), got {warmstart.shape}"
                )
            if not np.isfinite(warmstart).all():
                raise ValueError("warmstart must be finite")
        return state0, actions, warmstart

    # ---- fast path -----------------------------------------------------------------------
    def rollout(
        self,
        state0: np.ndarray | Tensor,
        actions: np.ndarray | Tensor,
        warmstart: np.ndarray | None = None,
    ) -> np.ndarray | Tensor:
        """States ``(B, H+1, nstate)`` (``[:, 0]`` is ``state0``) from actions ``(B, H, nu)``.

        One ``mujoco.rollout`` call for all rows and ``H * frame_skip`` sub-steps.  Torch inputs
        give a torch output of ``state0``'s dtype and device (computed in float64 on the CPU).
        """
        if isinstance(state0, Tensor):
            out = self.rollout(
                state0.detach().cpu().numpy(),
                torch.as_tensor(actions).detach().cpu().numpy(),
                warmstart,
            )
            return torch.as_tensor(out, dtype=state0.dtype, device=state0.device)
        if isinstance(actions, Tensor):
            actions = actions.detach().cpu().numpy()
        state0, actions, warmstart = self._check(state0, actions, warmstart)
        B, H = actions.shape[:2]
        out = np.empty((B, H + 1, self.nstate))
        out[:, 0] = state0
        if B == 0 or H == 0:
            return out
        plain = self._plain_rows(state0, actions)
        if plain.all():  # the usual case: no copies of the inputs
            out[:, 1:], warned = self._rollout_fast(state0, actions, warmstart)
            redo = np.flatnonzero(warned)
        else:
            fast, redo = np.flatnonzero(plain), np.flatnonzero(~plain)
            if fast.size:
                ws = None if warmstart is None else warmstart[fast]
                out[fast, 1:], warned = self._rollout_fast(state0[fast], actions[fast], ws)
                redo = np.concatenate([redo, fast[warned]])
        if redo.size:
            ws = None if warmstart is None else warmstart[redo]
            out[redo] = self.rollout_sequential(state0[redo], actions[redo], ws)
        return out

    def _plain_rows(self, state0: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """``(B,)`` bool: rows MuJoCo takes as they are, for which a warning shows in the time of
        the rollout's states: every state and action entry finite and within ``mjMAXVAL`` (MuJoCo
        rejects qpos, qvel, ctrl beyond it), and a time that ``+ timestep`` changes."""
        big = mujoco.mjMAXVAL
        t0 = state0[:, self.layout.time]
        with np.errstate(invalid="ignore"):
            return (
                (np.abs(state0) <= big).all(axis=1)
                & (np.abs(actions) <= big).all(axis=(1, 2))
                & (t0 + self.model.opt.timestep > t0)
            )

    def _rollout_fast(
        self, state0: np.ndarray, actions: np.ndarray, warmstart: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One ``mujoco.rollout`` call: (states (B, H, nstate) after each action, warned (B,)
        bool: rows where MuJoCo raised a warning, whose states are not valid)."""
        if self._pool is None:
            raise RuntimeError("MuJoCoSimulator is closed")
        B, H = actions.shape[:2]
        ts, t = self.model.opt.timestep, self.layout.time
        nsub = H * self.frame_skip
        # the time after each sub-step, summed one timestep at a time as MuJoCo does
        # (ufunc.accumulate adds sequentially, so the roundings are the same)
        steps = np.full((B, nsub + 1), ts)
        steps[:, 0] = state0[:, t]
        expected = np.cumsum(steps, axis=1)[:, 1:]
        extra = int(nsub == 1 and bool((state0[:, t] + ts == ts).any()))
        control = np.empty((B, nsub + extra, self.nu))
        control[:, :nsub] = np.repeat(actions, self.frame_skip, axis=1)
        control[:, nsub:] = actions[:, -1:]
        states = np.empty((B, nsub + extra, self.nstate))
        self._pool.rollout(  # shapes, dtypes and contiguity checked above
            [self.model] * B,
            self._datas,
            state0,
            control,
            nstep=nsub + extra,
            initial_warmstart=warmstart,
            state=states,
            skip_checks=True,
        )
        warned = (states[:, :nsub, t] != expected).any(axis=1)
        if extra:  # the second sub-step did not run: a warning fired on the first
            warned |= ~(states[:, 1, t] > states[:, 0, t])
        return states[:, self.frame_skip - 1 : nsub : self.frame_skip], warned

    def __call__(self, state: np.ndarray | Tensor, act: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """One action step: ``state (B, nstate), act (B, nu) -> next_state (B, nstate)``."""
        if isinstance(state, Tensor):
            act = torch.as_tensor(act)
            if act.ndim != 2:
                raise ValueError(f"act must have shape (B, {self.nu}), got {tuple(act.shape)}")
            return self.rollout(state, act[:, None])[:, 1]
        act = np.asarray(act)
        if act.ndim != 2:
            raise ValueError(f"act must have shape (B, {self.nu}), got {act.shape}")
        return self.rollout(state, act[:, None])[:, 1]

    # ---- reference -----------------------------------------------------------------------
    def rollout_sequential(
        self,
        state0: np.ndarray,
        actions: np.ndarray,
        warmstart: np.ndarray | None = None,
    ) -> np.ndarray:
        """Reference of :meth:`rollout` (NumPy): a Python loop of ``mj_step`` on one ``MjData``."""
        state0, actions, warmstart = self._check(state0, actions, warmstart)
        B, H = actions.shape[:2]
        out = np.full((B, H + 1, self.nstate), np.nan)
        out[:, 0] = state0
        for i in range(B):
            ws = None if warmstart is None else warmstart[i]
            self._reference_row(state0[i], actions[i], ws, out[i, 1:])
        return out

    def _reference_row(
        self, x0: np.ndarray, acts: np.ndarray, ws: np.ndarray | None, out: np.ndarray
    ) -> None:
        """Fill ``out (H, nstate)`` with the states after each action; stop (leaving NaN) at the
        first non-finite input or diverging step."""
        m, d = self.model, self._ref_data
        if not np.isfinite(x0).all():
            return
        mujoco.mj_resetData(m, d)
        mujoco.mj_setState(m, d, x0, FULLPHYSICS)
        d.qacc_warmstart[:] = 0.0 if ws is None else ws
        for h in range(acts.shape[0]):
            if not np.isfinite(acts[h]).all():
                return
            d.ctrl[:] = acts[h]
            clear_divergence(d)
            mujoco.mj_step(m, d, nstep=self.frame_skip)
            if diverged(d):
                return
            mujoco.mj_getState(m, d, out[h], FULLPHYSICS)
