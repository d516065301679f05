"""A DynamicsModel learns the analytic pendulum: one-step and k-step open-loop accuracy."""

import math

import pytest
import torch

import envs
from mbrl.models import DynamicsModel, ModelEnv, ModelTrainer


def uniform(n, g, low, high):
    return torch.rand(n, generator=g) * (high - low) + low


def transitions(task, n, g):
    obs = torch.stack([uniform(n, g, -math.pi, math.pi), uniform(n, g, -8.0, 8.0)], -1)
    act = uniform(n, g, -2.0, 2.0)[:, None]
    return obs, act, task.dynamics_fn(obs, act)


@pytest.fixture(scope="module")
def pendulum():
    task = envs.get_task("pendulum-swingup")
    g = torch.Generator().manual_seed(0)
    model = DynamicsModel.for_task(
        task, num_members=5, hidden=64, num_layers=3, generator=torch.Generator().manual_seed(1)
    )
    trainer = ModelTrainer(model, seed=0, lr=3e-3, max_epochs=200, progress_bar=False)
    result = trainer.train(*transitions(task, 5000, g))
    return task, model, result, g


def test_one_step_error(pendulum):
    task, model, result, g = pendulum
    obs, act, nxt = transitions(task, 2000, g)  # fresh held-out transitions
    with torch.no_grad():
        pred = model.mean_next_obs(obs, act)
    mse = (pred - nxt).square().mean(0)
    print(f"epochs {result.epochs}; one-step MSE theta {mse[0]:.2e}, theta_dot {mse[1]:.2e}")
    assert mse[0] < 1e-4  # measured 1.45e-5 rad^2
    assert mse[1] < 1e-2  # measured 3.4e-3 (rad/s)^2; theta_dot spans [-8, 8]


def test_k_step_error_grows_smoothly(pendulum):
    task, model, _, g = pendulum
    b, h = 200, 20
    obs0 = torch.stack([uniform(b, g, -math.pi, math.pi), uniform(b, g, -6.0, 6.0)], -1)
    actions = uniform(b * h, g, -2.0, 2.0).view(b, h, 1)
    with torch.no_grad():
        model_obs = ModelEnv(model, task, propagation="expectation").rollout(obs0, actions).obs
    true = [obs0]
    for t in range(h):
        true.append(task.dynamics_fn(true[-1], actions[:, t]))
    true_obs = torch.stack(true, 1)
    err = (model_obs - true_obs).square().sum(-1).mean(0)  # (H + 1,) mean squared error
    e1, e5, e20 = err[1].item(), err[5].item(), err[20].item()
    print(f"open-loop squared error: k=1 {e1:.2e}, k=5 {e5:.2e}, k=20 {e20:.2e}")
    assert e1 < e5 < e20
    assert e1 < 2e-3 and e5 < 0.05 and e20 < 1.5  # measured 6.3e-4, 2.0e-2, 0.64
    assert (err[1:].diff() > 0).float().mean() > 0.9  # grows (almost) every step
