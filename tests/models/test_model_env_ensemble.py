"""ModelEnv with a DynamicsModel under all four propagation schemes."""

import pytest
import torch

from mbrl.models import PROPAGATIONS, DynamicsModel, ModelEnv


def reward_fn(obs, act, next_obs):
    return -next_obs.square().sum(-1) - 0.1 * act.square().sum(-1)


def terminate_when_big(obs, act, next_obs):
    return next_obs[..., 0] > 1.0


def make_model(learn_reward=False, seed=0):
    model = DynamicsModel(
        2,
        1,
        num_members=4,
        hidden=16,
        num_layers=2,
        learn_reward=learn_reward,
        generator=torch.Generator().manual_seed(seed),
    )
    g = torch.Generator().manual_seed(seed + 1)
    model.input_normalizer.fit(torch.randn(50, 3, generator=g))
    model.output_normalizer.fit(0.1 * torch.randn(50, model.target_dim, generator=g))
    return model


@pytest.mark.parametrize("propagation", PROPAGATIONS)
@pytest.mark.parametrize("learn_reward", [False, True])
def test_shapes_and_seeding(propagation, learn_reward):
    model = make_model(learn_reward)
    env = ModelEnv(model, reward_fn=None if learn_reward else reward_fn, propagation=propagation)
    assert env.is_ensemble and env.use_learned_reward == learn_reward
    obs0 = torch.randn(10, 2, generator=torch.Generator().manual_seed(2))
    actions = torch.randn(10, 6, 1, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        r1 = env.rollout(obs0, actions, generator=torch.Generator().manual_seed(4))
        r2 = env.rollout(obs0, actions, generator=torch.Generator().manual_seed(4))
    assert r1.obs.shape == (10, 7, 2) and r1.rewards.shape == (10, 6)
    assert r1.terminated.shape == (10, 6) and torch.isfinite(r1.obs).all()
    assert torch.equal(r1.obs, r2.obs) and torch.equal(r1.rewards, r2.rewards)
    assert (r1.member is not None) == (propagation == "tsinf")
    if not learn_reward:
        expected = reward_fn(r1.obs[:, :-1], r1.actions, r1.obs[:, 1:])
        torch.testing.assert_close(r1.rewards, expected)


def nearly_deterministic(model):
    """Clamp every member's log-variance near -30 so samples equal the member means."""
    with torch.no_grad():
        model.ensemble.max_logvar.fill_(-30.0)
        model.ensemble.min_logvar.fill_(-31.0)
    return model


def test_tsinf_particle_keeps_its_member():
    """Under TS∞ particle b's trajectory is exactly a rollout of member b % E alone."""
    model = nearly_deterministic(make_model())
    env = ModelEnv(model, reward_fn=reward_fn, propagation="tsinf")
    b, h, e = 10, 5, 4
    obs0 = torch.randn(b, 2, generator=torch.Generator().manual_seed(11))
    actions = torch.randn(b, h, 1, generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        roll = env.rollout(obs0, actions, generator=torch.Generator().manual_seed(0))
        assert torch.equal(roll.member, torch.arange(b) % e)
        for t in range(h):
            means = model.predict(roll.obs[:, t], roll.actions[:, t]).next_obs_mean  # (E, B, 2)
            own = means[roll.member, torch.arange(b)]
            torch.testing.assert_close(roll.obs[:, t + 1], own, atol=1e-5, rtol=0)
            other = means[(roll.member + 1) % e, torch.arange(b)]
            assert ((roll.obs[:, t + 1] - other).abs().amax(-1) > 1e-4).all()


def test_expectation_is_mean_of_member_means():
    model = make_model()
    env = ModelEnv(model, reward_fn=reward_fn, propagation="expectation")
    obs0, actions = torch.randn(6, 2), torch.randn(6, 3, 1)
    with torch.no_grad():
        roll = env.rollout(obs0, actions)
        obs = obs0
        for t in range(3):
            obs = model.mean_next_obs(obs, actions[:, t])
            torch.testing.assert_close(roll.obs[:, t + 1], obs)


def test_random_model_uses_one_member_per_step():
    model = nearly_deterministic(make_model())
    env = ModelEnv(model, reward_fn=reward_fn, propagation="random_model")
    obs0, act = torch.randn(8, 2), torch.randn(8, 1, 1)
    with torch.no_grad():
        roll = env.rollout(obs0, act, generator=torch.Generator().manual_seed(1))
        means = model.predict(obs0, act[:, 0]).next_obs_mean  # (E, 8, 2)
    dist = (means - roll.obs[:, 1]).abs().amax(dim=(1, 2))
    assert dist.min() < 1e-4 and (dist < 1e-4).sum() == 1


def test_terminated_particles_frozen_with_zero_reward():
    model = make_model()
    with torch.no_grad():  # a model that drifts: next = obs + 0.5 in the first coordinate
        model.output_normalizer.mean.copy_(torch.tensor([0.5, 0.0]))
        model.output_normalizer.std.fill_(1e-6)
    env = ModelEnv(model, reward_fn=reward_fn, termination_fn=terminate_when_big, propagation="ts1")
    obs0 = torch.tensor([[0.2, 0.0], [0.8, 0.0], [-3.0, 0.0]])
    with torch.no_grad():
        roll = env.rollout(obs0, torch.zeros(3, 4, 1), generator=torch.Generator().manual_seed(0))
    done = roll.terminated
    assert done[0].tolist() == [False, True, True, True]
    assert done[1].tolist() == [True, True, True, True]
    assert done[2].tolist() == [False, False, False, False]  # -2.5, -2.0, -1.5, -1.0
    assert (roll.rewards[0, 2:] == 0).all() and (roll.rewards[1, 1:] == 0).all()
    assert (roll.rewards[:, 0] != 0).all()
    torch.testing.assert_close(roll.obs[0, 2:], roll.obs[0, 2].expand(3, 2))
    torch.testing.assert_close(roll.obs[1, 1:], roll.obs[1, 1].expand(4, 2))


def test_elites_under_tsinf():
    model = make_model()
    model.set_elites([0, 3])
    model.use_elites = True
    env = ModelEnv(model, reward_fn=reward_fn, propagation="tsinf")
    with torch.no_grad():
        roll = env.rollout(torch.randn(5, 2), torch.randn(5, 2, 1))
    assert roll.member.tolist() == [0, 1, 0, 1, 0]  # index into elite_indices = [0, 3]


@pytest.mark.parametrize("learn_reward", [False, True])
@pytest.mark.parametrize("b", [8, 10, 3])
def test_open_loop_tsinf_equals_stepwise_regrouping(learn_reward, b):
    """The open-loop TS∞ rollout (particles grouped once) equals calling step() every step
    (particles regrouped every step), padding included (B not a multiple of E = 4)."""
    model = make_model(learn_reward)
    env = ModelEnv(
        model,
        reward_fn=None if learn_reward else reward_fn,
        termination_fn=terminate_when_big,
        propagation="tsinf",
    )
    obs0 = torch.randn(b, 2, generator=torch.Generator().manual_seed(5))
    actions = torch.randn(b, 6, 1, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        roll = env.rollout(obs0, actions, generator=torch.Generator().manual_seed(7))
        g = torch.Generator().manual_seed(7)
        obs, done = obs0, torch.zeros(b, dtype=torch.bool)
        for t in range(6):
            nxt, rew = env.step(obs, actions[:, t], g)
            term = terminate_when_big(obs, actions[:, t], nxt)
            rew = torch.where(done, torch.zeros_like(rew), rew)
            nxt = torch.where(done[:, None], obs, nxt)
            done = done | term
            torch.testing.assert_close(roll.obs[:, t + 1], nxt, rtol=0, atol=0)
            torch.testing.assert_close(roll.rewards[:, t], rew, rtol=0, atol=0)
            assert torch.equal(roll.terminated[:, t], done)
            obs = nxt
    assert torch.equal(roll.member, torch.arange(b) % 4)
    assert torch.equal(roll.actions, actions)


@pytest.mark.parametrize("propagation", PROPAGATIONS)
@pytest.mark.parametrize("b", [10, 3])
@pytest.mark.parametrize("discount", [1.0, 0.9])
def test_rollout_returns_equal_full_rollout(propagation, b, discount):
    """The trajectory-free scoring path gives the same returns (same draws) as rollout()."""
    env = ModelEnv(
        make_model(),
        reward_fn=reward_fn,
        termination_fn=lambda o, a, n: a[..., 0] > 1.0,
        propagation=propagation,
    )
    obs0 = torch.randn(b, 2, generator=torch.Generator().manual_seed(8))
    actions = 2 * torch.randn(b, 6, 1, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        roll = env.rollout(obs0, actions, generator=torch.Generator().manual_seed(10))
        res = env.rollout_returns(
            obs0, actions, discount=discount, generator=torch.Generator().manual_seed(10)
        )
    assert roll.terminated.any()  # the masking path is exercised
    torch.testing.assert_close(res.returns, roll.returns(discount), rtol=0, atol=0)
    assert not res.diverged.any()
    assert (res.member is None) == (roll.member is None)
    if res.member is not None:
        assert torch.equal(res.member, roll.member)


def test_rollout_returns_flags_diverged_states_until_termination():
    def model(obs, act):  # action 1 diverges at once, action 2 terminates first, then NaN
        nxt = obs + 1.0
        nxt = torch.where(act == 1.0, torch.full_like(nxt, float("nan")), nxt)
        return torch.where((act == 2.0) & (obs[..., :1] > 0), obs * float("inf"), nxt)

    env = ModelEnv(
        model,
        reward_fn=lambda o, a, n: torch.zeros_like(a[..., 0]),
        termination_fn=lambda o, a, n: (a[..., 0] == 2.0) & (n[..., 0] > 0.5),
    )
    actions = torch.tensor([0.0, 1.0, 2.0]).view(3, 1, 1).expand(3, 4, 1)
    res = env.rollout_returns(torch.zeros(3, 2), actions)
    assert res.diverged.tolist() == [False, True, False]
    roll = env.rollout(torch.zeros(3, 2), actions)
    assert torch.equal(~torch.isfinite(roll.obs).all(dim=2).all(dim=1), res.diverged)
