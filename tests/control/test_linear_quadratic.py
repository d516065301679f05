"""Tests for control.linear_quadratic: lqr() against a cvxpy QP and the QP's KKT system, dlqr()
against scipy's DARE solver, backend/shape/dtype handling and error messages."""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
import pytest
import scipy.linalg
import torch

from control.linear_quadratic import LQRSolution, NotPositiveDefiniteError, dlqr, lqr


def random_problem(rng: np.random.Generator, T: int, n: int, m: int, batch: tuple[int, ...] = ()):
    """Random LQR instance with cross terms (C_xu != 0), affine terms and a terminal cost."""
    nm = n + m
    F = rng.normal(size=batch + (T, n, nm)) * 0.6
    f = rng.normal(size=batch + (T, n))
    M = rng.normal(size=batch + (T, nm, nm))
    C = M @ np.swapaxes(M, -1, -2) / nm + 0.2 * np.eye(nm)  # PD, dense (cross terms)
    c = rng.normal(size=batch + (T, nm))
    Mf = rng.normal(size=batch + (n, n))
    C_final = Mf @ np.swapaxes(Mf, -1, -2) / n + 0.1 * np.eye(n)
    c_final = rng.normal(size=batch + (n,))
    x0 = rng.normal(size=batch + (n,))
    return F, f, C, c, x0, C_final, c_final


def cvxpy_reference(F, f, C, c, x0, C_final, c_final):
    """The same problem as a QP over (x, u) with dynamics equality constraints (Clarabel)."""
    T, n, nm = F.shape
    m = nm - n
    x = cp.Variable((T + 1, n))
    u = cp.Variable((T, m))
    cost = 0
    cons = [x[0] == x0]
    for t in range(T):
        z = cp.hstack([x[t], u[t]])
        cost += 0.5 * cp.quad_form(z, C[t]) + c[t] @ z
        cons.append(x[t + 1] == F[t] @ z + f[t])
    cost += 0.5 * cp.quad_form(x[T], C_final) + c_final @ x[T]
    prob = cp.Problem(cp.Minimize(cost), cons)
    tol = 1e-13
    prob.solve(
        solver=cp.CLARABEL,
        tol_gap_abs=tol,
        tol_gap_rel=tol,
        tol_feas=tol,
        tol_ktratio=1e-10,
        max_iter=200,
    )
    assert prob.status == cp.OPTIMAL
    return x.value, u.value, prob.value


def kkt_reference(F, f, C, c, x0, C_final, c_final):
    """Exact solution of the QP's KKT system (dense, scipy) over w = [x_0..x_T, u_0..u_{T-1}]."""
    T, n, nm = F.shape
    m = nm - n
    N = (T + 1) * n + T * m
    H = np.zeros((N, N))
    g = np.zeros(N)
    A = np.zeros(((T + 1) * n, N))
    b = np.zeros((T + 1) * n)
    xs = [np.arange(t * n, (t + 1) * n) for t in range(T + 1)]
    us = [(T + 1) * n + np.arange(t * m, (t + 1) * m) for t in range(T)]
    for t in range(T):
        idx = np.r_[xs[t], us[t]]
        H[np.ix_(idx, idx)] += C[t]
        g[idx] += c[t]
        rows = xs[t + 1]
        A[np.ix_(rows, xs[t + 1])] = np.eye(n)
        A[np.ix_(rows, idx)] = -F[t]
        b[rows] = f[t]
    H[np.ix_(xs[T], xs[T])] += C_final
    g[xs[T]] += c_final
    A[np.ix_(xs[0], xs[0])] = np.eye(n)
    b[xs[0]] = x0
    K = np.block([[H, A.T], [A, np.zeros((A.shape[0], A.shape[0]))]])
    w = scipy.linalg.solve(K, np.r_[-g, b])[:N]
    x = w[: (T + 1) * n].reshape(T + 1, n)
    u = w[(T + 1) * n :].reshape(T, m)
    return x, u, 0.5 * w @ H @ w + g @ w


def rel_err(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / max(np.linalg.norm(b), 1e-300))


def test_lqr_matches_cvxpy_qp_and_kkt_unbatched():
    rng = np.random.default_rng(0)
    prob = random_problem(rng, T=8, n=4, m=2)
    sol = lqr(*prob[:5], C_final=prob[5], c_final=prob[6])
    assert isinstance(sol, LQRSolution)
    assert sol.K.shape == (8, 2, 4) and sol.k.shape == (8, 2)
    assert sol.V.shape == (9, 4, 4) and sol.v.shape == (9, 4) and sol.const.shape == (9,)
    assert sol.x.shape == (9, 4) and sol.u.shape == (8, 2) and np.shape(sol.cost) == ()
    assert np.abs(prob[2][..., :4, 4:]).min() > 0  # the instance really has cross terms

    x_k, u_k, cost_k = kkt_reference(*prob)
    assert rel_err(sol.x, x_k) < 1e-10
    assert rel_err(sol.u, u_k) < 1e-10
    assert abs(sol.cost - cost_k) < 1e-10 * max(1.0, abs(cost_k))

    x_c, u_c, cost_c = cvxpy_reference(*prob)
    assert rel_err(sol.x, x_c) < 1e-8
    assert rel_err(sol.u, u_c) < 1e-8
    assert abs(sol.cost - cost_c) < 1e-8 * max(1.0, abs(cost_c))

    # Value function is the exact cost-to-go (including the constant) at every step.
    assert abs(sol.value(sol.x[0], 0) - sol.cost) < 1e-10 * max(1.0, abs(cost_k))
    F, f, C, c, x0, Cf, cf = prob
    tail = lqr(F[3:], f[3:], C[3:], c[3:], sol.x[3], C_final=Cf, c_final=cf)
    assert abs(sol.value(sol.x[3], 3) - tail.cost) < 1e-10 * max(1.0, abs(tail.cost))
    # Time-varying policy reproduces the trajectory.
    assert np.allclose(sol.u[5], sol.K[5] @ sol.x[5] + sol.k[5], rtol=0, atol=1e-12)


def test_lqr_matches_cvxpy_qp_batched_with_broadcasting():
    rng = np.random.default_rng(1)
    T, n, m = 6, 3, 2
    F, f, C, c, x0, Cf, cf = random_problem(rng, T, n, m, batch=(3,))
    F_shared = F[0]  # no batch dim: broadcast against the others
    x0_b = rng.normal(size=(2, 1, n))  # batch (2, 1) broadcasts with (3,) -> (2, 3)
    sol = lqr(F_shared, f, C, c, x0_b, C_final=Cf, c_final=cf)
    assert sol.K.shape == (3, T, m, n)  # gains do not depend on x0
    assert sol.x.shape == (2, 3, T + 1, n) and sol.u.shape == (2, 3, T, m)
    assert sol.cost.shape == (2, 3) and isinstance(sol.cost, np.ndarray)
    for i in range(2):
        for j in range(3):
            args = (F_shared, f[j], C[j], c[j], x0_b[i, 0], Cf[j], cf[j])
            x_c, u_c, cost_c = cvxpy_reference(*args)
            assert rel_err(sol.x[i, j], x_c) < 1e-8
            assert rel_err(sol.u[i, j], u_c) < 1e-8
            assert abs(sol.cost[i, j] - cost_c) < 1e-8 * max(1.0, abs(cost_c))
            x_k, u_k, cost_k = kkt_reference(*args)
            assert rel_err(sol.x[i, j], x_k) < 1e-10
            assert abs(sol.cost[i, j] - cost_k) < 1e-10 * max(1.0, abs(cost_k))


def test_lqr_without_terminal_cost_and_without_x0():
    rng = np.random.default_rng(2)
    F, f, C, c, x0, _, _ = random_problem(rng, T=5, n=3, m=1)
    sol = lqr(F, f, C, c)
    assert sol.x is None and sol.u is None and sol.cost is None
    np.testing.assert_array_equal(sol.V[-1], 0.0)
    np.testing.assert_array_equal(sol.v[-1], 0.0)
    x_k, u_k, cost_k = kkt_reference(F, f, C, c, x0, np.zeros((3, 3)), np.zeros(3))
    assert abs(sol.value(x0) - cost_k) < 1e-10 * max(1.0, abs(cost_k))
    assert rel_err(lqr(F, f, C, c, x0).u, u_k) < 1e-10
    # One (unbatched) problem, many initial states: gains stay unbatched, trajectories batch.
    x0s = rng.normal(size=(4, 3))
    many = lqr(F, f, C, c, x0s)
    assert many.K.shape == (5, 1, 3) and many.u.shape == (4, 5, 1) and many.cost.shape == (4,)
    for i in range(4):
        single = lqr(F, f, C, c, x0s[i])
        np.testing.assert_allclose(many.u[i], single.u, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(many.cost[i], single.cost, rtol=1e-12)


def test_lqr_asymmetric_cost_uses_symmetric_part():
    rng = np.random.default_rng(3)
    F, f, C, c, x0, Cf, cf = random_problem(rng, T=4, n=2, m=2)
    S = rng.normal(size=C.shape)
    skew = S - np.swapaxes(S, -1, -2)  # zᵀ skew z = 0, so the problem is unchanged
    a = lqr(F, f, C, c, x0, C_final=Cf, c_final=cf)
    b = lqr(F, f, C + skew, c, x0, C_final=Cf, c_final=cf)
    np.testing.assert_allclose(b.u, a.u, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.cost, a.cost, rtol=1e-12)


def _lti_as_lqr(A, B, Q, R, N, T):
    n, m = B.shape
    F = np.broadcast_to(np.hstack([A, B]), (T, n, n + m))
    C = np.broadcast_to(2.0 * np.block([[Q, N], [N.T, R]]), (T, n + m, n + m))
    return F, np.zeros((T, n)), C, np.zeros((T, n + m))


def _random_lti(rng, n, m):
    A = rng.normal(size=(n, n)) / np.sqrt(n) * 1.2  # typically open-loop unstable
    B = rng.normal(size=(n, m))
    L = rng.normal(size=(n, n))
    Q = L @ L.T / n + 0.1 * np.eye(n)
    R = np.eye(m) * 0.5
    N = rng.normal(size=(n, m)) * 0.1
    return A, B, Q, R, N


@pytest.mark.parametrize("with_cross", [False, True])
def test_dlqr_matches_scipy_dare_and_long_horizon_lqr(with_cross):
    rng = np.random.default_rng(4)
    n, m = 4, 2
    A, B, Q, R, N = _random_lti(rng, n, m)
    if not with_cross:
        N = np.zeros((n, m))
    K, S, E = dlqr(A, B, Q, R, N if with_cross else None)
    S_ref = scipy.linalg.solve_discrete_are(A, B, Q, R, s=N if with_cross else None)
    np.testing.assert_allclose(S, S_ref, rtol=1e-12, atol=1e-12)
    K_ref = np.linalg.solve(B.T @ S_ref @ B + R, B.T @ S_ref @ A + N.T)
    np.testing.assert_allclose(K, K_ref, rtol=1e-10, atol=1e-12)
    E_ref = np.linalg.eigvals(A - B @ K_ref)
    np.testing.assert_allclose(np.sort_complex(E), np.sort_complex(E_ref), rtol=1e-10, atol=1e-12)
    assert K.shape == (m, n) and S.shape == (n, n) and E.shape == (n,)
    assert np.all(np.abs(E) < 1)
    # dlqr's cost has no ½: lqr with C = 2[[Q, N], [Nᵀ, R]] has the same gains and V_0 -> 2 S.
    sol = lqr(*_lti_as_lqr(A, B, Q, R, N, T=300))
    np.testing.assert_allclose(sol.K[0], -K, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sol.V[0], 2.0 * S, rtol=1e-8, atol=1e-10)


def test_dlqr_errors():
    A, B, Q, R = np.diag([1.5, 0.5]), np.array([[0.0], [1.0]]), np.eye(2), np.eye(1)
    with pytest.raises(ValueError, match="no stabilising solution|does not stabilise"):
        dlqr(A, B, Q, R)  # the unstable mode 1.5 is not controllable
    with pytest.raises(ValueError, match=r"B must have shape \(\.\.\., n, m\) = \(\.\.\., 2, m\)"):
        dlqr(A, np.ones((3, 1)), Q, R)
    with pytest.raises(ValueError, match=r"R must have shape \(\.\.\., m, m\) = \(\.\.\., 1, 1\)"):
        dlqr(A, B, Q, np.eye(2))
    with pytest.raises(ValueError, match=r"N must have shape \(\.\.\., n, m\) = \(\.\.\., 2, 1\)"):
        dlqr(A, B, Q, R, np.ones((1, 2)))
    with pytest.raises(ValueError, match="Q contains NaN or inf"):
        dlqr(A, B, np.full((2, 2), np.nan), R)


def test_dlqr_torch_in_torch_out():
    A = torch.tensor([[1.0, 0.1], [0.0, 1.0]], dtype=torch.float64)
    B = torch.tensor([[0.0], [0.1]], dtype=torch.float64)
    K, S, E = dlqr(A, B, torch.eye(2, dtype=torch.float64), torch.eye(1, dtype=torch.float64))
    assert isinstance(K, torch.Tensor) and K.dtype == torch.float64 and E.is_complex()
    K_np, S_np, _ = dlqr(A.numpy(), B.numpy(), np.eye(2), np.eye(1))
    np.testing.assert_array_equal(K.numpy(), K_np)
    np.testing.assert_array_equal(S.numpy(), S_np)


def test_numpy_and_torch_backends_agree_and_keep_kind():
    rng = np.random.default_rng(5)
    prob = random_problem(rng, T=7, n=3, m=2, batch=(2,))
    kw = lambda p: dict(C_final=p[5], c_final=p[6])  # noqa: E731
    ref = lqr(*prob[:5], **kw(prob))
    assert all(isinstance(getattr(ref, k), np.ndarray) for k in ("K", "k", "V", "v", "x", "cost"))
    assert ref.K.dtype == np.float64

    # (requires_grad=True forces the torch kernels; otherwise CPU tensors take the numpy kernels)
    for dtype, tol, grad in [
        (torch.float64, 1e-10, False),
        (torch.float64, 1e-10, True),
        (torch.float32, 2e-3, False),
        (torch.float32, 2e-3, True),
    ]:
        tp = [torch.tensor(a, dtype=dtype, requires_grad=grad) for a in prob]
        sol = lqr(*tp[:5], **kw(tp))
        for name in ("K", "k", "V", "v", "const", "x", "u", "cost"):
            val = getattr(sol, name)
            assert isinstance(val, torch.Tensor) and val.dtype == dtype, name
            assert val.requires_grad == grad
            np.testing.assert_allclose(val.detach().numpy(), getattr(ref, name), rtol=tol, atol=tol)
    # Unbatched torch (takes the LAPACK path internally) matches batched numpy (torch kernels).
    one = [torch.tensor(a[1]) for a in prob]
    sol1 = lqr(*one[:5], **kw(one))
    assert isinstance(sol1.cost, torch.Tensor) and sol1.cost.shape == ()
    np.testing.assert_allclose(sol1.u.numpy(), ref.u[1], rtol=1e-10, atol=1e-12)
    # numpy float32 stays float32; integer inputs are computed in float64.
    sol32 = lqr(*[a[0].astype(np.float32) for a in prob[:5]])
    assert sol32.K.dtype == np.float32
    assert lqr(np.ones((2, 1, 2), dtype=int), np.zeros((2, 1)), np.eye(2)[None].repeat(2, 0),
               np.zeros((2, 2))).K.dtype == np.float64  # fmt: skip


def test_torch_gradients_match_finite_differences():
    rng = np.random.default_rng(6)
    F, f, C, c, x0, Cf, cf = (torch.tensor(a) for a in random_problem(rng, T=4, n=2, m=1))
    F.requires_grad_(True)
    c.requires_grad_(True)
    x0.requires_grad_(True)

    def total_cost(F_, c_, x0_):
        return lqr(F_, f, C, c_, x0_, C_final=Cf, c_final=cf).cost

    assert torch.autograd.gradcheck(total_cost, (F, c, x0), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_bad_shapes_and_values_name_the_argument():
    rng = np.random.default_rng(7)
    F, f, C, c, x0, Cf, cf = random_problem(rng, T=3, n=2, m=1)
    with pytest.raises(ValueError, match=r"F must have shape \(\.\.\., T, n, n\+m\)"):
        lqr(F[..., :2], f, C, c)
    with pytest.raises(ValueError, match=r"f must have shape \(\.\.\., T, n\) = \(\.\.\., 3, 2\)"):
        lqr(F, f[:2], C, c)
    with pytest.raises(ValueError, match=r"C must have shape .*\(\.\.\., 3, 3, 3\)"):
        lqr(F, f, C[..., :2], c)
    with pytest.raises(ValueError, match=r"c must have shape"):
        lqr(F, f, C, c[..., :2])
    with pytest.raises(ValueError, match=r"x0 must have shape \(\.\.\., n\) = \(\.\.\., 2\)"):
        lqr(F, f, C, c, np.zeros(3))
    with pytest.raises(ValueError, match=r"C_final must have shape"):
        lqr(F, f, C, c, C_final=np.eye(3))
    with pytest.raises(ValueError, match=r"c_final must have shape"):
        lqr(F, f, C, c, c_final=np.zeros(1))
    with pytest.raises(ValueError, match="batch dims .* do not broadcast"):
        lqr(np.stack([F] * 2), np.stack([f] * 3), C, c)
    bad = f.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="f contains NaN or inf"):
        lqr(F, bad, C, c)
    with pytest.raises(ValueError, match="x0 contains NaN or inf"):
        lqr(F, f, C, c, np.array([np.inf, 0.0]))
    with pytest.raises(ValueError, match="C contains NaN or inf"):
        lqr(torch.tensor(F), f, torch.tensor(C).fill_(float("nan")), c)


@pytest.mark.parametrize("kind", ["numpy", "numpy-batched", "torch-batched", "torch-grad"])
def test_non_positive_definite_quu_names_time_step(kind):
    rng = np.random.default_rng(8)
    F, f, C, c, x0, Cf, cf = random_problem(rng, T=5, n=2, m=1)
    C = C.copy()
    C[2, 2, 2] = -50.0  # control cost at t=2 strongly negative: Q_uu < 0 there
    C[2, 2, :2] = C[2, :2, 2] = 0.0
    args = (F, f, C, c)
    if kind != "numpy":
        args = tuple(np.stack([a, a]) for a in args)
    if kind.startswith("torch"):
        args = tuple(torch.tensor(a, requires_grad=kind == "torch-grad") for a in args)
    with pytest.raises(NotPositiveDefiniteError, match="t=2") as info:
        lqr(*args)
    assert info.value.time_step == 2
    assert isinstance(info.value, ValueError)
    if kind != "numpy":
        assert info.value.batch_index == (0,)


# ---------------------------------------------------------------------------------------------
# dlqr fast paths (control.dare): accuracy against scipy, fallback, batching
# ---------------------------------------------------------------------------------------------


def _scipy_dare(A, B, Q, R, N):
    return scipy.linalg.solve_discrete_are(A, B, Q, R, s=N)


def _rel_residual(A, B, Q, R, N, S):
    """Independent relative DARE residual (scipy solve, not control.dare's)."""
    N = np.zeros(B.shape) if N is None else N
    H = B.T @ S @ A + N.T
    res = Q + A.T @ S @ A - H.T @ np.linalg.solve(R + B.T @ S @ B, H) - S
    scale = np.linalg.norm(Q) + np.linalg.norm(A.T @ S @ A) + np.linalg.norm(S)
    return np.linalg.norm(res) / scale


def _ill_conditioned(rng, kind, n, m):
    A, B, Q, R, N = _random_lti(rng, n, m)
    if kind == "badly-scaled":  # state coordinates spanning 6 orders of magnitude
        T = np.diag(np.logspace(-3, 3, n))
        Ti = np.diag(1.0 / np.diag(T))
        return T @ A @ Ti, T @ B, Ti @ Q @ Ti, R, Ti @ N
    if kind == "tiny-R":  # cheap control: R ~ 1e-8, gains large
        return A, B, Q, 1e-8 * R, 1e-4 * N
    if kind == "near-unit-circle":  # lightly damped, weakly controllable, near-singular Q
        A = scipy.linalg.expm(0.05 * (np.triu(rng.normal(size=(n, n)), 1) - np.eye(n) * 1e-3))
        B = 1e-3 * B
        q = rng.normal(size=(n, 1))
        return A, B, q @ q.T + 1e-9 * np.eye(n), R, None
    raise AssertionError(kind)


@pytest.mark.parametrize("n, m", [(1, 1), (3, 1), (4, 2), (6, 3), (7, 2), (20, 5), (40, 10)])
@pytest.mark.parametrize("with_cross", [False, True])
def test_dare_fast_paths_match_scipy_on_random_systems(n, m, with_cross):
    from control.dare import dare_doubling, dare_qz

    rng = np.random.default_rng(100 * n + m)
    for _ in range(3):
        A, B, Q, R, N = _random_lti(rng, n, m)
        N = N if with_cross else None
        S_ref = _scipy_dare(A, B, Q, R, N)
        scale = np.abs(S_ref).max()
        sol = dare_doubling(A, B, Q, R, N)
        assert sol.converged and 1 <= sol.iterations < 60
        for S in (sol.X, dare_qz(A, B, Q, R, N)):
            np.testing.assert_allclose(S, S.T, rtol=0, atol=0)
            assert np.abs(S - S_ref).max() <= 1e-9 * scale
            assert _rel_residual(A, B, Q, R, N, S) < 1e-13
        K, S, E = dlqr(A, B, Q, R, N)
        assert np.abs(S - S_ref).max() <= 1e-9 * scale
        assert _rel_residual(A, B, Q, R, N, S) < 1e-13
        N0 = np.zeros((n, m)) if N is None else N
        np.testing.assert_allclose(K, np.linalg.solve(B.T @ S @ B + R, B.T @ S @ A + N0.T),
                                   rtol=1e-9, atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("kind", ["badly-scaled", "tiny-R", "near-unit-circle"])
@pytest.mark.parametrize("n, m", [(4, 1), (12, 3)])
def test_dlqr_ill_conditioned_as_accurate_as_scipy(kind, n, m):
    rng = np.random.default_rng(7 * n + m)
    A, B, Q, R, N = _ill_conditioned(rng, kind, n, m)
    S_ref = _scipy_dare(A, B, Q, R, N)
    K, S, E = dlqr(A, B, Q, R, N)
    res_ref = _rel_residual(A, B, Q, R, N, S_ref)
    # Our answer is at least nearly as good as scipy's by the residual, and close to it.
    assert _rel_residual(A, B, Q, R, N, S) <= max(10 * res_ref, 1e-12)
    assert np.abs(S - S_ref).max() <= 1e-6 * np.abs(S_ref).max()
    assert np.all(np.abs(E) < 1)


def test_dlqr_near_unit_circle_really_is_hard():
    """The 'near-unit-circle' instance above has a closed-loop eigenvalue within 1e-3 of 1 (so the
    ill-conditioned test exercises what it claims to)."""
    rng = np.random.default_rng(7 * 12 + 3)
    A, B, Q, R, N = _ill_conditioned(rng, "near-unit-circle", 12, 3)
    _, _, E = dlqr(A, B, Q, R, N)
    assert np.abs(E).max() > 0.999


def test_dlqr_falls_back_to_scipy_when_the_fast_path_fails(monkeypatch):
    import control.linear_quadratic as lq
    from control.dare import DoublingResult

    rng = np.random.default_rng(11)
    small = _random_lti(rng, 3, 1)
    big = _random_lti(rng, 9, 2)
    monkeypatch.setattr(lq, "dare_qz", lambda *a: None)
    nan = lambda A, *a: DoublingResult(np.full_like(A, np.nan), np.zeros(A.shape[:-2], bool), 60)  # noqa: E731
    monkeypatch.setattr(lq, "dare_doubling", nan)
    for A, B, Q, R, N in (small, big):
        K, S, _ = dlqr(A, B, Q, R, N)
        np.testing.assert_allclose(S, _scipy_dare(A, B, Q, R, N), rtol=1e-12, atol=0)
    # A fast-path answer with a bad residual is rejected too.
    monkeypatch.setattr(lq, "dare_qz", lambda A, B, Q, R, N: _scipy_dare(A, B, Q, R, N) * 1.001)
    A, B, Q, R, N = small
    np.testing.assert_allclose(dlqr(A, B, Q, R, N)[1], _scipy_dare(A, B, Q, R, N), rtol=1e-12)


def test_dlqr_method_scipy_is_scipy():
    A, B, Q, R, N = _random_lti(np.random.default_rng(12), 5, 2)
    np.testing.assert_array_equal(
        dlqr(A, B, Q, R, N, method="scipy")[1], _scipy_dare(A, B, Q, R, N)
    )
    with pytest.raises(ValueError, match="method must be 'auto' or 'scipy'"):
        dlqr(A, B, Q, R, method="slycot")


def test_doubling_reports_non_convergence_without_a_stabilising_solution():
    from control.dare import dare_doubling, dare_qz

    A, B, Q, R = np.diag([1.5, 0.5]), np.array([[0.0], [1.0]]), np.eye(2), np.eye(1)
    sol = dare_doubling(A, B, Q, R, None)
    assert not sol.converged and np.isnan(sol.X).all()
    assert dare_qz(A, B, Q, R, None) is None
    assert dare_qz(A, B, Q, -R, None) is None  # R not positive definite


@pytest.mark.parametrize("n, m", [(3, 1), (8, 3)])
def test_dlqr_batched_matches_a_loop_with_broadcasting(n, m):
    rng = np.random.default_rng(13)
    probs = [[_random_lti(rng, n, m) for _ in range(3)] for _ in range(2)]  # batch (2, 3)
    A, B, Q, R, N = (np.array([[p[k] for p in row] for row in probs]) for k in range(5))
    Q_shared, R_shared = Q[0, 0], R[0, 0]  # no batch dims: broadcast
    K, S, E = dlqr(A, B, Q_shared, R_shared, N)
    assert K.shape == (2, 3, m, n) and S.shape == (2, 3, n, n) and E.shape == (2, 3, n)
    for i in range(2):
        for j in range(3):
            Ki, Si, Ei = dlqr(A[i, j], B[i, j], Q_shared, R_shared, N[i, j])
            np.testing.assert_allclose(S[i, j], Si, rtol=1e-9, atol=1e-12 * np.abs(Si).max())
            np.testing.assert_allclose(K[i, j], Ki, rtol=1e-8, atol=1e-10 * np.abs(Ki).max())
            np.testing.assert_allclose(np.sort_complex(E[i, j]), np.sort_complex(Ei), atol=1e-8)
    # A (2, 1) batch of B broadcasts against A's (2, 3).
    K2, S2, _ = dlqr(A, B[:, :1], Q_shared, R_shared)
    np.testing.assert_allclose(S2[1, 2], dlqr(A[1, 2], B[1, 0], Q_shared, R_shared)[1],
                               rtol=1e-9)  # fmt: skip
    # torch in, torch out, batched.
    Kt, St, Et = dlqr(torch.tensor(A), torch.tensor(B), Q_shared, R_shared, N)
    assert isinstance(St, torch.Tensor) and St.shape == (2, 3, n, n) and Et.is_complex()
    np.testing.assert_allclose(St.numpy(), S, rtol=1e-12)


def test_dlqr_batched_error_names_the_batch_index():
    rng = np.random.default_rng(14)
    A, B, Q, R, _ = _random_lti(rng, 2, 1)
    As = np.stack([A, np.diag([1.5, 0.5]), A])
    Bs = np.stack([B, np.array([[0.0], [1.0]]), B])
    with pytest.raises(ValueError, match=r"no stabilising solution \(batch index \(1,\)\)"):
        dlqr(As, Bs, Q, R)
    with pytest.raises(ValueError, match="batch dims of the inputs do not broadcast"):
        dlqr(As, Bs[:2], Q, R)
    with pytest.raises(TypeError, match="dlqr: Q must be an array, got None"):
        dlqr(A, B, None, R)
    with pytest.raises(TypeError, match="dlqr: A must be an array of real numbers"):
        dlqr("A", B, Q, R)


def test_dlqr_huge_entries_give_a_clear_error_without_warnings():
    A, B = np.array([[1.0, 0.1], [0.0, 1.0]]), np.array([[0.0], [0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"no stabilising solution.*largest \|entry\| 1e\+300"):
            dlqr(A, B, 1e300 * np.eye(2), np.eye(1))


# ---------------------------------------------------------------------------------------------
# Overflow of the cost-to-go / trajectory, None and half-precision inputs (issue 15)
# ---------------------------------------------------------------------------------------------


def _unstabilisable(T, dtype=np.float64, x_weight=1.0):
    """A = diag(2, 0.5), B = [0; 1]: the mode 2 is unstable and no control reaches it."""
    F = np.broadcast_to(np.array([[2.0, 0.0, 0.0], [0.0, 0.5, 1.0]], dtype=dtype), (T, 2, 3))
    C = np.broadcast_to(np.diag([x_weight, 1.0, 1.0]).astype(dtype), (T, 3, 3))
    return F, np.zeros((T, 2), dtype), C, np.zeros((T, 3), dtype), np.ones(2, dtype)


def _as_kind(args, kind):
    if kind == "numpy-batched":
        return tuple(np.stack([a, a]) for a in args)
    if kind.startswith("torch"):
        grad = kind == "torch-grad"
        return tuple(torch.tensor(np.ascontiguousarray(a), requires_grad=grad) for a in args)
    return args


@pytest.mark.parametrize("kind", ["numpy", "numpy-batched", "torch", "torch-grad"])
def test_lqr_cost_to_go_overflow_is_named_with_time_step_and_cause(kind):
    from control.linear_quadratic import LQROverflowError

    args = _as_kind(_unstabilisable(1100), kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning leaks out before the error
        with pytest.raises(LQROverflowError, match="overflow") as info:
            lqr(*args)
    msg = str(info.value)
    # V_t ~ 4^(T-t) passes float64's max (~1.8e308) about 512 steps before the end.
    assert 1100 - 520 < info.value.time_step < 1100 - 500
    assert f"t={info.value.time_step}" in msg
    assert "uncontrollable" in msg and "long horizon" in msg
    assert not isinstance(info.value, NotPositiveDefiniteError)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ArithmeticError)
    if kind == "numpy-batched":
        assert info.value.batch_index == (0,)


def test_lqr_overflow_in_float32_and_huge_entries():
    from control.linear_quadratic import LQROverflowError

    # float32 overflows (max ~3.4e38) after ~64 steps of V_t ~ 4^(T-t).
    F, f, C, c, x0 = _unstabilisable(100, np.float32)
    with pytest.raises(LQROverflowError, match=r"overflow.*t=3\d") as info:
        lqr(F, f, C, c, x0)
    assert 100 - 70 < info.value.time_step < 100 - 60
    # Entries near 1e200: Fᵀ V F is ~1e400 at the first backward step.
    rng = np.random.default_rng(20)
    F, f, C, c, x0, _, _ = random_problem(rng, T=5, n=2, m=1)
    F = F.copy()
    F[3] *= 1e200
    for args in (
        (F, f, C, c, x0),
        tuple(torch.tensor(a, requires_grad=True) for a in (F, f, C, c)),
    ):
        with pytest.raises(LQROverflowError, match=r"overflow.*t=3.*e\+(199|200)"):
            lqr(*args)


def test_lqr_trajectory_overflow_with_finite_cost_to_go():
    """No cost on the unstable mode: V stays finite but x_t = 2^t x_0 overflows in the rollout."""
    from control.linear_quadratic import LQROverflowError

    F, f, C, c, x0 = _unstabilisable(1100, x_weight=0.0)
    sol = lqr(F, f, C, c)  # without x0 everything is finite
    assert np.isfinite(sol.V).all() and np.isfinite(sol.K).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(LQROverflowError, match=r"optimal trajectory overflows at t=10\d\d"):
            lqr(F, f, C, c, x0)


def test_lqr_none_and_non_numeric_arguments_are_named():
    rng = np.random.default_rng(21)
    F, f, C, c, x0, Cf, cf = random_problem(rng, T=3, n=2, m=1)
    for i, name in enumerate(["F", "f", "C", "c"]):
        args = [F, f, C, c]
        args[i] = None
        with pytest.raises(TypeError, match=f"lqr: {name} must be an array .* got None"):
            lqr(*args)
    with pytest.raises(TypeError, match="lqr: C must be an array of real numbers; got dtype <U"):
        lqr(F, f, np.full(C.shape, "x"), c)
    with pytest.raises(
        TypeError, match="lqr: x0 must be an array of real numbers; got dtype object"
    ):
        lqr(F, f, C, c, np.array([1.0, None], dtype=object))


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_lqr_half_precision_torch_is_computed_in_float32(half):
    rng = np.random.default_rng(22)
    F, f, C, c, x0, Cf, cf = random_problem(rng, T=6, n=2, m=1)
    ref = lqr(*(torch.tensor(a, dtype=half).to(torch.float32) for a in (F, f, C, c, x0)))
    for grad in (False, True):
        args = [torch.tensor(a, dtype=half, requires_grad=grad) for a in (F, f, C, c, x0)]
        sol = lqr(*args)
        assert sol.K.dtype == torch.float32 and sol.cost.dtype == torch.float32
        np.testing.assert_allclose(sol.u.detach().numpy(), ref.u.numpy(), rtol=1e-6, atol=1e-6)
        if grad:
            sol.cost.backward()
            assert args[3].grad is not None and args[3].grad.dtype == half
    # dlqr: half-precision tensors in, float32 out as well.
    K, S, E = dlqr(*(torch.tensor(a, dtype=half) for a in (np.eye(2), np.eye(2), np.eye(2))),
                   torch.eye(2, dtype=half))  # fmt: skip
    assert K.dtype == torch.float32 and S.dtype == torch.float32 and E.dtype == torch.complex64


def test_dlqr_fast_path_is_used_on_well_conditioned_problems(monkeypatch):
    """The fast paths' answers are accepted (scipy is not called) for ordinary problems, batched
    or not, small n (QZ) or larger (doubling)."""
    import control.linear_quadratic as lq

    def no_scipy(*a):
        raise AssertionError("fell back to scipy")

    monkeypatch.setattr(lq, "dare_schur", no_scipy)
    rng = np.random.default_rng(15)
    for n, m in ((2, 1), (5, 2), (12, 3)):
        probs = [_random_lti(rng, n, m) for _ in range(4)]
        for A, B, Q, R, N in probs:
            dlqr(A, B, Q, R, N)
        dlqr(*(np.stack(a) for a in zip(*probs, strict=True)))


@pytest.mark.parametrize(
    "case",
    ["A=0", "repeated eigenvalues", "Jordan block", "Q=0 stable A", "Q=0 unstable A", "n=m=1"],
)
def test_dlqr_degenerate_structure_matches_scipy(case):
    """Singular A (infinite pencil eigenvalues), repeated or defective closed-loop eigenvalues,
    zero state cost: whichever path answers, the result equals scipy's."""
    I2 = np.eye(2)
    A, B, Q, R = {
        "A=0": (np.zeros((2, 2)), I2, I2, I2),
        "repeated eigenvalues": (0.5 * I2, I2, I2, I2),
        "Jordan block": (
            np.array([[0.9, 1.0], [0.0, 0.9]]),
            np.array([[0.0], [1.0]]),
            I2,
            np.eye(1),
        ),  # fmt: skip
        "Q=0 stable A": (
            np.array([[0.5, 0.2], [0.0, -0.3]]),
            np.array([[1.0], [0.5]]),
            np.zeros((2, 2)),
            np.eye(1),
        ),  # fmt: skip
        "Q=0 unstable A": (
            np.array([[1.5, 0.2], [0.0, 0.3]]),
            np.array([[1.0], [0.5]]),
            np.zeros((2, 2)),
            np.eye(1),
        ),  # fmt: skip
        "n=m=1": (np.array([[1.2]]), np.array([[1.0]]), np.array([[1.0]]), np.array([[0.1]])),
    }[case]
    K, S, E = dlqr(A, B, Q, R)
    S_ref = _scipy_dare(A, B, Q, R, None)
    np.testing.assert_allclose(S, S_ref, rtol=1e-9, atol=1e-12)
    assert np.all(np.abs(E) < 1)
    # Batched (doubling) too.
    _, Sb, _ = dlqr(np.stack([A, A]), B, Q, R)
    np.testing.assert_allclose(Sb[1], S_ref, rtol=1e-9, atol=1e-12)
