"""PlannerConfig validation and make_planner wiring."""

from __future__ import annotations

import pytest
import torch
import yaml

from envs import get_task
from mbrl.planning import (
    PLANNERS,
    CEMPlanner,
    ICEMPlanner,
    ILQRPlanner,
    MCTSPlanner,
    MPPIPlanner,
    Planner,
    PlannerConfig,
    RandomShootingPlanner,
    make_planner,
)

CLASSES = {
    "random": RandomShootingPlanner,
    "cem": CEMPlanner,
    "icem": ICEMPlanner,
    "mppi": MPPIPlanner,
    "mcts": MCTSPlanner,
    "ilqr": ILQRPlanner,
}


@pytest.mark.parametrize("name", PLANNERS)
def test_make_planner_every_name_plans(name):
    task = get_task("pendulum-swingup")
    cfg = PlannerConfig(
        name=name,
        horizon=4,
        population=16,
        num_elites=4,
        iterations=2,
        num_particles=2,
        mcts_simulations=8,
        mcts_rollout_horizon=2,
        ilqr_iterations=3,
    )
    planner = make_planner(cfg, task.dynamics_fn, task)
    assert isinstance(planner, CLASSES[name]) and isinstance(planner, Planner)
    assert planner.horizon == 4 and planner.act_dim == 1
    assert torch.equal(planner.action_low, torch.tensor([-2.0], dtype=torch.float64))
    res = planner.plan(
        torch.tensor([3.0, 0.0], dtype=torch.float64), generator=torch.Generator().manual_seed(0)
    )
    assert res.actions.shape == (4, 1) and res.actions.dtype == torch.float64
    assert (res.actions.abs() <= 2.0).all()
    assert isinstance(res.value, float) and all(isinstance(v, float) for v in res.info.values())


def test_from_dict_and_yaml_roundtrip():
    cfg = PlannerConfig(name="icem", horizon=30, icem_noise_beta=2.5)
    again = PlannerConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="unknown keys"):
        PlannerConfig.from_dict({"name": "cem", "horizn": 3})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="pso"), "name"),
        (dict(propagation="ts2"), "propagation"),
        (dict(objective="cvar"), "objective"),
        (dict(horizon=0), "horizon"),
        (dict(horizon=2.5), "horizon"),
        (dict(population=0), "population"),
        (dict(alpha="0.1"), "alpha"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        PlannerConfig(**kwargs)


def test_planner_argument_validation():
    task = get_task("pendulum-swingup")
    with pytest.raises(ValueError, match="num_elites"):
        make_planner(PlannerConfig(population=10, num_elites=20), task.dynamics_fn, task)
    with pytest.raises(ValueError, match="alpha"):
        make_planner(PlannerConfig(alpha=1.0), task.dynamics_fn, task)
    with pytest.raises(ValueError, match="discrete"):
        d = get_task("cartpole-discrete")
        make_planner(PlannerConfig(name="cem"), d.dynamics_fn, d)
    with pytest.raises(TypeError, match="cfg"):
        make_planner({"name": "cem"}, task.dynamics_fn, task)  # type: ignore[arg-type]


def test_ensemble_model_with_cem():
    """An (untrained) learned ensemble plugs in; TS∞ particles and risk objectives run."""
    from mbrl.models import DynamicsModel

    task = get_task("pendulum-swingup")
    model = DynamicsModel.for_task(
        task, num_members=3, hidden=16, num_layers=1, generator=torch.Generator().manual_seed(0)
    )
    for objective in ("mean", "mean_minus_std", "worst_member"):
        cfg = PlannerConfig(
            name="cem",
            horizon=5,
            population=32,
            num_elites=4,
            iterations=2,
            num_particles=6,
            objective=objective,
        )
        planner = make_planner(cfg, model, task)
        res = planner.plan(torch.tensor([3.0, 0.0]), generator=torch.Generator().manual_seed(0))
        assert res.actions.shape == (5, 1) and torch.isfinite(res.actions).all()
    for prop in ("ts1", "expectation", "random_model"):
        cfg = PlannerConfig(
            name="mppi", horizon=5, population=32, iterations=2, num_particles=3, propagation=prop
        )
        res = make_planner(cfg, model, task).plan(
            torch.tensor([3.0, 0.0]), generator=torch.Generator().manual_seed(0)
        )
        assert torch.isfinite(res.actions).all()


def test_learned_reward_is_used_when_the_model_learns_it():
    from mbrl.models import DynamicsModel

    task = get_task("pendulum-swingup")
    kw = dict(num_members=2, hidden=8, num_layers=1, generator=torch.Generator().manual_seed(0))
    learned = DynamicsModel.for_task(task, learn_reward=True, **kw)
    plain = DynamicsModel.for_task(task, **kw)
    cfg = PlannerConfig(
        name="cem",
        horizon=3,
        population=8,
        num_elites=2,
        iterations=1,
        num_particles=2,
        propagation="expectation",
    )
    assert make_planner(cfg, learned, task).objective.model_env.use_learned_reward
    assert not make_planner(cfg, plain, task).objective.model_env.use_learned_reward
    forced = PlannerConfig(**{**cfg.to_dict(), "use_learned_reward": False})
    assert not make_planner(forced, learned, task).objective.model_env.use_learned_reward
    # the planner's value is the model's predicted (expectation) reward of the chosen sequence
    planner = make_planner(cfg, learned, task)
    obs = torch.tensor([3.0, 0.0])
    res = planner.plan(obs, generator=torch.Generator().manual_seed(0))
    x, total = obs[None], 0.0
    with torch.no_grad():
        for t in range(3):
            pred = learned.predict(x, res.actions[t][None])
            total += float(pred.reward_mean.mean(0)[0])
            x = pred.next_obs_mean.mean(0)
    assert res.value == pytest.approx(total, rel=1e-5)
    # iLQR: cost is minus the learned reward
    ilqr_planner = make_planner(
        PlannerConfig(name="ilqr", horizon=3, ilqr_iterations=2), learned, task
    )
    r = ilqr_planner.plan(obs.double())
    x, total = obs.double()[None], 0.0
    with torch.no_grad():
        for t in range(3):
            pred = learned.predict(x, r.actions[t][None])
            total += float(pred.reward_mean.mean(0)[0])
            x = pred.next_obs_mean.mean(0)
    assert r.value == pytest.approx(total, rel=1e-6)
    with pytest.raises(TypeError, match="use_learned_reward"):
        PlannerConfig(use_learned_reward="yes")  # type: ignore[arg-type]


def test_obs_cost_weights_shape_the_planning_reward_only():
    """obs_cost_weights subtract sum_i w_i next_obs_i^2 from every planned reward (sampling
    planners, MCTS and iLQR alike); the planner's value is the shaped return."""
    task = get_task("pendulum-swingup")
    w = [0.5, 0.25]
    g = torch.Generator().manual_seed(0)
    obs, act, nxt = torch.randn(7, 2, generator=g), torch.randn(7, 1, generator=g), None
    nxt = task.dynamics_fn(obs, act)
    expected = task.reward_fn(obs, act, nxt) - 0.5 * nxt[:, 0] ** 2 - 0.25 * nxt[:, 1] ** 2
    for name in ("cem", "mppi", "random"):
        planner = make_planner(
            PlannerConfig(name=name, horizon=3, population=8, num_elites=2, obs_cost_weights=w),
            task.dynamics_fn,
            task,
        )
        shaped = planner.objective.model_env.reward_fn(obs, act, nxt)
        torch.testing.assert_close(shaped, expected)
    mcts = make_planner(PlannerConfig(name="mcts", obs_cost_weights=w), task.dynamics_fn, task)
    torch.testing.assert_close(mcts.model_env.reward_fn(obs, act, nxt), expected)
    # the value of a plan is the shaped return of its actions through the dynamics
    cfg = PlannerConfig(name="ilqr", horizon=4, ilqr_iterations=3, obs_cost_weights=w)
    x0 = torch.tensor([3.0, 0.0], dtype=torch.float64)
    res = make_planner(cfg, task.dynamics_fn, task).plan(x0)
    x, total = x0[None], 0.0
    for t in range(4):
        nx = task.dynamics_fn(x, res.actions[t][None])
        total += float(task.reward_fn(x, res.actions[t][None], nx)[0])
        total -= float(0.5 * nx[0, 0] ** 2 + 0.25 * nx[0, 1] ** 2)
        x = nx
    assert res.value == pytest.approx(total, rel=1e-9)
    # the task itself is untouched
    torch.testing.assert_close(
        task.reward_fn(obs, act, nxt), expected + 0.5 * nxt[:, 0] ** 2 + 0.25 * nxt[:, 1] ** 2
    )


def test_obs_cost_weights_validation():
    task = get_task("pendulum-swingup")
    with pytest.raises(ValueError, match="obs_cost_weights: expected 2 weights"):
        make_planner(PlannerConfig(obs_cost_weights=[1.0]), task.dynamics_fn, task)
    with pytest.raises(ValueError, match="obs_cost_weights: expected finite weights >= 0"):
        PlannerConfig(obs_cost_weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="obs_cost_weights"):
        PlannerConfig(obs_cost_weights=[1.0, float("nan")])
    with pytest.raises(TypeError, match="obs_cost_weights"):
        PlannerConfig(obs_cost_weights=1.0)
    from mbrl.models import DynamicsModel

    learned = DynamicsModel.for_task(task, num_members=2, hidden=8, num_layers=1, learn_reward=True)
    with pytest.raises(ValueError, match="learned reward"):
        make_planner(PlannerConfig(obs_cost_weights=[1.0, 1.0]), learned, task)
    # YAML and dotted overrides carry the list
    from mbrl.algorithms.pets import load_pets_config

    cfg = load_pets_config(
        "inverted-pendulum", overrides=["planner.obs_cost_weights=[1, 2, 0, 0.5]"]
    )
    assert cfg.planner.obs_cost_weights == [1.0, 2.0, 0.0, 0.5]
    assert (
        PlannerConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.planner.to_dict())))
        == cfg.planner
    )
