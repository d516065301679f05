"""Guided policy search through a learned ensemble (``dynamics=model``): the config's errors,
the control problem against the model's own predictions, a short run in the true pendulum
against a random policy, and resume."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from envs import get_task
from mbrl.algorithms.gps_config import DataSettings, GPSConfig, load_gps_config
from mbrl.algorithms.gps_model import (
    build_learned,
    collect_policy_data,
    collect_random_data,
    model_problem,
    reinitialise,
    rewarm,
    train_model,
)
from mbrl.algorithms.gps_problem import (
    ControlProblem,
    TeacherSettings,
    mpc_rollouts,
    policy_rollouts,
    problem_from_task,
    start_states,
)
from mbrl.models import ModelConfig, build_model
from mbrl.util.config import ConfigError
from mbrl.util.lifecycle import SetupError

D = torch.float64
SMALL_MODEL = ModelConfig(num_members=3, hidden=32, num_layers=2, batch_size=32, max_epochs=5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(dynamics="true"), "dynamics: expected one of .*'task'"),
        (dict(dynamics=True), "dynamics: expected one of"),
        (dict(dynamics="model", method="dagger"), "method: dynamics=model runs method=gps"),
        (dict(data=DataSettings()), None),
        (dict(data={"iterations_per_round": 1}), "data: expected a DataSettings"),
        (dict(model=ModelConfig(hidden=4)), None),
    ],
)
def test_config_errors_name_the_field(kwargs, match):
    if match is None:
        GPSConfig(**kwargs)
        return
    with pytest.raises(ValueError, match=match):
        GPSConfig(**kwargs)


@pytest.mark.parametrize(
    ("section", "field", "value", "match"),
    [
        ("data", "iterations_per_round", 0, "data.iterations_per_round: expected an int >= 1"),
        ("data", "initial_random_episodes", 0, "data.initial_random_episodes: expected an int"),
        ("data", "retrain", "cold", "data.retrain: expected warm or fresh, got 'cold'"),
        ("data", "action_noise", -0.1, "data.action_noise: expected a finite number >= 0"),
        ("data", "action_noise", float("nan"), "data.action_noise"),
        ("model", "hidden", 0, "model.hidden: expected a positive int"),
    ],
)
def test_nested_section_edited_after_construction_is_checked(section, field, value, match):
    cfg = GPSConfig(dynamics="model")
    setattr(getattr(cfg, section), field, value)
    with pytest.raises(ValueError, match=match):
        cfg.__post_init__()


def test_loaded_config_errors_name_the_section():
    cfg = load_gps_config("pendulum-swingup", "gps_pendulum_model")
    assert cfg.dynamics == "model" and cfg.model.num_members >= 1
    # mbrl gps --task pendulum-swingup dynamics=model: the task's preset, the model's defaults
    cfg = load_gps_config("pendulum-swingup", None, ["dynamics=model", "data.action_noise=0.1"])
    assert cfg.dynamics == "model" and cfg.data.action_noise == 0.1
    assert cfg.model == ModelConfig() and cfg.num_conditions == 8
    with pytest.raises(ConfigError, match="data.*iterations_per_round"):
        load_gps_config("pendulum-swingup", "gps_pendulum_model", ["data.iterations_per_round=0"])
    with pytest.raises(ConfigError, match="dynamics"):
        load_gps_config("pendulum-swingup", None, ["dynamics=simulator"])


def test_setup_rejects_a_mujoco_task_and_too_little_first_data(tmp_path):
    from mbrl.algorithms.gps import run_gps

    cfg = GPSConfig(task="inverted-double-pendulum", dynamics="model", run_root=str(tmp_path))
    with pytest.raises(SetupError, match="dynamics: 'model' needs an analytic task"):
        run_gps(cfg)
    cfg = GPSConfig(dynamics="model", horizon=2, run_root=str(tmp_path))
    cfg.data.initial_random_episodes = 1  # 2 transitions: no holdout row at ratio 0.2
    with pytest.raises(SetupError, match="data.initial_random_episodes"):
        run_gps(cfg)
    assert not any(tmp_path.iterdir())  # nothing made before the errors


def _trained(seed: int = 0):
    task = get_task("pendulum-swingup")
    gen = torch.Generator().manual_seed(seed)
    ld = build_learned(SMALL_MODEL, task, 10_000, gen, np.random.default_rng(seed))
    _, added = collect_random_data(ld, [1, 2], 50)
    assert added == 100 and len(ld.buffer) == 100
    return task, ld, train_model(SMALL_MODEL, ld, added)


def test_model_problem_is_the_ensemble_mean_in_float64():
    task, ld, metrics = _trained()
    assert metrics.data_size == 100 and np.isfinite(metrics.holdout_mse)
    problem = model_problem(task, ld.mean, 50)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 2, generator=g, dtype=D) * torch.tensor([2.0, 3.0], dtype=D)
    u = 4.0 * torch.rand(16, 1, generator=g, dtype=D) - 2.0
    # the reference: the trained float32 model's own per-member predictions, averaged
    with torch.no_grad():
        ref = ld.model.predict(x.float(), u.float()).next_obs_mean.mean(0).double()
    got = problem.dynamics(x, u)
    assert got.dtype == D
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(problem.cost(x, u), -task.reward_fn(x, u, got))
    # differentiable in float64: autodiff Jacobians equal central differences of the mean
    J = problem.linearize(x, u)
    z, h = torch.cat([x, u], -1), 1e-6
    fd = torch.stack(
        [
            (problem.dynamics(*(z + h * e).split([2, 1], -1)) - problem.dynamics(
                *(z - h * e).split([2, 1], -1)
            )) / (2 * h)
            for e in torch.eye(3, dtype=D)
        ],
        -1,
    )  # fmt: skip
    torch.testing.assert_close(J, fd, rtol=1e-6, atol=1e-6)
    assert not problem.dynamics(x, u).requires_grad  # frozen copy: no graph into the weights


def test_retraining_refreshes_the_planning_copy_and_collects_from_the_conditions():
    task, ld, _ = _trained()
    policy = torch.nn.Sequential(torch.nn.Linear(2, 1, dtype=D), torch.nn.Tanh())
    returns, added = collect_policy_data(ld, policy, [7, 8], 30, noise=0.0)
    assert added == 60 and len(ld.buffer) == 160
    # the first stored state of each episode is the condition's start state
    obs = ld.buffer.get_all().obs
    torch.testing.assert_close(
        torch.as_tensor(obs[[100, 130]], dtype=D), start_states(task, [7, 8])
    )
    # the returns are the true system's: the same policy through the task's dynamics
    true = -policy_rollouts(problem_from_task(task, 30), policy, start_states(task, [7, 8])).cost
    np.testing.assert_allclose(returns, true.numpy(), rtol=1e-6)
    x = torch.tensor([[3.0, 0.5]], dtype=D)
    u = torch.tensor([[1.0]], dtype=D)
    before = ld.mean(x, u).clone()
    train_model(SMALL_MODEL, ld, 160)
    with torch.no_grad():
        ref = ld.model.predict(x.float(), u.float()).next_obs_mean.mean(0).double()
    torch.testing.assert_close(ld.mean(x, u), ref, rtol=1e-5, atol=1e-5)
    assert not torch.equal(before, ld.mean(x, u))


def test_fresh_retraining_starts_from_new_weights_drawn_from_the_run_generator():
    task, ld, _ = _trained()
    old_trainer, trained = ld.trainer, copy.deepcopy(ld.model.state_dict())
    assert old_trainer.optimizer.state  # the first training left Adam moments
    gen = torch.Generator().manual_seed(5)
    ref = build_model(SMALL_MODEL, task, generator=torch.Generator().manual_seed(5))
    reinitialise(SMALL_MODEL, ld, gen)
    for (name, p), q in zip(ld.model.state_dict().items(), ref.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert any(not torch.equal(p, trained[k]) for k, p in ld.model.state_dict().items())
    assert ld.trainer is not old_trainer and ld.trainer.model is ld.model
    assert ld.trainer.generator is gen and not ld.trainer.optimizer.state
    before = ld.mean(torch.zeros(1, 2, dtype=D), torch.zeros(1, 1, dtype=D)).clone()
    metrics = train_model(SMALL_MODEL, ld, 100)  # trains the new weights; refreshes the mean
    assert np.isfinite(metrics.holdout_mse) and ld.trainer.optimizer.state
    assert not torch.equal(before, ld.mean(torch.zeros(1, 2, dtype=D), torch.zeros(1, 1, dtype=D)))


def test_rewarm_takes_the_policys_controls_only_where_they_cost_less():
    from control import dlqr

    A = np.array([[1.0, 0.1], [0.0, 1.0]])
    B = np.array([[0.0], [0.1]])
    K = torch.as_tensor(np.asarray(dlqr(A, B, np.eye(2), 0.1 * np.eye(1))[0]), dtype=D)
    At, Bt = torch.as_tensor(A), torch.as_tensor(B)
    inf = torch.full((1,), float("inf"), dtype=D)
    problem = ControlProblem(
        lambda x, u: x @ At.T + u @ Bt.T,
        lambda x, u: x.square().sum(-1) + 0.1 * u.square().sum(-1),
        -inf, inf, 30,
    )  # fmt: skip

    def lqr(x):
        return -x @ K.T

    x0 = torch.tensor([[1.0, 0.0], [2.0, -1.0], [0.5, 0.5]], dtype=D)
    own = policy_rollouts(problem, lqr, x0).u  # the LQR optimum: nothing beats it
    old = own.clone()
    old[1] = 0.0  # no control: costs more
    old[2] = 1.01 * own[2]  # near-optimal: still costs a little more
    u, source = rewarm(problem, lqr, x0, old)
    assert source.tolist() == [0, 1, 1]
    torch.testing.assert_close(u, own, rtol=0, atol=0)
    u, source = rewarm(problem, lqr, x0, own)  # equal costs: the previous controls stay
    assert source.tolist() == [0, 0, 0] and torch.equal(u, own)
    # a third candidate: the teacher (iLQR-MPC) is picked where both others cost more
    bad = lambda x: torch.zeros(x.shape[0], 1, dtype=D)  # noqa: E731
    zeros = torch.zeros_like(own)
    u, source = rewarm(problem, bad, x0, zeros, TeacherSettings(10, 3, 10))
    assert source.tolist() == [2, 2, 2]
    mpc = mpc_rollouts(problem, TeacherSettings(10, 3, 10), x0)
    torch.testing.assert_close(u, mpc.u)
    with pytest.raises(ValueError, match="u: expected shape"):
        rewarm(problem, lqr, x0, own[:, :10])


def _run_cfg(root, iterations: int, **kw) -> GPSConfig:
    settings = dict(
        dynamics="model", num_conditions=2, horizon=60, eval_episodes=3, teacher_horizon=15,
        traj_iters=5, epochs=10, timing_steps=2, progress=False,
    )  # fmt: skip
    settings |= kw
    model = ModelConfig(**vars(SMALL_MODEL))
    cfg = GPSConfig(iterations=iterations, run_root=str(root), model=model, **settings)
    cfg.data.iterations_per_round = 1
    return cfg


def test_short_model_based_run_beats_a_random_policy_in_the_true_pendulum(
    tmp_path, pendulum_random_return
):
    from mbrl.algorithms.gps import run_gps

    res = run_gps(_run_cfg(tmp_path, 2))
    random_return = pendulum_random_return
    final = float(np.mean(res.final_returns))
    assert final > random_return + 0.1 * abs(random_return), (final, random_return)
    # 2 random episodes, then one round of the policy from the 2 conditions, 60 steps each
    assert res.env_steps == 4 * 60 and res.data_sizes == [120, 240]
    rounds = (res.run_dir / "round.csv").read_text().strip().splitlines()
    assert len(rounds) == 1 + 2 and "holdout_mse" in rounds[0]


@pytest.mark.parametrize("retrain", ["warm", "fresh"])
def test_resumed_model_based_run_equals_uninterrupted_run(tmp_path, monkeypatch, retrain):
    from mbrl.algorithms import gps
    from mbrl.algorithms.gps import load_policy, run_gps

    calls = []  # the later rounds that started from new weights
    monkeypatch.setattr(gps, "reinitialise", lambda *a: calls.append(reinitialise(*a)))
    kw = dict(horizon=15, eval_episodes=2, teacher_horizon=8, teacher_first_iters=5, epochs=3)

    def cfg(root, iterations):
        c = _run_cfg(root, iterations, **kw)
        c.data.retrain = retrain
        return c

    whole = run_gps(cfg(tmp_path / "a", 2))
    first = run_gps(cfg(tmp_path / "b", 1))
    # the resumed part begins with a round: collect with the restored policy, retrain the
    # restored model (fresh: new weights from the restored generator) on the restored buffer
    resumed = run_gps(cfg(tmp_path / "b", 2), resume=first.run_dir)
    # one later round in the whole run and one in the resumed part; none with warm starts
    assert len(calls) == (2 if retrain == "fresh" else 0)
    assert resumed.policy_returns == whole.policy_returns
    assert resumed.holdout_losses == whole.holdout_losses
    assert resumed.data_sizes == whole.data_sizes == [30, 60]
    a, b = load_policy(whole.run_dir), load_policy(resumed.run_dir)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)
    rows = (resumed.run_dir / "round.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2
