"""iLQR planner: agrees with control.ddp.ilqr, plugs into learned ensembles."""

from __future__ import annotations

import pytest
import torch

from control.ddp import ilqr
from envs import get_task
from mbrl.models.model_env import ModelEnv
from mbrl.planning import ILQRPlanner, make_planner, planner_config


@pytest.fixture(scope="module")
def pendulum():
    return get_task("pendulum-swingup")


def test_matches_control_ilqr_on_true_pendulum(pendulum):
    task, h = pendulum, 20
    obs = torch.tensor([2.5, 0.5], dtype=torch.float64)
    init = torch.full((h, 1), 0.5, dtype=torch.float64)
    planner = make_planner(planner_config("ilqr", horizon=h, max_iter=100), task.dynamics_fn, task)
    assert isinstance(planner, ILQRPlanner)
    res = planner.plan(obs, init_actions=init)

    def cost(x, u):  # written independently of the planner
        th, thd = x[:, 0], x[:, 1]
        ang = torch.remainder(th + torch.pi, 2 * torch.pi) - torch.pi
        return ang**2 + 0.1 * thd**2 + 0.001 * u[:, 0] ** 2

    ref = ilqr(task.dynamics_fn, cost, obs, init, u_min=-2.0, u_max=2.0, max_iter=100)
    torch.testing.assert_close(res.actions, ref.u_best, atol=1e-6, rtol=0)
    assert res.value == pytest.approx(-ref.cost_best, rel=1e-9)
    # value is the true return of the plan (rollout through the true dynamics)
    ro = ModelEnv(task.dynamics_fn, task).rollout(obs[None], res.actions[None])
    assert float(ro.returns()) == pytest.approx(res.value, rel=1e-9)
    assert (res.actions.abs() <= 2.0 + 1e-12).all()
    # better than the warm start
    ro0 = ModelEnv(task.dynamics_fn, task).rollout(obs[None], init[None])
    assert res.value > float(ro0.returns())


def test_ensemble_uncertainty_penalty(pendulum):
    from mbrl.models import DynamicsModel

    task = pendulum
    model = DynamicsModel.for_task(
        task, num_members=3, hidden=16, num_layers=1, generator=torch.Generator().manual_seed(0)
    )
    obs = torch.tensor([2.5, 0.0], dtype=torch.float64)
    plain = ILQRPlanner(model, task, 5, max_iter=10)
    pen = ILQRPlanner(model, task, 5, max_iter=10, uncertainty_penalty=100.0)
    r0, r1 = plain.plan(obs), pen.plan(obs)

    def variance(actions):  # members' mean disagreement summed over the plan's states
        x, tot = obs[None], 0.0
        for t in range(5):
            with torch.no_grad():
                m = model.predict(x, actions[t][None]).next_obs_mean
            tot += float(m.var(0, unbiased=False).sum())
            x = m.mean(0)
        return tot

    assert variance(r1.actions) < 0.6 * variance(r0.actions)  # measured: 0.0089 vs 0.022
    # the penalised plan's value counts the penalty: it is at most the plain objective
    assert r1.value <= r0.value + 1e-9
    with pytest.raises(ValueError, match="uncertainty_penalty"):
        ILQRPlanner(task.dynamics_fn, task, 5, uncertainty_penalty=1.0)


def test_ilqr_rejects_discrete():
    task = get_task("cartpole-discrete")
    with pytest.raises(ValueError, match="discrete"):
        make_planner(planner_config("ilqr"), task.dynamics_fn, task)
