"""Tests of control.mujoco_model.MuJoCoDynamics (true MuJoCo physics with Jacobians)."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch

from control.derivatives import linearize_dynamics
from control.mujoco_model import MuJoCoDynamics
from control.receding_horizon import RecedingHorizonILQR


@pytest.fixture(scope="module")
def pendulum_env():
    env = gym.make("InvertedPendulum-v5")
    yield env
    env.close()


def test_step_matches_gymnasium_env(pendulum_env):
    md = MuJoCoDynamics.from_env(pendulum_env)
    assert (md.nx, md.nu, md.frame_skip) == (4, 1, 2)
    assert md.dt == pytest.approx(0.04)
    obs, _ = pendulum_env.reset(seed=3)
    x = md.get_state(pendulum_env.unwrapped.data)
    np.testing.assert_array_equal(x, obs)  # InvertedPendulum's observation is [qpos, qvel]
    for a in (0.7, -2.0, 3.0):
        pred = md.step_numpy(x[None], np.array([[a]]))[0]
        obs, *_ = pendulum_env.step(np.array([a], dtype=np.float32))
        x = md.get_state(pendulum_env.unwrapped.data)
        np.testing.assert_allclose(pred, x, rtol=0, atol=1e-6)  # float32 action in the env


def test_transition_fd_jacobians_agree_with_finite_differences(pendulum_env):
    # mjd_transitionFD does not support RK4 (the env's integrator): use the same model with
    # Euler integration, chained over frame_skip = 2 sub-steps.
    model = mujoco.MjModel.from_xml_path(pendulum_env.unwrapped.fullpath)
    model.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
    md = MuJoCoDynamics(model, frame_skip=2, jacobian_method="transitionFD")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4)) * 0.3
    u = rng.uniform(-2, 2, size=(6, 1))
    A, B = md.jacobians_numpy(x, u)
    F = linearize_dynamics(md, torch.tensor(x), torch.tensor(u), "finite_difference").numpy()
    np.testing.assert_allclose(A, F[..., :4], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(B, F[..., 4:], rtol=1e-6, atol=1e-7)
    # The RK4 env model falls back to central differences of the full step.
    md_rk4 = MuJoCoDynamics.from_env(pendulum_env)
    assert md_rk4.jacobian_method == "central"
    A4, B4 = md_rk4.jacobians(torch.tensor(x), torch.tensor(u))
    F4 = linearize_dynamics(md_rk4, torch.tensor(x), torch.tensor(u), "finite_difference")
    torch.testing.assert_close(A4, F4[..., :4], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(B4, F4[..., 4:], rtol=1e-6, atol=1e-7)


def test_rejects_quaternion_models_and_bad_shapes():
    xml = "<mujoco><worldbody><body><freejoint/><geom size='.1'/></body></worldbody></mujoco>"
    with pytest.raises(NotImplementedError, match="nq == nv"):
        MuJoCoDynamics.from_xml(xml)
    md = MuJoCoDynamics.from_env(gym.make("InvertedPendulum-v5"))
    with pytest.raises(ValueError, match="x must have shape"):
        md.step_numpy(np.zeros((2, 3)), np.zeros((2, 1)))


def test_ilqr_mpc_keeps_inverted_pendulum_up(pendulum_env):
    md = MuJoCoDynamics.from_env(pendulum_env)

    def cost(x, u):
        return 0.1 * x[:, 0] ** 2 + 10.0 * x[:, 1] ** 2 + 0.1 * x[:, 3] ** 2 + 0.01 * u[:, 0] ** 2

    mpc = RecedingHorizonILQR(
        md,
        cost,
        horizon=15,
        act_dim=1,
        u_min=-3.0,
        u_max=3.0,
        iters_per_step=1,
        first_iters=5,
        derivatives="analytic",
        jacobians=md.jacobians,
        alphas=(1.0, 0.5, 0.1),
    )
    obs, _ = pendulum_env.reset(seed=0)
    total = 0.0
    for _ in range(60):
        u = mpc.act(md.get_state(pendulum_env.unwrapped.data))
        obs, r, term, trunc, _ = pendulum_env.step(u.numpy().astype(np.float32))
        total += r
        assert not term
    assert total == 60.0
    assert abs(obs[1]) < 0.05


def test_diverging_steps_return_nan_every_time():
    # A step MuJoCo resets (bad qacc/qvel) or whose control it zeroes (bad ctrl) is not the
    # physics of (x, u): NaN, also on repeated calls (mj_resetData clears the warning counters).
    xml = """<mujoco><worldbody><body><joint name="j" type="hinge" damping="1e6"/>
    <geom type="capsule" fromto="0 0 0 1 0 0" size="0.05"/></body></worldbody>
    <actuator><motor joint="j" gear="1"/></actuator></mujoco>"""
    md = MuJoCoDynamics.from_xml(xml)
    ok = md.step_numpy(np.array([[0.3, 1.0]]), np.zeros((1, 1)))
    assert np.isfinite(ok).all()
    for x, u in [([0.3, 1e6], 0.0), ([0.3, 1e6], 0.0), ([0.3, 2e10], 0.0), ([0.3, 0.0], 1e11)]:
        out = md.step_numpy(np.array([x]), np.array([[u]]))
        assert np.isnan(out).all(), (x, u, out)
    np.testing.assert_array_equal(md.step_numpy(np.array([[0.3, 1.0]]), np.zeros((1, 1))), ok)


@pytest.fixture(scope="module")
def cheetah():
    env = gym.make("HalfCheetah-v5")  # Euler integrator: mjd_transitionFD applies, frame_skip 5
    yield env
    env.close()


def _cheetah_batch(md: MuJoCoDynamics, B: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.concatenate([0.1 * rng.normal(size=(B, md.nq)), rng.normal(size=(B, md.nv))], axis=1)
    return x, rng.uniform(-1, 1, size=(B, md.nu))


@pytest.mark.parametrize("nthread", [1, 2, 3])
def test_batched_step_and_parallel_jacobians_equal_sequential(cheetah, nthread):
    md = MuJoCoDynamics.from_env(cheetah, nthread=nthread)
    assert (md.jacobian_method, md.frame_skip) == ("transitionFD", 5)
    x, u = _cheetah_batch(md, 7, seed=nthread)
    np.testing.assert_array_equal(md.step_numpy(x, u), md.step_numpy_sequential(x, u))
    A, B = md.jacobians_numpy(x, u)
    A_ref, B_ref = md.jacobians_numpy_sequential(x, u)
    np.testing.assert_array_equal(A, A_ref)
    np.testing.assert_array_equal(B, B_ref)
    # and against a plain loop of mjd_transitionFD on a fresh MjData, chained over frame_skip
    m = cheetah.unwrapped.model
    d = mujoco.MjData(m)
    Aj, Bj = np.zeros((md.nx, md.nx)), np.zeros((md.nx, md.nu))
    for i in (0, 6):
        d.qpos[:], d.qvel[:], d.ctrl[:] = x[i, : md.nq], x[i, md.nq :], u[i]
        d.qacc_warmstart[:] = 0.0
        A_i, B_i = np.eye(md.nx), np.zeros((md.nx, md.nu))
        for _ in range(md.frame_skip):
            mujoco.mjd_transitionFD(m, d, md.fd_eps, True, Aj, Bj, None, None)
            A_i, B_i = Aj @ A_i, Aj @ B_i + Bj
            mujoco.mj_step(m, d)
        np.testing.assert_allclose(A[i], A_i, rtol=0, atol=1e-12)
        np.testing.assert_allclose(B[i], B_i, rtol=0, atol=1e-12)


def test_jacobians_are_nan_exactly_where_the_step_is(cheetah, pendulum_env):
    # Issue 15, class 3: a NaN state or a huge velocity gave finite Jacobians and a NaN step.
    for md in (
        MuJoCoDynamics.from_env(cheetah, nthread=2),  # transitionFD, threads
        MuJoCoDynamics.from_env(pendulum_env, nthread=2),  # RK4: central differences
    ):
        x, u = _cheetah_batch(md, 5, seed=7) if md.nq == 9 else (np.zeros((5, 4)), np.zeros((5, 1)))
        x[1, 0] = np.nan
        x[2, md.nq :] = 1e11  # MuJoCo's BADQVEL
        u[3, 0] = np.inf
        step = md.step_numpy(x, u)
        bad = ~np.isfinite(step).all(axis=1)
        assert bad.tolist() == [False, True, True, True, False]
        A, B = md.jacobians_numpy(x, u)
        assert np.isnan(A[bad]).all() and np.isnan(B[bad]).all()
        assert np.isfinite(A[~bad]).all() and np.isfinite(B[~bad]).all()
        A_ok, B_ok = md.jacobians_numpy(x[~bad], u[~bad])  # bad rows leave the others alone
        np.testing.assert_array_equal(A[~bad], A_ok)
        np.testing.assert_array_equal(B[~bad], B_ok)
        fx, fu = md.jacobians(torch.tensor(x), torch.tensor(u))
        assert torch.isnan(fx[1]).all() and torch.isnan(fu[2]).all()
