"""SAC: squashed log-density, batched critics, Polyak targets, temperature, a bandit, save/load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import (
    AffineTransform,
    Independent,
    Normal,
    TanhTransform,
    TransformedDistribution,
)

from mbrl.agents.networks import BatchedCritics, GaussianPolicy, squash_log_det
from mbrl.agents.sac import SAC, SACConfig, fused_adam_step
from mbrl.data.replay_buffer import Batch


def _policy(obs_dim=3, act_dim=2, low=(-2.0, 0.0), high=(1.0, 4.0), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return GaussianPolicy(
        obs_dim, act_dim, hidden=32, action_low=low, action_high=high, generator=gen
    )


def _random_batch(n, obs_dim, act_dim, rng, low=-1.0, high=1.0):
    return Batch(
        rng.standard_normal((n, obs_dim)).astype(np.float32),
        rng.uniform(low, high, (n, act_dim)).astype(np.float32),
        rng.standard_normal((n, obs_dim)).astype(np.float32),
        rng.standard_normal(n).astype(np.float32),
        rng.random(n) < 0.1,
        np.zeros(n, bool),
    )


# ---------------------------------------------------------------------- policy density
def test_log_prob_matches_torch_transformed_distribution():
    """Change of variables against torch.distributions (tanh then affine)."""
    pol = _policy()
    obs = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        act, logp = pol(obs, generator=gen)
        mean, log_std = pol.mean_log_std(obs)
        ref = TransformedDistribution(
            Independent(Normal(mean, log_std.exp()), 1),
            [TanhTransform(), AffineTransform(pol.center, pol.half_range, event_dim=1)],
        )
        ref_logp = ref.log_prob(act)
    assert torch.all(act >= torch.tensor([-2.0, 0.0])) and torch.all(
        act <= torch.tensor([1.0, 4.0])
    )
    torch.testing.assert_close(logp, ref_logp, rtol=1e-4, atol=1e-3)
    # log_prob of given actions agrees with the sampling path
    torch.testing.assert_close(pol.log_prob(obs, act), logp, rtol=1e-4, atol=1e-3)


def test_log_prob_matches_histogram_density():
    """Monte-Carlo: a histogram of 400k draws of a 1-D policy matches exp(log_prob)."""
    gen = torch.Generator().manual_seed(0)
    pol = GaussianPolicy(1, 1, hidden=8, action_low=[-3.0], action_high=[3.0], generator=gen)
    with torch.no_grad():
        pol.net[-1].bias.copy_(torch.tensor([0.4, math.log(0.8)]))  # mean 0.4, std 0.8
        pol.net[-1].weight.zero_()
        obs = torch.zeros(400_000, 1)
        act, _ = pol(obs, generator=torch.Generator().manual_seed(1))
        edges = torch.linspace(-2.7, 2.7, 28)
        counts = torch.histc(act[:, 0], bins=27, min=-2.7, max=2.7)
        width = float(edges[1] - edges[0])
        centers = (edges[:-1] + edges[1:]) / 2
        dens = pol.log_prob(torch.zeros(27, 1), centers[:, None]).exp()
    empirical = counts / (act.shape[0] * width)
    # bins are narrow relative to the density's curvature; 3 % plus sampling noise
    assert torch.allclose(empirical, dens, rtol=0.04, atol=0.004), (empirical, dens)


def test_squash_log_det_is_stable_where_naive_form_fails():
    u = torch.tensor([[0.0], [3.0], [20.0], [-40.0]], dtype=torch.float32)
    got = squash_log_det(u)
    exact = torch.log1p(-(torch.tanh(u.double()) ** 2)).squeeze(-1)  # float64 reference
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got[:2].double(), exact[:2], rtol=1e-5, atol=1e-6)
    # |u| large: log(1 - tanh^2) ~ log 4 - 2|u|
    torch.testing.assert_close(got[2:].double(), math.log(4.0) - 2 * u[2:, 0].abs().double())
    naive = torch.log(1 - torch.tanh(u) ** 2).squeeze(-1)
    assert not torch.isfinite(naive[2:]).any()  # the case the stable form exists for


def test_deterministic_action_is_scaled_tanh_mean():
    pol = _policy()
    obs = torch.randn(5, 3)
    with torch.no_grad():
        act, _ = pol(obs, deterministic=True)
        mean, _ = pol.mean_log_std(obs)
    torch.testing.assert_close(act, pol.center + pol.half_range * torch.tanh(mean))


def test_policy_sampling_is_seeded():
    pol = _policy()
    obs = torch.randn(4, 3)
    a1, _ = pol(obs, generator=torch.Generator().manual_seed(5))
    a2, _ = pol(obs, generator=torch.Generator().manual_seed(5))
    a3, _ = pol(obs, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a1, a2) and not torch.equal(a1, a3)


# ---------------------------------------------------------------------- critics
def test_batched_critics_equal_separate_networks():
    gen = torch.Generator().manual_seed(0)
    crit = BatchedCritics(4, 2, num_critics=3, hidden=16, num_layers=2, generator=gen)
    obs, act = torch.randn(10, 4), torch.randn(10, 2)
    q = crit(obs, act)
    assert q.shape == (3, 10)
    x = torch.cat([obs, act], -1)
    for k in range(3):
        h = x
        for i, (w, b) in enumerate(zip(crit.weights, crit.biases, strict=True)):
            h = h @ w[k] + b[k, 0]
            if i < 2:
                h = torch.relu(h)
        torch.testing.assert_close(q[k], h[:, 0])


def test_detached_critic_weights_pass_gradient_to_actions_only():
    crit = BatchedCritics(3, 2, hidden=8)
    act = torch.randn(5, 2, requires_grad=True)
    crit(torch.randn(5, 3), act, detach_weights=True).sum().backward()
    assert act.grad is not None and act.grad.abs().sum() > 0
    assert all(p.grad is None for p in crit.parameters())


# ---------------------------------------------------------------------- SAC update
def test_polyak_target_update_is_exact():
    cfg = SACConfig(hidden=16, tau=0.05)
    agent = SAC(3, 2, config=cfg)
    rng = np.random.default_rng(0)
    for _ in range(3):
        agent.update(_random_batch(32, 3, 2, rng))
    before = [t.clone() for t in agent.critics_target.parameters()]
    agent.update(_random_batch(32, 3, 2, rng))
    after_online = list(agent.critics.parameters())
    for old, new, online in zip(
        before, agent.critics_target.parameters(), after_online, strict=True
    ):
        expected = (1 - cfg.tau) * old + cfg.tau * online.detach()
        torch.testing.assert_close(new, expected, rtol=0, atol=1e-7)
        assert not torch.equal(new, old)


def test_update_matches_autograd_reference_losses():
    """Each parameter group gets exactly the gradient of its own loss (one backward)."""
    cfg = SACConfig(hidden=16, seed=3)
    agent = SAC(3, 2, action_low=[-2, -1], action_high=[2, 1], config=cfg)
    batch = _random_batch(40, 3, 2, np.random.default_rng(1), low=-1.0, high=1.0)
    state = agent.update_generator.get_state()
    obs, act, nxt, rew, term = (torch.as_tensor(x) for x in batch[:5])
    act_n = (act - torch.tensor([0.0, 0.0])) / torch.tensor([2.0, 1.0])
    alpha = agent.log_alpha.detach().exp()
    # the agent draws all its noise at once: rows :N at next_obs, rows N: at obs
    eps = torch.randn((80, 2), generator=torch.Generator().set_state(state))

    def draw(x, e):  # reparameterised tanh-Gaussian, naive change of variables
        mean, log_std = agent.policy.mean_log_std(x)
        u = mean + log_std.exp() * e
        normal = Normal(mean, log_std.exp()).log_prob(u).sum(-1)
        return torch.tanh(u), normal - torch.log(1 - torch.tanh(u) ** 2).sum(-1)

    with torch.no_grad():
        y2, lp2 = draw(nxt, eps[:40])
        q2 = agent.critics_target(nxt, y2).min(0).values
        y = rew + cfg.gamma * (~term).float() * (q2 - alpha * lp2)
    critic_loss = sum(0.5 * ((q - y) ** 2).mean() for q in agent.critics(obs, act_n))
    g_critic = torch.autograd.grad(critic_loss, list(agent.critics.parameters()))
    y1, lp1 = draw(obs, eps[40:])
    q1 = agent.critics(obs, y1).min(0).values
    actor_loss = (alpha * lp1 - q1).mean()
    g_actor = torch.autograd.grad(actor_loss, list(agent.policy.parameters()))
    g_alpha = -(lp1.detach() + agent.target_entropy).mean()
    # run the real update with the optimiser step disabled, then compare the gradients
    step = agent._optimizer_step
    agent._optimizer_step = lambda: None  # type: ignore[method-assign]
    metrics = agent.update(batch)
    agent._optimizer_step = step  # type: ignore[method-assign]
    assert metrics["critic_loss"] == pytest.approx(critic_loss.item(), rel=1e-5)
    assert metrics["actor_loss"] == pytest.approx(actor_loss.item(), rel=1e-5)
    for p, g in zip(agent.critics.parameters(), g_critic, strict=True):
        torch.testing.assert_close(p.grad, g)
    for p, g in zip(agent.policy.parameters(), g_actor, strict=True):
        torch.testing.assert_close(p.grad, g)
    assert float(agent.log_alpha.grad) == pytest.approx(float(g_alpha), rel=1e-5)


@pytest.mark.parametrize("target, direction", [(-20.0, -1), (20.0, 1)])
def test_temperature_moves_toward_target_entropy(target, direction):
    """Entropy above target: alpha falls; below target: alpha rises."""
    agent = SAC(3, 2, config=SACConfig(hidden=16, target_entropy=target, alpha_lr=1e-2))
    rng = np.random.default_rng(0)
    alphas = [agent.alpha]
    for _ in range(10):
        agent.update(_random_batch(32, 3, 2, rng))
        alphas.append(agent.alpha)
    steps = np.sign(np.diff(alphas))
    assert np.all(steps == direction), alphas


def test_fixed_temperature_stays():
    agent = SAC(3, 2, config=SACConfig(hidden=16, learn_alpha=False, init_alpha=0.3))
    agent.update(_random_batch(32, 3, 2, np.random.default_rng(0)))
    assert agent.alpha == pytest.approx(0.3)


def test_bandit_optimal_action():
    """1-D bandit r = -(a - 0.3)^2 with gamma 0 on bounds [-2, 2]: SAC finds a = 0.3, and
    the temperature drives the policy's entropy to the target."""
    cfg = SACConfig(hidden=32, gamma=0.0, actor_lr=3e-3, critic_lr=3e-3, alpha_lr=2e-2, seed=1)
    agent = SAC(1, 1, action_low=[-2.0], action_high=[2.0], config=cfg)
    rng = np.random.default_rng(0)
    obs = np.zeros((64, 1), np.float32)
    flags = np.ones(64, bool), np.zeros(64, bool)
    for _ in range(800):
        act = rng.uniform(-2.0, 2.0, (64, 1)).astype(np.float32)
        agent.update(Batch(obs, act, obs, -((act[:, 0] - 0.3) ** 2), *flags))
    best = agent.act(np.zeros(1), deterministic=True)
    assert best.shape == (1,) and best.dtype == np.float32
    assert abs(float(best[0]) - 0.3) < 0.05, best
    # entropy of the normalised action: close to the target -act_dim = -1
    with torch.no_grad():
        _, logp = agent.policy.sample_squashed(torch.zeros(20_000, 1))
    assert float(-logp.mean()) == pytest.approx(-1.0, abs=0.25)


def _chain_batch(rng, n):
    """Two states: at s=0, a > 0 moves to s=1 (reward 0), a <= 0 ends with reward 0.5;
    at s=1 every action ends with reward 1."""
    s = (rng.random(n) < 0.5).astype(np.float32)
    a = rng.uniform(-1, 1, n).astype(np.float32)
    go = (s == 0) & (a > 0)
    nxt = np.where(go, 1.0, s).astype(np.float32)
    r = np.where(s == 1, 1.0, np.where(go, 0.0, 0.5)).astype(np.float32)
    return Batch(s[:, None], a[:, None], nxt[:, None], r, ~go, np.zeros(n, bool))


@pytest.mark.parametrize("gamma", [0.9, 0.3])
def test_bootstrapped_values_on_a_two_state_chain(gamma):
    """Moving on is worth gamma * 1, stopping 0.5: SAC's Q matches both (temperature small by
    then) and the greedy action switches sign with gamma."""
    cfg = SACConfig(hidden=32, gamma=gamma, actor_lr=3e-3, critic_lr=3e-3, alpha_lr=2e-2, tau=0.05)
    agent = SAC(1, 1, config=cfg)
    rng = np.random.default_rng(0)
    for _ in range(600):
        agent.update(_chain_batch(rng, 64))
    with torch.no_grad():
        q = agent.critics(torch.zeros(2, 1), torch.tensor([[0.5], [-0.5]])).min(0).values
    assert float(q[0]) == pytest.approx(gamma, abs=0.05)
    assert float(q[1]) == pytest.approx(0.5, abs=0.05)
    a0 = float(agent.act(np.zeros(1), deterministic=True)[0])
    assert (a0 > 0.5) if gamma > 0.5 else (a0 < -0.5)


def test_act_shapes_bounds_and_seeding():
    agent = SAC(3, 2, action_low=[0, -5], action_high=[1, 5], config=SACConfig(hidden=8))
    many = agent.act(np.zeros((100, 3)))
    assert many.shape == (100, 2)
    assert np.all(many >= [0, -5]) and np.all(many <= [1, 5])
    a1 = agent.act(np.ones(3), generator=torch.Generator().manual_seed(0))
    a2 = agent.act(np.ones(3), generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(a1, a2)
    d1 = agent.act(np.ones(3), deterministic=True)
    np.testing.assert_array_equal(d1, agent.act(np.ones(3), deterministic=True))


def test_same_seed_same_updates():
    def run():
        agent = SAC(3, 2, config=SACConfig(hidden=8, seed=4))
        rng = np.random.default_rng(0)
        return [agent.update(_random_batch(16, 3, 2, rng)) for _ in range(3)]

    assert run() == run()


# ---------------------------------------------------------------------- save / load
def test_save_load_round_trip_resumes_exactly(tmp_path):
    cfg = SACConfig(hidden=8, seed=2)
    agent = SAC(3, 2, action_low=[-1, 0], action_high=[1, 2], config=cfg)
    rng = np.random.default_rng(0)
    batches = [_random_batch(16, 3, 2, rng, 0.0, 1.0) for _ in range(4)]
    for b in batches[:2]:
        agent.update(b)
    path = tmp_path / "sac.pt"
    agent.save(path)
    loaded = SAC.load(path)
    assert loaded.num_updates == 2 and loaded.config == cfg
    np.testing.assert_array_equal(loaded.action_low, agent.action_low)
    # continuing both gives identical metrics, weights and actions (optimiser, generators too)
    for b in batches[2:]:
        assert agent.update(b) == loaded.update(b)
    for p, q in zip(agent.policy.parameters(), loaded.policy.parameters(), strict=True):
        assert torch.equal(p, q)
    np.testing.assert_array_equal(agent.act(np.ones(3)), loaded.act(np.ones(3)))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temporary file


def test_load_state_dict_rejects_mismatch():
    a = SAC(3, 2, config=SACConfig(hidden=8))
    with pytest.raises(ValueError, match="obs_dim"):
        SAC(4, 2, config=SACConfig(hidden=8)).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="config"):
        SAC(3, 2, config=SACConfig(hidden=8, tau=0.1)).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="format_version"):
        a.load_state_dict({"format_version": 99})


def test_load_rejects_foreign_file(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a SAC checkpoint"):
        SAC.load(path)


# ---------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"gamma": 1.5}, "gamma"),
        ({"tau": 0.0}, "tau"),
        ({"actor_lr": -1.0}, "actor_lr"),
        ({"critic_lr": float("nan")}, "critic_lr"),
        ({"hidden": 0}, "hidden"),
        ({"num_critics": 0}, "num_critics"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"init_alpha": 0.0}, "init_alpha"),
        ({"target_entropy": float("inf")}, "target_entropy"),
        ({"activation": "nope"}, "activation"),
        ({"learn_alpha": 1}, "learn_alpha"),
    ],
)
def test_bad_config_names_field(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SACConfig(**kwargs)


def test_bad_agent_arguments_name_them():
    with pytest.raises(ValueError, match="action_low"):
        SAC(2, 2, action_low=[1, 1], action_high=[0, 2])
    with pytest.raises(ValueError, match="action_high"):
        SAC(2, 2, action_low=[0, 0], action_high=[1, 2, 3])
    with pytest.raises(ValueError, match="action_low"):
        SAC(2, 1, action_low=[float("nan")])
    with pytest.raises(ValueError, match="obs_dim"):
        SAC(0, 1)
    with pytest.raises(TypeError, match="config"):
        SAC(2, 1, config={"gamma": 0.9})  # type: ignore[arg-type]
    agent = SAC(2, 1, config=SACConfig(hidden=8))
    with pytest.raises(ValueError, match="obs"):
        agent.act(np.zeros(3))
    with pytest.raises(ValueError, match="obs"):
        agent.act(np.array([0.0, np.nan]))
    good = _random_batch(8, 2, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="batch.act"):
        agent.update(good._replace(act=np.zeros((8, 2), np.float32)))
    with pytest.raises(TypeError, match="batch"):
        agent.update({"obs": good.obs})
    bad = good._replace(reward=np.full(8, np.nan, np.float32))
    before = [p.clone() for p in agent.critics.parameters()]
    with pytest.raises(FloatingPointError, match="non-finite"):
        agent.update(bad)
    assert all(torch.equal(a, b) for a, b in zip(before, agent.critics.parameters(), strict=True))


def test_defaults_are_stated_once():
    cfg = SACConfig()
    assert (cfg.hidden, cfg.num_layers, cfg.batch_size) == (256, 2, 256)
    assert (cfg.actor_lr, cfg.critic_lr, cfg.alpha_lr) == (3e-4, 3e-4, 3e-4)
    assert (cfg.gamma, cfg.tau) == (0.99, 0.005)
    agent = SAC(5, 3)
    assert agent.config == cfg and agent.target_entropy == -3.0
    assert agent.policy.hidden == 256 and agent.critics.num_critics == 2


def test_for_task_uses_task_bounds():
    import envs

    task = envs.get_task("pendulum-swingup")
    agent = SAC.for_task(task, SACConfig(hidden=8))
    np.testing.assert_allclose(agent.action_low, task.action_low)
    np.testing.assert_allclose(agent.action_high, task.action_high)


@pytest.mark.parametrize(
    "log_std_max, num_layers",
    [(2.0, 2), (-1.0, 2), (2.0, 0), (2.0, 1), (2.0, 3)],  # -1: the clamp is active on some rows
)
def test_fast_path_equals_autograd_reference(log_std_max, num_layers):
    """The hand-written ReLU gradients (default) against autograd, over many updates."""
    cfg = SACConfig(hidden=32, seed=1, log_std_max=log_std_max, num_layers=num_layers)
    fast = SAC(5, 3, action_low=-2, action_high=2, config=cfg)
    ref = SAC(5, 3, action_low=-2, action_high=2, config=cfg)
    assert fast._fast_path
    rng = np.random.default_rng(0)
    for _ in range(25):
        batch = _random_batch(64, 5, 3, rng, -2.0, 2.0)
        m_fast, m_ref = fast.update(batch), ref.update(batch, reference=True)
        for key in m_fast:
            assert m_fast[key] == pytest.approx(m_ref[key], rel=1e-5, abs=1e-6), key
    nets = ("policy", "critics", "critics_target")
    for name in nets:
        for p, q in zip(
            getattr(fast, name).parameters(), getattr(ref, name).parameters(), strict=True
        ):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert fast.alpha == pytest.approx(ref.alpha, rel=1e-6)


def _raise(*args, **kwargs):
    raise AssertionError("Adam.step called")


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_fused_adam_step_equals_torch_adam_step(weight_decay):
    """The shortcut step is bit-identical to ``Adam.step`` and keeps its state format."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(5, 3, generator=gen), torch.randn(4, generator=gen), torch.randn(())]
    ours = [p.clone().requires_grad_(True) for p in params]
    ref = [p.clone().requires_grad_(True) for p in params]
    groups = lambda ps: [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.05}]  # noqa: E731
    kw = {"lr": 0.01, "weight_decay": weight_decay, "fused": True}
    opt_ours, opt_ref = torch.optim.Adam(groups(ours), **kw), torch.optim.Adam(groups(ref), **kw)
    for _ in range(6):
        grads = [torch.randn(p.shape, generator=gen) for p in params]
        for p, q, g in zip(ours, ref, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        fused_adam_step(opt_ours)  # the first call falls back to step() (no state yet)
        opt_ref.step()
        opt_ours.step = _raise  # type: ignore[method-assign]  # later calls: the shortcut
    for p, q in zip(ours, ref, strict=True):
        assert torch.equal(p, q)
    s_ours, s_ref = opt_ours.state_dict(), opt_ref.state_dict()
    assert s_ours["param_groups"] == s_ref["param_groups"]
    for i, st in s_ref["state"].items():
        assert st.keys() == s_ours["state"][i].keys()
        assert all(torch.equal(st[k], s_ours["state"][i][k]) for k in st)
    assert float(s_ref["state"][0]["step"]) == 6


def test_other_activations_use_the_autograd_path():
    agent = SAC(3, 2, config=SACConfig(hidden=8, activation="silu"))
    assert not agent._fast_path
    metrics = agent.update(_random_batch(16, 3, 2, np.random.default_rng(0)))
    assert all(math.isfinite(v) for v in metrics.values())
