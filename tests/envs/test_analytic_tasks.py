"""Analytic tasks: the batched torch functions agree with the numpy environments (and those with
Gymnasium's own Pendulum/CartPole), batch, preserve dtype, differentiate, and validate input.

Run with ``pytest -s`` to see the measured worst-case differences per task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest
import scipy.signal
import torch
from gymnasium.utils.env_checker import check_env

import envs
from envs.analytic import angle_normalize
from envs.registry import get_task, list_tasks
from envs.task import Task

ANALYTIC = [
    "pendulum-swingup",
    "cartpole-swingup",
    "cartpole-balance",
    "cartpole-discrete",
    "linear",
]

# (case id, task name, task kwargs): the defaults plus variants that exercise the clips,
# a disabled speed clip, a custom linear system and finite linear action bounds.
CASES = [
    ("pendulum", "pendulum-swingup", {}),
    ("pendulum-slow-clip", "pendulum-swingup", {"max_speed": 1.5, "max_torque": 3.0}),
    ("pendulum-no-speed-clip", "pendulum-swingup", {"max_speed": None, "init_noise": 0.5}),
    ("cartpole-swingup", "cartpole-swingup", {}),
    ("cartpole-balance", "cartpole-balance", {}),
    ("cartpole-discrete", "cartpole-discrete", {}),
    ("linear", "linear", {}),
    (
        "linear-custom-bounded",
        "linear",
        {
            "A": [[1.0, 0.1, 0.0], [-0.2, 0.95, 0.1], [0.0, 0.05, 0.9]],
            "B": [[0.0, 0.1], [0.1, 0.0], [0.05, 0.05]],
            "Q": np.diag([1.0, 0.5, 2.0]),
            "R": [[0.2, 0.05], [0.05, 0.1]],
            "action_low": [-1.0, -0.5],
            "action_high": 1.0,
            "x0_scale": [1.0, 2.0, 0.5],
            "max_episode_steps": 60,
        },
    ),
]

MIN_STEPS = 1000


@dataclass
class Transitions:
    """Stacked float64 transitions gathered from a task's environment."""

    obs: np.ndarray
    act: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    state: np.ndarray  # internal float64 state before the step (== obs for our envs)
    next_state: np.ndarray


def _random_action(task: Task, rng: np.random.Generator) -> np.ndarray | int:
    if task.is_discrete:
        return int(rng.integers(task.num_actions))
    # Uniform over 1.5x the action box (a third of the actions get clipped); [-2, 2] if unbounded.
    low = np.where(np.isfinite(task.action_low), task.action_low, -2.0)
    high = np.where(np.isfinite(task.action_high), task.action_high, 2.0)
    return 0.5 * (low + high) + 0.75 * (high - low) * rng.uniform(-1.0, 1.0, size=low.shape)


def _collect(task: Task, min_steps: int = MIN_STEPS) -> Transitions:
    env = task.make_env()
    rows: dict[str, list] = {k: [] for k in Transitions.__dataclass_fields__}
    seed = 0
    while len(rows["obs"]) < min_steps:
        rng = np.random.default_rng(1000 + seed)
        obs, _ = env.reset(seed=seed)
        obs2, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(obs, obs2)  # seeded reset is reproducible
        for t in range(task.max_episode_steps):
            state = np.array(env.unwrapped.state, dtype=np.float64)
            act = _random_action(task, rng)
            next_obs, reward, terminated, truncated, _ = env.step(act)
            rows["obs"].append(np.asarray(obs, dtype=np.float64))
            rows["act"].append(np.atleast_1d(np.asarray(act, dtype=np.float64)))
            rows["reward"].append(reward)
            rows["next_obs"].append(np.asarray(next_obs, dtype=np.float64))
            rows["terminated"].append(terminated)
            rows["state"].append(state)
            rows["next_state"].append(np.array(env.unwrapped.state, dtype=np.float64))
            assert truncated == (t == task.max_episode_steps - 1 and not terminated)
            obs = next_obs
            if terminated or truncated:
                break
        seed += 1
    assert seed >= 3, "expected several episodes"
    env.close()
    return Transitions(**{k: np.array(v) for k, v in rows.items()})


def _t(x: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=dtype)


@pytest.fixture(scope="module")
def rollouts() -> dict[str, tuple[Task, Transitions]]:
    out = {}
    for case, name, kwargs in CASES:
        task = get_task(name, **kwargs)
        out[case] = (task, _collect(task))
    return out


def test_registered() -> None:
    assert set(ANALYTIC) <= set(list_tasks())
    for name in ANALYTIC:
        task = get_task(name)
        assert task.name == name and task.is_analytic
        env = envs.make(name)
        assert env.spec is not None and env.spec.max_episode_steps == task.max_episode_steps
        assert env.observation_space.shape == (task.obs_dim,)
        assert task.dt is not None and task.dt > 0
        if task.is_discrete:
            assert task.num_actions == 2 and env.action_space == gym.spaces.Discrete(2)
        else:
            np.testing.assert_array_equal(env.action_space.low, task.action_low)
            np.testing.assert_array_equal(env.action_space.high, task.action_high)
    for env_id in [
        "mbrl/PendulumSwingup-v0",
        "mbrl/CartPoleSwingup-v0",
        "mbrl/CartPoleBalance-v0",
        "mbrl/Linear-v0",
    ]:
        env = gym.make(env_id)
        obs, _ = env.reset(seed=0)
        assert obs.dtype == np.float64 and env.observation_space.contains(obs)


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_functions_match_env(case: str, rollouts) -> None:
    """reward_fn within 1e-5, termination 100 % equal, dynamics_fn within 1e-6 (float64)."""
    task, tr = rollouts[case]
    assert len(tr.obs) >= MIN_STEPS
    obs, act, next_obs = _t(tr.obs), _t(tr.act), _t(tr.next_obs)
    with torch.no_grad():
        reward = task.reward_fn(obs, act, next_obs).numpy()
        done = task.termination_fn(obs, act, next_obs).numpy()
        pred_obs = task.dynamics_fn(obs, act).numpy()
        pred_state = task.dynamics_fn(_t(tr.state), act).numpy()
    assert reward.shape == done.shape == (len(tr.obs),) and done.dtype == np.bool_
    r_err = float(np.abs(reward - tr.reward).max())
    agree = float((done == tr.terminated).mean())
    d_err = float(np.abs(pred_obs - tr.next_obs).max())  # from the returned observations
    s_err = float(np.abs(pred_state - tr.next_state).max())  # from the env's float64 state
    clipped = 0.0
    if not task.is_discrete:
        clipped = float(((tr.act < task.action_low) | (tr.act > task.action_high)).any(-1).mean())
    print(
        f"\n[{case}] steps={len(tr.obs)} episodes_terminated={int(tr.terminated.sum())} "
        f"clipped_actions={clipped:.0%} max|reward diff|={r_err:.3e} termination "
        f"agreement={agree:.2%} max|dynamics diff| obs={d_err:.3e} state={s_err:.3e}"
    )
    assert r_err <= 1e-5
    assert agree == 1.0
    assert s_err <= 1e-6
    if task.is_discrete:
        # Gymnasium CartPole returns float32 observations of its float64 state: one float32
        # rounding of the input and one of the output (|values| < 4) bound the difference.
        assert d_err <= 1e-5
        assert tr.terminated.any()
    else:
        assert d_err <= 1e-6
        np.testing.assert_array_equal(tr.obs, tr.state)
    if task.name == "cartpole-balance":
        assert tr.terminated.any()
    speed = task.info["system"].max_speed if task.name == "pendulum-swingup" else None
    if speed is not None and speed < 8.0:
        assert (np.abs(tr.next_obs[:, 1]) == speed).mean() > 0.1  # the speed clip is exercised


def test_pendulum_matches_gymnasium_pendulum() -> None:
    """Same state and torque: our env == Gymnasium Pendulum-v1 (state, reward)."""
    ours = get_task("pendulum-swingup").make_env().unwrapped
    ref = gym.make("Pendulum-v1").unwrapped
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(300):
        state = np.array([rng.uniform(-10, 10), rng.uniform(-8, 8)])
        u = rng.uniform(-3, 3, size=1)
        ours.reset(options={"state": state})
        ref.reset(seed=0)
        ref.state = state.copy()
        nxt, r, *_ = ours.step(u)
        _, r_ref, *_ = ref.step(u)
        worst = max(worst, float(np.abs(nxt - ref.state).max()), abs(r - r_ref))
    print(f"\n[pendulum vs Gymnasium Pendulum-v1] max|diff|={worst:.3e}")
    assert worst < 1e-12


def test_cartpole_matches_gymnasium_cartpole() -> None:
    """Force +-10 N, dt 0.02: continuous balance env and discrete dynamics_fn == Gymnasium."""
    ours = get_task("cartpole-balance").make_env().unwrapped
    disc = get_task("cartpole-discrete")
    ref = gym.make("CartPole-v1").unwrapped
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(300):
        state = rng.uniform([-2, -3, -4, -5], [2, 3, 4, 5])
        a = int(rng.integers(2))
        ref.reset(seed=0)
        ref.state = state.copy()
        ref.step(a)
        ours.reset(options={"state": state})
        nxt, *_ = ours.step(np.array([10.0 if a == 1 else -10.0]))
        pred = disc.dynamics_fn(_t(state), _t([float(a)])).numpy()
        worst = max(
            worst, float(np.abs(nxt - ref.state).max()), float(np.abs(pred - ref.state).max())
        )
    print(f"\n[cartpole vs Gymnasium CartPole-v1] max|diff|={worst:.3e}")
    assert worst < 1e-12


def test_double_integrator_is_zoh_discretisation() -> None:
    """Default linear task = zero-order-hold discretisation of x'' = u (scipy), Q = I, R = 0.1 I."""
    task = get_task("linear", dt=0.25)
    sys = task.info["system"]
    a, b, *_ = scipy.signal.cont2discrete(
        (np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[0.0], [1.0]]), np.eye(2), np.zeros((2, 1))),
        0.25,
        method="zoh",
    )
    np.testing.assert_allclose(sys.A, a, atol=1e-14)
    np.testing.assert_allclose(sys.B, b, atol=1e-14)
    x, u = _t([[1.0, -2.0]]), _t([[3.0]])
    expected = -(1.0 + 4.0 + 0.1 * 9.0)
    assert task.reward_fn(x, u, x).item() == pytest.approx(expected, abs=1e-12)
    assert task.dt == 0.25 and task.max_episode_steps == 100


def _random_inputs(task: Task, batch: tuple[int, ...], dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(*batch, task.obs_dim, generator=g, dtype=dtype)
    if task.is_discrete:
        act = torch.randint(0, task.num_actions, (*batch, 1), generator=g).to(dtype)
    else:
        act = 3.0 * torch.randn(*batch, task.act_dim, generator=g, dtype=dtype)
    return obs, act


@pytest.mark.parametrize("name", ANALYTIC)
def test_batching_and_dtype(name: str) -> None:
    """(4, 5, d) inputs == the flat (20, d) result; broadcasting; float32 stays float32."""
    task = get_task(name)
    for dtype in (torch.float32, torch.float64):
        obs, act = _random_inputs(task, (4, 5), dtype)
        nxt = task.dynamics_fn(obs, act)
        assert nxt.shape == (4, 5, task.obs_dim) and nxt.dtype == dtype
        flat_nxt = task.dynamics_fn(obs.reshape(20, -1), act.reshape(20, -1))
        torch.testing.assert_close(nxt.reshape(20, -1), flat_nxt, rtol=0, atol=0)
        rew = task.reward_fn(obs, act, nxt)
        assert rew.shape == (4, 5) and rew.dtype == dtype
        torch.testing.assert_close(
            rew.reshape(20), task.reward_fn(obs.reshape(20, -1), act.reshape(20, -1), flat_nxt)
        )
        done = task.termination_fn(obs, act, nxt)
        assert done.shape == (4, 5) and done.dtype == torch.bool
        feats = task.obs_preprocess_fn(obs) if task.obs_preprocess_fn else obs
        assert feats.shape[:-1] == (4, 5) and feats.dtype == dtype
        # one state, many actions: broadcasting over the leading dims
        one = task.dynamics_fn(obs[0, :1], act[0])
        torch.testing.assert_close(one, task.dynamics_fn(obs[0, :1].expand(5, -1), act[0]))
        # a single unbatched transition
        torch.testing.assert_close(task.dynamics_fn(obs[1, 2], act[1, 2]), nxt[1, 2])


def test_preprocess_values() -> None:
    th = torch.tensor([[0.3, -1.2]], dtype=torch.float64)
    torch.testing.assert_close(
        get_task("pendulum-swingup").obs_preprocess_fn(th),
        torch.tensor([[math.cos(0.3), math.sin(0.3), -1.2]], dtype=torch.float64),
    )
    s = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    expected = torch.tensor([1.0, 2.0, math.cos(3.0), math.sin(3.0), 4.0], dtype=torch.float64)
    for name in ("cartpole-swingup", "cartpole-balance", "cartpole-discrete"):
        torch.testing.assert_close(get_task(name).obs_preprocess_fn(s), expected)


@pytest.mark.parametrize("name", ANALYTIC)
def test_gradcheck(name: str) -> None:
    """Finite differences (float64) through dynamics_fn and reward_fn, away from clips/jumps."""
    task = get_task(name)
    g = torch.Generator().manual_seed(3)
    obs = 0.5 * torch.randn(3, task.obs_dim, generator=g, dtype=torch.float64)
    obs.requires_grad_(True)
    if task.is_discrete:
        act = torch.tensor([[0.0], [1.0], [1.0]], dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda o: task.dynamics_fn(o, act), (obs,))
        return
    act = (0.4 * torch.rand(3, task.act_dim, generator=g, dtype=torch.float64) - 0.2) * (
        torch.as_tensor(task.action_high).clamp(max=5.0)
    )
    act.requires_grad_(True)
    assert torch.autograd.gradcheck(task.dynamics_fn, (obs, act))
    nxt = task.dynamics_fn(obs, act).detach()
    assert torch.autograd.gradcheck(lambda o, a: task.reward_fn(o, a, nxt), (obs, act))
    # rollouts differentiate through several steps
    x = obs
    for _ in range(5):
        x = task.dynamics_fn(x, act)
    (grad,) = torch.autograd.grad(x.sum(), act)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_torch_func_jacobians() -> None:
    """vmap(jacrev(dynamics_fn)) works and equals hand-derived Jacobians (pendulum, linear)."""
    from torch.func import jacrev, vmap

    task = get_task("pendulum-swingup")
    x = torch.tensor([[0.3, -1.0], [2.0, 0.5], [-1.0, 2.0]], dtype=torch.float64)
    u = torch.tensor([[0.5], [-1.0], [1.5]], dtype=torch.float64)
    fx, fu = vmap(jacrev(task.dynamics_fn, argnums=(0, 1)))(x, u)
    dt, k = 0.05, 1.5 * 10.0 / 1.0 * torch.cos(x[:, 0])
    ref_fx = torch.stack(
        [
            torch.stack([1 + dt * dt * k, torch.full_like(k, dt)], -1),
            torch.stack([dt * k, torch.ones_like(k)], -1),
        ],
        -2,
    )
    torch.testing.assert_close(fx, ref_fx, rtol=0, atol=1e-14)
    ref_fu = torch.tensor([[dt * dt * 3.0], [dt * 3.0]], dtype=torch.float64).expand(3, 2, 1)
    torch.testing.assert_close(fu, ref_fu, rtol=0, atol=1e-14)
    lin = get_task("linear", dt=0.2)
    fx, fu = vmap(jacrev(lin.dynamics_fn, argnums=(0, 1)))(x, u)
    torch.testing.assert_close(fx, _t(lin.info["A"]).expand(3, 2, 2), rtol=0, atol=0)
    torch.testing.assert_close(fu, _t(lin.info["B"]).expand(3, 2, 1), rtol=0, atol=0)


def test_angle_normalize() -> None:
    x = np.array([0.0, np.pi - 1e-9, np.pi + 1e-9, -np.pi, 3 * np.pi / 2, -7.0, 20.0])
    expected = np.arctan2(np.sin(x), np.cos(x))
    assert np.all(angle_normalize(x) >= -np.pi) and np.all(angle_normalize(x) < np.pi)
    np.testing.assert_allclose(angle_normalize(x), expected, atol=1e-12)
    np.testing.assert_allclose(angle_normalize(torch.from_numpy(x)).numpy(), expected, atol=1e-12)
    assert angle_normalize(torch.ones(2, dtype=torch.float32)).dtype == torch.float32
    assert float(angle_normalize(2 * np.pi + 0.5)) == pytest.approx(0.5)


def test_linear_custom_system_and_defaults() -> None:
    A = np.array([[0.9, 0.2, 0.0], [0.0, 1.1, 0.3], [0.1, 0.0, 0.8]])
    B = np.array([[1.0, 0.0], [0.0, 0.5], [0.2, 0.1]])
    task = get_task("linear", A=A, B=B, max_episode_steps=7)
    assert (task.obs_dim, task.act_dim, task.max_episode_steps) == (3, 2, 7)
    np.testing.assert_array_equal(task.info["Q"], np.eye(3))
    np.testing.assert_array_equal(task.info["R"], 0.1 * np.eye(2))
    x = np.array([1.0, -2.0, 0.5])
    u = np.array([0.3, -0.7])
    env = task.make_env()
    env.reset(seed=0, options={"state": x})
    nxt, r, terminated, truncated, _ = env.step(u)
    np.testing.assert_allclose(nxt, A @ x + B @ u, rtol=0, atol=1e-15)
    assert r == pytest.approx(-(x @ x + 0.1 * u @ u), abs=1e-14)
    assert not terminated and not truncated
    pred = task.dynamics_fn(_t(x), _t(u)).numpy()
    np.testing.assert_allclose(pred, A @ x + B @ u, rtol=0, atol=1e-15)
    for _ in range(6):
        *_, truncated, _ = env.step(u)
    assert truncated
    # bounded actions are clipped the same way in env and torch
    bounded = get_task("linear", A=A, B=B, action_low=-0.1, action_high=[0.2, 0.1])
    benv = bounded.make_env()
    benv.reset(options={"state": x})
    nxt, *_ = benv.step(np.array([5.0, -5.0]))
    np.testing.assert_allclose(nxt, A @ x + B @ np.array([0.2, -0.1]), atol=1e-15)
    np.testing.assert_allclose(bounded.dynamics_fn(_t(x), _t([5.0, -5.0])).numpy(), nxt, atol=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"A": np.eye(3)[:2], "B": np.ones((2, 1))}, "A"),
        ({"A": np.eye(2), "B": np.ones((3, 1))}, "B"),
        ({"A": np.eye(2), "B": np.ones(2)}, "B"),
        ({"A": np.eye(2)}, "A, B"),
        ({"Q": np.eye(3)}, "Q"),
        ({"Q": [[1.0, 2.0], [0.0, 1.0]]}, "Q"),
        ({"Q": -np.eye(2)}, "Q"),
        ({"R": np.eye(2)}, "R"),
        ({"R": [[np.nan]]}, "R"),
        ({"action_low": [0.0, 0.0]}, "action_low"),
        ({"action_low": 1.0, "action_high": -1.0}, "action_low, action_high"),
        ({"x0_scale": -1.0}, "x0_scale"),
        ({"dt": 0.0}, "dt"),
        ({"max_episode_steps": 0}, "max_episode_steps"),
    ],
)
def test_linear_bad_arguments(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=rf"^{argument}:"):
        get_task("linear", **kwargs)
    if "max_episode_steps" not in kwargs:
        with pytest.raises(ValueError, match=rf"^{argument}:"):
            gym.make("mbrl/Linear-v0", **kwargs)


def test_bad_inputs_raise() -> None:
    pend = get_task("pendulum-swingup")
    with pytest.raises(ValueError, match="^obs:"):
        pend.dynamics_fn(torch.zeros(5, 3), torch.zeros(5, 1))
    with pytest.raises(ValueError, match="^act:"):
        pend.dynamics_fn(torch.zeros(5, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="do not broadcast"):
        pend.dynamics_fn(torch.zeros(5, 2), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="^act:"):
        get_task("cartpole-discrete").dynamics_fn(torch.zeros(2, 4), torch.full((2, 1), 0.5))
    with pytest.raises(ValueError, match="^g:"):
        get_task("pendulum-swingup", g=-1.0)
    with pytest.raises(ValueError, match="^masspole:"):
        get_task("cartpole-swingup", masspole=0.0)
    with pytest.raises(ValueError, match="^dt:"):
        pend.make_env(dt=0.1)  # physics must be configured on the task
    env = pend.make_env()
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(np.zeros(1))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="^action:"):
        env.unwrapped.step(np.array([np.nan]))
    with pytest.raises(ValueError, match=r"^options\['state'\]:"):
        env.reset(options={"state": [0.0, 0.0, 0.0]})


def test_initial_states() -> None:
    """Seeded starts: hanging for the swing-ups, near upright for balance, as specified."""
    for name, center, noise in [
        ("pendulum-swingup", [np.pi, 0.0], 0.05),
        ("cartpole-swingup", [0.0, 0.0, np.pi, 0.0], 0.05),
        ("cartpole-balance", [0.0, 0.0, 0.0, 0.0], 0.05),
    ]:
        env = envs.make(name)
        starts = np.array([env.reset(seed=s)[0] for s in range(50)])
        assert np.abs(starts - center).max() <= noise
        assert starts.std(0).min() > noise / 10
    env = envs.make("pendulum-swingup", init_noise=0.0)
    np.testing.assert_array_equal(env.reset(seed=1)[0], [np.pi, 0.0])
    env = envs.make("linear", x0_scale=[1.0, 0.0])
    starts = np.array([env.reset(seed=s)[0] for s in range(20)])
    assert np.all(starts[:, 1] == 0.0) and np.abs(starts[:, 0]).max() <= 1.0


@pytest.mark.parametrize(
    "env_id",
    [
        "mbrl/PendulumSwingup-v0",
        "mbrl/CartPoleSwingup-v0",
        "mbrl/CartPoleBalance-v0",
        "mbrl/Linear-v0",
    ],
)
# Advisory only: unbounded (theta, linear) spaces and non-normalised action boxes, as Gymnasium's
# own Pendulum/CartPole have.
@pytest.mark.filterwarnings("ignore:.*(infinity|symmetric and normalized).*:UserWarning")
def test_gymnasium_env_checker(env_id: str) -> None:
    """Gymnasium's own API checker (reset/step signatures, seeding determinism, spaces)."""
    check_env(gym.make(env_id).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", ["pendulum-swingup", "cartpole-swingup", "linear"])
def test_non_finite_actions_are_refused_like_the_mujoco_tasks(name, bad):
    env = envs.make(name)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action: expected finite values"):
        env.step(np.full(env.action_space.shape, bad))
