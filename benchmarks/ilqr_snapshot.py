"""Snapshot of ilqr() results on the tests' and the benchmark's problems, to check refactors.

    PYTHONPATH=<tree> python benchmarks/ilqr_snapshot.py save /tmp/before.pt   # old tree
    PYTHONPATH=<tree> python benchmarks/ilqr_snapshot.py save /tmp/after.pt    # new tree
    python benchmarks/ilqr_snapshot.py compare /tmp/before.pt /tmp/after.pt

``save`` runs 40 problems (LQ with and without bounds, batches, the three derivative methods,
NaN and non-PD cases, m = 1 and m = 2, pendulum and cart-pole swing-ups with and without
terminal cost) and stores every field of each ILQRResult; ``compare`` reports the fields that
are not bit-identical (``torch.equal``; NaN compared equal to NaN).  Run with
``OMP_NUM_THREADS=1`` from the repository root.
"""

from __future__ import annotations

import math
import sys

import torch

sys.path.insert(0, "tests/control")
import test_ilqr as T_  # noqa: E402

import envs  # noqa: E402
from control.ddp import ilqr  # noqa: E402  (old and new trees)
from control.derivatives import numpy_function  # noqa: E402

DT = torch.float64


def save(path: str) -> None:
    """Run the problems and save the results to ``path``."""
    out = {}

    def rec(name, r):
        out[name] = dict(
            x=r.x,
            u=r.u,
            K=r.K,
            k=r.k,
            cost=r.cost,
            hist=r.cost_history,
            it=r.iterations,
            conv=r.converged,
            status=list(r.status),
            notes=list(r.notes),
            reg=r.reg,
            best=r.best,
        )

    for seed in (0, 1, 2, 4):
        p = T_.random_lq(seed)
        rec(
            f"lq{seed}_one",
            ilqr(
                p["dyn"],
                p["cost"],
                p["x0"],
                torch.zeros(12, 2),
                terminal_cost=p["term"],
                max_iter=1,
            ),
        )
        rec(
            f"lq{seed}_full",
            ilqr(p["dyn"], p["cost"], p["x0"], torch.zeros(12, 2), terminal_cost=p["term"]),
        )
        rec(
            f"lq{seed}_box",
            ilqr(
                p["dyn"],
                p["cost"],
                p["x0"],
                torch.zeros(10, 2),
                terminal_cost=p["term"],
                u_min=-0.3,
                u_max=0.3,
            ),
        )
        g = torch.Generator().manual_seed(seed)
        u0 = (torch.rand(3, 8, 2, generator=g, dtype=DT) * 2 - 1) * 5
        rec(
            f"lq{seed}_rand",
            ilqr(
                p["dyn"],
                p["cost"],
                p["x0"],
                u0,
                terminal_cost=p["term"],
                u_min=-0.4,
                u_max=1.1,
                max_iter=15,
            ),
        )
        rec(
            f"lq{seed}_wide",
            ilqr(
                p["dyn"],
                p["cost"],
                p["x0"],
                torch.zeros(10, 2),
                terminal_cost=p["term"],
                u_min=-1e3,
                u_max=1e3,
            ),
        )

    dyn, cost, term = T_.pendulum_problem()
    rec(
        "pend_zero_term",
        ilqr(
            dyn,
            cost,
            torch.tensor([math.pi, 0.0], dtype=DT),
            torch.zeros(100, 1),
            terminal_cost=term,
            u_min=-2.0,
            u_max=2.0,
            max_iter=100,
        ),
    )
    rec(
        "pend_zero_noterm_200",
        ilqr(
            dyn,
            cost,
            torch.tensor([math.pi, 0.0], dtype=DT),
            torch.zeros(100, 1),
            u_min=-2.0,
            u_max=2.0,
            max_iter=200,
        ),
    )
    rec(
        "pend_f32pi",
        ilqr(
            dyn,
            cost,
            torch.tensor([math.pi, 0.0]),
            torch.zeros(100, 1),
            terminal_cost=term,
            u_min=-2.0,
            u_max=2.0,
        ),
    )
    g = torch.Generator().manual_seed(0)
    u0 = torch.rand(20, 40, 1, generator=g, dtype=DT) * 4 - 2
    rec(
        "pend_batch20",
        ilqr(
            dyn,
            cost,
            torch.tensor([math.pi - 0.5, 0.0]),
            u0,
            terminal_cost=term,
            u_min=-2.0,
            u_max=2.0,
            max_iter=60,
        ),
    )
    g = torch.Generator().manual_seed(0)
    u0 = (torch.rand(20, 100, 1, generator=g, dtype=DT) * 2 - 1) * 2
    rec(
        "pend_rand20_bench",
        ilqr(
            dyn,
            cost,
            torch.tensor([math.pi, 0.0], dtype=DT),
            u0,
            terminal_cost=term,
            u_min=-2.0,
            u_max=2.0,
            max_iter=200,
        ),
    )
    rec(
        "pend_rand20_noterm",
        ilqr(
            dyn,
            cost,
            torch.tensor([math.pi, 0.0], dtype=DT),
            u0,
            u_min=-2.0,
            u_max=2.0,
            max_iter=200,
        ),
    )
    dyn2 = envs.get_task("pendulum-swingup", max_speed=None, max_torque=1e3).dynamics_fn
    kw = dict(terminal_cost=term, u_min=-2.0, u_max=2.0, max_iter=60, tol=1e-10)
    x0 = torch.tensor([math.pi - 0.3, 0.0])
    rec("pend_autodiff", ilqr(dyn2, cost, x0, torch.zeros(40, 1), derivatives="autodiff", **kw))
    rec(
        "pend_analytic",
        ilqr(
            dyn2,
            cost,
            x0,
            torch.zeros(40, 1),
            derivatives="analytic",
            jacobians=T_.pendulum_jacobians,
            **kw,
        ),
    )
    npdyn = numpy_function(lambda xx, uu: dyn2(torch.from_numpy(xx), torch.from_numpy(uu)).numpy())
    rec("pend_fd", ilqr(npdyn, cost, x0, torch.zeros(40, 1), derivatives="finite_difference", **kw))

    cdyn, ccost, cterm = T_.cartpole_problem()
    x0c = torch.tensor([0.0, 0.0, math.pi, 0.0], dtype=DT)
    rec(
        "cart_reg1",
        ilqr(
            cdyn,
            ccost,
            x0c,
            torch.zeros(100, 1),
            terminal_cost=cterm,
            u_min=-10.0,
            u_max=10.0,
            max_iter=150,
            reg_init=1.0,
        ),
    )
    rec(
        "cart_zero_term_200",
        ilqr(
            cdyn,
            ccost,
            x0c,
            torch.zeros(100, 1),
            terminal_cost=cterm,
            u_min=-10.0,
            u_max=10.0,
            max_iter=200,
        ),
    )
    rec(
        "cart_zero_noterm_200",
        ilqr(cdyn, ccost, x0c, torch.zeros(100, 1), u_min=-10.0, u_max=10.0, max_iter=200),
    )
    g = torch.Generator().manual_seed(0)
    u0 = (torch.rand(20, 100, 1, generator=g, dtype=DT) * 2 - 1) * 10
    rec(
        "cart_rand20_bench",
        ilqr(cdyn, ccost, x0c, u0, terminal_cost=cterm, u_min=-10.0, u_max=10.0, max_iter=200),
    )
    rec("cart_rand20_noterm", ilqr(cdyn, ccost, x0c, u0, u_min=-10.0, u_max=10.0, max_iter=200))
    g = torch.Generator().manual_seed(1)
    x0b = torch.rand(6, 4, generator=g, dtype=DT) * 2 - 1
    u0b = torch.rand(6, 30, 1, generator=g, dtype=DT) * 4 - 2
    lo = -torch.rand(6, 1, 1, generator=g, dtype=DT) * 3 - 0.5
    up = torch.rand(6, 1, 1, generator=g, dtype=DT) * 3 + 0.5
    rec(
        "cart_bounds6",
        ilqr(cdyn, ccost, x0b, u0b, terminal_cost=cterm, u_min=lo, u_max=up, max_iter=40),
    )

    def nandyn(x, u):
        nxt = x + u
        return torch.where(nxt > 2.0, torch.full_like(nxt, float("nan")), nxt)

    def ncost(x, u):
        return (x[:, 0] - 3.0) ** 2 + 0.01 * u[:, 0] ** 2

    rec(
        "nan",
        ilqr(
            nandyn,
            ncost,
            torch.zeros(1),
            torch.zeros(10, 1),
            terminal_cost=lambda x: (x[:, 0] - 3) ** 2,
        ),
    )

    def dyn2b(x, u):
        bad = u.abs().sum(-1, keepdim=True) > 0
        return torch.where(bad, torch.full_like(x, float("nan")), x + u)

    rec("nan2", ilqr(dyn2b, ncost, torch.zeros(1), torch.zeros(5, 1), reg_max=1e3))
    rec(
        "nonpd",
        ilqr(
            lambda x, u: x + u,
            lambda x, u: x[:, 0] ** 2 - 0.5 * u[:, 0] ** 2 + 0.1 * u[:, 0] ** 4,
            torch.ones(1),
            torch.zeros(6, 1),
            u_min=-1.0,
            u_max=1.0,
        ),
    )
    rec(
        "nonpd_m2",
        ilqr(
            lambda x, u: x + u.sum(-1, keepdim=True),
            lambda x, u: (x**2).sum(-1) - 0.5 * (u**2).sum(-1) + 0.1 * (u**4).sum(-1),
            torch.ones(1),
            torch.zeros(6, 2),
            u_min=-1.0,
            u_max=1.0,
        ),
    )
    rec(
        "nonpd_m2_free",
        ilqr(
            lambda x, u: x + u.sum(-1, keepdim=True),
            lambda x, u: (x**2).sum(-1) - 0.5 * (u**2).sum(-1) + 0.1 * (u**4).sum(-1),
            torch.ones(1),
            torch.zeros(6, 2),
        ),
    )
    torch.save(out, path)
    print("saved", len(out), "cases to", path)


def compare(path_a: str, path_b: str) -> int:
    """Print the fields of two snapshots that differ; return their number."""
    a = torch.load(path_a, weights_only=False)
    b = torch.load(path_b, weights_only=False)
    assert a.keys() == b.keys(), "the snapshots hold different problems"
    bad = 0
    for k in a:
        for f in a[k]:
            x, y = a[k][f], b[k][f]
            if isinstance(x, torch.Tensor):
                eq = x.shape == y.shape and torch.equal(
                    torch.nan_to_num(x) if x.is_floating_point() else x,
                    torch.nan_to_num(y) if y.is_floating_point() else y,
                )
                eq = (
                    eq and torch.equal(torch.isnan(x), torch.isnan(y))
                    if x.is_floating_point()
                    else eq
                )
            else:
                eq = x == y
            if not eq:
                bad += 1
                print("DIFF", k, f)
    print(f"{len(a)} cases, {sum(len(v) for v in a.values())} fields, {bad} differ")
    return bad


if __name__ == "__main__":
    if sys.argv[1] == "save":
        save(sys.argv[2])
    else:
        sys.exit(1 if compare(sys.argv[2], sys.argv[3]) else 0)
