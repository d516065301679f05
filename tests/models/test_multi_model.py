"""Robust sampling planners: K models scored together (MultiModel), and perturbed MuJoCo models."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from control.mujoco_perturb import scale_model
from envs import get_task
from mbrl.models.model_env import ModelEnv
from mbrl.models.multi_model import MultiModel
from mbrl.models.simulator_model import PhysicsStateObservation, SimulatorModel
from mbrl.planning import (
    CEMConfig,
    MPPIConfig,
    PredictiveSamplingConfig,
    RandomShootingConfig,
    SequenceObjective,
    make_planner,
)

DT = torch.float64


def pendulum_task(m: float = 1.0):
    return get_task("pendulum-swingup", m=m)


def random_actions(p: int, h: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(p, h, 1, generator=g, dtype=DT) * 4 - 2


OBS = torch.tensor([2.5, 0.3], dtype=DT)  # (theta, theta_dot)


@pytest.mark.parametrize("objective", ["mean", "worst_member", "mean_minus_std"])
def test_identical_models_score_like_the_nominal_model(objective):
    task = pendulum_task()
    acts = random_actions(40, 15)
    nominal = SequenceObjective(ModelEnv(task.dynamics_fn, task))(OBS, acts)
    k = 3
    robust = SequenceObjective(
        ModelEnv(MultiModel([task.dynamics_fn] * k), task), num_particles=k, objective=objective
    )(OBS, acts)
    torch.testing.assert_close(robust, nominal, rtol=1e-12, atol=1e-12)


def test_scores_are_the_mean_and_worst_return_over_the_models():
    masses = (0.6, 1.0, 1.7)
    tasks = [pendulum_task(m) for m in masses]
    acts = random_actions(30, 12, seed=1)
    per_model = torch.stack(
        [SequenceObjective(ModelEnv(t.dynamics_fn, t))(OBS, acts) for t in tasks], 1
    )  # (P, K), each model scored on its own
    env = ModelEnv(MultiModel([t.dynamics_fn for t in tasks]), tasks[0])
    for particles in (3, 6):
        mean = SequenceObjective(env, num_particles=particles)(OBS, acts)
        worst = SequenceObjective(env, num_particles=particles, objective="worst_member")(OBS, acts)
        torch.testing.assert_close(mean, per_model.mean(1), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(worst, per_model.min(1).values, rtol=1e-12, atol=1e-12)
        assert bool((worst <= mean + 1e-12).all())  # returns: the worst is the lowest


@pytest.mark.parametrize(
    "config",
    [
        CEMConfig(horizon=10, population=32, num_elites=4, iterations=2),
        MPPIConfig(horizon=10, population=32, iterations=2),
        RandomShootingConfig(horizon=10, population=32),
        PredictiveSamplingConfig(horizon=10, population=16, iterations=2, num_knots=4),
    ],
    ids=lambda c: c.name,
)
def test_planners_with_identical_models_plan_like_the_nominal_planner(config):
    task = pendulum_task()
    nominal = make_planner(config, task.dynamics_fn, task)
    robust_cfg = type(config).from_dict({**config.to_dict(), "num_particles": 4})
    robust = make_planner(robust_cfg, MultiModel([task.dynamics_fn] * 4), task)
    a = nominal.plan(OBS, generator=torch.Generator().manual_seed(5))
    b = robust.plan(OBS, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(b.actions, a.actions, rtol=0, atol=1e-12)
    assert b.value == pytest.approx(a.value, rel=1e-12)


def test_bad_inputs_raise_naming_the_argument():
    task = pendulum_task()
    with pytest.raises(ValueError, match="models: an empty sequence"):
        MultiModel([])
    with pytest.raises(TypeError, match=r"models\[1\]"):
        MultiModel([task.dynamics_fn, "pendulum"])
    with pytest.raises(TypeError, match="models: expected a sequence"):
        MultiModel(task.dynamics_fn)
    models = MultiModel([task.dynamics_fn] * 3)
    with pytest.raises(ValueError, match="num_particles: expected a multiple of the 3 models"):
        SequenceObjective(ModelEnv(models, task), num_particles=2)
    with pytest.raises(ValueError, match="propagation: a MultiModel of 3 models needs 'tsinf'"):
        SequenceObjective(ModelEnv(models, task, propagation="ts1"), num_particles=3)
    with pytest.raises(ValueError, match="num_particles"):
        make_planner(CEMConfig(horizon=5, population=8, num_elites=2), models, task)


# ---------------------------------------------------------------------------------- MuJoCo
def test_scale_model_scales_masses_inertias_friction_and_checks_its_arguments():
    task = get_task("hopper")
    env = task.make_env()
    m = env.unwrapped.model
    mass, inertia, fric = m.body_mass.copy(), m.body_inertia.copy(), m.geom_friction.copy()
    scales = np.linspace(0.5, 1.5, m.nbody)
    scale_model(m, body_mass=scales, friction=0.8)
    np.testing.assert_allclose(m.body_mass, mass * scales, rtol=1e-15)
    np.testing.assert_allclose(m.body_inertia, inertia * scales[:, None], rtol=1e-15)
    np.testing.assert_allclose(m.geom_friction, fric * 0.8, rtol=1e-15)
    np.testing.assert_allclose(m.body_subtreemass[0], (mass * scales).sum(), rtol=1e-12)
    with pytest.raises(ValueError, match="body_mass: expected a scalar or shape"):
        scale_model(m, body_mass=np.ones(2))
    with pytest.raises(ValueError, match="friction: expected finite factors > 0"):
        scale_model(m, friction=0.0)
    with pytest.raises(TypeError, match="model: expected a mujoco.MjModel"):
        scale_model("hopper")
    env.close()


def test_perturbed_simulator_model_equals_an_env_with_the_same_masses():
    """A SimulatorModel with body_mass_scale predicts what an environment whose model was scaled
    the same way does - and differs from the nominal simulator."""
    task = get_task("inverted-pendulum")
    model = SimulatorModel(task, body_mass_scale=1.8)
    nominal = SimulatorModel(task)
    raw = task.make_env()
    scale_model(raw.unwrapped.model, body_mass=1.8)
    env = PhysicsStateObservation(raw)
    z, _ = env.reset(seed=2)
    rng = np.random.default_rng(0)
    diff = 0.0
    for _ in range(5):
        a = rng.uniform(task.action_low, task.action_high)
        zt, at = torch.as_tensor(z)[None], torch.as_tensor(a)[None]
        pred, pred_nom = model(zt, at), nominal(zt, at)
        z, *_ = env.step(a)
        np.testing.assert_allclose(pred[0].numpy(), z, rtol=0, atol=1e-9)
        diff = max(diff, float((pred_nom[0] - pred[0]).abs().max()))
    assert diff > 1e-4
    assert isinstance(raw.unwrapped.model, mujoco.MjModel)
    env.close()
    model.close()
    nominal.close()


def _step_only(model):
    return lambda z, a: model(z, a)  # no rollout_open_loop: stepped one action at a time


def test_multimodel_of_simulators_uses_one_rollout_per_model_and_equals_each_model_alone():
    task = get_task("reacher")
    scales = (0.7, 1.0, 1.4)
    sims = [SimulatorModel(task, body_mass_scale=s) for s in scales]
    multi = MultiModel(sims)
    assert hasattr(multi, "rollout_open_loop_members")
    view = multi.planning_task(task)
    env = PhysicsStateObservation(task.make_env())
    z, _ = env.reset(seed=1)
    p, h = 5, 12
    g = torch.Generator().manual_seed(0)
    acts = torch.rand(p, h, task.act_dim, generator=g, dtype=DT) * 2 - 1
    z0 = torch.as_tensor(z).expand(p * 3, -1)
    multi_ret = ModelEnv(multi, view).rollout_returns(z0, acts.repeat_interleave(3, 0))
    alone = torch.stack(
        [ModelEnv(s, view).rollout_returns(z0[:p], acts).returns for s in sims], 1
    )  # (P, K)
    torch.testing.assert_close(multi_ret.returns.view(p, 3), alone, rtol=0, atol=1e-12)
    assert float((alone[:, 0] - alone[:, 2]).abs().max()) > 1e-6  # the masses matter
    # the same through the step-by-step ensemble path (MultiModel.sample)
    step_only = MultiModel([_step_only(s) for s in sims])
    slow = ModelEnv(step_only, view).rollout_returns(z0, acts.repeat_interleave(3, 0))
    torch.testing.assert_close(slow.returns, multi_ret.returns, rtol=0, atol=1e-12)
    env.close()
    multi.close()
