"""The true MuJoCo simulator as a planning model: plan through the physics, not a learned model.

:class:`SimulatorModel` is a plain callable model for :class:`~mbrl.models.ModelEnv` (so every
sampling planner uses it unchanged) over the *planning state*

    ``z = [physics state (nstate), task observation (obs_dim)]``  (float64)

where the physics state is MuJoCo's full physics state (``mjSTATE_FULLPHYSICS``,
:func:`control.mujoco_rollout.read_physics_state`) and the observation is what the task's
environment would return in that state (:class:`envs.mujoco_tasks.physics_obs.PhysicsObservation`
computes it exactly, including the quantities MuJoCo derives one substep late). The task's own
``reward_fn`` and ``termination_fn`` then apply to the observation part: :meth:`planning_task`
gives that view of the task, and :func:`~mbrl.planning.make_planner` uses it by itself when
handed a :class:`SimulatorModel`::

    task = get_task("reacher")
    model = SimulatorModel(task)
    planner = make_planner(CEMConfig(horizon=20), model, task)
    env = PhysicsStateObservation(task.make_env())   # observations are z
    z, _ = env.reset(seed=0)
    plan = planner.plan(torch.as_tensor(z))          # float64

Open-loop rollouts (what planners score) take :meth:`SimulatorModel.rollout_open_loop`: ONE
``mujoco.rollout`` call for the whole horizon and batch (:class:`ModelEnv` uses it when the model
has it; the step-by-step path gives equal results, tested). A step is ``frame_skip`` MuJoCo
substeps of one held action, as ``env.step``. Each row starts from ``qacc_warmstart = 0`` (the
constraint solver's warm start is not part of the physics state), so with contacts a prediction
can differ from the environment's next state at the solver's tolerance.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from control.mujoco_perturb import scale_model
from control.mujoco_rollout import MuJoCoSimulator, read_physics_state
from envs.mujoco_tasks.physics_obs import PhysicsObservation
from envs.task import Task

Tensor = torch.Tensor

__all__ = ["OnObservation", "PhysicsStateObservation", "SimulatorModel"]


class SimulatorModel:
    """Batched true-simulator model over planning states ``z = [physics state, observation]``.

    Args:
        task: a Gymnasium MuJoCo task (``envs.get_task("reacher")``, ...).
        nthread: threads of ``mujoco.rollout`` (1: the calling thread).
        body_mass_scale: scale this model's private copy of the body masses and inertias
            (:func:`control.mujoco_perturb.scale_model`; a scalar or one per body). Several
            perturbed copies in a :class:`~mbrl.models.multi_model.MultiModel` give a robust
            planner.
        friction_scale: scale the private copy's geom friction (a scalar or one per geom).

    Attributes:
        task: the task; nstate: physics state length; obs_dim: the task's observation length;
        dim: ``nstate + obs_dim``, the planning state length; frame_skip: substeps per action;
        sim: the :class:`~control.mujoco_rollout.MuJoCoSimulator` (one substep per call);
        observe: the :class:`~envs.mujoco_tasks.physics_obs.PhysicsObservation`.
    """

    def __init__(
        self,
        task: Task,
        *,
        nthread: int = 1,
        body_mass_scale: float | np.ndarray = 1.0,
        friction_scale: float | np.ndarray = 1.0,
    ) -> None:
        self.task = task
        self.observe = PhysicsObservation(task)  # owns a private environment and its model
        scale_model(self.observe.model, body_mass=body_mass_scale, friction=friction_scale)
        self.frame_skip = int(getattr(self.observe.raw, "frame_skip", 1))
        # substeps are simulated one by one so the observation can read the state before the
        # last substep of each action step (see PhysicsObservation)
        self.sim = MuJoCoSimulator(self.observe.model, 1, nthread=nthread)
        self.nstate = self.sim.nstate
        self.obs_dim = task.obs_dim
        self.dim = self.nstate + self.obs_dim
        self.act_dim = task.act_dim

    def close(self) -> None:
        """Stop the simulator's thread pool and close the private environment."""
        self.sim.close()
        self.observe.close()

    # ------------------------------------------------------------------ planning states
    def planning_state(self, env: gym.Env, obs: np.ndarray) -> np.ndarray:
        """``z (dim,)`` of ``env`` now: its physics state followed by its observation ``obs``."""
        obs = np.asarray(obs, dtype=np.float64).reshape(-1)
        if obs.shape != (self.obs_dim,):
            raise ValueError(f"obs: expected shape ({self.obs_dim},), got {obs.shape}")
        return np.concatenate([read_physics_state(env), obs])

    def planning_task(self, task: Task) -> Task:
        """View of ``task`` over planning states: its reward and termination on ``z``'s
        observation part (``task`` may be a shaped copy of :attr:`task`)."""
        if task.obs_dim != self.obs_dim or task.act_dim != self.act_dim:
            raise ValueError(
                f"task: expected obs_dim {self.obs_dim} and act_dim {self.act_dim} (the "
                f"simulator's task {self.task.name!r}), got {task.obs_dim} and {task.act_dim}"
            )
        return replace(
            task,
            name=f"{task.name}@simulator",
            obs_dim=self.dim,
            reward_fn=OnObservation(task.reward_fn, self.nstate),
            termination_fn=OnObservation(task.termination_fn, self.nstate),
            dynamics_fn=None,
            obs_preprocess_fn=None,
            info={
                **task.info,
                "planning_state": {"physics": (0, self.nstate), "obs": (self.nstate, self.dim)},
            },
        )

    # ------------------------------------------------------------------ the model
    def __call__(self, z: Tensor, act: Tensor) -> Tensor:
        """One step: ``z (B, dim)``, ``act (B, act_dim)`` -> ``z' (B, dim)``."""
        if not isinstance(act, Tensor) or act.ndim != 2:
            raise ValueError(f"act: expected a tensor of shape (B, {self.act_dim}), got {act!r}")
        return self.rollout_open_loop(z, act[:, None])[:, 1]

    def rollout_open_loop(self, z0: Tensor, actions: Tensor) -> Tensor:
        """Planning states ``(B, H + 1, dim)`` (``[:, 0]`` is ``z0``) from ``z0 (B, dim)`` and
        ``actions (B, H, act_dim)``: one ``mujoco.rollout`` call. A row is NaN from the step
        on which MuJoCo could not simulate it. Returned in ``z0``'s dtype and device."""
        self._check(z0, actions)
        b, h = actions.shape[:2]
        state0 = z0[:, : self.nstate].detach().cpu().numpy().astype(np.float64)
        acts = actions.detach().cpu().numpy().astype(np.float64)
        fs = self.frame_skip
        states = self.sim.rollout(state0, np.repeat(acts, fs, axis=1))  # (B, H*fs + 1, nstate)
        post = states[:, fs::fs]
        pre = states[:, fs - 1 :: fs][:, :h]
        obs = self.observe(
            pre.reshape(b * h, -1), post.reshape(b * h, -1), acts.reshape(b * h, -1)
        ).reshape(b, h, self.obs_dim)
        out = torch.empty((b, h + 1, self.dim), dtype=z0.dtype, device=z0.device)
        out[:, 0] = z0
        out[:, 1:] = torch.as_tensor(np.concatenate([post, obs], axis=2)).to(out)
        return out

    def _check(self, z0: Tensor, actions: Tensor) -> None:
        if not isinstance(z0, Tensor) or z0.ndim != 2 or z0.shape[1] != self.dim:
            shape = tuple(z0.shape) if isinstance(z0, Tensor) else type(z0).__name__
            raise ValueError(
                f"z0: expected a tensor of shape (B, {self.dim}) = (B, nstate {self.nstate} + "
                f"obs_dim {self.obs_dim}), got {shape}"
            )
        if not z0.is_floating_point():
            raise TypeError(f"z0: expected a floating dtype (float64), got {z0.dtype}")
        b = z0.shape[0]
        if not (
            isinstance(actions, Tensor)
            and actions.ndim == 3
            and (actions.shape[0], actions.shape[2]) == (b, self.act_dim)
        ):
            shape = tuple(actions.shape) if isinstance(actions, Tensor) else type(actions).__name__
            raise ValueError(
                f"actions: expected a tensor of shape ({b}, H, {self.act_dim}), got {shape}"
            )


class OnObservation:
    """``fn(obs, act, next_obs)`` applied to the observation part ``z[..., nstate:]`` of
    planning states (picklable when ``fn`` is)."""

    def __init__(self, fn: Any, nstate: int) -> None:
        self.fn = fn
        self.nstate = int(nstate)

    def __call__(self, z: Tensor, act: Tensor, next_z: Tensor) -> Tensor:
        """``fn(z[..., nstate:], act, next_z[..., nstate:])``."""
        return self.fn(z[..., self.nstate :], act, next_z[..., self.nstate :])

    def __repr__(self) -> str:
        return f"OnObservation({self.fn!r}, nstate={self.nstate})"


class PhysicsStateObservation(gym.ObservationWrapper):
    """Observations ``z = [physics state, observation]`` of a task's environment, for an
    :class:`~mbrl.agents.MPCAgent` planning through a :class:`SimulatorModel` (build the
    agent with ``dtype=torch.float64``). Wrap the task's full environment (``task.make_env()``)
    so that the observation part is the task's. Rewards and termination are unchanged."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        shape = env.observation_space.shape
        if shape is None or len(shape) != 1:
            raise ValueError(f"env: expected a flat Box observation space, got {shape}")
        self.nstate = read_physics_state(env).size
        self.observation_space = gym.spaces.Box(
            -np.inf, np.inf, shape=(self.nstate + shape[0],), dtype=np.float64
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """``(nstate + obs_dim,)`` float64: the physics state, then ``observation``."""
        obs = np.asarray(observation, dtype=np.float64).reshape(-1)
        return np.concatenate([read_physics_state(self.env), obs])
