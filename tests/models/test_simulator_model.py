"""The true MuJoCo simulator as a planning model, against the environment itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from envs import get_task
from envs.mujoco_tasks.physics_obs import PhysicsObservation
from mbrl.agents.mpc_agent import MPCAgent
from mbrl.models.model_env import ModelEnv
from mbrl.models.simulator_model import PhysicsStateObservation, SimulatorModel
from mbrl.planning import CEMConfig, PredictiveSamplingConfig, make_planner


@pytest.fixture(scope="module")
def reacher():
    task = get_task("reacher")
    model = SimulatorModel(task)
    yield task, model
    model.close()


@pytest.mark.parametrize("name", ["reacher", "inverted-double-pendulum", "hopper", "pusher"])
def test_step_equals_env_step(name):
    """Observation (RK4 Reacher, lagged tip site of the double pendulum, contacts of Hopper),
    reward and termination of a model step equal ``env.step``'s."""
    task = get_task(name)
    model = SimulatorModel(task)
    view = model.planning_task(task)
    env = PhysicsStateObservation(task.make_env())
    z, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(6):
        a = rng.uniform(task.action_low, task.action_high)
        zt, at = torch.as_tensor(z)[None], torch.as_tensor(a)[None]
        pred = model(zt, at)
        z, reward, terminated, _, _ = env.step(a)
        np.testing.assert_allclose(pred[0].numpy(), z, rtol=0, atol=1e-9)
        assert float(view.reward_fn(zt, at, pred)) == pytest.approx(reward, abs=1e-9)
        assert bool(view.termination_fn(zt, at, pred)) == terminated
    model.close()


@pytest.mark.parametrize("name", ["halfcheetah", "hopper", "walker2d", "inverted-pendulum"])
def test_vectorized_observation_equals_the_env_code(name):
    task = get_task(name)
    model = SimulatorModel(task)
    assert model.observe.vectorized
    env = PhysicsStateObservation(task.make_env())
    z, _ = env.reset(seed=0)
    acts = torch.as_tensor(np.random.default_rng(1).uniform(-1, 1, (3, 8, task.act_dim)))
    z0 = torch.as_tensor(z).expand(3, -1)
    states = model.rollout_open_loop(z0, acts)[:, 1:, : model.nstate].reshape(24, -1).numpy()
    fs = model.frame_skip
    sub = model.sim.rollout(
        np.repeat(z0[:, : model.nstate].numpy(), 1, 0), np.repeat(acts.numpy(), fs, axis=1)
    )
    pre = sub[:, fs - 1 :: fs][:, :8].reshape(24, -1)
    ctrl = acts.reshape(24, -1).numpy()
    obs_fn: PhysicsObservation = model.observe
    np.testing.assert_array_equal(
        obs_fn.vectorized_obs(states), obs_fn.reference(pre, states, ctrl)
    )
    model.close()


def _step_only(model):
    return lambda z, a: model(z, a)  # no rollout_open_loop: ModelEnv steps one action at a time


@pytest.mark.parametrize("name", ["reacher", "hopper"])
def test_open_loop_fast_path_equals_step_by_step(name):
    """One ``mujoco.rollout`` per horizon equals the step loop, terminations (Hopper falls) and
    a diverging row (velocity 1e11) included."""
    task = get_task(name)
    model = SimulatorModel(task)
    view = model.planning_task(task)
    env = PhysicsStateObservation(task.make_env())
    z, _ = env.reset(seed=0)
    b, h = 6, 25
    z0 = torch.as_tensor(z).repeat(b, 1)
    z0[-1, model.sim.layout.qvel.start] = 1e11
    gen = torch.Generator().manual_seed(0)
    low, high = torch.as_tensor(task.action_low), torch.as_tensor(task.action_high)
    acts = low + (high - low) * torch.rand(b, h, task.act_dim, generator=gen, dtype=torch.float64)
    fast = ModelEnv(model, view).rollout(z0, acts)
    slow = ModelEnv(_step_only(model), view).rollout(z0, acts)
    # the constraint solver's warm start carries over between steps in one mujoco.rollout but
    # restarts from 0 on every step-by-step call: equal to the solver's tolerance with contacts
    tol = 0.0 if name == "reacher" else 1e-6
    torch.testing.assert_close(fast.obs, slow.obs, rtol=0, atol=tol, equal_nan=True)
    torch.testing.assert_close(fast.rewards, slow.rewards, rtol=0, atol=tol, equal_nan=True)
    assert torch.equal(fast.diverged, slow.diverged) and fast.diverged.tolist()[-1]
    assert not fast.diverged[:-1].any()
    assert torch.equal(fast.terminated[:-1], slow.terminated[:-1])
    if name == "hopper":
        assert fast.terminated[:-1, -1].any()  # random actions topple it within 25 steps
    ret = ModelEnv(model, view).rollout_returns(z0, acts)
    torch.testing.assert_close(ret.returns, fast.returns(), equal_nan=True)
    model.close()


def test_rollout_checks_shapes(reacher):
    task, model = reacher
    z = torch.zeros(2, model.dim, dtype=torch.float64)
    with pytest.raises(ValueError, match="z0"):
        model.rollout_open_loop(z[:, :-1], torch.zeros(2, 3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="actions"):
        model.rollout_open_loop(z, torch.zeros(2, 3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="obs_dim 10"):
        model.planning_task(get_task("pusher"))


@pytest.mark.parametrize("config", ["cem", "predictive_sampling"])
def test_planning_through_the_simulator_reaches_reachers_goal(reacher, config):
    """MPC through the true simulator from the env's physics state: the fingertip closes in on
    the target (distance well below its start) within 40 steps."""
    task, model = reacher
    if config == "cem":
        cfg = CEMConfig(horizon=20, population=48, num_elites=6, iterations=3)
    else:
        cfg = PredictiveSamplingConfig(
            horizon=20, population=48, iterations=3, num_knots=3, noise_std=0.2
        )
    planner = make_planner(cfg, model, task)
    view = model.planning_task(task)
    agent = MPCAgent(
        planner, generator=torch.Generator().manual_seed(0), task=view, dtype=torch.float64
    )
    env = PhysicsStateObservation(task.make_env())
    z, _ = env.reset(seed=0)
    tip = slice(model.nstate + 8, model.nstate + 10)
    d0 = np.linalg.norm(z[tip])
    dists = []
    for _ in range(40):
        z, *_ = env.step(agent.act(z))
        dists.append(np.linalg.norm(z[tip]))
    assert d0 > 0.1
    assert np.mean(dists[-10:]) < 0.25 * d0
