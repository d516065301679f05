"""Tests for control.linear_mpc.LinearMPC against lqr()/dlqr() and an independent solver."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from control.linear_mpc import InfeasibleError, LinearMPC, MPCResult
from control.linear_quadratic import dlqr, lqr

N_X, N_U, H = 4, 2, 15


@pytest.fixture(scope="module")
def system():
    rng = np.random.default_rng(0)
    A = np.eye(N_X) + 0.15 * rng.normal(size=(N_X, N_X))
    B = 0.3 * rng.normal(size=(N_X, N_U))
    L = rng.normal(size=(N_X, N_X))
    Q = L @ L.T / N_X + 0.1 * np.eye(N_X)
    R = np.diag([0.2, 0.5])
    Qf = 2.0 * np.eye(N_X)
    x0 = np.array([1.0, -0.5, 0.8, 0.3])
    return A, B, Q, R, Qf, x0


def lqr_plan(A, B, Q, R, Qf, x0, horizon=H):
    n, m = B.shape
    F = np.broadcast_to(np.hstack([A, B]), (horizon, n, n + m))
    C = np.zeros((n + m, n + m))
    C[:n, :n], C[n:, n:] = Q, R
    C = np.broadcast_to(C, (horizon, n + m, n + m))
    return lqr(F, np.zeros((horizon, n)), C, np.zeros((horizon, n + m)), x0, C_final=Qf)


@pytest.mark.parametrize("solver", [None, "OSQP"])
def test_inactive_constraints_match_lqr(system, solver):
    A, B, Q, R, Qf, x0 = system
    ref = lqr_plan(A, B, Q, R, Qf, x0)
    mpc = LinearMPC(A, B, Q, R, H, Q_final=Qf, x_min=-100, x_max=100, u_min=-50.0,
                    u_max=[50.0, np.inf], solver=solver)  # fmt: skip
    res = mpc.solve(x0)
    assert isinstance(res, MPCResult) and res.status == "optimal"
    assert res.x.shape == (H + 1, N_X) and res.u.shape == (H, N_U) and res.u0.shape == (N_U,)
    np.testing.assert_allclose(res.u, ref.u, atol=1e-5)
    np.testing.assert_allclose(res.x, ref.x, atol=1e-5)
    np.testing.assert_allclose(res.u0, ref.u[0], atol=1e-5)
    assert abs(res.cost - ref.cost) < 1e-5 * max(1.0, abs(ref.cost))


def test_dare_terminal_cost_gives_infinite_horizon_gain(system):
    A, B, Q, R, _, x0 = system
    K, S, _ = dlqr(A, B, Q, R)
    # ½-convention cost with terminal ½ xᵀ S x: the tail is exact, so u_0 = -K x0 for any horizon.
    res = LinearMPC(A, B, Q, R, 5, Q_final=S).solve(x0)
    np.testing.assert_allclose(res.u0, -K @ x0, atol=1e-6)


def test_active_constraints_are_respected_and_change_the_plan(system):
    A, B, Q, R, Qf, x0 = system
    ref = lqr_plan(A, B, Q, R, Qf, x0)
    u_max = 0.5 * np.abs(ref.u).max()
    x_lo = np.array([-np.inf, -0.3, -np.inf, -np.inf])
    kw = dict(Q_final=Qf, u_min=-u_max, u_max=u_max, x_min=x_lo)
    res = LinearMPC(A, B, Q, R, H, **kw).solve(x0)
    assert res.status == "optimal"
    tol = 1e-6
    assert np.all(np.abs(res.u) <= u_max + tol)
    assert np.all(res.x[1:, 1] >= -0.3 - tol)
    assert np.isclose(np.abs(res.u).max(), u_max, atol=1e-6)  # the bound is active
    assert np.abs(res.u - ref.u).max() > 0.05  # and the plan differs from unconstrained LQR
    assert res.cost > ref.cost
    # Dynamics hold exactly (to solver tolerance).
    np.testing.assert_allclose(res.x[1:], res.x[:-1] @ A.T + res.u @ B.T, atol=1e-7)
    # An independent solver (ADMM instead of the default interior point) finds the same optimum.
    other = LinearMPC(A, B, Q, R, H, solver="OSQP", **kw).solve(x0)
    np.testing.assert_allclose(res.u, other.u, atol=1e-5)
    assert abs(res.cost - other.cost) < 1e-6 * max(1.0, res.cost)


def test_infeasible_state_bounds_raise_or_report(system):
    A, B, Q, R, Qf, _ = system
    kw = dict(u_min=-0.01, u_max=0.01, x_min=-1.0, x_max=1.0)
    mpc = LinearMPC(A, B, Q, R, H, **kw)
    x0 = np.array([0.0, 0.0, 0.0, 50.0])  # far outside the box and unable to get back in one step
    with pytest.raises(InfeasibleError, match="infeasible") as info:
        mpc.solve(x0)
    assert isinstance(info.value, RuntimeError)
    assert info.value.status.startswith("infeasible")
    res = LinearMPC(A, B, Q, R, H, raise_on_infeasible=False, **kw).solve(x0)
    assert res.status.startswith("infeasible")
    assert np.isnan(res.u).all() and np.isnan(res.x).all() and res.cost == np.inf
    # The same compiled problem still solves feasible initial states afterwards.
    assert mpc.solve(np.zeros(N_X)).status == "optimal"


@pytest.mark.parametrize("solver", [None, "OSQP"])
def test_resolve_reuses_compiled_problem(system, solver):
    A, B, Q, R, Qf, x0 = system
    mpc = LinearMPC(A, B, Q, R, H, Q_final=Qf, u_min=-0.3, u_max=0.3, solver=solver)
    assert mpc.problem.is_dpp()
    first = mpc.solve(x0)
    compiled = mpc.problem._cache.param_prog  # cvxpy's cached parametrised program
    assert compiled is not None
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.normal(size=N_X)
        res = mpc.solve(torch.tensor(x))  # torch input is accepted
        assert mpc.problem._cache.param_prog is compiled  # not recompiled
        fresh = LinearMPC(A, B, Q, R, H, Q_final=Qf, u_min=-0.3, u_max=0.3, solver=solver).solve(x)
        np.testing.assert_allclose(res.u, fresh.u, atol=1e-6)
        np.testing.assert_allclose(res.x[0], x, atol=1e-9)
    np.testing.assert_allclose(mpc.solve(x0).u, first.u, atol=1e-6)


def test_bad_inputs_name_the_argument(system):
    A, B, Q, R, Qf, x0 = system
    with pytest.raises(ValueError, match=r"B must have shape \(n, m\) = \(4, m\)"):
        LinearMPC(A, B[:3], Q, R, H)
    with pytest.raises(ValueError, match=r"R must have shape \(2, 2\)"):
        LinearMPC(A, B, Q, np.eye(3), H)
    with pytest.raises(ValueError, match="R must be positive definite"):
        LinearMPC(A, B, Q, np.diag([1.0, 0.0]), H)
    with pytest.raises(ValueError, match="Q must be positive semidefinite"):
        LinearMPC(A, B, -Q, R, H)
    with pytest.raises(ValueError, match="horizon must be an integer >= 1"):
        LinearMPC(A, B, Q, R, 0)
    with pytest.raises(ValueError, match="u_min > u_max at index 1"):
        LinearMPC(A, B, Q, R, H, u_min=[0.0, 1.0], u_max=[1.0, 0.5])
    with pytest.raises(ValueError, match=r"x_max must be a scalar or have shape \(4,\)"):
        LinearMPC(A, B, Q, R, H, x_max=np.ones(3))
    with pytest.raises(ValueError, match="A contains NaN or inf"):
        LinearMPC(np.full_like(A, np.nan), B, Q, R, H)
    mpc = LinearMPC(A, B, Q, R, H)
    with pytest.raises(ValueError, match=r"x0 must have shape \(4,\)"):
        mpc.solve(np.zeros(3))
    with pytest.raises(ValueError, match="x0 contains NaN or inf"):
        mpc.solve(np.array([np.nan, 0, 0, 0]))


@pytest.mark.parametrize("bound", [dict(u_min=np.inf), dict(u_max=-np.inf), dict(x_min=np.inf),
                                   dict(x_max=[0.0, -np.inf, 0.0, 0.0])])  # fmt: skip
def test_wrong_side_infinite_bound_is_an_error_not_ignored(system, bound):
    A, B, Q, R, _, _ = system
    with pytest.raises(ValueError, match=f"{next(iter(bound))} contains -?inf"):
        LinearMPC(A, B, Q, R, H, **bound)


# ---------------------------------------------------------------------------------------------
# Tracking, affine terms and time-varying dynamics, against lqr() built by hand
# ---------------------------------------------------------------------------------------------


def lqr_tracking_plan(A_t, B_t, c_t, Q, R, Qf, x0, x_ref, u_ref):
    """The MPC problem with inactive bounds as lqr() data (F_t, f_t, C_t, c_t), built by hand.

    ½(x-r)ᵀQ(x-r) = ½xᵀQx - xᵀQr + ½rᵀQr: the reference enters the linear term c_t = -[Q r_t;
    R s_t] (and c_final = -Q_final r_H); the constant ½rᵀQr is returned separately.
    """
    H, n, m = B_t.shape
    F = np.concatenate([A_t, B_t], axis=-1)
    C = np.zeros((H, n + m, n + m))
    C[:, :n, :n], C[:, n:, n:] = Q, R
    c = np.concatenate([-x_ref[:H] @ Q, -u_ref @ R], axis=-1)
    const = 0.5 * (
        np.einsum("ti,ij,tj->", x_ref[:H], Q, x_ref[:H])
        + np.einsum("ti,ij,tj->", u_ref, R, u_ref)
        + x_ref[H] @ Qf @ x_ref[H]
    )
    sol = lqr(F, c_t, C, c, x0, C_final=Qf, c_final=-Qf @ x_ref[H])
    return sol, const


@pytest.fixture(scope="module")
def varying(system):
    """Time-varying A_t, B_t, an affine term c_t and a reference trajectory (x_ref, u_ref)."""
    A, B, Q, R, Qf, x0 = system
    rng = np.random.default_rng(2)
    A_t = A + 0.1 * rng.normal(size=(H, N_X, N_X))
    B_t = B + 0.1 * rng.normal(size=(H, N_X, N_U))
    c_t = 0.2 * rng.normal(size=(H, N_X))
    ts = np.arange(H + 1)[:, None]
    x_ref = np.sin(0.3 * ts + np.arange(N_X)) + 0.1 * rng.normal(size=(H + 1, N_X))
    u_ref = 0.3 * rng.normal(size=(H, N_U))
    return A_t, B_t, c_t, x_ref, u_ref


LOOSE = dict(x_min=-100.0, x_max=100.0, u_min=-50.0, u_max=50.0)


@pytest.mark.parametrize("solver", [None, "OSQP"])
def test_tracking_matches_lqr(system, varying, solver):
    A, B, Q, R, Qf, x0 = system
    _, _, _, x_ref, u_ref = varying
    ref, const = lqr_tracking_plan(np.broadcast_to(A, (H, N_X, N_X)),
                                   np.broadcast_to(B, (H, N_X, N_U)), np.zeros((H, N_X)), Q, R,
                                   Qf, x0, x_ref, u_ref)  # fmt: skip
    mpc = LinearMPC(A, B, Q, R, H, Q_final=Qf, x_ref=x_ref, u_ref=u_ref, solver=solver, **LOOSE)
    res = mpc.solve(x0)
    assert res.status == "optimal"
    tol = 1e-7 if solver is None else 1e-5
    np.testing.assert_allclose(res.u, ref.u, atol=tol)
    np.testing.assert_allclose(res.x, ref.x, atol=tol)
    assert abs(res.cost - (ref.cost + const)) < tol * max(1.0, abs(ref.cost + const))
    # The reference really moves the plan away from regulation to the origin.
    assert np.abs(res.u - LinearMPC(A, B, Q, R, H, Q_final=Qf).solve(x0).u).max() > 0.1


def test_time_varying_affine_tracking_matches_lqr(system, varying):
    A, B, Q, R, Qf, x0 = system
    A_t, B_t, c_t, x_ref, u_ref = varying
    ref, const = lqr_tracking_plan(A_t, B_t, c_t, Q, R, Qf, x0, x_ref, u_ref)
    mpc = LinearMPC(A_t, B_t, Q, R, H, Q_final=Qf, c=c_t, x_ref=x_ref, u_ref=u_ref, **LOOSE)
    assert mpc.time_varying
    res = mpc.solve(x0)
    np.testing.assert_allclose(res.u, ref.u, atol=1e-7)
    np.testing.assert_allclose(res.x, ref.x, atol=1e-7)
    assert abs(res.cost - (ref.cost + const)) < 1e-7 * max(1.0, abs(ref.cost + const))
    # Dynamics hold with the time-varying matrices and the affine term.
    np.testing.assert_allclose(res.x[1:], np.einsum("tij,tj->ti", A_t, res.x[:-1])
                               + np.einsum("tij,tj->ti", B_t, res.u) + c_t, atol=1e-8)  # fmt: skip


@pytest.mark.parametrize("which", ["A", "B", "c only"])
def test_time_varying_and_affine_each_alone_match_lqr(system, varying, which):
    A, B, Q, R, Qf, x0 = system
    A_t, B_t, c_t, _, _ = varying
    A_use = A_t if which == "A" else A
    B_use = B_t if which == "B" else B
    c_use = np.zeros((H, N_X)) if which != "c only" else c_t[0]  # constant c: shape (n,)
    zeros_x, zeros_u = np.zeros((H + 1, N_X)), np.zeros((H, N_U))
    ref, _ = lqr_tracking_plan(np.broadcast_to(A_use, (H, N_X, N_X)),
                               np.broadcast_to(B_use, (H, N_X, N_U)),
                               np.broadcast_to(c_use, (H, N_X)), Q, R, Qf, x0, zeros_x,
                               zeros_u)  # fmt: skip
    kw = {} if which != "c only" else {"c": c_use}
    res = LinearMPC(A_use, B_use, Q, R, H, Q_final=Qf, **kw, **LOOSE).solve(x0)
    np.testing.assert_allclose(res.u, ref.u, atol=1e-7)
    assert abs(res.cost - ref.cost) < 1e-7 * max(1.0, abs(ref.cost))


@pytest.mark.parametrize("solver", [None, "OSQP"])
def test_new_reference_and_affine_term_reuse_the_compiled_problem(system, varying, solver):
    A, B, Q, R, Qf, x0 = system
    A_t, B_t, c_t, x_ref, u_ref = varying
    kw = dict(Q_final=Qf, solver=solver, u_min=-0.4, u_max=0.4)
    mpc = LinearMPC(A_t, B_t, Q, R, H, c=c_t, x_ref=x_ref, **kw)
    first = mpc.solve(x0)
    compiled = mpc.problem._cache.param_prog
    shifted = np.roll(x_ref, -1, axis=0)
    res = mpc.solve(x0, x_ref=shifted, u_ref=u_ref, c=-c_t)
    assert mpc.problem._cache.param_prog is compiled
    fresh = LinearMPC(A_t, B_t, Q, R, H, c=-c_t, x_ref=shifted, u_ref=u_ref, **kw).solve(x0)
    np.testing.assert_allclose(res.u, fresh.u, atol=1e-6)
    assert np.abs(res.u - first.u).max() > 0.05
    assert np.all(np.abs(res.u) <= 0.4 + 1e-6)
    # None keeps the current values.
    np.testing.assert_allclose(mpc.solve(x0).u, res.u, atol=1e-6)


def test_tracking_a_set_point_outside_the_box_saturates(system):
    A, B, _, _, _, _ = system
    Q, R = np.diag([10.0, 0.1, 0.1, 0.1]), 0.01 * np.eye(N_U)
    target = np.array([2.0, 0.0, 0.0, 0.0])
    mpc = LinearMPC(A, B, Q, R, H, x_ref=target, x_max=1.0, u_min=-5.0, u_max=5.0)
    res = mpc.solve(np.zeros(N_X))
    assert res.status == "optimal"
    assert np.all(res.x[1:] <= 1.0 + 1e-7)
    assert abs(res.x[1:, 0].max() - 1.0) < 1e-6  # pushed against the bound, towards the target
    unbounded = LinearMPC(A, B, Q, R, H, x_ref=target, u_min=-5.0, u_max=5.0).solve(np.zeros(N_X))
    assert unbounded.x[1:, 0].max() > 1.1  # without the bound the plan goes past it


def test_new_feature_bad_inputs_name_the_argument(system):
    A, B, Q, R, Qf, x0 = system
    with pytest.raises(
        ValueError, match=r"A must have shape \(n, n\) or \(H, n, n\) = \(15, 4, 4\)"
    ):
        LinearMPC(np.stack([A] * (H - 1)), B, Q, R, H)
    with pytest.raises(ValueError, match=r"B must have shape .* \(H, n, m\) = \(15, 4, 2\)"):
        LinearMPC(A, np.stack([B] * (H + 1)), Q, R, H)
    with pytest.raises(ValueError, match=r"x_ref must have shape \(4,\) or \(16, 4\)"):
        LinearMPC(A, B, Q, R, H, x_ref=np.zeros((H, N_X)))
    with pytest.raises(ValueError, match=r"u_ref must have shape \(2,\) or \(15, 2\)"):
        LinearMPC(A, B, Q, R, H, u_ref=np.zeros(3))
    with pytest.raises(ValueError, match="c contains NaN or inf"):
        LinearMPC(A, B, Q, R, H, c=np.array([np.nan, 0, 0, 0]))
    with pytest.raises(ValueError, match="horizon must be an integer >= 1; got True"):
        LinearMPC(A, B, Q, R, True)
    with pytest.raises(TypeError, match="LinearMPC: A must be an array, got None"):
        LinearMPC(None, B, Q, R, H)
    mpc = LinearMPC(A, B, Q, R, H)
    with pytest.raises(ValueError, match="x_ref given to solve.* built without x_ref or u_ref"):
        mpc.solve(x0, x_ref=np.zeros(N_X))
    with pytest.raises(ValueError, match="c given to solve.* built without c"):
        mpc.solve(x0, c=np.zeros(N_X))
    tracking = LinearMPC(A, B, Q, R, H, u_ref=np.zeros(N_U))
    with pytest.raises(ValueError, match="x_ref contains NaN or inf"):
        tracking.solve(x0, x_ref=np.full(N_X, np.inf))
