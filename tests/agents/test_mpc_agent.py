"""MPCAgent: replanning schedule, plan shifting for warm starts, action conversion."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

import envs
from mbrl.agents import MPCAgent, shift_plan


@dataclass
class _Result:
    actions: torch.Tensor
    value: float = 0.0
    info: dict = field(default_factory=dict)


class RecordingPlanner:
    """Returns plan ``[[c + 0], [c + 1], ...]`` on its c-th call and records its inputs."""

    def __init__(self, horizon: int = 5, act_dim: int = 1) -> None:
        self.horizon = horizon
        self.act_dim = act_dim
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def plan(self, obs, init_actions=None, generator=None):
        self.calls.append((obs.clone(), None if init_actions is None else init_actions.clone()))
        c = 10.0 * len(self.calls)
        steps = torch.arange(self.horizon, dtype=torch.float32)[:, None] + c
        return _Result(steps.expand(-1, self.act_dim).clone())


def test_shift_plan_drops_executed_and_repeats_last():
    plan = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    assert shift_plan(plan, 1).flatten().tolist() == [2.0, 3.0, 4.0, 4.0]
    assert shift_plan(plan, 3).flatten().tolist() == [4.0, 4.0, 4.0, 4.0]
    assert shift_plan(plan, 0).flatten().tolist() == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="steps"):
        shift_plan(plan, 5)


def test_replans_every_step_and_warm_starts_with_shifted_plan():
    planner = RecordingPlanner(horizon=4)
    agent = MPCAgent(planner, replan_every=1)
    a0 = agent.act(np.zeros(3))
    a1 = agent.act(np.ones(3))
    assert len(planner.calls) == 2
    assert planner.calls[0][1] is None
    # first plan is 10, 11, 12, 13 -> one action executed -> 11, 12, 13, 13
    assert planner.calls[1][1].flatten().tolist() == [11.0, 12.0, 13.0, 13.0]
    assert torch.equal(planner.calls[1][0], torch.ones(3))
    assert a0.dtype == np.float32 and a0.tolist() == [10.0]
    assert a1.tolist() == [20.0]
    assert len(agent.step_times) == 2 and agent.num_replans == 2


def test_replan_every_k_executes_stored_plan_in_between():
    planner = RecordingPlanner(horizon=5)
    agent = MPCAgent(planner, replan_every=3)
    actions = [float(agent.act(np.zeros(2))[0]) for _ in range(7)]
    # plans at steps 0, 3, 6; between them the stored plan's actions are executed in order
    assert actions == [10.0, 11.0, 12.0, 20.0, 21.0, 22.0, 30.0]
    assert len(planner.calls) == 3
    assert planner.calls[1][1].flatten().tolist() == [13.0, 14.0, 14.0, 14.0, 14.0]
    assert planner.calls[2][1].flatten().tolist() == [23.0, 24.0, 24.0, 24.0, 24.0]


def test_reset_forgets_plan():
    planner = RecordingPlanner(horizon=3)
    agent = MPCAgent(planner, replan_every=2)
    agent.act(np.zeros(1))
    agent.reset()
    agent.act(np.zeros(1))
    assert planner.calls[1][1] is None
    assert agent.step_times and len(agent.step_times) == 1


def test_no_warm_start_option():
    planner = RecordingPlanner(horizon=3)
    agent = MPCAgent(planner, warm_start=False)
    agent.act(np.zeros(1))
    agent.act(np.zeros(1))
    assert planner.calls[1][1] is None


def test_replan_every_beyond_horizon_and_bad_args_raise():
    with pytest.raises(ValueError, match="replan_every"):
        MPCAgent(RecordingPlanner(), replan_every=0)
    agent = MPCAgent(RecordingPlanner(horizon=2), replan_every=3)
    with pytest.raises(ValueError, match="replan_every"):
        agent.act(np.zeros(1))
    agent = MPCAgent(RecordingPlanner())
    with pytest.raises(ValueError, match="obs"):
        agent.act(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        agent.act(np.array([np.nan]))


def test_continuous_actions_clipped_to_task_bounds():
    task = envs.get_task("pendulum-swingup")
    planner = RecordingPlanner(horizon=3, act_dim=task.act_dim)
    agent = MPCAgent(planner, task=task)
    a = agent.act(np.zeros(task.obs_dim))
    assert a.shape == (task.act_dim,)
    np.testing.assert_allclose(a, task.action_high.astype(np.float32))


def test_discrete_task_returns_int_action():
    task = envs.get_task("cartpole-discrete")
    assert task.num_actions == 2

    class IndexPlanner(RecordingPlanner):
        def plan(self, obs, init_actions=None, generator=None):
            super().plan(obs, init_actions, generator)
            return _Result(torch.tensor([[task.num_actions - 1.0], [0.0]]))

    agent = MPCAgent(IndexPlanner(), task=task)
    a = agent.act(np.zeros(task.obs_dim))
    assert isinstance(a, int) and a == task.num_actions - 1
    env = task.make_env()
    env.reset(seed=0)
    assert env.action_space.contains(agent.act(np.zeros(task.obs_dim)))


def test_with_real_cem_planner_through_true_dynamics():
    """CEM through the true pendulum dynamics: bounded actions, replanning on schedule, and the
    same generator seed gives the same action."""
    from mbrl.planning import make_planner, planner_config

    task = envs.get_task("pendulum-swingup")
    cfg = planner_config(
        "cem", horizon=8, population=32, num_elites=4, iterations=2, num_particles=1
    )
    planner = make_planner(cfg, task.dynamics_fn, task)
    agent = MPCAgent(
        planner,
        replan_every=2,
        task=task,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(0),
    )
    env = task.make_env()
    obs, _ = env.reset(seed=0)
    for _ in range(4):
        a = agent.act(obs)
        assert a.shape == (1,) and task.action_low[0] <= a[0] <= task.action_high[0]
        obs, *_ = env.step(a)
    assert agent.num_replans == 2 and len(agent.step_times) == 4
    # same generator seed -> same actions
    agent2 = MPCAgent(
        planner,
        replan_every=2,
        task=task,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(0),
    )
    obs0, _ = task.make_env().reset(seed=0)
    agent.reset()
    agent.generator = torch.Generator().manual_seed(0)
    np.testing.assert_array_equal(agent.act(obs0), agent2.act(obs0))
