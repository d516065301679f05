"""Benchmark: control.ddp.ilqr vs Crocoddyl's BoxFDDP vs mpc.pytorch's box-DDP on two swing-ups.

Problems (T = 100 controls, terminal cost = the state terms on x_T):
  * pendulum: Gymnasium Pendulum physics, no speed clip, |u| <= 2,
    cost angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2, start (pi, 0);
  * cart-pole: Gymnasium CartPole physics (Euler, dt 0.05), |u| <= 10,
    cost 0.1 x^2 + 0.01 xdot^2 + angle_normalize(th)^2 + 0.01 thdot^2 + 0.001 u^2, start th = pi.
Starts: zero controls, and 20 uniformly random control sequences (seeded) — one batched call for
ilqr and mpc.pytorch, a loop for Crocoddyl.  Every solver's controls are re-evaluated with the same
torch rollout, so the "cost" column is comparable (mpc.pytorch has no terminal cost: it is run with
T + 1 steps so that x_T is costed, and its first T controls are evaluated).

The peers need their own venv (never the project venv):
    python3 -m venv .venv-bench && .venv-bench/bin/pip install torch==2.13.0
    .venv-bench/bin/pip install -e . crocoddyl mpc
    .venv-bench/bin/python benchmarks/bench_ilqr.py
A peer that cannot be imported or fails is reported with its error; the rest still runs.
"""

from __future__ import annotations

import argparse
import math
import time
import traceback
from collections.abc import Callable

import numpy as np
import torch

import envs
from control.ddp import ilqr
from envs.analytic.angles import angle_normalize

DT = torch.float64
T = 100


def make_problems() -> dict[str, dict]:
    """The two swing-up problems: dynamics, costs, analytic cost derivatives, bounds, x0."""
    pend = envs.get_task("pendulum-swingup", max_speed=None).dynamics_fn
    cart = envs.get_task("cartpole-swingup").dynamics_fn

    def p_term(x):
        return angle_normalize(x[..., 0]) ** 2 + 0.1 * x[..., 1] ** 2

    def p_cost(x, u):
        return p_term(x) + 0.001 * u[..., 0] ** 2

    def c_term(x):
        return (
            0.1 * x[..., 0] ** 2
            + 0.01 * x[..., 1] ** 2
            + angle_normalize(x[..., 2]) ** 2
            + 0.01 * x[..., 3] ** 2
        )

    def c_cost(x, u):
        return c_term(x) + 0.001 * u[..., 0] ** 2

    return {
        "pendulum": dict(
            dyn=pend,
            cost=p_cost,
            term=p_term,
            n=2,
            umax=2.0,
            x0=[math.pi, 0.0],
            wx=np.array([2.0, 0.2]),
            ang=0,
        ),
        "cartpole": dict(
            dyn=cart,
            cost=c_cost,
            term=c_term,
            n=4,
            umax=10.0,
            x0=[0.0, 0.0, math.pi, 0.0],
            wx=np.array([0.2, 0.02, 2.0, 0.02]),
            ang=2,
        ),
    }


def evaluate(p: dict, u: torch.Tensor) -> torch.Tensor:
    """Total cost ``(B,)`` of control sequences ``u (B, T, 1)`` from ``p['x0']``."""
    u = torch.clamp(u.to(DT), -p["umax"], p["umax"])
    x = torch.tensor(p["x0"], dtype=DT).expand(u.shape[0], -1)
    J = torch.zeros(u.shape[0], dtype=DT)
    for t in range(u.shape[1]):
        J = J + p["cost"](x, u[:, t])
        x = p["dyn"](x, u[:, t])
    return J + p["term"](x)


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# ------------------------------------------------------------------------------------------------
def run_ilqr(p: dict, u0: torch.Tensor) -> tuple[torch.Tensor, float, str]:
    res, wall = timed(
        lambda: ilqr(
            p["dyn"],
            p["cost"],
            torch.tensor(p["x0"], dtype=DT),
            u0,
            terminal_cost=p["term"],
            u_min=-p["umax"],
            u_max=p["umax"],
            max_iter=200,
        )
    )
    it = res.iterations
    its = (
        f"{int(it.max())}"
        if it.numel() == 1
        else f"max {int(it.max())}, mean {float(it.float().mean()):.1f}"
    )
    return res.u, wall, its


def run_crocoddyl(p: dict, u0: torch.Tensor) -> tuple[torch.Tensor, float, str]:
    import crocoddyl

    n, umax, dyn = p["n"], p["umax"], p["dyn"]
    wx, ang = p["wx"], p["ang"]

    def step(x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return dyn(torch.from_numpy(x), torch.from_numpy(u)).numpy()

    def put(arr: np.ndarray, val: object) -> None:
        # eigenpy hands (k, 1) matrices to Python as 1-D arrays: assign by the view's shape
        v = np.asarray(val, dtype=np.float64)
        arr[...] = v.reshape(arr.shape) if v.size == arr.size else v

    def grad_x(x: np.ndarray) -> np.ndarray:
        g = wx * x
        g[ang] = wx[ang] * float(angle_normalize(x[ang]))
        return g

    class Model(crocoddyl.ActionModelAbstract):
        def __init__(self, terminal: bool) -> None:
            crocoddyl.ActionModelAbstract.__init__(self, crocoddyl.StateVector(n), 1, 0)
            self.terminal = terminal
            self.u_lb = np.array([-umax])
            self.u_ub = np.array([umax])
            self.eye = np.eye(n + 1)

        def _state_cost(self, x: np.ndarray) -> float:
            xx = x.copy()
            xx[ang] = float(angle_normalize(x[ang]))
            return float(0.5 * (wx * xx * xx).sum())

        def calc(self, data, x, u=None):  # noqa: ANN001
            if self.terminal or u is None:
                data.cost = self._state_cost(x)
                data.xnext[:] = x
                return
            data.xnext[:] = step(x[None], u[None])[0]
            data.cost = self._state_cost(x) + 0.001 * float(u[0]) ** 2

        def calcDiff(self, data, x, u=None):  # noqa: ANN001, N802
            put(data.Lx, grad_x(x))
            put(data.Lxx, np.diag(wx))
            if self.terminal or u is None:
                return
            z = np.concatenate([x, u])
            h = 6e-6 * (1.0 + np.abs(z))
            zz = np.concatenate([z + self.eye * h[:, None], z - self.eye * h[:, None]])
            out = step(zz[:, :n], zz[:, n:])
            J = ((out[: n + 1] - out[n + 1 :]) / (2 * h[:, None])).T
            put(data.Fx, J[:, :n])
            put(data.Fu, J[:, n:])
            put(data.Lu, 0.002 * u)
            put(data.Luu, 0.002)
            put(data.Lxu, 0.0)

    running, terminal = Model(False), Model(True)
    x0 = np.array(p["x0"])
    costs_u, iters = [], []
    t0 = time.perf_counter()
    for b in range(u0.shape[0]):
        problem = crocoddyl.ShootingProblem(x0, [running] * T, terminal)
        solver = crocoddyl.SolverBoxFDDP(problem)
        us = [np.array(u0[b, t].numpy(), dtype=np.float64) for t in range(T)]
        xs = problem.rollout(us)
        solver.solve(xs, us, 200, True, 1e-9)
        costs_u.append(np.stack(solver.us))
        iters.append(solver.iter)
    wall = time.perf_counter() - t0
    its = f"{iters[0]}" if len(iters) == 1 else f"max {max(iters)}, mean {np.mean(iters):.1f}"
    return torch.tensor(np.stack(costs_u)), wall, its


def run_mpc_pytorch(p: dict, u0: torch.Tensor) -> tuple[torch.Tensor, float, str]:
    from mpc import mpc as mpc_mod

    n, B = p["n"], u0.shape[0]

    class Dyn(torch.nn.Module):
        def forward(self, x, u):  # noqa: ANN001
            return p["dyn"](x, u)

    class Cost(torch.nn.Module):
        def forward(self, tau):  # noqa: ANN001
            return p["cost"](tau[..., :n], tau[..., n:])

    u_init = torch.cat([u0, torch.zeros(B, 1, 1, dtype=DT)], 1).transpose(0, 1).contiguous()
    ctrl = mpc_mod.MPC(
        n,
        1,
        T + 1,
        u_lower=-p["umax"],
        u_upper=p["umax"],
        u_init=u_init,
        lqr_iter=200,
        grad_method=mpc_mod.GradMethods.AUTO_DIFF,
        n_batch=B,
        exit_unconverged=False,
        detach_unconverged=False,
        verbose=-1,
        backprop=False,
    )
    x_init = torch.tensor(p["x0"], dtype=DT).expand(B, n).contiguous()
    (_, u, _), wall = timed(lambda: ctrl(x_init, Cost(), Dyn()))
    return u.transpose(0, 1)[:, :T].detach(), wall, "≤200 (not reported)"


SOLVERS = {
    "ilqr (this)": run_ilqr,
    "crocoddyl BoxFDDP": run_crocoddyl,
    "mpc.pytorch": run_mpc_pytorch,
}


def main() -> None:
    """Run every solver on every problem and start set; print one table."""
    parser = argparse.ArgumentParser(description="ilqr vs Crocoddyl vs mpc.pytorch")
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", action="append", default=[], help="solver name prefix to skip")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for all solvers (shared machine)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[tuple[str, str, str], tuple[float, float]] = {}
    problems = make_problems()
    # Warm-up (torch.func imports, MKL init), not timed.
    pw = problems["pendulum"]
    ilqr(pw["dyn"], pw["cost"], torch.tensor(pw["x0"]), torch.zeros(5, 1), max_iter=2)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, T = {T}")
    print(
        f"{'problem':9s} {'start':10s} {'solver':18s} {'wall s':>8s} {'best cost':>11s} "
        f"{'median cost':>11s} iterations"
    )
    for pname, p in problems.items():
        g = torch.Generator().manual_seed(args.seed)
        starts = {
            "zeros": torch.zeros(1, T, 1, dtype=DT),
            f"{args.starts} random": (torch.rand(args.starts, T, 1, generator=g, dtype=DT) * 2 - 1)
            * p["umax"],
        }
        for sname, u0 in starts.items():
            for solver, fn in SOLVERS.items():
                if any(solver.startswith(s) for s in args.skip):
                    continue
                try:
                    u, wall, its = fn(p, u0)
                    J = evaluate(p, u)
                    results[(pname, sname, solver)] = (wall, float(J.min()))
                    print(
                        f"{pname:9s} {sname:10s} {solver:18s} {wall:8.3f} {float(J.min()):11.4f} "
                        f"{float(J.median()):11.4f} {its}",
                        flush=True,
                    )
                except Exception as err:  # report and continue with the others
                    msg = f"{type(err).__name__}: {err}".splitlines()[0][:200]
                    print(f"{pname:9s} {sname:10s} {solver:18s}   FAILED: {msg}", flush=True)
                    if "--trace" in args.skip:
                        traceback.print_exc()
    print("\nsummary (targets: single start no slower than Crocoddyl at no higher cost; batched")
    print(
        "         multi-start >= 5x faster than mpc.pytorch's batched solve, same or better cost)"
    )
    for pname in problems:
        for sname, peer in (
            ("zeros", "crocoddyl BoxFDDP"),
            (f"{args.starts} random", "mpc.pytorch"),
        ):
            me, other = (
                results.get((pname, sname, "ilqr (this)")),
                results.get((pname, sname, peer)),
            )
            if me is None or other is None:
                print(f"  {pname:9s} {sname:10s} vs {peer}: not available")
                continue
            print(
                f"  {pname:9s} {sname:10s} vs {peer:18s}: speed-up {other[0] / me[0]:6.2f}x, "
                f"best cost {me[1]:.4f} vs {other[1]:.4f}"
            )


if __name__ == "__main__":
    main()
