"""MuJoCo tasks on bad inputs: non-finite actions, NaN weights, low-precision tensors."""

import numpy as np
import pytest
import torch

import envs

TASKS = [
    "inverted-pendulum",
    "inverted-double-pendulum",
    "reacher",
    "pusher",
    "halfcheetah",
    "hopper",
    "walker2d",
    "swimmer",
    "ant",
    "ant-truncated",
]


@pytest.fixture(scope="module", params=TASKS)
def task(request):
    return envs.get_task(request.param)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action_raises_and_leaves_the_state(task, bad):
    env = task.make_env()
    obs, _ = env.reset(seed=0)
    action = np.zeros(task.act_dim)
    action[-1] = bad
    with pytest.raises(ValueError, match=r"action: contains NaN or inf"):
        env.step(action)
    # the physics was not touched: a valid step continues from the reset state
    obs2, reward, *_ = env.step(np.zeros(task.act_dim))
    assert np.isfinite(obs2).all() and np.isfinite(reward)
    ref = task.make_env()
    ref_obs, _ = ref.reset(seed=0)
    np.testing.assert_array_equal(ref_obs, obs)
    np.testing.assert_allclose(ref.step(np.zeros(task.act_dim))[0], obs2)
    env.close()
    ref.close()


def test_wrong_action_shape_and_type(task):
    env = task.make_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action: expected shape"):
        env.step(np.zeros(task.act_dim + 1))
    with pytest.raises(ValueError, match=r"action: expected numbers"):
        env.step(np.array(["a"] * task.act_dim))
    env.step(np.zeros(task.act_dim).tolist())  # a list of the right size is fine
    env.close()


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("halfcheetah", {"forward_reward_weight": float("nan")}, "forward_reward_weight"),
        ("halfcheetah", {"ctrl_cost_weight": float("inf")}, "ctrl_cost_weight"),
        ("hopper", {"healthy_reward": float("nan")}, "healthy_reward"),
        ("hopper", {"healthy_z_range": (float("nan"), 1.0)}, "healthy_z_range"),
        ("walker2d", {"healthy_angle_range": (-1.0, float("nan"))}, "healthy_angle_range"),
        ("reacher", {"reward_dist_weight": float("nan")}, "reward_dist_weight"),
        ("pusher", {"reward_near_weight": float("nan")}, "reward_near_weight"),
        ("ant", {"contact_cost_weight": float("nan")}, "contact_cost_weight"),
        ("ant", {"contact_force_range": (float("nan"), 1.0)}, "contact_force_range"),
        ("swimmer", {"reset_noise_scale": float("nan")}, "reset_noise_scale"),
        ("inverted-double-pendulum", {"healthy_reward": float("inf")}, "healthy_reward"),
        ("ant", {"ctrl_cost_weight": np.float64("nan")}, "ctrl_cost_weight"),
    ],
)
def test_non_finite_weights_rejected(name, kwargs, match):
    with pytest.raises(ValueError, match=f"{match}: expected"):
        envs.get_task(name, **kwargs)


def test_infinite_range_bounds_still_allowed():
    task = envs.get_task("hopper", healthy_state_range=(-float("inf"), float("inf")))
    assert task.info["env_params"]["healthy_state_range"][1] == float("inf")


@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_are_computed_in_float32(task, low):
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(256, task.obs_dim, generator=g)
    obs[:, 0] += 50.0  # HalfCheetah/Hopper/...: x about 50, where float16 spacing is 1/32
    nxt = obs + 0.2 * torch.randn(256, task.obs_dim, generator=g)
    act = torch.rand(256, task.act_dim, generator=g) * 2 - 1
    inputs = [x.to(low) for x in (obs, act, nxt)]
    reward = task.reward_fn(*inputs)
    assert reward.dtype == torch.float32
    # reference: the same (rounded) inputs in float64
    ref = task.reward_fn(*[x.double() for x in inputs])
    torch.testing.assert_close(reward.double(), ref, rtol=1e-6, atol=1e-5)
    term = task.termination_fn(*inputs)
    assert torch.equal(term, task.termination_fn(*[x.double() for x in inputs]))


def test_halfcheetah_forward_reward_at_x_50_in_float16():
    task = envs.get_task("halfcheetah")
    obs = torch.zeros(1, task.obs_dim, dtype=torch.float16)
    nxt = obs.clone()
    obs[0, 0], nxt[0, 0] = 50.0, 50.21875  # both exact in float16
    reward = task.reward_fn(obs, torch.zeros(1, task.act_dim, dtype=torch.float16), nxt)
    expected = 0.21875 / task.dt * task.info["env_params"]["forward_reward_weight"]
    assert reward.dtype == torch.float32
    assert abs(float(reward) - expected) < 1e-5
