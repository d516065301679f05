"""Sampling planners (random shooting, CEM, iCEM, MPPI) against closed-form optima."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mbrl.models.model_env import ModelEnv
from mbrl.planning import (
    CEMConfig,
    CEMPlanner,
    ICEMPlanner,
    MPPIConfig,
    MPPIPlanner,
    RandomShootingPlanner,
    SequenceObjective,
    colored_noise,
    make_planner,
    planner_config,
)

# name -> config overrides tuned for the 5-step scalar LQ problem
SETTINGS = {
    "cem": dict(population=400, num_elites=40, iterations=8, alpha=0.1, init_std=0.25),
    "icem": dict(
        population=400, num_elites=40, iterations=8, alpha=0.1, init_std=0.25, noise_beta=1.0
    ),
    "mppi": dict(population=400, iterations=8, temperature=0.02, noise_std=0.05),
}


def _planner(name: str, task, horizon: int, **extra):
    cfg = planner_config(name, horizon=horizon, num_particles=1, **{**SETTINGS[name], **extra})
    return make_planner(cfg, task.dynamics_fn, task)


@pytest.mark.parametrize("name", ["cem", "icem", "mppi"])
def test_finds_closed_form_optimum(name, lq, obs64):
    u_star, ret_star = lq.optimum()
    planner = _planner(name, lq.task, lq.horizon)
    res = planner.plan(obs64, generator=torch.Generator().manual_seed(0))
    assert res.actions.shape == (lq.horizon, 1)
    assert res.actions.dtype == torch.float64
    np.testing.assert_allclose(res.actions[:, 0].numpy(), u_star, atol=0.06)
    assert res.value == pytest.approx(ret_star, abs=2e-3)
    assert res.value <= ret_star + 1e-9  # cannot beat the true optimum
    # value is the true return of the returned sequence
    true_ret = ModelEnv(lq.task.dynamics_fn, lq.task).rollout(obs64[None], res.actions[None])
    assert float(true_ret.returns()) == pytest.approx(res.value, rel=1e-9)
    assert res.info["model_steps"] > 0 and res.info["time_s"] >= 0


def test_random_shooting_near_optimum_and_better_than_zero(lq, obs64):
    u_star, ret_star = lq.optimum()
    cfg = planner_config("random", horizon=lq.horizon, population=4000, num_particles=1)
    planner = make_planner(cfg, lq.task.dynamics_fn, lq.task)
    res = planner.plan(obs64, generator=torch.Generator().manual_seed(0))
    zero_ret = ModelEnv(lq.task.dynamics_fn, lq.task).rollout(
        obs64[None], torch.zeros(1, lq.horizon, 1, dtype=torch.float64)
    )
    assert res.value > float(zero_ret.returns()) + 1.0
    assert ret_star - 0.5 < res.value <= ret_star + 1e-9
    assert res.info["model_steps"] == 4000 * lq.horizon


@pytest.mark.parametrize("name", ["random", "cem", "icem", "mppi"])
def test_respects_bounds_and_finds_bounded_optimum(name, lq_tight, obs64):
    u_star, ret_star = lq_tight.optimum(-0.5, 0.5)
    assert np.isclose(u_star[0], -0.5)  # the bound is active
    if name == "random":
        cfg = planner_config("random", horizon=lq_tight.horizon, population=3000, num_particles=1)
        planner = make_planner(cfg, lq_tight.task.dynamics_fn, lq_tight.task)
    else:
        planner = _planner(name, lq_tight.task, lq_tight.horizon)
    res = planner.plan(obs64, generator=torch.Generator().manual_seed(1))
    assert (res.actions >= -0.5).all() and (res.actions <= 0.5).all()
    # the optimum sits on the bound in a flat valley: MPPI's weighted mean of clipped samples
    # approaches it from inside, more slowly than the elite-based CEM variants
    tol = {"random": 0.6, "cem": 0.03, "icem": 0.03, "mppi": 0.2}[name]
    assert ret_star - tol < res.value <= ret_star + 1e-9
    if name != "random":
        assert float(res.actions[0, 0]) == pytest.approx(-0.5, abs=0.01)  # the executed action


@pytest.mark.parametrize("name", ["random", "cem", "icem", "mppi"])
def test_same_seed_same_plan(name, lq, obs64):
    extra = {"random": {}, "mppi": {"iterations": 2}}.get(name, {"num_elites": 5, "iterations": 2})
    cfg = planner_config(name, horizon=lq.horizon, population=50, **extra)
    planner = make_planner(cfg, lq.task.dynamics_fn, lq.task)
    a = planner.plan(obs64, generator=torch.Generator().manual_seed(7))
    b = planner.plan(obs64, generator=torch.Generator().manual_seed(7))
    c = planner.plan(obs64, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.actions, b.actions) and a.value == b.value
    assert not torch.equal(a.actions, c.actions)


@pytest.mark.parametrize("name", ["cem", "icem", "mppi"])
def test_warm_start_is_used(name, lq, obs64):
    """One short iteration with a small spread: a warm start at the optimum stays near it,
    a cold start (mean 0) cannot get there."""
    u_star, ret_star = lq.optimum()
    spread = {"noise_std": 0.002} if name == "mppi" else {"init_std": 0.01}
    extra = dict(iterations=1, **spread)
    planner = _planner(name, lq.task, lq.horizon, **extra)
    init = torch.tensor(u_star, dtype=torch.float64)[:, None]
    warm = planner.plan(obs64, init_actions=init, generator=torch.Generator().manual_seed(0))
    cold = planner.plan(obs64, generator=torch.Generator().manual_seed(0))
    assert (warm.actions[:, 0] - init[:, 0]).abs().max() < 0.05
    assert warm.value == pytest.approx(ret_star, abs=5e-3)
    assert cold.value < ret_star - 1.0


def test_warm_start_is_clipped_and_validated(lq_tight, obs64):
    planner = _planner("cem", lq_tight.task, lq_tight.horizon)
    init = torch.full((lq_tight.horizon, 1), 5.0, dtype=torch.float64)
    mean = planner.initial_mean(obs64, init)
    assert torch.equal(mean, torch.full_like(init, 0.5))
    with pytest.raises(ValueError, match="init_actions"):
        planner.plan(obs64, init_actions=torch.zeros(3, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="init_actions"):
        planner.plan(obs64, init_actions=torch.full((5, 1), math.nan, dtype=torch.float64))
    with pytest.raises(ValueError, match="obs"):
        planner.plan(torch.zeros(2, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="obs"):
        planner.plan(torch.tensor([math.nan], dtype=torch.float64))


def test_infinite_bounds_rejected():
    from envs import get_task

    task = get_task("linear")  # default bounds are infinite
    with pytest.raises(ValueError, match="action_low"):
        make_planner(planner_config("cem"), task.dynamics_fn, task)


def _nan_model(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """Diverges (NaN) for any positive action; otherwise ``x' = x + u``."""
    nxt = obs + act
    return torch.where(act > 0, torch.full_like(nxt, math.nan), nxt)


def _reward_up(obs, act, next_obs):
    return next_obs[..., 0]  # prefers large actions, but positive ones give NaN


@pytest.mark.parametrize(
    "make",
    [
        lambda o: CEMPlanner(o, 3, -1.0, 1.0, population=200, num_elites=20, iterations=4),
        lambda o: ICEMPlanner(o, 3, -1.0, 1.0, population=200, num_elites=20, iterations=4),
        lambda o: MPPIPlanner(o, 3, -1.0, 1.0, population=200, iterations=4, temperature=0.01),
        lambda o: RandomShootingPlanner(o, 3, -1.0, 1.0, population=500),
    ],
)
def test_nan_producing_model_is_avoided(make):
    env = ModelEnv(_nan_model, reward_fn=_reward_up)
    planner = make(SequenceObjective(env, num_particles=2))
    res = planner.plan(torch.zeros(1), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(res.actions).all() and math.isfinite(res.value)
    assert (res.actions <= 0).all()
    # best finite sequence: all zeros (return 0); a random non-positive one averages -3
    assert res.value > -1.0


def test_all_nan_model_raises():
    env = ModelEnv(lambda o, a: o * math.nan, reward_fn=_reward_up)
    planner = CEMPlanner(SequenceObjective(env), 3, -1.0, 1.0, population=20, num_elites=2)
    with pytest.raises(RuntimeError, match="non-finite"):
        planner.plan(torch.zeros(1), generator=torch.Generator().manual_seed(0))


class _UserModel(nn.Module):
    """A user's own deterministic model: the true LQ system written as an nn.Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[0.9, 0.5]]))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.cat([obs, act], dim=-1))


def test_user_nn_module_plugs_in(lq):
    u_star, ret_star = lq.optimum()
    model = _UserModel()
    cfg = planner_config("cem", horizon=lq.horizon, num_particles=1, **SETTINGS["cem"])
    planner = make_planner(cfg, model, lq.task)
    res = planner.plan(torch.tensor([2.0]), generator=torch.Generator().manual_seed(0))
    assert res.actions.dtype == torch.float32
    np.testing.assert_allclose(res.actions[:, 0].numpy(), u_star, atol=0.06)
    assert res.value == pytest.approx(ret_star, abs=5e-3)


def test_discrete_random_shooting_returns_indices():
    from envs import get_task

    task = get_task("cartpole-discrete")
    planner = make_planner(
        planner_config("random", horizon=10, population=64), task.dynamics_fn, task
    )
    obs = torch.tensor([0.0, 0.0, 0.05, 0.0], dtype=torch.float64)
    res = planner.plan(obs, generator=torch.Generator().manual_seed(0))
    assert res.actions.shape == (10, 1)
    assert set(res.actions.flatten().tolist()) <= {0.0, 1.0}
    assert res.value == 10.0  # some random sequence keeps the pole up for 10 steps


def test_colored_noise_unit_variance_and_spectrum():
    like = torch.zeros((), dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    for beta in (0.0, 1.0, 2.0):
        x = colored_noise((4000, 16, 2), beta, g, like)
        assert x.shape == (4000, 16, 2)
        assert float(x.var()) == pytest.approx(1.0, abs=0.05)
        assert float(x.mean()) == pytest.approx(0.0, abs=0.05)
    # larger beta: stronger correlation of neighbouring steps
    lag1 = []
    for beta in (0.0, 1.0, 2.0):
        x = colored_noise((4000, 16, 1), beta, g, like)[..., 0]
        lag1.append(float((x[:, 1:] * x[:, :-1]).mean()))
    assert abs(lag1[0]) < 0.05 and lag1[0] < lag1[1] < lag1[2]
    # odd horizon works too
    assert float(colored_noise((4000, 7, 1), 2.0, g, like).var()) == pytest.approx(1.0, abs=0.05)


def test_icem_population_decay():
    env = ModelEnv(lambda o, a: o + a, reward_fn=_reward_up)
    p = ICEMPlanner(
        SequenceObjective(env),
        4,
        -1.0,
        1.0,
        population=100,
        num_elites=10,
        iterations=5,
        population_decay=2.0,
    )
    assert [p.population_at(i) for i in range(5)] == [100, 50, 25, 20, 20]


# ------------------------------------------------------------------ return_mean_elites
def _flat_planner(name: str, return_mean_elites: bool):
    """CEM/iCEM over a flat objective: every sequence scores 0, so all samples tie."""
    env = ModelEnv(
        lambda obs, act: obs, reward_fn=lambda obs, act, next_obs: torch.zeros(obs.shape[:-1])
    )
    cls = {"cem": CEMPlanner, "icem": ICEMPlanner}[name]
    return cls(
        SequenceObjective(env),
        10,
        -1.0,
        1.0,
        population=200,
        num_elites=40,
        iterations=3,
        init_std=0.25,
        return_mean_elites=return_mean_elites,
    )


@pytest.mark.parametrize("name", ["cem", "icem"])
def test_return_mean_elites_averages_out_ties(name):
    """With tied scores the best sample is one random draw (entries of size ~ init_std *
    range = 0.5); the returned elite mean averages 40 draws per iteration and stays near the
    start mean 0 (root-mean-square entries compared)."""
    obs = torch.zeros(1)
    gen = torch.Generator().manual_seed(0)
    sample = _flat_planner(name, False).plan(obs, generator=gen)
    mean = _flat_planner(name, True).plan(obs, generator=torch.Generator().manual_seed(0))
    assert sample.actions.square().mean().sqrt() > 0.3
    assert mean.actions.square().mean().sqrt() < 0.15
    assert mean.actions.shape == (10, 1) and mean.value == 0.0


@pytest.mark.parametrize("name", ["cem", "icem"])
def test_return_mean_elites_finds_optimum_and_scores_it(name, lq, obs64):
    """The returned mean is near the closed-form optimum and ``value`` is its own return."""
    u_star, ret_star = lq.optimum()
    planner = _planner(name, lq.task, lq.horizon, return_mean_elites=True)
    assert planner.return_mean_elites is True
    res = planner.plan(obs64, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(res.actions[:, 0].numpy(), u_star, atol=0.06)
    true_ret = ModelEnv(lq.task.dynamics_fn, lq.task).rollout(obs64[None], res.actions[None])
    assert float(true_ret.returns()) == pytest.approx(res.value, rel=1e-9)
    assert ret_star - 2e-3 < res.value <= ret_star + 1e-9
    # the extra evaluation of the mean is counted
    assert res.info["model_steps"] == planner.objective.model_steps


def test_return_mean_elites_validated():
    with pytest.raises(TypeError, match="return_mean_elites"):
        CEMConfig(return_mean_elites=1)
    with pytest.raises(TypeError, match="return_mean_elites"):
        _flat_planner("cem", "yes")
    assert CEMConfig().return_mean_elites is False


def test_mppi_normalized_returns_are_scale_free_and_find_the_optimum(lq, obs64):
    """With normalize_returns the plan does not change when the reward is scaled by 1e-3; with a
    fixed temperature it does (near-uniform weights: a timid mean); it still finds the LQ
    optimum."""
    import dataclasses

    base = lq.task
    small = dataclasses.replace(base, reward_fn=lambda o, a, n: 1e-3 * base.reward_fn(o, a, n))
    kw = dict(population=400, iterations=8, temperature=0.1, noise_std=0.05)

    def plan(task, normalize):
        cfg = planner_config(
            "mppi", horizon=lq.horizon, num_particles=1, normalize_returns=normalize, **kw
        )
        planner = make_planner(cfg, task.dynamics_fn, task)
        return planner.plan(obs64, generator=torch.Generator().manual_seed(0))

    big_n, small_n = plan(base, True), plan(small, True)
    torch.testing.assert_close(big_n.actions, small_n.actions, rtol=1e-9, atol=1e-9)
    assert small_n.value == pytest.approx(1e-3 * big_n.value, rel=1e-9)
    u_star, _ = lq.optimum()
    np.testing.assert_allclose(big_n.actions[:, 0].numpy(), u_star, atol=0.06)
    fixed_big, fixed_small = plan(base, False), plan(small, False)
    assert (fixed_big.actions - fixed_small.actions).abs().max() > 0.05
    with pytest.raises(TypeError, match="normalize_returns"):
        MPPIConfig(normalize_returns=1)  # type: ignore[arg-type]
