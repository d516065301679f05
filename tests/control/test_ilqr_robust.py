"""Robust iLQR: one control sequence for K models (control.robust through control.ilqr)."""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import pytest
import torch

import envs
from control import ilqr
from control.derivatives import numpy_function
from control.robust import model_set
from envs.analytic.angles import angle_normalize

DT = torch.float64


def pendulum(m: float = 1.0):
    return envs.get_task("pendulum-swingup", max_speed=None, m=m).dynamics_fn


def cost(x, u):
    return angle_normalize(x[:, 0]) ** 2 + 0.1 * x[:, 1] ** 2 + 0.001 * u[:, 0] ** 2


def terminal(x):
    return angle_normalize(x[:, 0]) ** 2 + 0.1 * x[:, 1] ** 2


X0 = torch.tensor([math.pi - 0.3, 0.0], dtype=DT)
KW = dict(terminal_cost=terminal, u_min=-2.0, u_max=2.0, max_iter=60)


@pytest.mark.parametrize("robust", ["mean", "worst"])
def test_identical_models_give_the_nominal_solution(robust):
    T = 50
    u0 = 0.5 * torch.ones(T, 1, dtype=DT)
    nom = ilqr(pendulum(), cost, X0, u0, **KW)
    rob = ilqr([pendulum()] * 3, cost, X0, u0, robust=robust, robust_temperature=0.5, **KW)
    assert rob.n_models == 3 and nom.n_models == 1 and nom.model_cost is None
    assert rob.status == nom.status
    assert int(rob.iterations[0]) == int(nom.iterations[0])
    torch.testing.assert_close(rob.u, nom.u, rtol=0, atol=1e-9)
    assert float(rob.cost[0]) == pytest.approx(float(nom.cost[0]), rel=1e-12)
    torch.testing.assert_close(rob.model_cost[0], nom.cost.expand(3), rtol=1e-12, atol=0)
    assert rob.x.shape == (1, T + 1, 6) and rob.K.shape == (1, T, 1, 6)
    for k in range(3):
        torch.testing.assert_close(rob.x_models[0, k], nom.x[0], rtol=0, atol=1e-9)


def test_one_model_in_a_sequence_equals_the_plain_call():
    u0 = torch.zeros(40, 1, dtype=DT)
    nom = ilqr(pendulum(), cost, X0, u0, **KW)
    rob = ilqr([pendulum()], cost, X0, u0, **KW)
    torch.testing.assert_close(rob.u, nom.u, rtol=0, atol=1e-12)
    torch.testing.assert_close(rob.cost, nom.cost, rtol=1e-14, atol=0)


def test_model_costs_are_the_costs_of_the_shared_controls_under_each_model():
    masses = (0.7, 1.0, 1.4)
    models = [pendulum(m) for m in masses]
    res = ilqr(models, cost, X0, torch.zeros(40, 1, dtype=DT), robust="worst", **KW)
    for k, f in enumerate(models):
        x = X0.view(1, 2)
        J = 0.0
        for t in range(40):
            u = res.u[0, t].view(1, 1)
            J += float(cost(x, u)[0])
            x = f(x, u)
        J += float(terminal(x)[0])
        assert float(res.model_cost[0, k]) == pytest.approx(J, rel=1e-10)
        torch.testing.assert_close(res.x_models[0, k, -1], x[0], rtol=0, atol=1e-10)
    tau = 1.0
    smooth_max = tau * (torch.logsumexp(res.model_cost[0] / tau, 0) - math.log(3))
    assert float(res.cost[0]) == pytest.approx(float(smooth_max), rel=1e-12)


def test_worst_objective_lies_between_mean_and_max():
    g = torch.Generator().manual_seed(0)
    Jk = torch.rand(100, 5, generator=g, dtype=DT) * 50
    for tau in (0.1, 1.0, 100.0):
        s = model_set([pendulum()] * 5, None, "worst", tau, 2)
        worst = s.combine(Jk)
        mean = model_set([pendulum()] * 5, None, "mean", tau, 2).combine(Jk)
        assert bool((worst >= mean - 1e-12).all())
        assert bool((worst <= Jk.max(-1).values + 1e-12).all())
    # small temperature: close to the maximum
    s = model_set([pendulum()] * 5, None, "worst", 1e-3, 2)
    torch.testing.assert_close(s.combine(Jk), Jk.max(-1).values, rtol=0, atol=1e-2)


def linear_models(K: int, seed: int, n: int = 3, m: int = 2):
    """K perturbed linear systems x' = A_k x + B_k u sharing quadratic costs."""
    g = np.random.default_rng(seed)
    A0 = np.eye(n) + 0.1 * g.normal(size=(n, n))
    B0 = g.normal(size=(n, m))
    As = [A0 + 0.05 * g.normal(size=(n, n)) for _ in range(K)]
    Bs = [B0 * (1 + 0.3 * g.normal()) for _ in range(K)]
    Q = np.diag(g.uniform(0.5, 2.0, size=n))
    R = 0.1 * np.eye(m)
    x0 = g.normal(size=n) * 2
    return As, Bs, Q, R, x0


def torch_linear(A, B):
    At, Bt = torch.tensor(A), torch.tensor(B)
    return lambda x, u: x @ At.T + u @ Bt.T


def cvxpy_reference(As, Bs, Q, R, x0, T, robust, tau, lo, hi):
    """The robust objective over one shared control sequence as a convex program."""
    n, m = Bs[0].shape
    u = cp.Variable((T, m))
    Js = []
    for A, B in zip(As, Bs, strict=True):
        x = cp.Variable((T + 1, n))
        cons = [x[0] == x0] + [x[t + 1] == A @ x[t] + B @ u[t] for t in range(T)]
        J = sum(0.5 * cp.quad_form(x[t], Q) + 0.5 * cp.quad_form(u[t], R) for t in range(T))
        J = J + 0.5 * cp.quad_form(x[T], Q)
        Js.append((J, cons))
    cons = [c for _, cs in Js for c in cs] + [u >= lo, u <= hi]
    Jv = cp.hstack([J for J, _ in Js])
    K = len(As)
    if robust == "mean":
        obj = cp.sum(Jv) / K
    else:
        obj = tau * cp.log_sum_exp(Jv / tau) - tau * math.log(K)
    prob = cp.Problem(cp.Minimize(obj), cons)
    prob.solve(solver=cp.CLARABEL)
    return prob.value, u.value


@pytest.mark.parametrize("robust", ["mean", "worst"])
def test_linear_models_match_the_convex_program(robust):
    K, T, tau, lo, hi = 4, 15, 2.0, -0.6, 0.6
    As, Bs, Q, R, x0 = linear_models(K, seed=3)
    Qt, Rt = torch.tensor(Q), torch.tensor(R)

    def lq_cost(x, u):
        return 0.5 * ((x @ Qt) * x).sum(-1) + 0.5 * ((u @ Rt) * u).sum(-1)

    def lq_terminal(x):
        return 0.5 * ((x @ Qt) * x).sum(-1)

    res = ilqr(
        [torch_linear(A, B) for A, B in zip(As, Bs, strict=True)],
        lq_cost,
        torch.tensor(x0),
        torch.zeros(T, 2, dtype=DT),
        terminal_cost=lq_terminal,
        u_min=lo,
        u_max=hi,
        robust=robust,
        robust_temperature=tau,
        max_iter=200,
        tol=1e-10,
    )
    ref_value, ref_u = cvxpy_reference(As, Bs, Q, R, x0, T, robust, tau, lo, hi)
    assert res.status == ["converged"]
    assert float(res.cost[0]) == pytest.approx(ref_value, rel=1e-6)
    np.testing.assert_allclose(res.u[0].numpy(), ref_u, atol=1e-4)


def test_worst_case_plan_lowers_the_worst_model_cost_of_the_mean_plan():
    K, T = 4, 15
    As, Bs, Q, R, x0 = linear_models(K, seed=5)
    Qt, Rt = torch.tensor(Q), torch.tensor(R)

    def lq_cost(x, u):
        return 0.5 * ((x @ Qt) * x).sum(-1) + 0.5 * ((u @ Rt) * u).sum(-1)

    models = [torch_linear(A, B) for A, B in zip(As, Bs, strict=True)]
    kw = dict(terminal_cost=lambda x: lq_cost(x, torch.zeros(x.shape[0], 2, dtype=DT)))
    mean = ilqr(models, lq_cost, torch.tensor(x0), torch.zeros(T, 2, dtype=DT), **kw)
    worst = ilqr(
        models, lq_cost, torch.tensor(x0), torch.zeros(T, 2, dtype=DT), robust="worst",
        robust_temperature=0.05, **kw,
    )  # fmt: skip
    assert float(worst.model_cost.max()) <= float(mean.model_cost.max()) + 1e-9
    assert float(worst.model_cost.mean()) >= float(mean.model_cost.mean()) - 1e-9


def test_numpy_models_use_the_numpy_rollout_and_agree_with_torch():
    masses = (0.8, 1.25)
    sys_ = [envs.get_task("pendulum-swingup", max_speed=None, m=m) for m in masses]

    def np_dyn(task):
        f = task.dynamics_fn
        return numpy_function(lambda x, u: f(torch.from_numpy(x), torch.from_numpy(u)).numpy())

    u0 = torch.zeros(30, 1, dtype=DT)
    kw = dict(KW, derivatives="finite_difference", robust="worst")
    r_np = ilqr([np_dyn(t) for t in sys_], cost, X0, u0, **kw)
    r_t = ilqr([t.dynamics_fn for t in sys_], cost, X0, u0, **kw)
    torch.testing.assert_close(r_np.u, r_t.u, rtol=0, atol=1e-9)


def test_bad_model_inputs_raise_naming_the_argument():
    u0 = torch.zeros(10, 1, dtype=DT)
    with pytest.raises(ValueError, match="dynamics: an empty sequence"):
        ilqr([], cost, X0, u0)
    with pytest.raises(TypeError, match=r"dynamics\[1\] must be callable"):
        ilqr([pendulum(), 3.0], cost, X0, u0)
    with pytest.raises(TypeError, match="dynamics must be a callable or a sequence"):
        ilqr("pendulum", cost, X0, u0)
    with pytest.raises(ValueError, match="robust must be one of"):
        ilqr([pendulum()] * 2, cost, X0, u0, robust="max")
    with pytest.raises(ValueError, match="robust must be one of"):
        ilqr(pendulum(), cost, X0, u0, robust="max")
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="robust_temperature"):
            ilqr([pendulum()] * 2, cost, X0, u0, robust="worst", robust_temperature=bad)
    with pytest.raises(ValueError, match="jacobians: got 1 Jacobian callables for K = 2"):
        ilqr([pendulum()] * 2, cost, X0, u0, derivatives="analytic", jacobians=[lambda x, u: 0])
    with pytest.raises(TypeError, match="jacobians: with K = 2 models"):
        ilqr([pendulum()] * 2, cost, X0, u0, derivatives="analytic", jacobians=lambda x, u: 0)
    bad_state = lambda x, u: x[:, :1]  # noqa: E731 - returns the wrong shape
    with pytest.raises(ValueError, match="dynamics"):
        ilqr([pendulum(), bad_state], cost, X0, u0)


def test_a_batch_of_starts_equals_each_start_solved_alone():
    models = [pendulum(m) for m in (0.8, 1.3)]
    x0 = torch.tensor([[math.pi - 0.3, 0.0], [math.pi - 0.6, 0.5]], dtype=DT)
    u0 = torch.zeros(30, 1, dtype=DT)
    kw = dict(KW, robust="worst")
    both = ilqr(models, cost, x0, u0, **kw)
    assert both.model_cost.shape == (2, 2) and both.x_models.shape == (2, 2, 31, 2)
    for b in range(2):
        alone = ilqr(models, cost, x0[b], u0, **kw)
        torch.testing.assert_close(both.u[b], alone.u[0], rtol=0, atol=1e-9)
        torch.testing.assert_close(both.model_cost[b], alone.model_cost[0], rtol=1e-10, atol=0)
        torch.testing.assert_close(both.x_models[b, :, 0], x0[b].expand(2, 2), rtol=0, atol=0)


def test_receding_horizon_takes_a_model_list():
    from control.receding_horizon import RecedingHorizonILQR

    kw = dict(horizon=20, act_dim=1, terminal_cost=terminal, u_min=-2.0, u_max=2.0)
    nominal = RecedingHorizonILQR(pendulum(), cost, iters_per_step=2, **kw)
    robust = RecedingHorizonILQR([pendulum()] * 2, cost, iters_per_step=2, robust="worst", **kw)
    x = X0.clone()
    for _ in range(3):
        a, b = nominal.act(x), robust.act(x)
        torch.testing.assert_close(b, a, rtol=0, atol=1e-9)
        x = pendulum()(x.view(1, 2), a.view(1, 1))[0]
