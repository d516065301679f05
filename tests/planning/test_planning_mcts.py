"""MCTS: UCT on a toy tree, cart-pole balancing (discrete), pendulum swing-up (continuous)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from envs import get_task
from mbrl.models.model_env import ModelEnv
from mbrl.planning import MCTSPlanner, make_planner, planner_config


def _trap_model(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """State ``s``: 0 at the root; the first action ``a`` moves to branch ``a + 1`` for good."""
    return torch.where(obs == 0, act + 1.0, obs)


def _trap_reward(obs, act, next_obs):
    """Root: action 0 pays 1 now, action 1 pays 0. Branch 1 then pays -2 per step, branch 2 +1."""
    s = obs[..., 0]
    root = torch.where(act[..., 0] == 0, 1.0, 0.0)
    later = torch.where(s == 1, -2.0, 1.0)
    return torch.where(s == 0, root, later)


@pytest.mark.parametrize("leaf_batch", [1, 4])
@pytest.mark.parametrize("rollout_horizon", [0, 3])
def test_uct_looks_past_the_greedy_action(leaf_batch, rollout_horizon):
    env = ModelEnv(_trap_model, reward_fn=_trap_reward)
    planner = MCTSPlanner(
        env,
        3,
        0.0,
        1.0,
        num_actions=2,
        simulations=40,
        rollout_horizon=rollout_horizon,
        rollouts_per_leaf=2,
        leaf_batch=leaf_batch,
    )
    res = planner.plan(torch.zeros(1), generator=torch.Generator().manual_seed(0))
    assert res.actions.shape == (3, 1)
    assert float(res.actions[0, 0]) == 1.0  # greedy would take 0 (reward 1, then -2 per step)
    # value: mean backed-up return of the chosen child; the best return is 0 + 1 + 1 = 2 in the
    # tree, plus up to 3 from a rollout below it; early (truncated) evaluations lower the mean
    best = 2.0 + rollout_horizon
    assert 0.5 * best < res.value <= best + 1e-12
    # a discrete expansion evaluates all (2) children: at most num_actions - 1 extra
    assert 40 <= res.info["simulations"] <= 41


def test_uct_picks_best_of_three_one_step():
    env = ModelEnv(
        lambda o, a: o, reward_fn=lambda o, a, n: torch.tensor([0.0, 1.0, 0.5])[a[..., 0].long()]
    )
    planner = MCTSPlanner(env, 1, 0.0, 2.0, num_actions=3, simulations=60, rollout_horizon=0)
    res = planner.plan(torch.zeros(1), generator=torch.Generator().manual_seed(0))
    assert float(res.actions[0, 0]) == 1.0 and res.value == pytest.approx(1.0)


def test_progressive_widening_limits_children():
    env = ModelEnv(lambda o, a: o + a, reward_fn=lambda o, a, n: -((n[..., 0] - 0.3) ** 2))
    planner = MCTSPlanner(
        env,
        2,
        -1.0,
        1.0,
        simulations=100,
        rollout_horizon=0,
        widening_k=1.0,
        widening_alpha=0.5,
        leaf_batch=1,
    )
    res = planner.plan(torch.zeros(1), generator=torch.Generator().manual_seed(0))
    assert 2 <= res.info["root_children"] <= math.ceil(100**0.5)
    assert (res.actions >= -1).all() and (res.actions <= 1).all()
    assert abs(float(res.actions[0, 0]) - 0.3) < 0.35  # moves toward the rewarding state


def test_warm_start_is_tried_first_continuous():
    env = ModelEnv(lambda o, a: o + a, reward_fn=lambda o, a, n: -((n[..., 0] - 0.3) ** 2))
    planner = MCTSPlanner(env, 2, -1.0, 1.0, simulations=1, rollout_horizon=0)
    init = torch.tensor([[0.3], [0.0]])
    res = planner.plan(
        torch.zeros(1), init_actions=init, generator=torch.Generator().manual_seed(0)
    )
    assert float(res.actions[0, 0]) == pytest.approx(0.3)


def test_cartpole_discrete_balances_200_steps_with_true_dynamics():
    task = get_task("cartpole-discrete")
    cfg = planner_config(
        "mcts",
        horizon=10,
        simulations=10,
        rollout_horizon=10,
        rollouts_per_leaf=4,
    )
    planner = make_planner(cfg, task.dynamics_fn, task)
    env = task.make_env()
    env.reset(seed=0)
    gen = torch.Generator().manual_seed(0)
    for t in range(200):
        state = torch.as_tensor(env.unwrapped.state, dtype=torch.float64)
        res = planner.plan(state, generator=gen)
        _, _, terminated, truncated, _ = env.step(int(res.actions[0, 0]))
        assert not terminated, f"pole fell at step {t}"
    # random actions drop the pole within ~20-40 steps
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    steps = 0
    for steps in range(1, 201):  # noqa: B007
        if env.step(int(rng.integers(2)))[2]:
            break
    assert steps < 100


def _episode_return(task, act_fn, steps: int) -> tuple[float, np.ndarray]:
    env = task.make_env()
    obs, _ = env.reset(seed=0)
    total = 0.0
    for _ in range(steps):
        obs, r, *_ = env.step(act_fn(obs))
        total += float(r)
    return total, obs


def test_pendulum_swingup_beats_random():
    task = get_task("pendulum-swingup")
    cfg = planner_config(
        "mcts",
        horizon=15,
        simulations=60,
        rollout_horizon=10,
        rollouts_per_leaf=4,
    )
    planner = make_planner(cfg, task.dynamics_fn, task)
    gen = torch.Generator().manual_seed(0)
    prev = {"plan": None}

    def mcts_act(obs):
        res = planner.plan(torch.as_tensor(obs, dtype=torch.float64), prev["plan"], gen)
        prev["plan"] = torch.cat([res.actions[1:], res.actions[-1:]])
        return res.actions[0].numpy()

    rng = np.random.default_rng(0)
    mcts_ret, final = _episode_return(task, mcts_act, 100)
    rand_ret, _ = _episode_return(task, lambda o: rng.uniform(-2, 2, size=1), 100)
    assert mcts_ret > rand_ret + 250, (mcts_ret, rand_ret)
    # ends upright (angle 0 mod 2 pi)
    assert abs(math.remainder(float(final[0]), 2 * math.pi)) < 0.3


def test_mcts_ensemble_needs_expectation_and_validates():
    class Ens:
        num_members = 2

        def predict(self, o, a):
            raise AssertionError

        def sample(self, o, a, generator=None):
            raise AssertionError

    env = ModelEnv(Ens(), reward_fn=lambda o, a, n: n[..., 0], propagation="tsinf")
    with pytest.raises(ValueError, match="expectation"):
        MCTSPlanner(env, 3, 0.0, 1.0, num_actions=2)
    env = ModelEnv(lambda o, a: o, reward_fn=lambda o, a, n: n[..., 0])
    with pytest.raises(ValueError, match="num_actions"):
        MCTSPlanner(env, 3, [0.0, 0.0], [1.0, 1.0], num_actions=2)
    with pytest.raises(ValueError, match="simulations"):
        MCTSPlanner(env, 3, 0.0, 1.0, simulations=0)


def test_mcts_nan_child_is_never_chosen():
    def model(o, a):
        return torch.where(a == 0, o * math.nan, o + 1)

    env = ModelEnv(model, reward_fn=lambda o, a, n: 5.0 - a[..., 0])  # action 0 looks better
    planner = MCTSPlanner(env, 2, 0.0, 1.0, num_actions=2, simulations=20, rollout_horizon=0)
    res = planner.plan(torch.zeros(1), generator=torch.Generator().manual_seed(0))
    assert float(res.actions[0, 0]) == 1.0 and math.isfinite(res.value)
    all_nan = ModelEnv(lambda o, a: o * math.nan, reward_fn=lambda o, a, n: n[..., 0])
    planner = MCTSPlanner(all_nan, 2, 0.0, 1.0, num_actions=2, simulations=5)
    with pytest.raises(RuntimeError, match="non-finite"):
        planner.plan(torch.zeros(1), generator=torch.Generator().manual_seed(0))


def test_continuous_nan_children_are_replaced():
    """Actions above 0 diverge; widening keeps drawing new actions instead of giving up."""

    def model(o, a):
        return torch.where(a > 0, o * math.nan, o + a)

    env = ModelEnv(model, reward_fn=lambda o, a, n: n[..., 0])
    planner = MCTSPlanner(env, 2, -1.0, 1.0, simulations=40, rollout_horizon=0, leaf_batch=1)
    init = torch.full((2, 1), 0.5)  # the warm start's first child diverges
    res = planner.plan(torch.zeros(1), init, generator=torch.Generator().manual_seed(3))
    assert float(res.actions[0, 0]) <= 0 and math.isfinite(res.value)
    assert res.info["root_children"] >= 2


def test_mcts_same_seed_same_plan():
    task = get_task("pendulum-swingup")
    cfg = planner_config("mcts", horizon=5, simulations=30, rollout_horizon=3)
    planner = make_planner(cfg, task.dynamics_fn, task)
    obs = torch.tensor([3.0, 0.0], dtype=torch.float64)
    a, b, c = (planner.plan(obs, generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2))
    assert torch.equal(a.actions, b.actions) and a.value == b.value
    assert not torch.equal(a.actions, c.actions)
