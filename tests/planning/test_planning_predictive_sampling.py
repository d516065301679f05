"""Predictive sampling: spline parameterisation, the kept nominal, and the LQ closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbrl.models.model_env import ModelEnv
from mbrl.planning import PredictiveSamplingConfig, PredictiveSamplingPlanner, make_planner
from mbrl.planning.predictive_sampling import knot_times, spline_matrix


def _planner(task, horizon: int, **settings) -> PredictiveSamplingPlanner:
    cfg = PredictiveSamplingConfig(horizon=horizon, **settings)
    planner = make_planner(cfg, task.dynamics_fn, task)
    assert isinstance(planner, PredictiveSamplingPlanner)
    return planner


def _true_return(task, obs, actions) -> float:
    return float(ModelEnv(task.dynamics_fn, task).rollout(obs[None], actions[None]).returns())


@pytest.mark.parametrize("interpolation", ["zero", "linear"])
def test_spline_matrix_rows_are_convex_and_all_knots_is_identity(interpolation):
    for h, k in [(10, 1), (10, 3), (10, 4), (7, 7), (1, 1)]:
        w = spline_matrix(h, k, interpolation)
        assert w.shape == (h, k)
        assert (w >= 0).all() and np.allclose(w.sum(1), 1.0)
        # at each knot time the spline passes through that knot
        for j, t in enumerate(knot_times(h, k)):
            if float(t).is_integer():
                assert w[int(t), j] == 1.0
    np.testing.assert_array_equal(spline_matrix(6, 6, interpolation), np.eye(6))


def test_linear_spline_reproduces_affine_and_zero_order_holds():
    h, k = 10, 4
    times = knot_times(h, k)
    knots = 0.3 + 0.7 * times
    np.testing.assert_allclose(spline_matrix(h, k, "linear") @ knots, 0.3 + 0.7 * np.arange(h))
    held = spline_matrix(h, k, "zero") @ np.arange(k, dtype=float)
    expected = [np.searchsorted(times, t, side="right") - 1 for t in range(h)]
    np.testing.assert_array_equal(held, expected)
    with pytest.raises(ValueError, match="interpolation"):
        spline_matrix(h, k, "cubic")


def test_finds_closed_form_optimum(lq, obs64):
    u_star, ret_star = lq.optimum()
    planner = _planner(
        lq.task, lq.horizon, population=64, iterations=60, noise_std=0.01, num_knots=lq.horizon
    )
    res = planner.plan(obs64, generator=torch.Generator().manual_seed(0))
    assert res.actions.shape == (lq.horizon, 1) and res.actions.dtype == torch.float64
    np.testing.assert_allclose(res.actions[:, 0].numpy(), u_star, atol=0.06)
    assert ret_star - 2e-3 < res.value <= ret_star + 1e-9
    assert _true_return(lq.task, obs64, res.actions) == pytest.approx(res.value, rel=1e-9)
    assert res.info["model_steps"] == 64 * 60 * lq.horizon


def test_nominal_is_kept_when_nothing_beats_it(lq, obs64):
    """A warm start at the optimum is one candidate, unperturbed: no sample beats it."""
    u_star, ret_star = lq.optimum()
    planner = _planner(lq.task, lq.horizon, population=16, noise_std=0.2, num_knots=lq.horizon)
    init = torch.tensor(u_star, dtype=torch.float64)[:, None]
    res = planner.plan(obs64, init_actions=init, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(res.actions, init, rtol=0, atol=0)
    assert res.value == pytest.approx(ret_star, abs=1e-9)
    # population 1 only re-scores the nominal (the middle of the bounds on a cold start)
    one = _planner(lq.task, lq.horizon, population=1, num_knots=2)
    res = one.plan(obs64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(res.actions, torch.zeros(lq.horizon, 1, dtype=torch.float64))


@pytest.mark.parametrize("interpolation", ["zero", "linear"])
def test_fewer_knots_plans_a_spline_within_bounds(lq_tight, obs64, interpolation):
    h = lq_tight.horizon
    planner = _planner(
        lq_tight.task, h, population=64, iterations=10, num_knots=2, interpolation=interpolation
    )
    res = planner.plan(obs64, generator=torch.Generator().manual_seed(1))
    a = res.actions[:, 0]
    assert (a >= -0.5).all() and (a <= 0.5).all()
    if interpolation == "linear":  # two knots: an affine sequence
        torch.testing.assert_close(a.diff().diff(), torch.zeros(h - 2, dtype=a.dtype))
    else:  # knots at steps 0 and h-1: the first h-1 actions are equal
        assert torch.equal(a[: h - 1], a[:1].expand(h - 1))
    assert _true_return(lq_tight.task, obs64, res.actions) == pytest.approx(res.value, rel=1e-9)
    zero = _true_return(lq_tight.task, obs64, torch.zeros_like(res.actions))
    assert res.value > zero


def test_same_seed_same_plan(lq, obs64):
    planner = _planner(lq.task, lq.horizon, population=20, iterations=3)
    a = planner.plan(obs64, generator=torch.Generator().manual_seed(7))
    b = planner.plan(obs64, generator=torch.Generator().manual_seed(7))
    c = planner.plan(obs64, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.actions, b.actions) and a.value == b.value
    assert not torch.equal(a.actions, c.actions)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_knots=6), "num_knots"),
        (dict(num_knots=0), "num_knots"),
        (dict(interpolation="cubic"), "interpolation"),
        (dict(noise_std=0.0), "noise_std"),
        (dict(population=0), "population"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PredictiveSamplingConfig(horizon=5, **kwargs)
