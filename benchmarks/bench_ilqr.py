"""Benchmark: control.ilqr vs Crocoddyl's BoxFDDP, each given the task in its own natural form.

Problems (T = 100 controls, no terminal cost, zero initial controls or 20 random ones):
  * pendulum: Gymnasium Pendulum physics (g 10, m 1, l 1, dt 0.05), no speed clip, |u| <= 2,
    cost angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2, start (pi, 0);
  * cart-pole: Gymnasium CartPole physics (Euler, dt 0.05), |u| <= 10,
    cost 0.1 x^2 + 0.01 xdot^2 + angle_normalize(th)^2 + 0.01 thdot^2 + 0.001 u^2, start th = pi.

Each solver gets the dynamics as its users write them:
  * ``ilqr (autodiff)``: the project's batched torch dynamics and cost (``envs``), derivatives by
    torch.func — what a user of this package writes;
  * ``ilqr (analytic)``: the same, plus hand-written torch Jacobians/cost derivatives;
  * ``ilqr (numpy)``: the NumPy twin below (batched over rows) wrapped with
    ``control.derivatives.numpy_function``, with its hand-written NumPy derivatives — the same
    functions Crocoddyl's action models evaluate one node at a time;
  * ``crocoddyl``: ``crocoddyl.ActionModelAbstract`` subclasses whose ``calc``/``calcDiff`` are
    plain NumPy with hand-written derivatives (the physics re-written below, checked against the
    torch physics at start-up), solved by ``SolverBoxFDDP``.
Every solver's final controls are re-evaluated by the same evaluator (the project's torch physics
and cost), so the cost column is comparable.  Single-start times are the median of ``--repeats``
runs, solvers interleaved; the 20-start row is one batched ``ilqr`` call vs a loop of 20
Crocoddyl solves.  One thread (``torch.set_num_threads(1)``; run with ``OMP_NUM_THREADS=1``).

Crocoddyl needs its own venv (never the project venv):
    python3 -m venv /tmp/venv-croc && /tmp/venv-croc/bin/pip install torch==2.13.0
    /tmp/venv-croc/bin/pip install -e . crocoddyl
    OMP_NUM_THREADS=1 /tmp/venv-croc/bin/python benchmarks/bench_ilqr.py
    OMP_NUM_THREADS=1 /tmp/venv-croc/bin/python benchmarks/bench_ilqr.py --phases  # ms/iteration
Without crocoddyl the ilqr rows still run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

import envs
from control.derivatives import numpy_function
from control.ilqr import ilqr
from envs.analytic.angles import angle_normalize

DT = torch.float64
T = 100
MAX_ITER = 200


def wrap(a: float) -> float:
    """``angle_normalize`` on a Python float (Gymnasium's formula)."""
    return ((a + math.pi) % (2.0 * math.pi)) - math.pi


# ------------------------------------------------------------------------------------------------
# the tasks in NumPy (Crocoddyl's natural form): step, Jacobians, cost and its derivatives
# ------------------------------------------------------------------------------------------------
class TwinBase:
    """Batched NumPy cost of a twin: ``0.5 Σ wx_i x_i^2`` (angle wrapped) ``+ 0.001 u^2``."""

    n: int
    ang: int
    wx: np.ndarray

    def cost_b(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``x (N, n), u (N, 1) -> (N,)``."""
        xx = x.copy()
        xx[:, self.ang] = np.remainder(xx[:, self.ang] + np.pi, 2.0 * np.pi) - np.pi
        return 0.5 * (self.wx * xx * xx).sum(-1) + 0.001 * u[:, 0] ** 2

    def cost_derivs_b(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient ``(N, n+1)`` and Hessian ``(N, n+1, n+1)`` of :meth:`cost_b`."""
        xx = x.copy()
        xx[:, self.ang] = np.remainder(xx[:, self.ang] + np.pi, 2.0 * np.pi) - np.pi
        w = np.concatenate([self.wx, [0.002]])
        g = np.concatenate([xx, u], -1) * w
        return g, np.broadcast_to(np.diag(w), (x.shape[0], self.n + 1, self.n + 1))


class PendulumNumpy(TwinBase):
    """Gymnasium Pendulum physics (semi-implicit Euler), no speed clip."""

    n, ang, umax, x0 = 2, 0, 2.0, (math.pi, 0.0)
    g, mass, ell, dt = 10.0, 1.0, 1.0, 0.05
    wx = np.array([2.0, 0.2])  # Hessian of the state cost

    def step(self, x: np.ndarray, u: float) -> np.ndarray:
        th, thd = x
        u = min(max(u, -self.umax), self.umax)
        acc = 3.0 * self.g / (2.0 * self.ell) * math.sin(th) + 3.0 / (self.mass * self.ell**2) * u
        thd2 = thd + acc * self.dt
        return np.array([th + thd2 * self.dt, thd2])

    def jac(self, x: np.ndarray, u: float) -> tuple[np.ndarray, np.ndarray]:
        a = 3.0 * self.g / (2.0 * self.ell) * math.cos(x[0]) * self.dt
        b = 3.0 / (self.mass * self.ell**2) * self.dt if abs(u) <= self.umax else 0.0
        dt = self.dt
        return np.array([[1.0 + a * dt, dt], [a, 1.0]]), np.array([[b * dt], [b]])

    def state_cost(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        th = wrap(x[0])
        return th * th + 0.1 * x[1] ** 2, np.array([2.0 * th, 0.2 * x[1]])

    def step_b(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Batched :meth:`step`: ``x (N, 2), u (N, 1) -> (N, 2)``."""
        uc = np.minimum(np.maximum(u[:, 0], -self.umax), self.umax)
        acc = (
            3.0 * self.g / (2.0 * self.ell) * np.sin(x[:, 0]) + 3.0 / (self.mass * self.ell**2) * uc
        )
        out = np.empty_like(x)
        out[:, 1] = x[:, 1] + acc * self.dt
        out[:, 0] = x[:, 0] + out[:, 1] * self.dt
        return out

    def jac_b(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Batched :meth:`jac`: ``(N, 2, 2), (N, 2, 1)``."""
        N, dt = x.shape[0], self.dt
        a = 3.0 * self.g / (2.0 * self.ell) * np.cos(x[:, 0]) * dt
        b = 3.0 / (self.mass * self.ell**2) * dt * (np.abs(u[:, 0]) <= self.umax)
        fx = np.empty((N, 2, 2))
        fx[:, 0, 0], fx[:, 0, 1], fx[:, 1, 0], fx[:, 1, 1] = 1.0 + a * dt, dt, a, 1.0
        fu = np.empty((N, 2, 1))
        fu[:, 0, 0], fu[:, 1, 0] = b * dt, b
        return fx, fu


class CartPoleNumpy(TwinBase):
    """Gymnasium CartPole physics (explicit Euler) with a continuous force."""

    n, ang, umax, x0 = 4, 2, 10.0, (0.0, 0.0, math.pi, 0.0)
    g, mc, mp, ell, dt = 9.8, 1.0, 0.1, 0.5, 0.05
    wx = np.array([0.2, 0.02, 2.0, 0.02])

    def _acc(self, x: np.ndarray, f: float) -> tuple[float, ...]:
        _, _, th, w = x
        Mt, pml = self.mc + self.mp, self.mp * self.ell
        s, c = math.sin(th), math.cos(th)
        temp = (f + pml * w * w * s) / Mt
        den = self.ell * (4.0 / 3.0 - self.mp * c * c / Mt)
        th_acc = (self.g * s - c * temp) / den
        x_acc = temp - pml * th_acc * c / Mt
        return s, c, temp, den, th_acc, x_acc

    def step(self, x: np.ndarray, u: float) -> np.ndarray:
        f = min(max(u, -self.umax), self.umax)
        *_, th_acc, x_acc = self._acc(x, f)
        dt = self.dt
        return np.array([x[0] + dt * x[1], x[1] + dt * x_acc, x[2] + dt * x[3], x[3] + dt * th_acc])

    def jac(self, x: np.ndarray, u: float) -> tuple[np.ndarray, np.ndarray]:
        f = min(max(u, -self.umax), self.umax)
        s, c, temp, den, th_acc, _ = self._acc(x, f)
        w = x[3]
        Mt, pml, dt = self.mc + self.mp, self.mp * self.ell, self.dt
        # derivatives with respect to (th, w, f)
        dtemp = np.array([pml * w * w * c / Mt, 2.0 * pml * w * s / Mt, 1.0 / Mt])
        dden = np.array([self.ell * 2.0 * self.mp * c * s / Mt, 0.0, 0.0])
        num = self.g * s - c * temp
        dnum = np.array([self.g * c + s * temp, 0.0, 0.0]) - c * dtemp
        dthacc = (dnum * den - num * dden) / (den * den)
        dxacc = dtemp - pml / Mt * (dthacc * c + th_acc * np.array([-s, 0.0, 0.0]))
        if abs(u) > self.umax:
            dthacc[2] = dxacc[2] = 0.0
        Fx = np.eye(4)
        Fx[0, 1] = Fx[2, 3] = dt
        Fx[1, 2:] += dt * dxacc[:2]
        Fx[3, 2:] += dt * dthacc[:2]
        Fu = np.array([[0.0], [dt * dxacc[2]], [0.0], [dt * dthacc[2]]])
        return Fx, Fu

    def state_cost(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        xx = np.array([x[0], x[1], wrap(x[2]), x[3]])
        return float(0.5 * (self.wx * xx * xx).sum()), self.wx * xx

    def _acc_b(self, x: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, ...]:
        th, w = x[:, 2], x[:, 3]
        Mt, pml = self.mc + self.mp, self.mp * self.ell
        s, c = np.sin(th), np.cos(th)
        temp = (f + pml * w * w * s) / Mt
        den = self.ell * (4.0 / 3.0 - self.mp * c * c / Mt)
        th_acc = (self.g * s - c * temp) / den
        x_acc = temp - pml * th_acc * c / Mt
        return s, c, temp, den, th_acc, x_acc

    def step_b(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Batched :meth:`step`: ``x (N, 4), u (N, 1) -> (N, 4)``."""
        f = np.minimum(np.maximum(u[:, 0], -self.umax), self.umax)
        *_, th_acc, x_acc = self._acc_b(x, f)
        dt = self.dt
        out = x + dt * x[:, [1, 1, 3, 3]]
        out[:, 1] = x[:, 1] + dt * x_acc
        out[:, 3] = x[:, 3] + dt * th_acc
        return out

    def jac_b(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Batched :meth:`jac`: ``(N, 4, 4), (N, 4, 1)``."""
        f = np.clip(u[:, 0], -self.umax, self.umax)
        s, c, temp, den, th_acc, _ = self._acc_b(x, f)
        w, N, z = x[:, 3], x.shape[0], np.zeros(x.shape[0])
        Mt, pml, dt = self.mc + self.mp, self.mp * self.ell, self.dt
        dtemp = np.stack([pml * w * w * c / Mt, 2.0 * pml * w * s / Mt, z + 1.0 / Mt], -1)
        dden = np.stack([self.ell * 2.0 * self.mp * c * s / Mt, z, z], -1)
        num = self.g * s - c * temp
        dnum = np.stack([self.g * c + s * temp, z, z], -1) - c[:, None] * dtemp
        dthacc = (dnum * den[:, None] - num[:, None] * dden) / (den * den)[:, None]
        dxacc = dtemp - pml / Mt * (
            dthacc * c[:, None] + th_acc[:, None] * np.stack([-s, z, z], -1)
        )
        inside = np.abs(u[:, 0]) <= self.umax
        fx = np.broadcast_to(np.eye(4), (N, 4, 4)).copy()
        fx[:, 0, 1] = fx[:, 2, 3] = dt
        fx[:, 1, 2:] += dt * dxacc[:, :2]
        fx[:, 3, 2:] += dt * dthacc[:, :2]
        fu = np.zeros((N, 4, 1))
        fu[:, 1, 0], fu[:, 3, 0] = dt * dxacc[:, 2] * inside, dt * dthacc[:, 2] * inside
        return fx, fu


# ------------------------------------------------------------------------------------------------
# the tasks in torch (this package's natural form)
# ------------------------------------------------------------------------------------------------
def make_problems() -> dict[str, dict]:
    """Torch dynamics, cost, hand-written torch derivatives and the NumPy twin of each task."""
    pend = envs.get_task("pendulum-swingup", max_speed=None).dynamics_fn
    cart = envs.get_task("cartpole-swingup").dynamics_fn

    def p_cost(x, u):
        return angle_normalize(x[:, 0]) ** 2 + 0.1 * x[:, 1] ** 2 + 0.001 * u[:, 0] ** 2

    def c_cost(x, u):
        return (
            0.1 * x[:, 0] ** 2
            + 0.01 * x[:, 1] ** 2
            + angle_normalize(x[:, 2]) ** 2
            + 0.01 * x[:, 3] ** 2
            + 0.001 * u[:, 0] ** 2
        )

    def cost_derivs(wx: np.ndarray, ang: int) -> Callable:
        w = torch.tensor(np.concatenate([wx, [0.002]]), dtype=DT)
        hess = torch.diag(w)

        def cd(x, u):
            z = torch.cat([x, u], -1).clone()
            z[:, ang] = angle_normalize(z[:, ang])
            return z * w, hess.expand(z.shape[0], -1, -1)

        return cd

    def pend_jac(x, u):  # interior of the torque bounds (ilqr keeps u inside them)
        s = PendulumNumpy
        a = 3.0 * s.g / (2.0 * s.ell) * torch.cos(x[:, 0]) * s.dt
        b = 3.0 / (s.mass * s.ell**2) * s.dt
        N = x.shape[0]
        fx = torch.zeros(N, 2, 2, dtype=x.dtype)
        fx[:, 0, 0], fx[:, 0, 1], fx[:, 1, 0], fx[:, 1, 1] = 1.0 + a * s.dt, s.dt, a, 1.0
        fu = torch.zeros(N, 2, 1, dtype=x.dtype)
        fu[:, 0, 0], fu[:, 1, 0] = b * s.dt, b
        return fx, fu

    def cart_jac(x, u):  # interior of the force bounds, same formulas as CartPoleNumpy.jac
        s_ = CartPoleNumpy
        th, w, f = x[:, 2], x[:, 3], u[:, 0]
        Mt, pml, dt = s_.mc + s_.mp, s_.mp * s_.ell, s_.dt
        sn, cs = torch.sin(th), torch.cos(th)
        temp = (f + pml * w * w * sn) / Mt
        den = s_.ell * (4.0 / 3.0 - s_.mp * cs * cs / Mt)
        num = s_.g * sn - cs * temp
        th_acc = num / den
        zero = torch.zeros_like(th)
        dtemp = torch.stack([pml * w * w * cs / Mt, 2.0 * pml * w * sn / Mt, zero + 1.0 / Mt], -1)
        dden = torch.stack([s_.ell * 2.0 * s_.mp * cs * sn / Mt, zero, zero], -1)
        dnum = torch.stack([s_.g * cs + sn * temp, zero, zero], -1) - cs[:, None] * dtemp
        dthacc = (dnum * den[:, None] - num[:, None] * dden) / (den * den)[:, None]
        dc = torch.stack([-sn, zero, zero], -1)
        dxacc = dtemp - pml / Mt * (dthacc * cs[:, None] + th_acc[:, None] * dc)
        N = x.shape[0]
        fx = torch.eye(4, dtype=x.dtype).repeat(N, 1, 1)
        fx[:, 0, 1] = fx[:, 2, 3] = dt
        fx[:, 1, 2:] += dt * dxacc[:, :2]
        fx[:, 3, 2:] += dt * dthacc[:, :2]
        fu = torch.zeros(N, 4, 1, dtype=x.dtype)
        fu[:, 1, 0], fu[:, 3, 0] = dt * dxacc[:, 2], dt * dthacc[:, 2]
        return fx, fu

    return {
        "pendulum": dict(
            dyn=pend,
            cost=p_cost,
            np=PendulumNumpy(),
            jac=pend_jac,
            cd=cost_derivs(PendulumNumpy.wx, 0),
        ),  # fmt: skip
        "cartpole": dict(
            dyn=cart,
            cost=c_cost,
            np=CartPoleNumpy(),
            jac=cart_jac,
            cd=cost_derivs(CartPoleNumpy.wx, 2),
        ),  # fmt: skip
    }


def check_numpy(p: dict, rng: np.random.Generator) -> None:
    """The NumPy twin's step and Jacobians, and the hand-written torch derivatives, equal the
    torch physics and its autodiff at random interior points."""
    tw = p["np"]
    for _ in range(20):
        x = rng.uniform(-3, 3, size=tw.n)
        u = float(rng.uniform(-0.9, 0.9) * tw.umax)
        xt, ut = torch.tensor(x[None]), torch.tensor([[u]], dtype=DT)
        np.testing.assert_allclose(tw.step(x, u), p["dyn"](xt, ut)[0].numpy(), rtol=1e-12)
        fx, fu = torch.func.jacrev(p["dyn"], (0, 1))(xt, ut)
        Fx, Fu = tw.jac(x, u)
        np.testing.assert_allclose(Fx, fx[0, :, 0].numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(Fu, fu[0, :, 0].numpy(), rtol=1e-10, atol=1e-12)
        Fxb, Fub = tw.jac_b(x[None], np.array([[u]]))
        np.testing.assert_allclose(Fxb[0], Fx, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(Fub[0], Fu, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(tw.step_b(x[None], np.array([[u]]))[0], tw.step(x, u))
        np.testing.assert_allclose(tw.cost_b(x[None], np.array([[u]])), p["cost"](xt, ut).numpy())
        fx2, fu2 = p["jac"](xt, ut)
        np.testing.assert_allclose(fx2[0].numpy(), Fx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(fu2[0].numpy(), Fu, rtol=1e-10, atol=1e-12)
        c, C = p["cd"](xt, ut)
        cref = torch.func.jacrev(lambda z: p["cost"](z[:, : tw.n], z[:, tw.n :]))(
            torch.cat([xt, ut], -1)
        )
        np.testing.assert_allclose(c[0].numpy(), cref[0, 0].numpy(), rtol=1e-10, atol=1e-12)


def evaluate(p: dict, u: torch.Tensor) -> torch.Tensor:
    """Total cost ``(B,)`` of control sequences ``u (B, T, 1)`` by the torch physics and cost."""
    tw = p["np"]
    u = torch.clamp(u.to(DT), -tw.umax, tw.umax)
    x = torch.tensor(tw.x0, dtype=DT).expand(u.shape[0], -1)
    J = torch.zeros(u.shape[0], dtype=DT)
    for t in range(u.shape[1]):
        J = J + p["cost"](x, u[:, t])
        x = p["dyn"](x, u[:, t])
    return J


# ------------------------------------------------------------------------------------------------
# solvers
# ------------------------------------------------------------------------------------------------
def _torch_outputs(fn: Callable[..., tuple[np.ndarray, ...]]) -> Callable[..., tuple]:
    """Wrap a NumPy function returning several arrays into one of torch tensors."""

    def wrapped(*args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(
            torch.from_numpy(np.ascontiguousarray(o)) for o in fn(*(a.numpy() for a in args))
        )

    return wrapped


def run_ilqr(p: dict, u0: torch.Tensor, form: str) -> tuple[torch.Tensor, list[int]]:
    """``form``: "autodiff" / "analytic" (torch task) or "numpy" (the NumPy twin, analytic)."""
    tw = p["np"]
    dyn, cost, kw = p["dyn"], p["cost"], {}
    if form == "analytic":
        kw = dict(derivatives="analytic", jacobians={"dynamics": p["jac"], "cost": p["cd"]})
    elif form == "numpy":
        dyn, cost = numpy_function(tw.step_b), numpy_function(tw.cost_b)
        jac = {"dynamics": _torch_outputs(tw.jac_b), "cost": _torch_outputs(tw.cost_derivs_b)}
        kw = dict(derivatives="analytic", jacobians=jac)
    res = ilqr(
        dyn,
        cost,
        torch.tensor(tw.x0, dtype=DT),
        u0,
        u_min=-tw.umax,
        u_max=tw.umax,
        max_iter=MAX_ITER,
        **kw,
    )
    return res.u, res.iterations.tolist()


def crocoddyl_models(tw: object) -> tuple[object, object]:
    """Running and terminal action models of the NumPy twin ``tw`` (no terminal cost)."""
    import crocoddyl

    class Running(crocoddyl.ActionModelAbstract):
        def __init__(self) -> None:
            crocoddyl.ActionModelAbstract.__init__(self, crocoddyl.StateVector(tw.n), 1, 0)
            self.u_lb = np.array([-tw.umax])
            self.u_ub = np.array([tw.umax])
            self.Lxx = np.diag(tw.wx)

        def calc(self, data, x, u=None):  # noqa: ANN001
            if u is None:  # crocoddyl asks for the state-only cost of a running node
                data.cost = tw.state_cost(x)[0]
                data.xnext = x
                return
            uu = float(u[0])
            data.xnext = tw.step(x, uu)
            data.cost = tw.state_cost(x)[0] + 0.001 * uu * uu

        def calcDiff(self, data, x, u=None):  # noqa: ANN001, N802
            data.Lx = tw.state_cost(x)[1]
            data.Lxx = self.Lxx
            if u is None:
                return
            uu = float(u[0])
            data.Fx, data.Fu = tw.jac(x, uu)
            data.Lu = np.array([0.002 * uu])
            data.Luu = np.array([[0.002]])

    class Terminal(crocoddyl.ActionModelAbstract):
        def __init__(self) -> None:
            crocoddyl.ActionModelAbstract.__init__(self, crocoddyl.StateVector(tw.n), 1, 0)

        def calc(self, data, x, u=None):  # noqa: ANN001
            data.cost = 0.0
            data.xnext = x

        def calcDiff(self, data, x, u=None):  # noqa: ANN001, N802
            pass

    return Running(), Terminal()


def run_crocoddyl(p: dict, u0: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    import crocoddyl

    running, terminal = crocoddyl_models(p["np"])
    x0 = np.array(p["np"].x0)
    us_out, iters = [], []
    for b in range(u0.shape[0]):
        problem = crocoddyl.ShootingProblem(x0, [running] * T, terminal)
        solver = crocoddyl.SolverBoxFDDP(problem)
        us = [np.array(u0[b, t].numpy(), dtype=np.float64) for t in range(T)]
        xs = problem.rollout(us)
        solver.solve(xs, us, MAX_ITER, True, 1e-9)
        us_out.append(np.stack(solver.us))
        iters.append(solver.iter)
    return torch.tensor(np.stack(us_out)).view(-1, T, 1), iters


def timed(fn: Callable[[], tuple[torch.Tensor, list[int]]]) -> tuple[torch.Tensor, list, float]:
    t0 = time.perf_counter()
    u, its = fn()
    return u, its, time.perf_counter() - t0


def phase_profile(problems: dict, repeats: int) -> None:
    """Per-iteration time of each ilqr phase (single start, zeros) and Crocoddyl's ms/iteration.

    Times the phase functions as called by :func:`control.ilqr.ilqr` (wrapped with timers); the
    fastest of ``repeats`` solves is reported.
    """
    import collections
    import sys

    mod = sys.modules["control.ilqr"]
    acc: dict[str, float] = collections.defaultdict(float)
    names = ("compute_derivatives", "backward_pass_with_retry", "check_convergence", "line_search")
    originals = {name: getattr(mod, name) for name in names}

    def timer(name: str) -> Callable:
        def wrapped(*a: object) -> object:
            t0 = time.perf_counter()
            out = originals[name](*a)
            acc[name] += time.perf_counter() - t0
            return out

        return wrapped

    for name in names:
        setattr(mod, name, timer(name))
    u0 = torch.zeros(1, T, 1, dtype=DT)
    try:
        for pname, p in problems.items():
            for form in ("autodiff", "analytic", "numpy"):
                best = None
                for _ in range(repeats):
                    acc.clear()
                    t0 = time.perf_counter()
                    _, its = run_ilqr(p, u0, form)
                    wall = time.perf_counter() - t0
                    if best is None or wall < best[0]:
                        best = (wall, dict(acc), its[0])
                wall, a, it = best
                parts = ", ".join(f"{k.split('_')[0]} {v / it * 1e3:.1f}" for k, v in a.items())
                print(f"{pname:9s} ilqr ({form:8s}) {wall / it * 1e3:6.1f} ms/it ({parts})")
            try:
                walls = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    _, its = run_crocoddyl(p, u0)
                    walls.append(time.perf_counter() - t0)
                print(f"{pname:9s} crocoddyl       {min(walls) / its[0] * 1e3:6.1f} ms/it")
            except ImportError:
                pass
    finally:
        for name in names:
            setattr(mod, name, originals[name])


def main() -> None:
    """Run every solver on every problem and start set; print one table and the ratios."""
    parser = argparse.ArgumentParser(description="ilqr vs Crocoddyl (NumPy action models)")
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="single-start timings (median)")
    parser.add_argument(
        "--phases", action="store_true", help="only the per-iteration time of each ilqr phase"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        import crocoddyl

        croc_version = crocoddyl.__version__
    except ImportError as err:
        croc_version = f"not available ({err})"
    problems = make_problems()
    rng = np.random.default_rng(args.seed)
    for p in problems.values():
        check_numpy(p, rng)
    if args.phases:
        phase_profile(problems, args.repeats)
        return
    solvers: dict[str, Callable] = {
        "ilqr (autodiff)": lambda p, u0: run_ilqr(p, u0, "autodiff"),
        "ilqr (analytic)": lambda p, u0: run_ilqr(p, u0, "analytic"),
        "ilqr (numpy)": lambda p, u0: run_ilqr(p, u0, "numpy"),
    }
    if not croc_version.startswith("not"):
        solvers["crocoddyl BoxFDDP"] = run_crocoddyl
    pw = problems["pendulum"]  # warm-up, not timed
    for fn in solvers.values():
        fn(pw, torch.zeros(1, T, 1, dtype=DT))
    print(
        f"torch {torch.__version__}, crocoddyl {croc_version}, threads {torch.get_num_threads()}, "
        f"T = {T}, repeats {args.repeats}"
    )
    print(
        f"{'problem':9s} {'start':10s} {'solver':18s} {'wall s':>8s} {'best cost':>11s} iterations"
    )
    walls: dict[tuple[str, str, str], float] = {}
    for pname, p in problems.items():
        g = torch.Generator().manual_seed(args.seed)
        umax = p["np"].umax
        rand = (torch.rand(args.starts, T, 1, generator=g, dtype=DT) * 2 - 1) * umax
        for sname, u0, reps in (
            ("zeros", torch.zeros(1, T, 1, dtype=DT), args.repeats),
            (f"{args.starts} random", rand, 1),
        ):
            times: dict[str, list[float]] = {s: [] for s in solvers}
            out = {}
            for _ in range(reps):  # interleaved: the machine's load hits every solver alike
                for sname2, fn in solvers.items():
                    u, its, wall = timed(lambda fn=fn, p=p, u0=u0: fn(p, u0))
                    times[sname2].append(wall)
                    out[sname2] = (u, its)
            for solver, (u, its) in out.items():
                J = evaluate(p, u)
                wall = statistics.median(times[solver])
                walls[(pname, sname, solver)] = wall
                it_s = f"{its[0]}" if len(its) == 1 else f"max {max(its)}, mean {np.mean(its):.1f}"
                print(
                    f"{pname:9s} {sname:10s} {solver:18s} {wall:8.3f} {float(J.min()):11.4f} "
                    f"{it_s}",
                    flush=True,
                )
    print("\nratios (Crocoddyl time / ilqr time; > 1: ilqr faster)")
    for key in sorted({(a, b) for a, b, _ in walls}):
        other = walls.get((*key, "crocoddyl BoxFDDP"))
        if other is None:
            continue
        for mine in ("ilqr (autodiff)", "ilqr (analytic)", "ilqr (numpy)"):
            print(f"  {key[0]:9s} {key[1]:10s} {mine:16s}: {other / walls[(*key, mine)]:5.2f}x")


if __name__ == "__main__":
    main()
