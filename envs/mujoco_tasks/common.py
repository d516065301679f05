"""Shared machinery of the MuJoCo tasks: building the environment, input checks, small features.

Every MuJoCo task factory calls :func:`setup_env` with the user's keyword arguments. It builds
one probe environment (never rendered) to read dimensions, bounds, ``dt`` and the full set of
constructor parameters (Gymnasium's defaults merged with the user's values), so that the
reward function is built from exactly the weights the environment uses, then builds its
:class:`~envs.task.Task` with :meth:`EnvSetup.make_task`.

Shared input checks of every MuJoCo task:

* keyword arguments: a NaN anywhere, or an infinite scalar (weights, rewards, scales), raises
  ``ValueError`` naming it (infinite bounds of a ``(low, high)`` range are allowed);
* environments: :class:`CheckedActions` raises ``ValueError`` naming ``action`` for a
  non-finite, non-numeric or wrongly sized action, before MuJoCo sees it (MuJoCo would warn,
  reset its state and carry on);
* ``reward_fn`` / ``termination_fn``: float16 and bfloat16 inputs are computed in float32
  (:class:`AtLeastFloat32`); rewards then come back in float32.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

from envs.task import AtLeastFloat32, ObsPreprocessFn, RewardFn, Task, TerminationFn

Tensor = torch.Tensor

RENDER_KWARGS = frozenset(
    {
        "render_mode",
        "width",
        "height",
        "camera_id",
        "camera_name",
        "default_camera_config",
        "max_geom",
        "visual_options",
    }
)
"""Environment keyword arguments that only affect rendering (never the reward or observation)."""

LAYOUT_KWARGS = frozenset(
    {"exclude_current_positions_from_observation", "include_cfrc_ext_in_observation"}
)
"""Gymnasium keyword arguments that change the observation layout; each task fixes them."""


class EnvFactory:
    """Picklable ``env_factory(**render_options) -> gymnasium.Env`` of a MuJoCo task.

    Builds ``gymnasium.make(gym_id, max_episode_steps=..., **env_kwargs)`` and applies ``wrap``.
    Only rendering options (:data:`RENDER_KWARGS`) may be overridden per call: anything that
    changes the reward or the observation must go through ``get_task(name, **kwargs)`` so that
    the task's ``reward_fn`` matches the environment.
    """

    def __init__(
        self,
        gym_id: str,
        env_kwargs: Mapping[str, Any],
        max_episode_steps: int | None,
        wrap: Callable[[gym.Env], gym.Env] | None = None,
    ) -> None:
        self.gym_id = gym_id
        self.env_kwargs = dict(env_kwargs)
        self.max_episode_steps = max_episode_steps
        self.wrap = wrap

    def __call__(self, **overrides: Any) -> gym.Env:
        """Build a fresh environment; ``overrides`` may only hold rendering options."""
        bad = sorted(set(overrides) - RENDER_KWARGS)
        if bad:
            raise ValueError(
                f"env_factory: only rendering options {sorted(RENDER_KWARGS)} may be overridden, "
                f"got {bad}; pass reward/observation options to get_task(name, ...) instead so "
                "that the task's reward_fn matches the environment"
            )
        kwargs = {**self.env_kwargs, **overrides}
        env = gym.make(self.gym_id, max_episode_steps=self.max_episode_steps, **kwargs)
        return CheckedActions(self.wrap(env) if self.wrap is not None else env)

    def __repr__(self) -> str:
        return f"EnvFactory({self.gym_id!r}, {self.env_kwargs!r})"


class CheckedActions(gym.Wrapper):
    """Raise ``ValueError`` naming ``action`` for a non-numeric, wrongly sized or non-finite
    action, before the simulator sees it; other calls go to the wrapped environment.

    An action with the right number of entries but another shape (e.g. a list, or a scalar
    for a one-dimensional action) is accepted, as the analytic environments accept it.
    """

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Check ``action`` (``(act_dim,)``), then step the wrapped environment."""
        try:
            act = np.asarray(action)
        except (TypeError, ValueError) as err:
            raise ValueError(f"action: cannot convert to an array: {err}") from err
        shape = self.action_space.shape
        if act.dtype.kind not in "biuf":
            raise ValueError(f"action: expected numbers, got dtype {act.dtype}")
        if act.shape != shape and act.size != int(np.prod(shape)):
            raise ValueError(f"action: expected shape {shape}, got {act.shape}")
        if act.dtype.kind == "f" and not np.isfinite(act).all():
            raise ValueError(f"action: contains NaN or inf, got {act.tolist()}")
        return self.env.step(action)


def check_finite_kwargs(kwargs: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the keyword argument holding a NaN, or an infinite scalar.

    Numbers must be finite; sequences of numbers (``(low, high)`` ranges) may hold ``inf``
    but not NaN.
    """
    for name, value in kwargs.items():
        if _is_number(value):
            if not np.isfinite(float(value)):
                raise ValueError(f"{name}: expected a finite number, got {value!r}")
        elif isinstance(value, tuple | list | np.ndarray) and all(_is_number(v) for v in value):
            if any(np.isnan(float(v)) for v in value):
                raise ValueError(f"{name}: expected numbers without NaN, got {value!r}")


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


@dataclass(frozen=True)
class EnvSetup:
    """What a task factory learns from its probe environment.

    Attributes:
        gym_id: Gymnasium id, e.g. ``"Hopper-v5"``.
        params: every constructor parameter of the Gymnasium env class (defaults merged with the
            user's values), e.g. ``params["ctrl_cost_weight"]``.
        env_factory: builds the task's (wrapped) environment.
        obs_dim: length of the (wrapped) observation.
        act_dim: length of the action.
        action_low: ``(act_dim,)`` lower action bounds.
        action_high: ``(act_dim,)`` upper action bounds.
        dt: seconds per environment step (``timestep * frame_skip``).
        max_episode_steps: truncation horizon of the environment.
        nq: length of MuJoCo's ``qpos``.
        nv: length of MuJoCo's ``qvel``.
    """

    gym_id: str
    params: Mapping[str, Any]
    env_factory: EnvFactory
    obs_dim: int
    act_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    dt: float
    max_episode_steps: int
    nq: int
    nv: int

    @property
    def dims(self) -> dict[str, int]:
        """``{"obs_dim": ..., "act_dim": ...}``: the keywords every task function is bound with."""
        return {"obs_dim": self.obs_dim, "act_dim": self.act_dim}

    def forward_reward_kwargs(self) -> dict[str, Any]:
        """Keywords of the forward-progress rewards: :attr:`dims`, ``dt`` (s) and the weights
        ``forward_weight`` / ``ctrl_weight`` from ``forward_reward_weight`` / ``ctrl_cost_weight``.
        """
        return {
            **self.dims,
            "dt": self.dt,
            "forward_weight": float(self.params["forward_reward_weight"]),
            "ctrl_weight": float(self.params["ctrl_cost_weight"]),
        }

    def make_task(
        self,
        *,
        name: str,
        reward_fn: RewardFn,
        termination_fn: TerminationFn,
        description: str,
        obs_layout: Mapping[str, tuple[int, int]],
        obs_preprocess_fn: ObsPreprocessFn | None = None,
        info: Mapping[str, Any] | None = None,
        model_data_fn: Any = None,
    ) -> Task:
        """The :class:`~envs.task.Task` of this environment.

        Dimensions, bounds, ``max_episode_steps``, ``dt`` and ``env_factory`` come from this
        setup; ``Task.info`` holds ``gym_id``, ``env_params``, ``obs_layout`` (``{name: (start,
        stop)}`` slices of the observation) and then the entries of ``info``.
        """
        return Task(
            name=name,
            obs_dim=self.obs_dim,
            act_dim=self.act_dim,
            action_low=self.action_low,
            action_high=self.action_high,
            max_episode_steps=self.max_episode_steps,
            reward_fn=AtLeastFloat32(reward_fn),
            termination_fn=AtLeastFloat32(termination_fn),
            env_factory=self.env_factory,
            obs_preprocess_fn=obs_preprocess_fn,
            dt=self.dt,
            description=description,
            model_data_fn=model_data_fn,
            info={
                "gym_id": self.gym_id,
                "env_params": dict(self.params),
                "obs_layout": obs_layout,
                **(info or {}),
            },
        )


def setup_env(
    task_name: str,
    gym_id: str,
    kwargs: Mapping[str, Any],
    *,
    fixed: Mapping[str, tuple[Any, str]] | None = None,
    wrap: Callable[[gym.Env], gym.Env] | None = None,
) -> EnvSetup:
    """Validate a task's keyword arguments, build a probe environment and describe it.

    Args:
        task_name: registry name (for error messages).
        gym_id: Gymnasium id to build.
        kwargs: user keyword arguments: Gymnasium env kwargs plus ``max_episode_steps``.
        fixed: env kwargs the task fixes, ``{name: (value, reason)}``; a user value that differs
            raises ``ValueError`` with the reason.
        wrap: wrapper applied to every environment built (e.g. an observation augmentation).

    Returns:
        the :class:`EnvSetup` (the probe environment is closed).
    """
    kwargs = dict(kwargs)
    fixed = dict(fixed or {})
    max_episode_steps = kwargs.pop("max_episode_steps", None)
    if max_episode_steps is not None and (
        isinstance(max_episode_steps, bool)
        or not isinstance(max_episode_steps, int | np.integer)
        or max_episode_steps < 1
    ):
        raise ValueError(
            f"max_episode_steps: expected a positive int or None, got {max_episode_steps!r}"
        )
    for name in sorted(LAYOUT_KWARGS - set(fixed)):
        if name in kwargs:
            raise ValueError(
                f"{name}: task {task_name!r} fixes the observation layout, this option cannot be "
                "changed (see the task's description for its layout)"
            )
    for name, (value, reason) in fixed.items():
        if name in kwargs and kwargs[name] != value:
            raise ValueError(
                f"{name}: task {task_name!r} requires {name}={value!r} ({reason}), "
                f"got {kwargs[name]!r}"
            )
        kwargs[name] = value

    probe_kwargs = {k: v for k, v in kwargs.items() if k not in RENDER_KWARGS}
    check_finite_kwargs(probe_kwargs)
    probe = gym.make(gym_id, max_episode_steps=max_episode_steps, **probe_kwargs)
    try:
        if wrap is not None:
            probe = wrap(probe)
        base = probe.unwrapped
        signature = inspect.signature(type(base).__init__)
        params = {
            name: p.default
            for name, p in signature.parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        params.update(probe_kwargs)
        space = probe.action_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"{gym_id}: expected a Box action space, got {space}")
        obs_shape = probe.observation_space.shape
        assert obs_shape is not None and len(obs_shape) == 1
        setup = EnvSetup(
            gym_id=gym_id,
            params=params,
            env_factory=EnvFactory(gym_id, kwargs, max_episode_steps, wrap),
            obs_dim=int(obs_shape[0]),
            act_dim=int(space.shape[0]),
            action_low=np.asarray(space.low, dtype=np.float64).copy(),
            action_high=np.asarray(space.high, dtype=np.float64).copy(),
            dt=float(base.dt),
            max_episode_steps=int(probe.spec.max_episode_steps),
            nq=int(base.model.nq),
            nv=int(base.model.nv),
        )
    finally:
        probe.close()
    return setup


def check_transition(
    where: str, obs: Tensor, act: Tensor, next_obs: Tensor, obs_dim: int, act_dim: int
) -> tuple[torch.Size, torch.dtype]:
    """Check a batched ``(obs, act, next_obs)`` triple; return its batch shape and result dtype.

    Args:
        where: name of the calling function (for error messages).
        obs: ``(..., obs_dim)`` floating tensor.
        act: ``(..., act_dim)`` floating tensor.
        next_obs: ``(..., obs_dim)`` floating tensor.
        obs_dim: expected observation length.
        act_dim: expected action length.

    Returns:
        ``(batch_shape, dtype)``: the broadcast leading shape and the promoted floating dtype.
    """
    for name, t, dim in (
        ("obs", obs, obs_dim),
        ("act", act, act_dim),
        ("next_obs", next_obs, obs_dim),
    ):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{where}: {name} must be a floating tensor, got dtype {t.dtype}")
        if t.ndim == 0 or t.shape[-1] != dim:
            raise ValueError(f"{where}: {name} must have shape (..., {dim}), got {tuple(t.shape)}")
    try:
        batch = torch.broadcast_shapes(obs.shape[:-1], act.shape[:-1], next_obs.shape[:-1])
    except RuntimeError as err:
        raise ValueError(
            f"{where}: leading dims of obs {tuple(obs.shape)}, act {tuple(act.shape)} and "
            f"next_obs {tuple(next_obs.shape)} do not broadcast"
        ) from err
    dtype = torch.promote_types(torch.promote_types(obs.dtype, act.dtype), next_obs.dtype)
    return batch, dtype


def finish(value: Tensor, batch: torch.Size, dtype: torch.dtype | None = None) -> Tensor:
    """Broadcast ``value`` to ``batch`` (and cast to ``dtype`` when given)."""
    if dtype is not None:
        value = value.to(dtype)
    return value.expand(batch) if value.shape != batch else value


def control_cost(act: Tensor, weight: float) -> Tensor:
    """``weight * sum(act**2)`` over the last dim: ``(..., act_dim) -> (...)``."""
    return weight * act.square().sum(dim=-1)


def in_open_range(x: Tensor, bounds: tuple[float, float]) -> Tensor:
    """``low < x < high`` elementwise (False for NaN), as Gymnasium's healthy checks."""
    low, high = bounds
    return (x > low) & (x < high)


def as_range(value: Any, name: str) -> tuple[float, float]:
    """``(low, high)`` floats from a Gymnasium range parameter, or a clear error naming it."""
    try:
        low, high = value
        return float(low), float(high)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected a (low, high) pair of numbers, got {value!r}") from err


def drop_leading(obs: Tensor, count: int, obs_dim: int) -> Tensor:
    """Model-input features without the first ``count`` entries: ``(..., obs_dim) -> (..., d)``."""
    if not isinstance(obs, torch.Tensor) or obs.ndim == 0 or obs.shape[-1] != obs_dim:
        shape = tuple(obs.shape) if isinstance(obs, torch.Tensor) else type(obs).__name__
        raise ValueError(f"obs_preprocess_fn: obs must have shape (..., {obs_dim}), got {shape}")
    return obs[..., count:]
