"""MuJoCo v5 tasks: batched reward/termination functions against the environments themselves.

Run with ``-s`` to see the measured worst-case |reward_fn - env reward| and termination agreement.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import envs
from envs.mujoco_tasks.common import EnvFactory

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
GYM_IDS = {
    "inverted-pendulum": "InvertedPendulum-v5",
    "inverted-double-pendulum": "InvertedDoublePendulum-v5",
    "reacher": "Reacher-v5",
    "pusher": "Pusher-v5",
    "halfcheetah": "HalfCheetah-v5",
    "hopper": "Hopper-v5",
    "walker2d": "Walker2d-v5",
    "swimmer": "Swimmer-v5",
    "ant": "Ant-v5",
}
OBS_DIMS = {
    "inverted-pendulum": 4,
    "inverted-double-pendulum": 14,
    "reacher": 10,
    "pusher": 23,
    "halfcheetah": 18,
    "hopper": 18,
    "walker2d": 18,
    "swimmer": 10,
    "ant": 107,
    "ant-truncated": 29,
}
# Non-default Gymnasium parameters: the reward must stay exact for these too.
NON_DEFAULT = {
    "inverted-pendulum": {"reset_noise_scale": 0.1},
    "inverted-double-pendulum": {"healthy_reward": 4.0},
    "reacher": {"reward_dist_weight": 2.5, "reward_control_weight": 0.3},
    "pusher": {"reward_near_weight": 0.8, "reward_dist_weight": 1.7, "reward_control_weight": 0.05},
    "halfcheetah": {"forward_reward_weight": 2.0, "ctrl_cost_weight": 0.25},
    "hopper": {
        "forward_reward_weight": 1.5,
        "ctrl_cost_weight": 0.01,
        "healthy_reward": 2.0,
        "healthy_state_range": (-12.0, 12.0),  # beyond the +-10 clip: needs the raw qvel
        "healthy_z_range": (0.3, 2.5),
        "healthy_angle_range": (-1.5, 1.5),
        "terminate_when_unhealthy": False,
    },
    "walker2d": {
        "forward_reward_weight": 0.5,
        "ctrl_cost_weight": 0.01,
        "healthy_reward": 3.0,
        "healthy_z_range": (0.9, 1.9),
        "healthy_angle_range": (-0.8, 0.8),
        "terminate_when_unhealthy": False,
    },
    "swimmer": {"forward_reward_weight": 3.0, "ctrl_cost_weight": 0.01},
    "ant": {
        "forward_reward_weight": 1.3,
        "ctrl_cost_weight": 0.2,
        "contact_cost_weight": 2e-3,
        "healthy_reward": 0.5,
        "healthy_z_range": (0.3, 0.95),
        "contact_force_range": (-0.5, 0.5),
        "main_body": "torso",
    },
    "ant-truncated": {
        "ctrl_cost_weight": 0.1,
        "healthy_reward": 2.0,
        "healthy_z_range": (0.3, 1.0),
        "terminate_when_unhealthy": False,
    },
}
REWARD_ATOL = 1e-5

_CACHE: dict[tuple[str, str], dict[str, object]] = {}


def _collect(task: envs.Task, n_steps: int, seed: int) -> dict[str, object]:
    """Random-action transitions ``(obs, act, next_obs, reward, terminated)`` as numpy arrays."""
    rng = np.random.default_rng(seed)
    env = task.make_env()
    obs, _ = env.reset(seed=seed)
    rows: dict[str, list] = {k: [] for k in ("obs", "act", "next_obs", "reward", "terminated")}
    episodes = 1
    for _ in range(n_steps):
        act = rng.uniform(task.action_low, task.action_high)
        next_obs, reward, terminated, truncated, _ = env.step(act)
        for key, value in zip(rows, (obs, act, next_obs, reward, terminated), strict=True):
            rows[key].append(value)
        if terminated or truncated:
            obs, _ = env.reset()
            episodes += 1
        else:
            obs = next_obs
    env.close()
    data: dict[str, object] = {k: np.asarray(v) for k, v in rows.items()}
    data["episodes"] = episodes
    return data


def _rollout(name: str, variant: str) -> tuple[envs.Task, dict[str, object]]:
    """Cached rollouts: ``"default"`` (2,000 steps, 400-step episodes) or ``"non-default"``."""
    if variant == "default":
        task = envs.get_task(name, max_episode_steps=400)
        n_steps = 2000
    else:
        task = envs.get_task(name, max_episode_steps=300, **NON_DEFAULT[name])
        n_steps = 1200
    key = (name, variant)
    if key not in _CACHE:
        _CACHE[key] = _collect(task, n_steps, seed=TASKS.index(name) + 17)
    return task, _CACHE[key]


def _tensors(
    data: dict[str, object], dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, ...]:
    return tuple(torch.as_tensor(data[k], dtype=dtype) for k in ("obs", "act", "next_obs"))


def _compare(name: str, variant: str) -> None:
    task, data = _rollout(name, variant)
    obs, act, next_obs = _tensors(data)
    reward = task.reward_fn(obs, act, next_obs)
    terminated = task.termination_fn(obs, act, next_obs)
    assert reward.dtype == torch.float64 and reward.shape == (len(data["reward"]),)
    assert terminated.dtype == torch.bool and terminated.shape == reward.shape
    max_err = float(np.abs(reward.numpy() - data["reward"]).max())
    agreement = float((terminated.numpy() == data["terminated"]).mean())
    print(
        f"\n[{variant}] {name}: steps={len(reward)} episodes={data['episodes']} "
        f"terminations={int(data['terminated'].sum())} max|dreward|={max_err:.3e} "
        f"termination agreement={agreement:.4f}"
    )
    assert len(reward) >= 1000 and data["episodes"] >= 3
    assert max_err <= REWARD_ATOL
    assert agreement == 1.0


@pytest.mark.parametrize("name", TASKS)
def test_reward_and_termination_match_env(name: str) -> None:
    _compare(name, "default")


@pytest.mark.parametrize("name", TASKS)
def test_non_default_params_match_env(name: str) -> None:
    _compare(name, "non-default")


def test_healthy_checks_are_exercised() -> None:
    """The termination tests are not vacuous: every healthy-checked task terminated in them."""
    for name in ("inverted-pendulum", "inverted-double-pendulum", "hopper", "walker2d", "ant"):
        _, data = _rollout(name, "default")
        assert data["terminated"].any(), name
    # Walker2d / Ant-truncated non-default runs do not terminate but pay no healthy reward while
    # unhealthy; check that such steps occurred.
    task, data = _rollout("walker2d", "non-default")
    z = data["next_obs"][:, 1]
    assert ((z <= 0.9) | (z >= 1.9)).any()


@pytest.mark.parametrize("name", TASKS)
def test_batching_over_leading_dims(name: str) -> None:
    task, data = _rollout(name, "default")
    obs, act, next_obs = (t[:1000] for t in _tensors(data))
    flat_r = task.reward_fn(obs, act, next_obs)
    flat_t = task.termination_fn(obs, act, next_obs)
    shaped = [t.reshape(10, 100, -1) for t in (obs, act, next_obs)]
    assert torch.equal(task.reward_fn(*shaped), flat_r.reshape(10, 100))
    assert torch.equal(task.termination_fn(*shaped), flat_t.reshape(10, 100))
    # one action broadcast against a batch of observations
    r = task.reward_fn(obs[:5], act[:1], next_obs[:5])
    assert r.shape == (5,)
    torch.testing.assert_close(r, task.reward_fn(obs[:5], act[:1].expand(5, -1), next_obs[:5]))
    # a single transition (no batch dims)
    assert task.reward_fn(obs[0], act[0], next_obs[0]).shape == ()
    assert task.termination_fn(obs[0], act[0], next_obs[0]).shape == ()


@pytest.mark.parametrize("name", TASKS)
def test_float32_inputs(name: str) -> None:
    task, data = _rollout(name, "default")
    obs32, act32, next32 = _tensors(data, torch.float32)
    r32 = task.reward_fn(obs32, act32, next32)
    t32 = task.termination_fn(obs32, act32, next32)
    assert r32.dtype == torch.float32 and t32.dtype == torch.bool
    assert r32.shape == t32.shape == (len(data["reward"]),)
    r64 = task.reward_fn(*_tensors(data))
    # float32 rounding of positions ~ 1e-7 * |x| is divided by dt in the forward reward
    torch.testing.assert_close(r32.double(), r64, atol=5e-3, rtol=1e-4)


@pytest.mark.parametrize("name", TASKS)
def test_dimensions_bounds_and_horizon(name: str) -> None:
    import gymnasium as gym

    task = envs.get_task(name)
    assert task.name == name and task.obs_dim == OBS_DIMS[name]
    env = task.make_env()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (task.obs_dim,) == env.observation_space.shape
    assert env.action_space.shape == (task.act_dim,)
    np.testing.assert_array_equal(task.action_low, env.action_space.low)
    np.testing.assert_array_equal(task.action_high, env.action_space.high)
    assert task.dt == pytest.approx(env.unwrapped.dt)
    spec = gym.spec(GYM_IDS.get(name, "Ant-v5"))
    assert task.max_episode_steps == spec.max_episode_steps == env.spec.max_episode_steps
    assert str(task.obs_dim) in task.__repr__() and task.description
    if task.obs_preprocess_fn is not None:
        features = task.obs_preprocess_fn(torch.zeros(3, 2, task.obs_dim))
        assert features.shape == (3, 2, task.info["model_input_dim"])
    env.close()


def test_aliases_resolve_to_task_names() -> None:
    for name, gym_id in GYM_IDS.items():
        assert envs.get_task(gym_id).name == name
    assert set(TASKS) <= set(envs.list_tasks())


def test_unknown_name_lists_available_tasks() -> None:
    with pytest.raises(KeyError) as info:
        envs.get_task("half-cheetah-v99")
    message = str(info.value)
    for name in TASKS:
        assert name in message


def test_ant_truncated_features_are_mbpo_observation() -> None:
    task = envs.get_task("ant-truncated")
    env = task.make_env()
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(20):
        obs, *_ = env.step(rng.uniform(task.action_low, task.action_high))
    data = env.unwrapped.data
    features = task.obs_preprocess_fn(torch.as_tensor(obs))
    assert features.shape == (27,)
    np.testing.assert_array_equal(features.numpy(), np.concatenate([data.qpos[2:], data.qvel]))
    np.testing.assert_array_equal(obs[:2], data.body(1).xpos[:2])
    env.close()


def test_augmented_quantities_are_needed() -> None:
    """The appended/prepended quantities differ from what the stock observation offers."""
    # Ant: main-body xpos lags qpos by one substep, so qpos-based velocity would be wrong.
    task = envs.get_task("ant")
    env = task.make_env()
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    lags = []
    for _ in range(50):
        obs, *_ = env.step(rng.uniform(task.action_low, task.action_high))
        lags.append(abs(obs[0] - env.unwrapped.data.qpos[0]))
    assert max(lags) > 1e-4
    env.close()
    # InvertedDoublePendulum: the tip site also lags the joint angles, so forward kinematics of
    # the stock observation would be off; the appended qvel is the stock qvel before clipping.
    _, data = _rollout("inverted-double-pendulum", "default")
    nxt = data["next_obs"]
    x, s1, s2, c1, c2 = (nxt[:, i] for i in range(5))
    tip_x_fk = x + 0.6 * s1 + 0.6 * (s1 * c2 + c1 * s2)
    assert np.abs(tip_x_fk - nxt[:, 9]).max() > 1e-5
    np.testing.assert_array_equal(np.clip(nxt[:, 11:14], -10, 10), nxt[:, 5:8])
    # Hopper: with healthy_state_range (-12, 12) the clipped qvel would give a wrong reward.
    task, data = _rollout("hopper", "non-default")
    obs, act, next_obs = _tensors(data)
    clipped_only = next_obs.clone()
    clipped_only[:, 12:18] = next_obs[:, 6:12]
    wrong = task.reward_fn(obs, act, clipped_only).numpy()
    assert np.abs(wrong - data["reward"]).max() > 1.0


def test_env_kwargs_and_layout_validation() -> None:
    task = envs.get_task("halfcheetah", ctrl_cost_weight=0.3)
    assert task.info["env_params"]["ctrl_cost_weight"] == 0.3
    with pytest.raises(ValueError, match="exclude_current_positions_from_observation"):
        envs.get_task("halfcheetah", exclude_current_positions_from_observation=True)
    with pytest.raises(ValueError, match="include_cfrc_ext_in_observation"):
        envs.get_task("ant", include_cfrc_ext_in_observation=False)
    with pytest.raises(ValueError, match="contact_cost_weight"):
        envs.get_task("ant-truncated", contact_cost_weight=5e-4)
    assert envs.get_task("ant-truncated", contact_cost_weight=0.0).obs_dim == 29
    with pytest.raises(ValueError, match="max_episode_steps"):
        envs.get_task("hopper", max_episode_steps=0)
    with pytest.raises(TypeError):
        envs.get_task("hopper", no_such_option=1)
    with pytest.raises(ValueError, match="rendering options"):
        task.env_factory(ctrl_cost_weight=1.0)
    assert envs.get_task("swimmer", max_episode_steps=7).max_episode_steps == 7
    assert isinstance(task.env_factory, EnvFactory)
    pickle.dumps((task.reward_fn, task.termination_fn, task.obs_preprocess_fn, task.env_factory))


def test_reward_fn_rejects_bad_inputs() -> None:
    task = envs.get_task("hopper")
    obs = torch.zeros(4, task.obs_dim)
    act = torch.zeros(4, task.act_dim)
    with pytest.raises(ValueError, match="next_obs"):
        task.reward_fn(obs, act, torch.zeros(4, task.obs_dim - 1))
    with pytest.raises(ValueError, match="act"):
        task.termination_fn(obs, torch.zeros(4, task.act_dim + 1), obs)
    with pytest.raises(TypeError, match="floating"):
        task.reward_fn(obs.long(), act, obs)
    with pytest.raises(ValueError, match="broadcast"):
        task.reward_fn(obs, torch.zeros(3, task.act_dim), obs)
    with pytest.raises(ValueError, match="obs_preprocess_fn"):
        task.obs_preprocess_fn(torch.zeros(4, 5))
