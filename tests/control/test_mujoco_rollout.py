"""Tests of control.mujoco_rollout.MuJoCoSimulator against a plain mj_step loop and env.step."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch

from control.mujoco_rollout import (
    MuJoCoSimulator,
    StateLayout,
    read_physics_state,
    read_warmstart,
)

FULL = mujoco.mjtState.mjSTATE_FULLPHYSICS


@pytest.fixture(scope="module", params=["HalfCheetah-v5", "Hopper-v5", "InvertedDoublePendulum-v5"])
def env(request):
    env = gym.make(request.param)
    yield env
    env.close()


def _start_states(env, B: int, rng: np.random.Generator) -> np.ndarray:
    """B full physics states near the env's reset state, with random velocities."""
    env.reset(seed=int(rng.integers(1 << 30)))
    lay = StateLayout.of(env.unwrapped.model)
    x0 = np.tile(read_physics_state(env), (B, 1))
    x0[:, lay.qpos] += 0.05 * rng.normal(size=(B, env.unwrapped.model.nq))
    x0[:, lay.qvel] += rng.normal(size=(B, env.unwrapped.model.nv))
    x0[:, lay.time] = rng.uniform(0.0, 3.0, size=B)
    return x0


def _mj_step_loop(model, frame_skip, x0, actions):
    """Independent reference: fresh MjData per row, mj_step frame_skip times per action."""
    B, H, _ = actions.shape
    out = np.empty((B, H + 1, x0.shape[1]))
    out[:, 0] = x0
    for i in range(B):
        d = mujoco.MjData(model)
        mujoco.mj_setState(model, d, x0[i], FULL)
        for h in range(H):
            d.ctrl[:] = actions[i, h]
            for _ in range(frame_skip):
                mujoco.mj_step(model, d)
            mujoco.mj_getState(model, d, out[i, h + 1], FULL)
    return out


@pytest.mark.parametrize("nthread", [1, 2])
def test_rollout_equals_sequential_mj_step(env, nthread, monkeypatch):
    rng = np.random.default_rng(0)
    raw = env.unwrapped
    B, H = 9, 7
    x0 = _start_states(env, B, rng)
    lo, hi = raw.action_space.low, raw.action_space.high
    actions = rng.uniform(lo, hi, size=(B, H, raw.model.nu))
    with MuJoCoSimulator.from_env(env, nthread=nthread) as sim:
        assert sim.frame_skip == raw.frame_skip > 1
        seq = sim.rollout_sequential(x0, actions)

        def no_fallback(*args):
            raise AssertionError("a clean row was sent to the reference loop")

        monkeypatch.setattr(sim, "rollout_sequential", no_fallback)
        states = sim.rollout(x0, actions)  # all rows from the one mujoco.rollout call
    ref = _mj_step_loop(raw.model, raw.frame_skip, x0, actions)
    assert states.shape == (B, H + 1, sim.nstate)
    np.testing.assert_allclose(states, ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(seq, states)
    # the time advanced by frame_skip * timestep per action
    np.testing.assert_allclose(np.diff(states[:, :, 0], axis=1), sim.dt, rtol=1e-9)


def test_frame_skip_matches_env_step(env):
    raw = env.unwrapped
    env.reset(seed=5)
    rng = np.random.default_rng(1)
    for _ in range(3):
        env.step(env.action_space.sample())
    x, ws = read_physics_state(env), read_warmstart(env)
    acts = rng.uniform(raw.action_space.low, raw.action_space.high, size=(5, raw.model.nu))
    acts = acts.astype(np.float32)  # what the env receives; ctrl is float64 of it
    sim = MuJoCoSimulator.from_env(env)
    pred = sim.rollout(x[None], acts[None].astype(np.float64), ws[None])[0]
    one = MuJoCoSimulator(raw.model, frame_skip=1).rollout(x[None], acts[None].astype(np.float64))
    lay = sim.layout
    for h, a in enumerate(acts):
        env.step(a)
        np.testing.assert_allclose(pred[h + 1, lay.qpos], raw.data.qpos, rtol=0, atol=1e-12)
        np.testing.assert_allclose(pred[h + 1, lay.qvel], raw.data.qvel, rtol=0, atol=1e-12)
        np.testing.assert_allclose(pred[h + 1], read_physics_state(env), rtol=0, atol=1e-12)
    # a simulator that ignored frame_skip would be far off
    assert np.abs(one[0, -1, lay.qpos] - raw.data.qpos).max() > 1e-3


def test_callable_numpy_and_torch():
    env = gym.make("HalfCheetah-v5")
    rng = np.random.default_rng(2)
    x0 = _start_states(env, 6, rng)
    u = rng.uniform(-1, 1, size=(6, 6))
    sim = MuJoCoSimulator.from_env(env, nthread=2)
    nxt = sim(x0, u)
    assert isinstance(nxt, np.ndarray) and nxt.shape == (6, sim.nstate)
    np.testing.assert_array_equal(nxt, sim.rollout(x0, u[:, None])[:, 1])
    nxt_t = sim(torch.tensor(x0), torch.tensor(u))
    assert nxt_t.dtype == torch.float64
    np.testing.assert_array_equal(nxt_t.numpy(), nxt)
    traj = sim.rollout(torch.tensor(x0, dtype=torch.float32), torch.tensor(u[:, None]))
    assert traj.dtype == torch.float32 and traj.shape == (6, 2, sim.nstate)
    assert sim.rollout(x0, np.zeros((6, 0, 6))).shape == (6, 1, sim.nstate)
    with pytest.raises(ValueError, match="state0 must have shape"):
        sim(x0[:, :-1], u)
    with pytest.raises(ValueError, match="actions must have shape"):
        sim.rollout(x0, u[:, None, :-1])
    with pytest.raises(ValueError, match="act must have shape"):
        sim(x0, u[0])
    with pytest.raises(ValueError, match="frame_skip"):
        MuJoCoSimulator(env.unwrapped.model, frame_skip=0)
    sim.close()
    with pytest.raises(RuntimeError, match="closed"):
        sim(x0, u)
    env.close()


def test_diverging_rows_are_nan_from_that_step_on():
    env = gym.make("HalfCheetah-v5")
    rng = np.random.default_rng(3)
    B, H = 6, 4
    x0 = _start_states(env, B, rng)
    actions = rng.uniform(-1, 1, size=(B, H, 6))
    sim = MuJoCoSimulator.from_env(env, nthread=2)
    clean = sim.rollout(x0, actions)
    lay = sim.layout
    x0[1, lay.qvel.start] = np.nan  # non-finite state: nothing after it
    x0[2, lay.qvel] = 1e11  # MuJoCo's BADQVEL: it would reset the data and carry on
    actions[3, 2, 0] = np.nan  # non-finite action at step 2: states 3.. are NaN
    actions[4, 1, 0] = 1e11  # finite: MuJoCo clamps it to ctrlrange, no warning
    out = sim.rollout(x0, actions)
    assert np.isfinite(out[[0, 5]]).all()
    np.testing.assert_array_equal(out[[0, 5]], clean[[0, 5]])  # bad rows leave others alone
    assert np.isnan(out[1]).all(axis=1).tolist() == [False, True, True, True, True]
    assert np.isnan(out[2, 1:]).all()
    np.testing.assert_array_equal(out[3, :3], clean[3, :3])
    assert np.isnan(out[3, 3:]).all()
    clamped = actions[4:5].copy()
    clamped[0, 1, 0] = env.unwrapped.model.actuator_ctrlrange[0, 1]
    np.testing.assert_array_equal(out[4], sim.rollout(x0[4:5], clamped)[0])
    np.testing.assert_array_equal(out, sim.rollout_sequential(x0, actions))
    env.close()


@pytest.mark.parametrize("frame_skip", [1, 3])
@pytest.mark.parametrize("t0", [0.0, 1.5])
def test_bad_control_and_exploding_acceleration_are_nan(frame_skip, t0):
    # An unlimited motor: a control of 1e11 is MuJoCo's BADCTRL (it zeroes ctrl and carries on);
    # a huge damping makes the explicit Euler step's qacc explode (BADQACC: MuJoCo resets the data,
    # whose time then restarts from 0, and steps on).  frame_skip=1 from t0=0 is the case the
    # time alone cannot tell (a reset state's time is timestep too).
    xml = """<mujoco><worldbody><body><joint name="j" type="hinge" damping="1e6"/>
    <geom type="capsule" fromto="0 0 0 1 0 0" size="0.05"/></body></worldbody>
    <actuator><motor joint="j" gear="1"/></actuator></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    sim = MuJoCoSimulator(model, frame_skip=frame_skip, nthread=2)
    x0 = np.zeros((4, sim.nstate))
    x0[:, sim.layout.time] = t0
    x0[:, sim.layout.qpos] = 0.3
    x0[:, sim.layout.qvel] = 1e-3
    x0[2, sim.layout.qvel] = 1e6
    actions = np.zeros((4, 3, 1))
    actions[1, 1] = 1e11
    out = sim.rollout(x0, actions)
    assert np.isfinite(out[[0, 3]]).all()
    assert np.isfinite(out[1, :2]).all() and np.isnan(out[1, 2:]).all()
    assert np.isnan(out[2, 1:]).all()
    np.testing.assert_array_equal(out, sim.rollout_sequential(x0, actions))
    np.testing.assert_array_equal(out, sim.rollout(x0, actions))  # again: counters were cleared
    one = sim(x0, actions[:, 0])  # a single action step
    assert np.isnan(one[2]).all() and np.isfinite(one[[0, 1, 3]]).all()


@pytest.mark.parametrize("memory", ["6K", "1M"])
def test_harmless_warnings_and_free_joints(memory):
    # Four free boxes (nq != nv: quaternions) resting on a plane.  With a 6K arena MuJoCo raises
    # CONTACTFULL/CNSTRFULL on every step and drops contacts, but simulates on; mujoco.rollout
    # stops such rows, so they go to the reference loop, which carries on like a plain mj_step.
    bodies = "".join(
        f"<body pos='{0.3 * i} 0 0.04'><freejoint/><geom type='box' size='.1 .1 .05'/></body>"
        for i in range(4)
    )
    xml = f"""<mujoco><size memory="{memory}"/><worldbody>
    <geom type="plane" size="5 5 .1"/>{bodies}</worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    sim = MuJoCoSimulator(model, frame_skip=2, nthread=2)
    assert model.nq == model.nv + 4
    d = mujoco.MjData(model)
    x0 = np.empty((3, sim.nstate))
    for i in range(3):
        d.qvel[:] = 0.1 * i
        mujoco.mj_getState(model, d, x0[i], FULL)
    actions = np.zeros((3, 4, 0))
    fell_back = []
    reference = sim.rollout_sequential
    sim.rollout_sequential = lambda *a: fell_back.append(1) or reference(*a)
    out = sim.rollout(x0, actions)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, _mj_step_loop(model, 2, x0, actions), rtol=0, atol=1e-12)
    assert bool(fell_back) == (memory == "6K")
