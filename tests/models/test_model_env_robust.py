"""ModelEnv robustness: diverging particles of a real ensemble, unchecked model outputs, H = 0."""

import math

import numpy as np
import pytest
import torch

from mbrl.models import PROPAGATIONS, DynamicsModel, ModelEnv
from mbrl.planning import (
    CEMPlanner,
    ICEMPlanner,
    MCTSPlanner,
    MPPIPlanner,
    RandomShootingPlanner,
    SequenceObjective,
)

THRESHOLD = 2.0  # the model below predicts NaN for every state with obs[0] > THRESHOLD


def reward_fn(obs, act, next_obs):
    return -next_obs.square().sum(-1) - 0.1 * act.square().sum(-1)


def nan_above_threshold(obs):
    """Features = obs, except NaN where obs[0] > THRESHOLD (a model that diverges there)."""
    return torch.where(obs[..., :1] > THRESHOLD, torch.full_like(obs, float("nan")), obs)


def make_model(preprocess=None, learn_reward=False, seed=0):
    model = DynamicsModel(
        2,
        1,
        num_members=4,
        hidden=16,
        num_layers=2,
        obs_preprocess_fn=preprocess,
        learn_reward=learn_reward,
        generator=torch.Generator().manual_seed(seed),
    )
    g = torch.Generator().manual_seed(seed + 1)
    model.input_normalizer.fit(torch.randn(50, 3, generator=g))
    model.output_normalizer.fit(0.1 * torch.randn(50, model.target_dim, generator=g))
    return model


def start_states():
    """8 start states; rows 1, 4 and 6 are where the model diverges (obs[0] > THRESHOLD)."""
    obs0 = torch.zeros(8, 2)
    obs0[:, 1] = torch.linspace(-0.5, 0.5, 8)
    obs0[[1, 4, 6], 0] = 3.0
    return obs0


BAD = torch.tensor([False, True, False, False, True, False, True, False])


@pytest.mark.parametrize("propagation", PROPAGATIONS)
def test_diverging_particles_of_an_ensemble_are_flagged_not_fatal(propagation):
    model = make_model(nan_above_threshold)
    env = ModelEnv(model, reward_fn=reward_fn, propagation=propagation)
    obs0 = start_states()
    actions = 0.1 * torch.ones(8, 4, 1)
    g = torch.Generator().manual_seed(0)
    res = env.rollout_returns(obs0, actions, generator=g)  # used to raise "obs: contains NaN"
    if propagation == "random_model":
        # one member moves every particle, so only the diverging rows diverge
        assert res.diverged.tolist() == BAD.tolist()
    else:
        assert res.diverged.tolist() == BAD.tolist()
    assert torch.isfinite(res.returns[~BAD]).all()
    ro = env.rollout(obs0, actions, generator=torch.Generator().manual_seed(0))
    assert ro.diverged.tolist() == BAD.tolist()
    assert torch.isnan(ro.returns()[BAD]).all()
    assert torch.isfinite(ro.returns()[~BAD]).all()
    assert torch.isfinite(ro.obs[~BAD]).all()
    # a diverged particle's states are NaN from the step on which it diverged
    assert torch.isnan(ro.obs[BAD, 1:]).all()
    # same random draws as rollout_returns
    torch.testing.assert_close(ro.returns()[~BAD], res.returns[~BAD])


def test_finite_particles_unaffected_by_diverging_ones():
    """Expectation propagation is deterministic: the finite rows equal a rollout without the bad."""
    model = make_model(nan_above_threshold)
    env = ModelEnv(model, reward_fn=reward_fn, propagation="expectation")
    obs0 = start_states()
    actions = torch.linspace(-1, 1, 8 * 5).reshape(8, 5, 1)
    full = env.rollout(obs0, actions)
    alone = env.rollout(obs0[~BAD], actions[~BAD])
    torch.testing.assert_close(full.obs[~BAD], alone.obs)
    torch.testing.assert_close(full.returns()[~BAD], alone.returns())


def test_closed_loop_policy_never_sees_nan():
    model = make_model(nan_above_threshold)
    env = ModelEnv(model, reward_fn=reward_fn, propagation="tsinf")
    seen = []

    def policy(obs):
        seen.append(bool(torch.isfinite(obs).all()))
        return torch.zeros(obs.shape[0], 1)

    ro = env.rollout(start_states(), policy=policy, horizon=4)
    assert all(seen)
    assert ro.diverged.tolist() == BAD.tolist()


def nan_member(model, member=1):
    with torch.no_grad():
        for p in model.ensemble.parameters():
            if p.ndim >= 1 and p.shape[0] == model.ensemble.num_members:
                p[member] = float("nan")
    return model


@pytest.mark.parametrize(
    "planner_cls", [RandomShootingPlanner, CEMPlanner, ICEMPlanner, MPPIPlanner]
)
def test_plan_with_one_nan_member_skips_its_candidates(planner_cls):
    model = nan_member(make_model())
    env = ModelEnv(model, reward_fn=reward_fn, propagation="tsinf")
    objective = SequenceObjective(env, num_particles=1)
    kwargs = {"population": 16} if planner_cls is RandomShootingPlanner else {}
    if planner_cls is ICEMPlanner:
        kwargs = {"population": 32, "num_elites": 4}
    planner = planner_cls(objective, horizon=3, action_low=[-1.0], action_high=[1.0], **kwargs)
    res = planner.plan(
        torch.tensor([0.1, -0.2]), generator=torch.Generator().manual_seed(0)
    )  # used to raise "obs: contains NaN"
    assert math.isfinite(res.value)
    # with one particle per sequence, particle b follows member b % 4: member 1 scores -inf
    scores = objective(torch.tensor([0.1, -0.2]), torch.zeros(8, 3, 1))
    assert torch.isinf(scores[1::4]).all() and torch.isfinite(scores[0::4]).all()


@pytest.mark.parametrize("propagation", PROPAGATIONS)
def test_plan_with_all_nan_weights_says_every_candidate_diverged(propagation):
    model = make_model()
    with torch.no_grad():
        for p in model.ensemble.parameters():
            p.fill_(float("nan"))
    env = ModelEnv(model, reward_fn=reward_fn, propagation=propagation)
    planner = RandomShootingPlanner(
        SequenceObjective(env, num_particles=2),
        horizon=3,
        action_low=[-1.0],
        action_high=[1.0],
        population=8,
    )
    with pytest.raises(RuntimeError, match="every candidate"):
        planner.plan(torch.tensor([0.1, -0.2]))


def test_mcts_with_a_diverging_ensemble():
    model = make_model(nan_above_threshold)
    env = ModelEnv(model, reward_fn=reward_fn, propagation="expectation")
    planner = MCTSPlanner(
        env,
        horizon=3,
        action_low=[-1.0],
        action_high=[1.0],
        simulations=32,
        rollout_horizon=16,
        rollouts_per_leaf=1,
    )
    # the model drifts x up by ~0.012 per step: from x0 = 1.8 some random-policy rollouts pass
    # THRESHOLD mid-rollout (this used to raise "obs: contains NaN"); their leaves become
    # invalid, the others are kept and planning goes on
    res = planner.plan(torch.tensor([1.8, -1.0]), generator=torch.Generator().manual_seed(0))
    assert math.isfinite(res.value)


def test_mcts_with_all_nan_weights_raises_clearly():
    model = make_model()
    with torch.no_grad():
        for p in model.ensemble.parameters():
            p.fill_(float("nan"))
    env = ModelEnv(model, reward_fn=reward_fn, propagation="expectation")
    planner = MCTSPlanner(env, horizon=2, action_low=[-1.0], action_high=[1.0], simulations=4)
    with pytest.raises(RuntimeError, match="non-finite"):
        planner.plan(torch.tensor([0.1, -0.2]))


# ---------------------------------------------------------------------- plain callable outputs
BAD_OUTPUTS = {
    "flat": lambda obs, act: obs.sum(-1),
    "one_row": lambda obs, act: obs[:1],
    "numpy": lambda obs, act: obs.numpy(),
    "tuple": lambda obs, act: (obs, act),
    "extra_column": lambda obs, act: torch.cat([obs, act], -1),
    "integer": lambda obs, act: obs.long(),
}


@pytest.mark.parametrize("kind", sorted(BAD_OUTPUTS))
def test_plain_model_output_is_checked(kind):
    env = ModelEnv(BAD_OUTPUTS[kind], reward_fn=reward_fn)
    obs0 = torch.zeros(5, 2)
    with pytest.raises(ValueError, match=r"model: .*expected .*\(5, 2\)"):
        env.rollout(obs0, torch.zeros(5, 3, 1))
    with pytest.raises(ValueError, match=r"model: .*expected .*\(5, 2\)"):
        env.rollout_returns(obs0, torch.zeros(5, 3, 1))
    with pytest.raises(ValueError, match=r"model: .*expected .*\(5, 2\)"):
        env.step(obs0, torch.zeros(5, 1))


@pytest.mark.parametrize("kind", sorted(BAD_OUTPUTS))
def test_mcts_checks_the_model_output(kind):
    env = ModelEnv(BAD_OUTPUTS[kind], reward_fn=reward_fn)
    planner = MCTSPlanner(env, horizon=2, action_low=[-1.0], action_high=[1.0], simulations=4)
    with pytest.raises(ValueError, match=r"model: .*expected .*\(B, obs_dim\)"):
        planner.plan(torch.tensor([0.1, -0.2]))


def test_reward_output_is_checked():
    env = ModelEnv(lambda o, a: o, reward_fn=lambda o, a, n: n)  # (B, obs_dim): wrong
    with pytest.raises(ValueError, match=r"reward_fn: .*expected .*\(5,\)"):
        env.rollout_returns(torch.zeros(5, 2), torch.zeros(5, 3, 1))


def test_termination_output_is_checked():
    env = ModelEnv(lambda o, a: o, reward_fn=reward_fn, termination_fn=lambda o, a, n: n)
    with pytest.raises(ValueError, match=r"termination_fn: .*expected .*\(5,\)"):
        env.rollout_returns(torch.zeros(5, 2), torch.zeros(5, 3, 1))


class BadEnsemble:
    num_members = 2

    def predict(self, obs, act):
        raise NotImplementedError

    def sample(self, obs, act, generator=None):
        return obs[..., :1], None  # wrong: (E, N, 1) instead of (E, N, obs_dim)


@pytest.mark.parametrize("propagation", ["tsinf", "ts1", "random_model"])
def test_ensemble_sample_output_is_checked(propagation):
    env = ModelEnv(BadEnsemble(), reward_fn=reward_fn, propagation=propagation)
    with pytest.raises(ValueError, match=r"model.sample: .*expected .*\(E, N, obs_dim\)"):
        env.rollout_returns(torch.zeros(4, 2), torch.zeros(4, 3, 1))


def test_numpy_model_is_not_accepted_silently():
    env = ModelEnv(lambda o, a: np.asarray(o), reward_fn=reward_fn)
    with pytest.raises(ValueError, match="numpy.ndarray"):
        env.rollout(torch.zeros(2, 2), torch.zeros(2, 1, 1))


# ---------------------------------------------------------------------- horizon 0
@pytest.mark.parametrize("ensemble", [False, True])
def test_horizon_zero_gives_an_empty_rollout(ensemble):
    model = make_model() if ensemble else (lambda o, a: o)
    env = ModelEnv(model, reward_fn=reward_fn)
    obs0 = torch.randn(5, 2)
    ro = env.rollout(obs0, torch.zeros(5, 0, 1))
    assert ro.obs.shape == (5, 1, 2) and torch.equal(ro.obs[:, 0], obs0)
    assert ro.actions.shape == (5, 0, 1)
    assert ro.rewards.shape == (5, 0) and ro.terminated.shape == (5, 0)
    assert ro.diverged.shape == (5,) and not ro.diverged.any()
    assert torch.equal(ro.returns(), torch.zeros(5))
    assert torch.equal(ro.returns(0.9), torch.zeros(5))
    res = env.rollout_returns(obs0, torch.zeros(5, 0, 1))
    assert torch.equal(res.returns, torch.zeros(5)) and not res.diverged.any()


@pytest.mark.parametrize("horizon", [0, -1, 1.5, True, None])
def test_policy_rollout_rejects_bad_horizon(horizon):
    """Closed loop needs H >= 1 (with H = 0 the policy is never called, so act_dim is unknown)."""
    env = ModelEnv(lambda o, a: o, reward_fn=reward_fn)
    with pytest.raises(ValueError, match="horizon"):
        env.rollout(torch.zeros(2, 2), policy=lambda o: torch.zeros(2, 1), horizon=horizon)


@pytest.mark.parametrize("propagation", PROPAGATIONS)
def test_diverging_particles_with_a_learned_reward(propagation):
    model = make_model(nan_above_threshold, learn_reward=True)
    env = ModelEnv(model, propagation=propagation)
    assert env.use_learned_reward
    res = env.rollout_returns(
        start_states(), 0.1 * torch.ones(8, 4, 1), generator=torch.Generator().manual_seed(0)
    )
    assert res.diverged.tolist() == BAD.tolist()
    assert torch.isfinite(res.returns[~BAD]).all()


def test_bfloat16_planning_with_one_nan_member():
    model = nan_member(make_model())
    env = ModelEnv(model, reward_fn=reward_fn, propagation="tsinf")
    objective = SequenceObjective(env, num_particles=1, precision="bfloat16")
    planner = RandomShootingPlanner(
        objective, horizon=3, action_low=[-1.0], action_high=[1.0], population=16
    )
    res = planner.plan(torch.tensor([0.1, -0.2]), generator=torch.Generator().manual_seed(0))
    assert math.isfinite(res.value)


@pytest.mark.parametrize("propagation", PROPAGATIONS)
def test_branch_free_path_equals_the_cpu_path(monkeypatch, propagation):
    """The accelerator path (mask every step, never read a flag back) gives the CPU results."""
    import mbrl.models.model_env as me

    model = make_model(nan_above_threshold)
    env = ModelEnv(
        model,
        reward_fn=reward_fn,
        termination_fn=lambda o, a, n: n[..., 1] > 0.3,
        propagation=propagation,
    )
    obs0, actions = start_states(), 0.1 * torch.ones(8, 5, 1)

    def run():
        ro = env.rollout(obs0, actions, generator=torch.Generator().manual_seed(0))
        res = env.rollout_returns(obs0, actions, generator=torch.Generator().manual_seed(0))
        return ro, res

    ro_cpu, res_cpu = run()
    assert ro_cpu.terminated.any() and ro_cpu.diverged.any()
    monkeypatch.setattr(me, "_branch_free", lambda device: True)
    ro_acc, res_acc = run()
    for a, b in zip(
        (ro_cpu.obs, ro_cpu.rewards, ro_cpu.terminated, ro_cpu.diverged, *res_cpu[:2]),
        (ro_acc.obs, ro_acc.rewards, ro_acc.terminated, ro_acc.diverged, *res_acc[:2]),
        strict=True,
    ):
        torch.testing.assert_close(a, b, equal_nan=True)


@pytest.mark.parametrize("propagation", ["tsinf", "ts1"])
@pytest.mark.parametrize("batch", [1, 2, 3, 5])
def test_fewer_particles_than_members(propagation, batch):
    """B < E (e.g. MPPI scoring its single mean sequence): padding cycles over the B rows."""
    model = make_model()  # 4 members
    env = ModelEnv(model, reward_fn=reward_fn, propagation=propagation)
    obs0 = torch.randn(batch, 2, generator=torch.Generator().manual_seed(0))
    actions = torch.zeros(batch, 3, 1)
    ro = env.rollout(obs0, actions, generator=torch.Generator().manual_seed(1))
    assert ro.obs.shape == (batch, 4, 2) and torch.isfinite(ro.obs).all()
    res = env.rollout_returns(obs0, actions, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(res.returns, ro.returns())
    if propagation == "tsinf":
        assert ro.member.tolist() == [b % 4 for b in range(batch)]
        # particle b follows member b % 4: its first step is a draw from that member
        pred = model.predict(obs0, actions[:, 0])
        for b in range(batch):
            dev = (ro.obs[b, 1] - pred.next_obs_mean[b % 4, b]).abs()
            assert (dev <= 6 * pred.next_obs_var[b % 4, b].sqrt()).all()
    closed = env.rollout(obs0, policy=lambda o: torch.zeros(o.shape[0], 1), horizon=2)
    assert closed.obs.shape == (batch, 3, 2)
