"""Tests of control.ddp.ilqr (batched iLQR / box-DDP), control.boxqp and control.derivatives."""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import envs
from control.boxqp import box_qp
from control.ddp import _backward_pass, ilqr
from control.derivatives import cost_derivatives, linearize_dynamics, numpy_function
from control.linear_quadratic import lqr
from control.receding_horizon import RecedingHorizonILQR
from envs.analytic.angles import angle_normalize

DT = torch.float64


# --------------------------------------------------------------------------------------------
# problems
# --------------------------------------------------------------------------------------------
def random_lq(seed: int, n: int = 3, m: int = 2):
    """Time-invariant LQ problem: x' = F [x; u] + f, cost ½zᵀCz + zᵀc, terminal ½xᵀCf x + xᵀcf."""
    g = np.random.default_rng(seed)
    F = np.concatenate([np.eye(n) + 0.1 * g.normal(size=(n, n)), g.normal(size=(n, m))], 1)
    f = 0.1 * g.normal(size=n)
    R = g.normal(size=(n + m, n + m))
    C = R @ R.T / (n + m) + 0.5 * np.eye(n + m)
    c = g.normal(size=n + m)
    Rf = g.normal(size=(n, n))
    Cf = Rf @ Rf.T / n + np.eye(n)
    cf = g.normal(size=n)
    x0 = g.normal(size=n)
    Ft, ft, Ct, ct = (torch.tensor(a) for a in (F, f, C, c))
    Cft, cft = torch.tensor(Cf), torch.tensor(cf)

    def dynamics(x, u):
        return torch.cat([x, u], -1) @ Ft.T + ft

    def cost(x, u):
        z = torch.cat([x, u], -1)
        return 0.5 * ((z @ Ct) * z).sum(-1) + z @ ct

    def terminal(x):
        return 0.5 * ((x @ Cft) * x).sum(-1) + x @ cft

    return dict(F=F, f=f, C=C, c=c, Cf=Cf, cf=cf, x0=x0, dyn=dynamics, cost=cost, term=terminal)


def pendulum_problem():
    dyn = envs.get_task("pendulum-swingup", max_speed=None).dynamics_fn

    def cost(x, u):
        return angle_normalize(x[:, 0]) ** 2 + 0.1 * x[:, 1] ** 2 + 0.001 * u[:, 0] ** 2

    def terminal(x):
        return angle_normalize(x[:, 0]) ** 2 + 0.1 * x[:, 1] ** 2

    return dyn, cost, terminal


def pendulum_jacobians(x, u, g=10.0, m=1.0, ell=1.0, dt=0.05):
    """Hand-derived Jacobians of the pendulum step (interior of the torque bounds)."""
    th = x[:, 0]
    N = x.shape[0]
    a = 3.0 * g / (2.0 * ell) * torch.cos(th) * dt
    b = 3.0 / (m * ell**2) * dt
    fx = torch.zeros(N, 2, 2, dtype=x.dtype)
    fx[:, 1, 0] = a
    fx[:, 1, 1] = 1.0
    fx[:, 0, 0] = 1.0 + a * dt
    fx[:, 0, 1] = dt
    fu = torch.zeros(N, 2, 1, dtype=x.dtype)
    fu[:, 1, 0] = b
    fu[:, 0, 0] = b * dt
    return fx, fu


def cartpole_problem():
    dyn = envs.get_task("cartpole-swingup").dynamics_fn

    def terminal(x):
        return (
            0.1 * x[:, 0] ** 2
            + 0.01 * x[:, 1] ** 2
            + angle_normalize(x[:, 2]) ** 2
            + 0.01 * x[:, 3] ** 2
        )

    def cost(x, u):
        return terminal(x) + 0.001 * u[:, 0] ** 2

    return dyn, cost, terminal


# --------------------------------------------------------------------------------------------
# LQ: one iteration gives the LQR solution
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_lq_converges_in_one_iteration_to_lqr(seed):
    p = random_lq(seed)
    T = 12
    ref = lqr(
        np.repeat(p["F"][None], T, 0),
        np.repeat(p["f"][None], T, 0),
        np.repeat(p["C"][None], T, 0),
        np.repeat(p["c"][None], T, 0),
        p["x0"],
        C_final=p["Cf"],
        c_final=p["cf"],
    )
    one = ilqr(p["dyn"], p["cost"], p["x0"], torch.zeros(T, 2), terminal_cost=p["term"], max_iter=1)
    np.testing.assert_allclose(one.u[0].numpy(), ref.u, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(one.x[0].numpy(), ref.x, rtol=1e-8, atol=1e-8)
    assert abs(float(one.cost[0]) - float(ref.cost)) <= 1e-8 * (1 + abs(float(ref.cost)))
    full = ilqr(p["dyn"], p["cost"], p["x0"], torch.zeros(T, 2), terminal_cost=p["term"])
    assert full.status == ["converged"] and bool(full.converged[0])
    assert int(full.iterations[0]) == 1
    np.testing.assert_allclose(full.u[0].numpy(), ref.u, rtol=1e-8, atol=1e-8)
    # The feedback gains equal LQR's (iLQR's gains act on δx; LQR's on x).
    np.testing.assert_allclose(full.K[0].numpy(), ref.K, rtol=1e-7, atol=1e-8)


# --------------------------------------------------------------------------------------------
# derivatives
# --------------------------------------------------------------------------------------------
def test_derivative_methods_agree():
    dyn, cost, terminal = pendulum_problem()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 2, generator=g, dtype=DT) * 4 - 2
    u = torch.rand(50, 1, generator=g, dtype=DT) * 3.6 - 1.8
    Fa = linearize_dynamics(dyn, x, u, "autodiff")
    Fj = linearize_dynamics(dyn, x, u, "analytic", jacobians=pendulum_jacobians)
    Fd = linearize_dynamics(dyn, x, u, "finite_difference")
    assert Fa.shape == (50, 2, 3)
    torch.testing.assert_close(Fa, Fj, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(Fd, Fa, rtol=1e-6, atol=1e-8)
    # numpy black box + finite differences
    npdyn = numpy_function(lambda xx, uu: dyn(torch.from_numpy(xx), torch.from_numpy(uu)).numpy())
    torch.testing.assert_close(
        linearize_dynamics(npdyn, x, u, "finite_difference"), Fa, rtol=1e-6, atol=1e-8
    )
    ca, Ca = cost_derivatives(cost, x, u, "autodiff")
    cd, Cd = cost_derivatives(cost, x, u, "finite_difference")
    torch.testing.assert_close(cd, ca, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(Cd, Ca, rtol=1e-6, atol=1e-6)
    exact = torch.diag_embed(torch.tensor([2.0, 0.2, 0.002], dtype=DT)).expand(50, 3, 3)
    torch.testing.assert_close(Ca, exact, rtol=1e-12, atol=1e-12)
    # Cart-pole: a coupled Jacobian
    cdyn, ccost, _ = cartpole_problem()
    xc = torch.rand(30, 4, generator=g, dtype=DT) * 2 - 1
    uc = torch.rand(30, 1, generator=g, dtype=DT) * 16 - 8
    torch.testing.assert_close(
        linearize_dynamics(cdyn, xc, uc, "finite_difference"),
        linearize_dynamics(cdyn, xc, uc, "autodiff"),
        rtol=1e-6,
        atol=1e-8,
    )


def test_ilqr_same_solution_with_all_derivative_methods():
    _, cost, terminal = pendulum_problem()
    # The bounds are ilqr's alone (no torque clamp inside the dynamics: central differences across
    # a clamp would halve ∂f/∂u at the bound, a genuine difference between the methods).
    dyn = envs.get_task("pendulum-swingup", max_speed=None, max_torque=1e3).dynamics_fn
    x0 = torch.tensor([math.pi - 0.3, 0.0])
    kw = dict(terminal_cost=terminal, u_min=-2.0, u_max=2.0, max_iter=60, tol=1e-10)
    u0 = torch.zeros(40, 1)
    ra = ilqr(dyn, cost, x0, u0, derivatives="autodiff", **kw)
    rj = ilqr(dyn, cost, x0, u0, derivatives="analytic", jacobians=pendulum_jacobians, **kw)
    npdyn = numpy_function(lambda xx, uu: dyn(torch.from_numpy(xx), torch.from_numpy(uu)).numpy())
    rd = ilqr(npdyn, cost, x0, u0, derivatives="finite_difference", **kw)
    for r in (ra, rj, rd):
        assert r.status == ["converged"]
    assert float(ra.u.abs().max()) == 2.0  # bounds active
    torch.testing.assert_close(rj.u, ra.u, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(rd.u, ra.u, rtol=1e-5, atol=1e-5)
    assert abs(float(rd.cost[0] - ra.cost[0])) < 1e-6 * float(ra.cost[0])


# --------------------------------------------------------------------------------------------
# box constraints
# --------------------------------------------------------------------------------------------
def cvx_box_qp(H, g, lo, up):
    x = cp.Variable(len(g))
    prob = cp.Problem(
        cp.Minimize(0.5 * cp.quad_form(x, cp.psd_wrap(H)) + g @ x), [x >= lo, x <= up]
    )
    prob.solve(solver=cp.CLARABEL)
    return x.value, prob.value


def test_box_qp_matches_cvxpy():
    rng = np.random.default_rng(3)
    M, m = 12, 4
    R = rng.normal(size=(M, m, m))
    H = R @ R.transpose(0, 2, 1) + 0.1 * np.eye(m)
    g = 3 * rng.normal(size=(M, m))
    lo = -rng.uniform(0.1, 1.0, size=(M, m))
    up = rng.uniform(0.1, 1.0, size=(M, m))
    lo[0] = -np.inf  # one-sided member
    res = box_qp(*(torch.tensor(a) for a in (H, g, lo, up)))
    x = res.x.numpy()
    assert (x >= lo - 1e-12).all() and (x <= up + 1e-12).all()
    for i in range(M):
        xr, vr = cvx_box_qp(H[i], g[i], np.maximum(lo[i], -1e6), up[i])
        v = 0.5 * x[i] @ H[i] @ x[i] + g[i] @ x[i]
        assert v <= vr + 1e-6 * (1 + abs(vr))
        np.testing.assert_allclose(x[i], xr, atol=2e-4)


def lq_as_qp_cvxpy(p, T, lo, up):
    """The box-constrained LQ problem as one convex QP in (x, u), solved by cvxpy."""
    n, m = len(p["x0"]), p["F"].shape[1] - len(p["x0"])
    X = cp.Variable((T + 1, n))
    U = cp.Variable((T, m))
    L = np.linalg.cholesky(p["C"])
    Lf = np.linalg.cholesky(p["Cf"])
    obj = 0
    cons = [X[0] == p["x0"], U >= lo, U <= up]
    for t in range(T):
        z = cp.hstack([X[t], U[t]])
        obj += 0.5 * cp.sum_squares(L.T @ z) + p["c"] @ z
        cons.append(X[t + 1] == p["F"] @ z + p["f"])
    obj += 0.5 * cp.sum_squares(Lf.T @ X[T]) + p["cf"] @ X[T]
    prob = cp.Problem(cp.Minimize(obj), cons)
    prob.solve(solver=cp.CLARABEL)
    return U.value, prob.value


@pytest.mark.parametrize("seed", [0, 4])
def test_box_constrained_lq_matches_cvxpy_qp(seed):
    p = random_lq(seed)
    T = 10
    ref_u, ref_cost = lq_as_qp_cvxpy(p, T, -0.3, 0.3)
    r = ilqr(
        p["dyn"],
        p["cost"],
        p["x0"],
        torch.zeros(T, 2),
        terminal_cost=p["term"],
        u_min=-0.3,
        u_max=0.3,
    )
    assert r.status == ["converged"]
    assert float(r.u.abs().max()) <= 0.3
    assert bool((r.u.abs() > 0.3 - 1e-9).any())  # the bounds are active
    assert abs(float(r.cost[0]) - ref_cost) < 1e-6 * (1 + abs(ref_cost))
    np.testing.assert_allclose(r.u[0].numpy(), ref_u, atol=1e-4)


def test_controls_stay_in_bounds_and_inactive_bounds_change_nothing():
    dyn, cost, terminal = cartpole_problem()
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(6, 4, generator=g, dtype=DT) * 2 - 1
    u0 = torch.rand(6, 30, 1, generator=g, dtype=DT) * 4 - 2
    lo = -torch.rand(6, 1, 1, generator=g, dtype=DT) * 3 - 0.5
    up = torch.rand(6, 1, 1, generator=g, dtype=DT) * 3 + 0.5
    r = ilqr(dyn, cost, x0, u0, terminal_cost=terminal, u_min=lo, u_max=up, max_iter=40)
    assert bool((r.u >= lo).all()) and bool((r.u <= up).all())
    assert bool(torch.isfinite(r.cost).all())
    # A problem whose unbounded solution is interior: huge bounds give the same answer.
    p = random_lq(2)
    free = ilqr(p["dyn"], p["cost"], p["x0"], torch.zeros(10, 2), terminal_cost=p["term"])
    wide = ilqr(
        p["dyn"],
        p["cost"],
        p["x0"],
        torch.zeros(10, 2),
        terminal_cost=p["term"],
        u_min=-1e3,
        u_max=1e3,
    )
    torch.testing.assert_close(wide.u, free.u, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(wide.K, free.K, rtol=1e-10, atol=1e-10)


@settings(max_examples=4, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    lo=st.floats(0.05, 2.0),
    hi=st.floats(0.05, 2.0),
)
def test_bounds_hold_on_random_problems(seed, lo, hi):
    p = random_lq(seed % 50, n=3, m=2)
    gen = torch.Generator().manual_seed(seed)
    u0 = (torch.rand(3, 8, 2, generator=gen, dtype=DT) * 2 - 1) * 5  # outside: projected
    r = ilqr(
        p["dyn"], p["cost"], p["x0"], u0, terminal_cost=p["term"], u_min=-lo, u_max=hi, max_iter=15
    )
    assert bool((r.u >= -lo).all()) and bool((r.u <= hi).all())
    assert bool(torch.isfinite(r.x).all())


# --------------------------------------------------------------------------------------------
# robustness
# --------------------------------------------------------------------------------------------
def test_nan_region_gives_finite_result_and_status():
    # 1-D integrator pushed toward x = 3, but the dynamics are NaN beyond x = 2.
    def dyn(x, u):
        nxt = x + u
        return torch.where(nxt > 2.0, torch.full_like(nxt, float("nan")), nxt)

    def cost(x, u):
        return (x[:, 0] - 3.0) ** 2 + 0.01 * u[:, 0] ** 2

    r = ilqr(
        dyn, cost, torch.zeros(1), torch.zeros(10, 1), terminal_cost=lambda x: (x[:, 0] - 3) ** 2
    )
    assert bool(torch.isfinite(r.x).all()) and bool(torch.isfinite(r.u).all())
    assert math.isfinite(float(r.cost[0]))
    assert float(r.cost[0]) < float(r.cost_history[0, 0])  # it still made progress
    assert float(r.x[0].max()) <= 2.0
    assert "NaN/inf" in r.notes[0]

    # Dynamics that are NaN for any control but the initial one: the initial trajectory is kept.
    def dyn2(x, u):
        bad = u.abs().sum(-1, keepdim=True) > 0
        return torch.where(bad, torch.full_like(x, float("nan")), x + u)

    r2 = ilqr(dyn2, cost, torch.zeros(1), torch.zeros(5, 1), reg_max=1e3)
    assert r2.status == ["reg_max_reached"]
    assert "NaN/inf" in r2.notes[0]
    torch.testing.assert_close(r2.u, torch.zeros(1, 5, 1, dtype=DT))
    assert math.isfinite(float(r2.cost[0]))


def test_non_pd_quu_raises_regularisation():
    # Concave in u: Q_uu < 0, the solver regularises (and reports it) instead of failing.
    def dyn(x, u):
        return x + u

    def cost(x, u):
        return x[:, 0] ** 2 - 0.5 * u[:, 0] ** 2 + 0.1 * u[:, 0] ** 4

    r = ilqr(dyn, cost, torch.ones(1), torch.zeros(6, 1), u_min=-1.0, u_max=1.0)
    assert "not positive definite" in r.notes[0]
    assert bool(torch.isfinite(r.u).all()) and float(r.cost[0]) < float(r.cost_history[0, 0])


def test_bad_inputs_raise():
    p = random_lq(0)
    with pytest.raises(ValueError, match="u_init"):
        ilqr(p["dyn"], p["cost"], p["x0"], torch.full((5, 2), float("nan")))
    with pytest.raises(ValueError, match="u_min"):
        ilqr(p["dyn"], p["cost"], p["x0"], torch.zeros(5, 2), u_min=1.0, u_max=-1.0)
    with pytest.raises(ValueError, match="derivatives"):
        ilqr(p["dyn"], p["cost"], p["x0"], torch.zeros(5, 2), derivatives="magic")
    with pytest.raises(ValueError, match="batch"):
        ilqr(p["dyn"], p["cost"], torch.zeros(3, 3), torch.zeros(4, 5, 2))
    with pytest.raises(ValueError, match="initial rollout"):
        ilqr(lambda x, u: x * float("nan"), p["cost"], p["x0"], torch.zeros(5, 2))


# --------------------------------------------------------------------------------------------
# batching
# --------------------------------------------------------------------------------------------
def test_batch_of_20_equals_members_solved_alone():
    dyn, cost, terminal = pendulum_problem()
    g = torch.Generator().manual_seed(0)
    T = 40
    u0 = torch.rand(20, T, 1, generator=g, dtype=DT) * 4 - 2
    x0 = torch.tensor([math.pi - 0.5, 0.0])
    kw = dict(terminal_cost=terminal, u_min=-2.0, u_max=2.0, max_iter=60)
    rb = ilqr(dyn, cost, x0, u0, **kw)
    assert rb.x.shape == (20, T + 1, 2) and rb.u.shape == (20, T, 1) and rb.K.shape == (20, T, 1, 2)
    assert rb.best == int(torch.argmin(rb.cost))
    torch.testing.assert_close(rb.u_best, rb.u[rb.best])
    for i in [0, 7, 13, rb.best]:
        ri = ilqr(dyn, cost, x0, u0[i], **kw)
        assert ri.status[0] == rb.status[i]
        assert int(ri.iterations[0]) == int(rb.iterations[i])
        torch.testing.assert_close(ri.u[0], rb.u[i], rtol=1e-7, atol=1e-7)
        assert abs(float(ri.cost[0] - rb.cost[i])) < 1e-8 * float(ri.cost[0])


# --------------------------------------------------------------------------------------------
# swing-ups
# --------------------------------------------------------------------------------------------
def test_pendulum_swingup_from_zero_controls():
    dyn, cost, terminal = pendulum_problem()
    # Exactly θ = π in float64 with zero torques: the nominal trajectory sits on the unstable
    # equilibrium; the discontinuous angle_normalize cost still gives a non-zero gradient there.
    x0 = torch.tensor([math.pi, 0.0], dtype=DT)
    r = ilqr(
        dyn,
        cost,
        x0,
        torch.zeros(100, 1),
        terminal_cost=terminal,
        u_min=-2.0,
        u_max=2.0,
        max_iter=100,
    )
    print(f"pendulum swing-up: cost {float(r.cost[0]):.6f}, iterations {int(r.iterations[0])}")
    assert r.status == ["converged"]
    assert abs(float(angle_normalize(r.x[0, -1, 0]))) < 0.05
    assert abs(float(r.x[0, -1, 1])) < 0.05
    assert float(r.u.abs().max()) <= 2.0
    # Recorded value (a local optimum; from float32 π = 3.1415927 the solver reaches 295.3012).
    assert float(r.cost[0]) == pytest.approx(461.7204, abs=1e-3)
    # the returned cost is the cost of the returned trajectory
    J = cost(r.x[0, :-1], r.u[0]).sum() + terminal(r.x[0, -1:]).sum()
    assert float(J) == pytest.approx(float(r.cost[0]), rel=1e-12)


def test_cartpole_swingup():
    dyn, cost, terminal = cartpole_problem()
    x0 = torch.tensor([0.0, 0.0, math.pi, 0.0], dtype=DT)
    # From zero controls with a damped first step (Tassa's μ₀ = 1): swings up.  (With μ₀ = 0 the
    # full Gauss–Newton first step lands in a local optimum that ends 0.22 rad off upright.)
    r = ilqr(
        dyn,
        cost,
        x0,
        torch.zeros(100, 1),
        terminal_cost=terminal,
        u_min=-10.0,
        u_max=10.0,
        max_iter=150,
        reg_init=1.0,
    )
    print(f"cart-pole swing-up from zeros: cost {float(r.cost[0]):.4f}, it {int(r.iterations[0])}")
    assert r.status == ["converged"]
    assert abs(float(angle_normalize(r.x[0, -1, 2]))) < 0.1
    assert float(r.u.abs().max()) <= 10.0
    assert float(r.cost[0]) == pytest.approx(275.4987, abs=1e-2)  # recorded value


@pytest.mark.slow
def test_cartpole_swingup_multistart():
    dyn, cost, terminal = cartpole_problem()
    x0 = torch.tensor([0.0, 0.0, math.pi, 0.0], dtype=DT)
    # Zero controls plus 19 random sequences in one batched call: the best member swings up.
    g = torch.Generator().manual_seed(0)
    u0 = torch.cat(
        [torch.zeros(1, 100, 1, dtype=DT), torch.rand(19, 100, 1, generator=g, dtype=DT) * 20 - 10]
    )
    rb = ilqr(dyn, cost, x0, u0, terminal_cost=terminal, u_min=-10.0, u_max=10.0, max_iter=150)
    print(f"cart-pole best of 20: cost {rb.cost_best:.4f}")
    assert abs(float(angle_normalize(rb.x_best[-1, 2]))) < 0.1
    assert rb.cost_best < 250.0


# --------------------------------------------------------------------------------------------
# receding horizon
# --------------------------------------------------------------------------------------------
def test_receding_horizon_balances_pendulum():
    dyn, cost, terminal = pendulum_problem()
    mpc = RecedingHorizonILQR(
        dyn,
        cost,
        horizon=25,
        act_dim=1,
        terminal_cost=terminal,
        u_min=-2.0,
        u_max=2.0,
        iters_per_step=2,
    )
    x = torch.tensor([0.4, 0.0], dtype=DT)
    for _ in range(40):
        u = mpc.act(x)
        assert u.shape == (1,) and abs(float(u)) <= 2.0
        x = dyn(x[None], u[None])[0]
    assert abs(float(angle_normalize(x[0]))) < 0.02 and abs(float(x[1])) < 0.1
    assert mpc.plan.shape == (25, 1)


@pytest.mark.parametrize("bounded", [False, True])
def test_numpy_scalar_backward_pass_equals_torch(bounded):
    g = torch.Generator().manual_seed(5)
    M, T, n = 4, 7, 3
    F = torch.randn(M, T, n, n + 1, generator=g, dtype=DT)
    R = torch.randn(M, T, n + 1, n + 1, generator=g, dtype=DT)
    C = R @ R.transpose(-1, -2) + 0.1 * torch.eye(n + 1, dtype=DT)
    c = torch.randn(M, T, n + 1, generator=g, dtype=DT)
    Rv = torch.randn(M, n, n, generator=g, dtype=DT)
    VT, vT = Rv @ Rv.transpose(-1, -2), torch.randn(M, n, generator=g, dtype=DT)
    mu = torch.tensor([0.0, 0.1, 1.0, 0.0], dtype=DT)
    lo = -0.2 * torch.ones(M, T, 1, dtype=DT) if bounded else None
    up = 0.3 * torch.ones(M, T, 1, dtype=DT) if bounded else None
    warm = torch.zeros(M, T, 1, dtype=DT)
    a = _backward_pass(F, c, C, vT, VT, mu, lo, up, warm, numpy_scalar=True)
    b = _backward_pass(F, c, C, vT, VT, mu, lo, up, warm, numpy_scalar=False)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)
    if bounded:
        assert bool((a[1] >= -0.2).all() and (a[1] <= 0.3).all())


@pytest.mark.parametrize("bounds", ["none", "box", "upper_only", "lower_only"])
def test_one_member_backward_pass_equals_batched_numpy_and_torch(bounds):
    # The single-member fast path (riccati_backward_one_scalar) must give the batched NumPy
    # recursion's results exactly (torch.equal: equal up to the sign of zeros) and the torch
    # recursion's to rounding, for every state size, with and without regularisation, with
    # active bounds, and report the same failures (Q_uu + mu not PD, NaN).
    g = torch.Generator().manual_seed(7)
    n_clamped = n_failed = 0
    for trial in range(24):
        n, T = 1 + trial % 6, 3 + trial  # n up to ONE_MEMBER_MAX_N
        F = torch.randn(1, T, n, n + 1, generator=g, dtype=DT)
        R = torch.randn(1, T, n + 1, n + 1, generator=g, dtype=DT)
        C = R @ R.transpose(-1, -2) + 0.1 * torch.eye(n + 1, dtype=DT)
        c = torch.randn(1, T, n + 1, generator=g, dtype=DT)
        Rv = torch.randn(1, n, n, generator=g, dtype=DT)
        VT, vT = Rv @ Rv.transpose(-1, -2), torch.randn(1, n, generator=g, dtype=DT)
        if trial % 6 == 5:
            C[0, T // 2, n, n] = -50.0  # Q_uu + mu not positive definite there
        if trial % 8 == 7:
            c[0, T // 3, 0] = math.nan
        mu = torch.tensor([(0.0, 1e-3, 0.5)[trial % 3]], dtype=DT)
        lo = up = None
        if bounds != "none":
            lo = torch.full((1, T, 1), -0.1 if bounds != "upper_only" else -math.inf, dtype=DT)
            up = torch.full((1, T, 1), 0.15 if bounds != "lower_only" else math.inf, dtype=DT)
        warm = torch.zeros(1, T, 1, dtype=DT)
        one = _backward_pass(F, c, C, vT, VT, mu, lo, up, warm, numpy_scalar=True)
        batched = _backward_pass(F, c, C, vT, VT, mu, lo, up, warm, True, one_member=False)
        ref = _backward_pass(F, c, C, vT, VT, mu, lo, up, warm, numpy_scalar=False)
        assert bool(one[4]) == bool(batched[4]) == bool(ref[4])
        if not bool(ref[4]):
            n_failed += 1
            continue
        for a, b, r in zip(one, batched, ref, strict=True):
            assert a.shape == b.shape and torch.equal(a, b)
            torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)
        if lo is not None:
            hit = (one[1] <= lo) | (one[1] >= up)
            n_clamped += int(hit.sum())
            assert bool((one[0][hit] == 0).all())
    assert n_failed >= 4 and (bounds == "none" or n_clamped > 0)


def test_dynamics_that_needs_autograd_inside_still_rolls_out():
    # Rollouts run in torch.inference_mode; a dynamics that uses autograd internally fails there
    # and must be rolled out again without it, giving the same solution as the same map written
    # without autograd (identical arithmetic: the gradient of 0.5 |z|^2 is z itself).
    def plain(x, u):
        return x - 0.1 * x + torch.cat([0.1 * u, u], -1)

    def with_autograd(x, u):
        with torch.enable_grad():
            z = x.detach().clone().requires_grad_()
            (grad,) = torch.autograd.grad(0.5 * (z * z).sum(), z)
        return x - 0.1 * grad + torch.cat([0.1 * u, u], -1)

    def jac(x, u):
        N = x.shape[0]
        fu = torch.tensor([[0.1], [1.0]], dtype=x.dtype).expand(N, 2, 1)
        return 0.9 * torch.eye(2, dtype=x.dtype).expand(N, 2, 2), fu

    def cost(x, u):
        return (x * x).sum(-1) + 0.1 * (u * u).sum(-1)

    kw = dict(derivatives="analytic", jacobians=jac, u_min=-0.5, u_max=0.5, max_iter=20)
    x0, u0 = torch.tensor([1.0, -2.0], dtype=DT), torch.zeros(15, 1, dtype=DT)
    a = ilqr(plain, cost, x0, u0, **kw)
    b = ilqr(with_autograd, cost, x0, u0, **kw)
    assert int(a.iterations[0]) > 1
    for f in ("x", "u", "K", "k", "cost", "iterations"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f


def test_numpy_rollout_equals_torch_rollout_bit_for_bit():
    # The NumPy step loop (one control: K_t x_t as one product and one row sum) must give the
    # torch step loop's states and controls exactly, for every state size it handles that way
    # (n < 8) and batch shapes, with gains over many orders of magnitude and active bounds; the
    # dynamics uses only + and * so both libraries round alike.
    from control.ilqr_phases import _simulate_numpy, _simulate_torch

    def np_dyn(x, u):
        return np.concatenate([x[:, 1:], 0.1 * x[:, :1] * x[:, :1] + u], 1) * 0.99

    def t_dyn(x, u):
        return torch.cat([x[:, 1:], 0.1 * x[:, :1] * x[:, :1] + u], 1) * 0.99

    rng = np.random.default_rng(3)
    for trial in range(40):
        n, M, A, T = 1 + trial % 7, 1 + trial % 3, 1 + trial % 11, 5 + trial % 9
        X = rng.standard_normal((M, A, n))
        base = rng.standard_normal((M, A, T, 1))
        KT = rng.standard_normal((M, T, n, 1)) * 10.0 ** rng.integers(-8, 3)
        lo = np.full((M, A, T, 1), -1.0)
        a = _simulate_numpy(np_dyn, X, base, KT, lo, -lo, None)
        b = _simulate_torch(t_dyn, *(torch.from_numpy(v) for v in (X, base, KT, lo, -lo)), None)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_wrong_side_infinite_bounds_raise():
    # u_min = +inf or u_max = -inf is an empty box: it must not be read as "unbounded".
    p = random_lq(0)
    for lo, hi in [
        (math.inf, math.inf),
        (-math.inf, -math.inf),
        (math.inf, None),
        (None, -math.inf),
    ]:
        with pytest.raises(ValueError, match="u_min must be < \\+inf and u_max > -inf"):
            ilqr(p["dyn"], p["cost"], p["x0"], torch.zeros(5, 2), u_min=lo, u_max=hi)


def test_analytic_cost_hessian_uses_its_symmetric_part():
    # As in lqr(), only the symmetric part of a supplied Hessian matters: cross terms given only
    # above the diagonal must give the same one-iteration (exact LQR) solution.
    p = random_lq(0)
    T, n, m = 5, 3, 2
    Cu = np.triu(p["C"]) + np.triu(p["C"], 1)  # same quadratic form, asymmetric matrix
    Ct, ct, Ft = torch.tensor(Cu), torch.tensor(p["c"]), torch.tensor(p["F"])

    def cost_derivs(x, u):
        z = torch.cat([x, u], -1)
        return z @ (0.5 * (Ct + Ct.T)) + ct, Ct.expand(z.shape[0], n + m, n + m)

    def jac(x, u):
        N = x.shape[0]
        return Ft[:, :n].expand(N, n, n), Ft[:, n:].expand(N, n, m)

    ref = lqr(
        *(np.repeat(a[None], T, 0) for a in (p["F"], p["f"], Cu, p["c"])),
        p["x0"],
        C_final=p["Cf"],
        c_final=p["cf"],
    )
    r = ilqr(
        p["dyn"],
        p["cost"],
        p["x0"],
        torch.zeros(T, m),
        terminal_cost=p["term"],
        derivatives="analytic",
        jacobians={"dynamics": jac, "cost": cost_derivs},
        max_iter=1,
    )
    np.testing.assert_allclose(r.u[0].numpy(), ref.u, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(r.K[0].numpy(), ref.K, rtol=1e-7, atol=1e-8)


def test_receding_horizon_rejects_max_iter_with_a_clear_message() -> None:
    from control.receding_horizon import RecedingHorizonILQR

    with pytest.raises(TypeError, match="iters_per_step"):
        RecedingHorizonILQR(lambda x, u: x, lambda x, u: (x**2).sum(-1), 5, 1, max_iter=3)


# --------------------------------------------------------------------------------------------
# structure: the phases, the one Riccati recursion with two step rules, old import paths
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bounded", [False, True])
def test_cholesky_box_step_equals_closed_form_scalar_step(bounded):
    # The same recursion with the general m-dimensional step (Cholesky + projected-Newton box QP)
    # and with the closed-form clamp for one control must agree on one-control problems.
    from control.riccati import TORCH_OPS, cholesky_box_step, riccati_backward, scalar_step

    g = torch.Generator().manual_seed(11)
    M, T, n = 5, 9, 3
    F = torch.randn(M, T, n, n + 1, generator=g, dtype=DT)
    R = torch.randn(M, T, n + 1, n + 1, generator=g, dtype=DT)
    C = R @ R.transpose(-1, -2) + 0.1 * torch.eye(n + 1, dtype=DT)
    c = torch.randn(M, T, n + 1, generator=g, dtype=DT)
    Rv = torch.randn(M, n, n, generator=g, dtype=DT)
    VT, vT = Rv @ Rv.transpose(-1, -2), torch.randn(M, n, generator=g, dtype=DT)
    mu = torch.tensor([0.0, 0.1, 1.0, 0.0, 3.0], dtype=DT)
    lo = -0.1 * torch.ones(M, T, 1, 1, dtype=DT) if bounded else None
    up = 0.15 * torch.ones(M, T, 1, 1, dtype=DT) if bounded else None
    warm = torch.zeros(M, T, 1, dtype=DT)
    a = riccati_backward(F, c, C, vT, VT, mu, lo, up, warm, scalar_step, TORCH_OPS)
    b = riccati_backward(F, c, C, vT, VT, mu, lo, up, warm, cholesky_box_step, TORCH_OPS)
    assert bool(a[4].all()) and bool(b[4].all())
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-10)
    if bounded:
        clamped = ((a[1] <= -0.1) | (a[1] >= 0.15))[..., 0]  # (M, T)
        assert bool(clamped.any())  # the bounds are active somewhere
        assert bool((a[0][clamped] == 0).all())  # no feedback on clamped controls


def test_non_pd_step_is_reported_by_both_step_rules():
    from control.riccati import backward_pass

    M, T, n = 2, 3, 1
    F = torch.ones(M, T, n, n + 1, dtype=DT)
    C = torch.zeros(M, T, n + 1, n + 1, dtype=DT)
    C[:, :, 0, 0] = 1.0
    C[0, :, 1, 1] = -1.0  # member 0: Q_uu < 0
    C[1, :, 1, 1] = 1.0
    c = torch.ones(M, T, n + 1, dtype=DT)
    zeros = torch.zeros(M, n, dtype=DT), torch.zeros(M, n, n, dtype=DT)
    warm = torch.zeros(M, T, 1, dtype=DT)
    for fast in (True, False):
        ok = backward_pass(F, c, C, *zeros, torch.zeros(M, dtype=DT), None, None, warm, fast)[4]
        assert ok.tolist() == [False, True]


def test_dtype_must_be_floating():
    p = random_lq(0)
    for bad in (torch.int64, torch.int32, torch.bool, "float64"):
        with pytest.raises(TypeError, match="dtype must be a floating torch dtype"):
            ilqr(p["dyn"], p["cost"], p["x0"], torch.zeros(5, 2), dtype=bad)


def test_import_paths_give_the_same_solver():
    import control
    import control.ddp
    from control.ilqr import ILQRResult
    from control.ilqr import ilqr as ilqr_new

    assert control.ilqr is ilqr_new is control.ddp.ilqr is ilqr
    assert control.ILQRResult is ILQRResult is control.ddp.ILQRResult


def test_numpy_dynamics_rollout_equals_torch_rollout():
    # NumPy dynamics (numpy_function) are stepped on NumPy arrays in the rollouts; the solution
    # must equal that of the same dynamics as a torch function (one control: bit for bit in
    # the cases tried, asserted to 1e-12), and NaN states must still be caught.
    dyn, cost, terminal = pendulum_problem()
    npdyn = numpy_function(lambda xx, uu: dyn(torch.from_numpy(xx), torch.from_numpy(uu)).numpy())
    assert callable(npdyn.numpy_fn)
    g = torch.Generator().manual_seed(2)
    u0 = torch.rand(4, 30, 1, generator=g, dtype=DT) * 4 - 2
    kw = dict(terminal_cost=terminal, u_min=-2.0, u_max=2.0, max_iter=40)
    kw["derivatives"] = "finite_difference"
    x0 = torch.tensor([math.pi - 0.4, 0.0])
    a = ilqr(dyn, cost, x0, u0, **kw)
    b = ilqr(npdyn, cost, x0, u0, **kw)
    assert a.status == b.status and a.iterations.tolist() == b.iterations.tolist()
    torch.testing.assert_close(b.u, a.u, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(b.cost, a.cost, rtol=1e-12, atol=0)
    # two controls, unbounded and bounded
    p = random_lq(3)
    np_lq = numpy_function(
        lambda xx, uu: p["dyn"](torch.from_numpy(xx), torch.from_numpy(uu)).numpy()
    )
    for bounds in ({}, dict(u_min=-0.3, u_max=0.3)):
        bounds["derivatives"] = "finite_difference"
        ra = ilqr(
            p["dyn"], p["cost"], p["x0"], torch.zeros(8, 2), terminal_cost=p["term"], **bounds
        )
        rb = ilqr(np_lq, p["cost"], p["x0"], torch.zeros(8, 2), terminal_cost=p["term"], **bounds)
        torch.testing.assert_close(rb.u, ra.u, rtol=1e-10, atol=1e-10)

    # NaN beyond x = 2 (as test_nan_region_gives_finite_result_and_status), NumPy dynamics
    def nan_np(x, u):
        nxt = x + u
        return np.where(nxt > 2.0, np.nan, nxt)

    r = ilqr(
        numpy_function(nan_np),
        lambda x, u: (x[:, 0] - 3.0) ** 2 + 0.01 * u[:, 0] ** 2,
        torch.zeros(1),
        torch.zeros(10, 1),
        terminal_cost=lambda x: (x[:, 0] - 3) ** 2,
        derivatives="finite_difference",
    )
    assert bool(torch.isfinite(r.x).all()) and float(r.x[0].max()) <= 2.0
    assert "NaN/inf" in r.notes[0]


def test_autodiff_of_a_numpy_function_raises():
    dyn, cost, _ = pendulum_problem()
    npdyn = numpy_function(lambda xx, uu: dyn(torch.from_numpy(xx), torch.from_numpy(uu)).numpy())
    with pytest.raises(ValueError, match="dynamics is not differentiable by torch.autograd"):
        ilqr(npdyn, cost, torch.zeros(2), torch.zeros(5, 1))
    npcost = numpy_function(lambda xx, uu: (xx**2).sum(-1) + (uu**2).sum(-1))
    with pytest.raises(ValueError, match="cost is not differentiable"):
        ilqr(dyn, npcost, torch.zeros(2), torch.zeros(5, 1))
