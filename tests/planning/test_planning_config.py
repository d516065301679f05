"""Planner configs (one per planner, defaults from the classes) and make_planner wiring."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch
import yaml

from envs import get_task
from mbrl.algorithms.pets import PETSConfig
from mbrl.models import ModelEnv
from mbrl.planning import (
    PLANNERS,
    CEMConfig,
    CEMPlanner,
    ICEMConfig,
    ICEMPlanner,
    ILQRPlanner,
    MCTSPlanner,
    MPPIConfig,
    MPPIPlanner,
    Planner,
    PlannerConfig,
    PredictiveSamplingPlanner,
    RandomShootingPlanner,
    SamplingPlannerConfig,
    SequenceObjective,
    make_planner,
    planner_config,
)
from mbrl.util.config import ConfigError, ConfigWarning, load_config

CLASSES = {
    "random": RandomShootingPlanner,
    "cem": CEMPlanner,
    "icem": ICEMPlanner,
    "mppi": MPPIPlanner,
    "mcts": MCTSPlanner,
    "ilqr": ILQRPlanner,
    "predictive_sampling": PredictiveSamplingPlanner,
}


SMALL = {
    "random": dict(population=16, num_particles=2),
    "cem": dict(population=16, num_elites=4, iterations=2, num_particles=2),
    "icem": dict(population=16, num_elites=4, iterations=2, num_particles=2),
    "mppi": dict(population=16, iterations=2, num_particles=2),
    "mcts": dict(simulations=8, rollout_horizon=2),
    "ilqr": dict(max_iter=3),
    "predictive_sampling": dict(population=16, iterations=2, num_knots=2, num_particles=2),
}


@pytest.mark.parametrize("name", PLANNERS)
def test_make_planner_every_name_plans(name):
    task = get_task("pendulum-swingup")
    cfg = planner_config(name, horizon=4, **SMALL[name])
    assert type(cfg) is PlannerConfig.config_variants()[name] and cfg.name == name
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


def _signature_defaults(fn) -> dict:
    return {
        k: p.default
        for k, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


@pytest.mark.parametrize("name", PLANNERS)
def test_config_defaults_equal_the_class_defaults(name):
    """Every default is stated once: a planner's config and the classes it builds agree."""
    cfg = planner_config(name)
    sources = [CLASSES[name]]
    if isinstance(cfg, SamplingPlannerConfig):
        sources += [SequenceObjective, ModelEnv]
    defaults = {}
    for source in sources:
        defaults.update({k: v for k, v in _signature_defaults(source).items() if k not in defaults})
    checked = 0
    for f in dataclasses.fields(cfg):
        # use_learned_reward=None means "as the model" and is resolved by make_planner
        if f.name in defaults and f.name != "use_learned_reward":
            assert getattr(cfg, f.name) == defaults[f.name], f"{name}.{f.name}"
            checked += 1
    own = {f.name for f in dataclasses.fields(cfg)} - {
        f.name
        for f in dataclasses.fields(
            SamplingPlannerConfig if isinstance(cfg, SamplingPlannerConfig) else PlannerConfig
        )
    }
    assert own <= set(defaults)  # each planner-specific key is a constructor argument
    assert checked >= len(own)


@pytest.mark.parametrize("name", PLANNERS)
def test_config_reads_only_what_its_planner_reads(name):
    """A key the planner does not read is an error listing the planner's valid keys."""
    cfg = planner_config(name)
    valid = {f.name for f in dataclasses.fields(cfg)}
    foreign = {
        k
        for other in PLANNERS
        for k in (f.name for f in dataclasses.fields(planner_config(other)))
        if k not in valid
    }
    assert foreign  # every planner has keys it does not read
    for key in sorted(foreign):
        with pytest.raises(ValueError, match=f"unknown config key '{key}'.*valid keys") as info:
            planner_config(name, **{key: 1})
        assert "horizon" in str(info.value)


def test_the_issue_examples_are_rejected():
    with pytest.raises(ValueError, match="'discount'"):
        planner_config("ilqr", discount=0.5, propagation="ts1")
    with pytest.raises(ValueError, match="'alpha'"):
        planner_config("mppi", alpha=0.9)
    with pytest.raises(ConfigError, match="planner.noise_beta"):
        load_config(PETSConfig, None, ["planner=mppi", "planner.noise_beta=9"])
    with pytest.raises(ConfigError, match="planner.c_uct"):
        load_config(PETSConfig, None, ["planner=mppi", "planner.c_uct=3"])
    with pytest.raises(
        ConfigError, match="'planner.horizn'.*valid keys at planner \\(CEMConfig\\)"
    ):
        load_config(PETSConfig, None, ["planner.horizn=3"])
    with pytest.raises(ConfigError, match="planner.name.*one of random, cem"):
        load_config(PETSConfig, None, ["planner=pso"])


def test_planner_key_selects_the_config_with_its_defaults():
    cfg = load_config(PETSConfig, None, ["planner=icem"])
    assert type(cfg.planner) is ICEMConfig and cfg.planner.init_std == ICEMConfig().init_std
    cfg = load_config(PETSConfig, None, ["planner.name=mppi", "planner.temperature=0.5"])
    assert type(cfg.planner) is MPPIConfig and cfg.planner.temperature == 0.5
    # a key set before the name that selects its planner is fine (order does not matter)
    cfg = load_config(PETSConfig, None, ["planner.temperature=0.5", "planner=mppi"])
    assert cfg.planner.temperature == 0.5


def test_switching_planner_over_a_preset_drops_its_foreign_keys_with_a_warning():
    with pytest.warns(ConfigWarning, match="planner.num_elites, planner.alpha"):
        cfg = load_config(PETSConfig, "pets_cartpole_swingup", ["planner=mppi"])
    assert type(cfg.planner) is MPPIConfig
    assert (cfg.planner.horizon, cfg.planner.population, cfg.planner.iterations) == (25, 100, 3)
    # a foreign key given explicitly is still an error
    with pytest.raises(ConfigError, match="planner.alpha"), pytest.warns(ConfigWarning):
        load_config(PETSConfig, "pets_cartpole_swingup", ["planner=mppi", "planner.alpha=0.2"])


def test_from_dict_and_yaml_roundtrip():
    cfg = planner_config("icem", horizon=30, noise_beta=2.5)
    again = PlannerConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again == cfg and type(again) is ICEMConfig
    with pytest.raises(ValueError, match="unknown config key 'horizn'"):
        PlannerConfig.from_dict({"name": "cem", "horizn": 3})


def test_base_and_mismatched_configs_are_rejected():
    with pytest.raises(TypeError, match="not a planner's config"):
        PlannerConfig()
    with pytest.raises(ValueError, match="name: CEMConfig configures 'cem'"):
        CEMConfig(name="mppi")


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("pso", {}, "name"),
        ("cem", dict(propagation="ts2"), "propagation"),
        ("cem", dict(objective="cvar"), "objective"),
        ("cem", dict(horizon=0), "horizon"),
        ("cem", dict(horizon=2.5), "horizon"),
        ("cem", dict(population=0), "population"),
        ("cem", dict(alpha=[0.1]), "alpha"),
        ("cem", dict(alpha=float("nan")), "alpha"),
        ("cem", dict(population=10, num_elites=20), "num_elites"),
        ("cem", dict(alpha=1.0), "alpha"),
        ("mppi", dict(temperature=0.0), "temperature"),
        ("mcts", dict(simulations=0), "simulations"),
        ("ilqr", dict(max_iter=0), "max_iter"),
        ("ilqr", dict(uncertainty_penalty=-1.0), "uncertainty_penalty"),
    ],
)
def test_config_validation(name, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        planner_config(name, **kwargs)


def test_constructors_type_check():
    with pytest.raises(TypeError, match="alpha: expected a float"):
        CEMConfig(alpha="0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="return_mean_elites: expected a bool"):
        CEMConfig(return_mean_elites=1)  # type: ignore[arg-type]


def test_planner_argument_validation():
    task = get_task("pendulum-swingup")
    with pytest.raises(ValueError, match="discrete"):
        d = get_task("cartpole-discrete")
        make_planner(CEMConfig(), d.dynamics_fn, d)
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
        cfg = planner_config(
            "cem",
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
        cfg = planner_config(
            "mppi", horizon=5, population=32, iterations=2, num_particles=3, propagation=prop
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
    cfg = planner_config(
        "cem",
        horizon=3,
        population=8,
        num_elites=2,
        iterations=1,
        num_particles=2,
        propagation="expectation",
    )
    assert make_planner(cfg, learned, task).objective.model_env.use_learned_reward
    assert not make_planner(cfg, plain, task).objective.model_env.use_learned_reward
    forced = PlannerConfig.from_dict({**cfg.to_dict(), "use_learned_reward": False})
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
    ilqr_planner = make_planner(planner_config("ilqr", horizon=3, max_iter=2), learned, task)
    r = ilqr_planner.plan(obs.double())
    x, total = obs.double()[None], 0.0
    with torch.no_grad():
        for t in range(3):
            pred = learned.predict(x, r.actions[t][None])
            total += float(pred.reward_mean.mean(0)[0])
            x = pred.next_obs_mean.mean(0)
    assert r.value == pytest.approx(total, rel=1e-6)
    with pytest.raises(TypeError, match="use_learned_reward"):
        CEMConfig(use_learned_reward="yes")  # type: ignore[arg-type]


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
        elites = {"num_elites": 2} if name == "cem" else {}
        planner = make_planner(
            planner_config(name, horizon=3, population=8, obs_cost_weights=w, **elites),
            task.dynamics_fn,
            task,
        )
        shaped = planner.objective.model_env.reward_fn(obs, act, nxt)
        torch.testing.assert_close(shaped, expected)
    mcts = make_planner(planner_config("mcts", obs_cost_weights=w), task.dynamics_fn, task)
    torch.testing.assert_close(mcts.model_env.reward_fn(obs, act, nxt), expected)
    # the value of a plan is the shaped return of its actions through the dynamics
    cfg = planner_config("ilqr", horizon=4, max_iter=3, obs_cost_weights=w)
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
        make_planner(CEMConfig(obs_cost_weights=[1.0]), task.dynamics_fn, task)
    with pytest.raises(ValueError, match="obs_cost_weights: expected finite weights >= 0"):
        CEMConfig(obs_cost_weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="obs_cost_weights"):
        CEMConfig(obs_cost_weights=[1.0, float("nan")])
    with pytest.raises(TypeError, match="obs_cost_weights"):
        CEMConfig(obs_cost_weights=1.0)
    from mbrl.models import DynamicsModel

    learned = DynamicsModel.for_task(task, num_members=2, hidden=8, num_layers=1, learn_reward=True)
    with pytest.raises(ValueError, match="learned reward"):
        make_planner(CEMConfig(obs_cost_weights=[1.0, 1.0]), learned, task)
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


def test_obs_limits_terminate_planned_rollouts_only():
    """obs_limits end a predicted episode where |next_obs_i| > limit_i, on top of the task's own
    termination; the planner's rollouts then score no reward after it, the task is untouched."""
    task = get_task("inverted-pendulum")
    limits = [0.8, None, None, None]
    cfg = planner_config("cem", horizon=3, population=8, num_elites=2, obs_limits=limits)

    def model(obs, act):  # the cart moves by the action; nothing else changes
        return obs + torch.cat([act, torch.zeros(obs.shape[0], 3, dtype=obs.dtype)], -1)

    planner = make_planner(cfg, model, task)
    term = planner.objective.model_env.termination_fn
    obs = torch.zeros(4, 4, dtype=torch.float64)
    act = torch.zeros(4, 1, dtype=torch.float64)
    nxt = torch.tensor(
        [[0.79, 0.0, 5.0, 5.0], [-0.81, 0.0, 0.0, 0.0], [0.0, 0.3, 0.0, 0.0], [0.81, 0.3, 0, 0]],
        dtype=torch.float64,
    )
    assert term(obs, act, nxt).tolist() == [False, True, True, True]
    assert task.termination_fn(obs, act, nxt).tolist() == [False, False, True, True]
    # a rollout pushed past the limit earns the live reward only up to the step that crosses it
    start = torch.tensor([[0.5, 0.0, 0.0, 0.0]], dtype=torch.float64)
    push = torch.full((1, 3, 1), 0.2, dtype=torch.float64)  # x: 0.7, 0.9, 1.1
    out = planner.objective.model_env.rollout(start, push)
    assert out.terminated[0].tolist() == [False, True, True]
    assert out.rewards[0, 2] == 0.0
    with pytest.raises(ValueError, match="obs_limits: expected 4 entries"):
        make_planner(CEMConfig(obs_limits=[0.8]), model, task)
    with pytest.raises(ValueError, match="obs_limits: expected finite limits > 0"):
        CEMConfig(obs_limits=[0.0, None, None, None])
    with pytest.raises(ValueError, match="obs_limits: expected at least one limit"):
        CEMConfig(obs_limits=[None, None, None, None])
    with pytest.raises(TypeError, match="obs_limits"):
        CEMConfig(obs_limits=0.8)
    from mbrl.algorithms.pets import load_pets_config

    override = "planner.obs_limits=[0.8,null,null,null]"
    loaded = load_pets_config("cartpole-swingup", overrides=[override])
    assert loaded.planner.obs_limits == limits
    # iLQR ignores terminations: a limit there would silently do nothing
    with pytest.raises(ValueError, match="obs_limits: iLQR does not use terminations"):
        load_pets_config("inverted-pendulum", overrides=[override])
