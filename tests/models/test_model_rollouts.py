"""MBPO building blocks: rollout schedule, branched rollouts, model buffer, mixed batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mbrl.agents.networks import GaussianPolicy
from mbrl.data.replay_buffer import ReplayBuffer
from mbrl.models import DynamicsModel, ModelEnv
from mbrl.models.model_rollouts import (
    MixedSampler,
    RolloutSchedule,
    branched_rollouts,
    model_buffer_capacity,
    resize_buffer,
)


# ---------------------------------------------------------------------- schedule
@pytest.mark.parametrize(
    "schedule", [[20, 100, 1, 15], [20, 100, 1, 25], [0, 10, 5, 1], [3, 3, 1, 4]]
)
def test_schedule_matches_linear_interpolation(schedule):
    sched = RolloutSchedule.parse(schedule)
    a, b, k0, k1 = schedule
    for epoch in range(0, 160):
        if epoch <= a:
            expected = k0
        elif epoch >= b:
            expected = k1
        else:
            expected = math.floor(np.interp(epoch, [a, b], [k0, k1]) + 1e-9)
        assert sched.length(epoch) == expected, epoch


def test_hopper_schedule_at_named_epochs():
    sched = RolloutSchedule.parse([20, 100, 1, 15])
    assert [sched.length(e) for e in (0, 20, 21, 25, 60, 99, 100, 300)] == [
        1,
        1,
        1,
        1,
        8,
        14,
        15,
        15,
    ]
    assert sched.max_length == 15
    assert RolloutSchedule.parse(1).length(500) == 1  # constant k (inverted-pendulum preset)


@pytest.mark.parametrize(
    "bad",
    [
        [20, 100, 1],
        [100, 20, 1, 15],
        [-1, 10, 1, 5],
        [0, 10, 0, 5],
        [0, 10, 1, 2.5],
        "1,2,3,4",
        [True, 10, 1, 5],
        0,
        None,
        {"a": 1},
    ],
)
def test_malformed_schedule_names_field(bad):
    with pytest.raises(ValueError, match="rollout_schedule"):
        RolloutSchedule.parse(bad)


def test_schedule_rejects_negative_epoch():
    with pytest.raises(ValueError, match="epoch"):
        RolloutSchedule.parse(5).length(-1)


# ---------------------------------------------------------------------- rollouts
def _shift_model(obs, act):
    """next = obs + [act, 0]; the second coordinate becomes NaN once it is negative."""
    nxt = obs.clone()
    nxt[:, 0] += act[:, 0]
    nxt[:, 1] = torch.where(obs[:, 1] < 0, torch.nan, obs[:, 1] - 1.0)
    return nxt


def _terminate_big(obs, act, next_obs):
    return next_obs[..., 0] > 1.0


def _reward(obs, act, next_obs):
    return next_obs[..., 0]


def _unit_policy(obs, generator=None):
    return torch.full((obs.shape[0], 1), 0.25)


def test_rollouts_stop_at_termination_and_drop_nonfinite():
    env = ModelEnv(_shift_model, reward_fn=_reward, termination_fn=_terminate_big)
    # x0 decides when x crosses 1 (steps of 0.25); y0 decides when the prediction turns NaN
    x0 = torch.tensor([0.0, 0.6, 0.9, 0.0, 0.0, 0.95])
    y0 = torch.tensor([10.0, 10.0, 10.0, 1.5, 0.5, 0.5])
    out = branched_rollouts(env, _unit_policy, torch.stack([x0, y0], 1), k=5)
    # reference by hand, row by row: (transitions kept, terminated?, dropped?)
    expected = []
    for x, y in zip(x0.tolist(), y0.tolist(), strict=True):
        kept, term, drop = 0, False, False
        for _ in range(5):
            if y < 0:
                drop = True
                break
            x, y = x + 0.25, y - 1.0
            kept += 1
            if x > 1.0:
                term = True
                break
        expected.append((kept, term, drop))
    assert len(out) == sum(e[0] for e in expected)
    assert out.num_terminated == sum(e[1] for e in expected) == int(out.terminated.sum())
    assert out.num_dropped == sum(e[2] for e in expected) == 2
    assert out.num_rollouts == 6 and out.steps == 5
    assert torch.isfinite(out.next_obs).all() and torch.isfinite(out.reward).all()
    torch.testing.assert_close(out.reward, out.next_obs[:, 0])
    # a terminated transition ends its row: its next state is never a start state later
    assert not any((out.obs == s).all(1).any() for s in out.next_obs[out.terminated])
    assert out.fraction_dropped == pytest.approx(2 / 6)
    batch = out.to_batch()
    assert batch.obs.shape == (len(out), 2) and not batch.truncated.any()
    buf = ReplayBuffer(100, 2, 1)
    buf.add_batch(*batch)  # the buffer's own NaN checks accept every returned transition


def test_rollouts_drop_nonfinite_rewards():
    def reward(obs, act, next_obs):
        return torch.where(next_obs[..., 0] > 0.4, torch.inf, next_obs[..., 0])

    env = ModelEnv(_shift_model, reward_fn=reward)
    start = torch.tensor([[0.0, 10.0], [0.3, 10.0]])
    out = branched_rollouts(env, _unit_policy, start, k=3)
    # row 0: 0.25 ok, 0.5 -> inf (dropped); row 1: 0.55 -> inf (dropped)
    assert len(out) == 1 and out.num_dropped == 2 and out.steps == 2


def _model(seed=0):
    model = DynamicsModel(
        3,
        1,
        num_members=5,
        num_elites=3,
        hidden=16,
        num_layers=2,
        learn_reward=True,
        use_elites=True,
        generator=torch.Generator().manual_seed(seed),
    )
    g = torch.Generator().manual_seed(seed + 1)
    model.input_normalizer.fit(torch.randn(64, 4, generator=g))
    model.output_normalizer.fit(0.1 * torch.randn(64, 4, generator=g))
    return model


def test_rollouts_go_through_the_elites_only():
    """Non-elite members predict NaN: with use_elites they are never used."""
    model = _model()
    model.set_elites([0, 2, 4])
    with torch.no_grad():
        model.ensemble.biases[-1][[1, 3]] = torch.nan
    policy = GaussianPolicy(3, 1, hidden=8, generator=torch.Generator().manual_seed(0))
    start = torch.randn(40, 3, generator=torch.Generator().manual_seed(1))
    env = ModelEnv(model, propagation="ts1")
    out = branched_rollouts(env, policy, start, k=4, generator=torch.Generator().manual_seed(2))
    assert out.num_dropped == 0 and len(out) == 160
    model.use_elites = False
    out = branched_rollouts(env, policy, start, k=4, generator=torch.Generator().manual_seed(2))
    assert out.num_dropped > 0 and torch.isfinite(out.next_obs).all()


def test_rollouts_are_seeded():
    model = _model()
    env = ModelEnv(model, propagation="ts1")
    policy = GaussianPolicy(3, 1, hidden=8, generator=torch.Generator().manual_seed(0))
    start = torch.randn(10, 3)
    r1 = branched_rollouts(env, policy, start, 3, torch.Generator().manual_seed(5))
    r2 = branched_rollouts(env, policy, start, 3, torch.Generator().manual_seed(5))
    assert torch.equal(r1.next_obs, r2.next_obs) and torch.equal(r1.act, r2.act)


def test_rollout_argument_errors():
    env = ModelEnv(_shift_model, reward_fn=_reward)
    start = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="k"):
        branched_rollouts(env, _unit_policy, start, 0)
    with pytest.raises(ValueError, match="start_obs"):
        branched_rollouts(env, _unit_policy, torch.zeros(2), 1)
    with pytest.raises(ValueError, match="start_obs"):
        branched_rollouts(env, _unit_policy, torch.full((2, 2), torch.nan), 1)
    with pytest.raises(TypeError, match="model_env"):
        branched_rollouts(_shift_model, _unit_policy, start, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="policy"):
        branched_rollouts(env, lambda o, generator=None: torch.zeros(3, 1), start, 1)


# ---------------------------------------------------------------------- model buffer
def test_model_buffer_capacity():
    # MBPO hopper: 400 rollouts per env step x 250 steps per retrain, k = 15, one epoch kept
    assert model_buffer_capacity(400 * 250, 15, 1) == 1_500_000
    assert model_buffer_capacity(3, 4, 5) == 60
    for args, name in (
        ((0, 1, 1), "rollout_batch_size"),
        ((1, 1.5, 1), "k"),
        ((1, 1, -2), "retain_epochs"),
    ):
        with pytest.raises(ValueError, match=name):
            model_buffer_capacity(*args)


def test_resize_buffer_keeps_newest():
    buf = ReplayBuffer(10, 1, 1)
    for i in range(8):
        buf.add([i], [0], [i + 1], float(i), False, False)
    small = resize_buffer(buf, 5)
    assert small.capacity == 5 and small.get_all().reward.tolist() == [3, 4, 5, 6, 7]
    big = resize_buffer(buf, 20)
    assert big.capacity == 20 and big.get_all().reward.tolist() == list(range(8))
    assert resize_buffer(buf, 10) is buf


# ---------------------------------------------------------------------- mixed sampler
def _filled(value, n=50):
    buf = ReplayBuffer(n, 2, 1)
    buf.add_batch(
        np.zeros((n, 2)),
        np.zeros((n, 1)),
        np.zeros((n, 2)),
        np.full(n, value),
        np.zeros(n, bool),
        np.zeros(n, bool),
    )
    return buf


@pytest.mark.parametrize("ratio, batch", [(0.05, 256), (0.5, 7), (0.0, 32), (1.0, 32)])
def test_mixed_batches_hold_the_ratio(ratio, batch):
    sampler = MixedSampler(_filled(1.0), _filled(0.0), ratio)
    rng = np.random.default_rng(0)
    n_real = round(ratio * batch)
    for _ in range(20):
        b = sampler.sample(batch, rng)
        assert b.batch_size == batch and int(b.reward.sum()) == n_real
    assert abs(n_real / batch - ratio) <= 0.5 / batch


def test_mixed_sampler_errors():
    real, model = _filled(1.0), _filled(0.0)
    for bad in (-0.1, 1.5, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match="real_ratio"):
            MixedSampler(real, model, bad)
    empty = ReplayBuffer(10, 2, 1)
    with pytest.raises(ValueError, match="model"):
        MixedSampler(real, empty, 0.05).sample(10, np.random.default_rng(0))
    assert MixedSampler(real, empty, 1.0).sample(10, np.random.default_rng(0)).batch_size == 10
    with pytest.raises(ValueError, match="model"):
        MixedSampler(real, ReplayBuffer(10, 3, 1), 0.5)
    with pytest.raises(ValueError, match="batch_size"):
        MixedSampler(real, model, 0.5).sample(0, np.random.default_rng(0))


def test_rollouts_use_the_tasks_termination_and_sac_policy():
    """Inverted pendulum: the pole angle drifts by the action; the task's own termination_fn
    (|angle| > 0.2) ends rows, and terminated transitions are exactly those it flags."""
    import envs
    from mbrl.agents.sac import SAC, SACConfig

    task = envs.get_task("inverted-pendulum")

    def drift(obs, act):
        nxt = obs.clone()
        nxt[:, 1] += 0.05 * act[:, 0]
        return nxt

    env = ModelEnv(drift, task)
    agent = SAC.for_task(task, SACConfig(hidden=16))
    start = torch.zeros(64, 4)
    start[:, 1] = torch.linspace(-0.19, 0.19, 64)
    out = branched_rollouts(env, agent.policy, start, k=10, generator=torch.Generator())
    flags = task.termination_fn(out.obs, out.act, out.next_obs)
    assert torch.equal(flags, out.terminated)
    assert out.num_terminated > 0 and out.num_dropped == 0
    assert torch.all(out.act.abs() <= 3.0)
    # no transition starts from a terminal state
    assert torch.all(out.obs[:, 1].abs() <= 0.2)
