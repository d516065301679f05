"""``K`` models scored together: robust planning over perturbed models.

:class:`MultiModel` presents ``K`` deterministic models (e.g. :class:`SimulatorModel` copies with
perturbed masses, or analytic dynamics with different parameters) as an ensemble of ``K``
members (:class:`~mbrl.models.model_env.EnsembleModel`).  Under TS∞ propagation with
``num_particles = K`` (or a multiple) every candidate action sequence is rolled out once under
each model, and :class:`~mbrl.planning.objective.SequenceObjective` scores it by the mean return
over the models (``objective="mean"``) or the worst one (``objective="worst_member"``): the
sampling planners (CEM, iCEM, MPPI, random shooting, predictive sampling) then optimise one
action sequence for all ``K`` models, unchanged and stateless behind ``plan()``::

    models = MultiModel([SimulatorModel(task, body_mass_scale=s) for s in (0.7, 1.0, 1.3)])
    planner = make_planner(CEMConfig(num_particles=3, objective="worst_member"), models, task)

Members that offer ``rollout_open_loop`` (the simulator: one ``mujoco.rollout`` call per horizon)
are rolled out that way (:meth:`MultiModel.rollout_open_loop_members`), each on its own rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from envs.task import Task
from mbrl.models.model_env import Prediction

Tensor = torch.Tensor

__all__ = ["MultiModel"]


class MultiModel:
    """``K`` deterministic models ``f_k(obs (N, d), act (N, a)) -> (N, d)`` as a ``K``-member
    ensemble (zero predicted variance, no learned reward).

    Args:
        models: the ``K >= 1`` callables, all over the same observation (planning state).

    Attributes:
        models: the tuple of models; num_members: ``K``.
    """

    learn_reward = False

    def __init__(self, models: Sequence[Callable[[Tensor, Tensor], Tensor]]) -> None:
        if isinstance(models, str | bytes) or not isinstance(models, Sequence):
            raise TypeError(
                f"models: expected a sequence of K callables, got {type(models).__name__}"
            )
        self.models = tuple(models)
        if not self.models:
            raise ValueError("models: an empty sequence; give at least one model")
        for i, f in enumerate(self.models):
            if not callable(f):
                raise TypeError(f"models[{i}]: expected a callable model, got {type(f).__name__}")
        dims = {getattr(f, "dim", None) for f in self.models}
        if len(dims) > 1:
            raise ValueError(f"models: planning-state sizes differ between models: {sorted(dims)}")
        self.num_members = len(self.models)
        if all(hasattr(f, "rollout_open_loop") for f in self.models):
            self.rollout_open_loop_members = self._rollout_open_loop_members

    def planning_task(self, task: Task) -> Task:
        """The members' view of ``task`` (e.g. :meth:`SimulatorModel.planning_task`); ``task``
        itself for models without one."""
        view = getattr(self.models[0], "planning_task", None)
        return task if view is None else view(task)

    def _member_inputs(self, obs: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        """``(E, N, ·)`` inputs: ``(N, ·)`` ones are shared by every member."""
        e = self.num_members
        if obs.ndim == 2:
            obs = obs.unsqueeze(0).expand(e, *obs.shape)
        if act.ndim == 2:
            act = act.unsqueeze(0).expand(e, *act.shape)
        if obs.ndim != 3 or obs.shape[0] != e or act.shape[:2] != obs.shape[:2]:
            raise ValueError(
                f"obs, act: expected (N, ·) or ({e}, N, ·) with the same N, got "
                f"{tuple(obs.shape)} and {tuple(act.shape)}"
            )
        return obs, act

    def sample(
        self, obs: Tensor, act: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, None]:
        """Next observations ``(E, N, d)`` (member ``e`` on row ``e``, or on all rows of a
        shared ``(N, d)`` batch); no learned reward."""
        obs, act = self._member_inputs(obs, act)
        return torch.stack([f(o, a) for f, o, a in zip(self.models, obs, act, strict=True)]), None

    def predict(self, obs: Tensor, act: Tensor) -> Prediction:
        """Each member's next observation with zero variance."""
        mean, _ = self.sample(obs, act)
        return Prediction(mean, torch.zeros_like(mean))

    def _rollout_open_loop_members(self, obs0: Tensor, actions: Tensor) -> Tensor:
        """``(E, N, H + 1, d)`` states from ``obs0 (E, N, d)`` and ``actions (E, N, H, a)``:
        member ``e`` rolls out row ``e`` with its own ``rollout_open_loop``."""
        return torch.stack(
            [f.rollout_open_loop(o, a) for f, o, a in zip(self.models, obs0, actions, strict=True)]
        )

    def close(self) -> None:
        """Close the members that can be closed (e.g. simulators' thread pools)."""
        for f in self.models:
            close = getattr(f, "close", None)
            if close is not None:
                close()
