"""Benchmark the linear-quadratic solvers against plain scipy/numpy references.

Run:  .venv/bin/python benchmarks/bench_lqr.py [--repeats 7]

Prints median wall times (ms) and ratios measured in this run:
  * dlqr() vs scipy.linalg.solve_discrete_are called directly (wrapper overhead),
  * lqr() vs a textbook numpy/scipy recursion (scipy.linalg.solve per step) and, for small
    problems, vs solving the dense KKT system of the QP,
  * lqr() at T=1000, n=20, m=5 (numpy, torch, batched),
  * LinearMPC (Clarabel and OSQP): first solve (compiles the cvxpy problem) vs re-solves.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import scipy.linalg
import torch

from control.linear_mpc import LinearMPC
from control.linear_quadratic import dlqr, lqr


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def random_lti(rng: np.random.Generator, n: int, m: int):
    A = np.eye(n) + 0.1 * rng.normal(size=(n, n)) / np.sqrt(n)
    B = rng.normal(size=(n, m)) / np.sqrt(n)
    L = rng.normal(size=(n, n))
    Q = L @ L.T / n + 0.1 * np.eye(n)
    R = np.eye(m)
    N = 0.05 * rng.normal(size=(n, m))
    return A, B, Q, R, N


def random_problem(rng: np.random.Generator, T: int, n: int, m: int):
    nm = n + m
    F = np.concatenate([np.eye(n) + 0.1 * rng.normal(size=(T, n, n)) / np.sqrt(n),
                        rng.normal(size=(T, n, m)) / np.sqrt(n)], axis=-1)  # fmt: skip
    f = 0.1 * rng.normal(size=(T, n))
    M = rng.normal(size=(T, nm, nm))
    C = M @ np.swapaxes(M, -1, -2) / nm + 0.1 * np.eye(nm)
    c = rng.normal(size=(T, nm))
    x0 = rng.normal(size=n)
    return F, f, C, c, x0


def reference_recursion(F, f, C, c, x0):
    """Textbook LQR recursion (lecture-notes formulas) with scipy.linalg.solve per step."""
    T, n, nm = F.shape
    V, v = np.zeros((n, n)), np.zeros(n)
    Ks, ks = [None] * T, [None] * T
    for t in range(T - 1, -1, -1):
        Q = C[t] + F[t].T @ V @ F[t]
        q = c[t] + F[t].T @ V @ f[t] + F[t].T @ v
        Quu, Qux, Qxx, qu, qx = Q[n:, n:], Q[n:, :n], Q[:n, :n], q[n:], q[:n]
        sol = scipy.linalg.solve(Quu, np.column_stack([Qux, qu]), assume_a="pos")
        K, k = -sol[:, :n], -sol[:, n]
        V = Qxx + Qux.T @ K + K.T @ Qux + K.T @ Quu @ K
        V = 0.5 * (V + V.T)  # without this, rounding asymmetry grows like |eig(A)|^(2t)
        v = qx + Qux.T @ k + K.T @ qu + K.T @ Quu @ k
        Ks[t], ks[t] = K, k
    x, us = x0, []
    for t in range(T):
        u = Ks[t] @ x + ks[t]
        x = F[t] @ np.r_[x, u] + f[t]
        us.append(u)
    return np.array(us)


def kkt_solve(F, f, C, c, x0):
    """The QP's dense KKT system solved by scipy (LU)."""
    T, n, nm = F.shape
    m = nm - n
    N = (T + 1) * n + T * m
    H, g = np.zeros((N, N)), np.zeros(N)
    A, b = np.zeros(((T + 1) * n, N)), np.zeros((T + 1) * n)
    xs = [np.arange(t * n, (t + 1) * n) for t in range(T + 1)]
    us = [(T + 1) * n + np.arange(t * m, (t + 1) * m) for t in range(T)]
    A[np.ix_(xs[0], xs[0])] = np.eye(n)
    b[xs[0]] = x0
    for t in range(T):
        idx = np.r_[xs[t], us[t]]
        H[np.ix_(idx, idx)] += C[t]
        g[idx] += c[t]
        A[np.ix_(xs[t + 1], xs[t + 1])] = np.eye(n)
        A[np.ix_(xs[t + 1], idx)] = -F[t]
        b[xs[t + 1]] = f[t]
    K = np.block([[H, A.T], [A, np.zeros((A.shape[0], A.shape[0]))]])
    w = scipy.linalg.solve(K, np.r_[-g, b])
    return w[(T + 1) * n : N].reshape(T, m)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    r = args.repeats
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, torch {torch.__version__}, "
          f"torch threads {torch.get_num_threads()}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; median of {r}")  # fmt: skip

    print("\n== dlqr() vs scipy.linalg.solve_discrete_are (with cross term N) ==")
    print(f"{'n':>4} {'m':>3} {'scipy DARE ms':>14} {'dlqr ms':>9} {'ratio':>6} {'max|dS|':>9}")
    for n in (4, 20, 100):
        m = max(1, n // 4)
        A, B, Q, R, N = random_lti(rng, n, m)
        lti = (A, B, Q, R, N)
        t_ref = median_ms(lambda p=lti: scipy.linalg.solve_discrete_are(*p[:4], s=p[4]), r)
        t_our = median_ms(lambda p=lti: dlqr(*p), r)
        dS = np.abs(dlqr(A, B, Q, R, N)[1] - scipy.linalg.solve_discrete_are(A, B, Q, R, s=N))
        print(f"{n:>4} {m:>3} {t_ref:>14.3f} {t_our:>9.3f} {t_our / t_ref:>6.2f} {dS.max():>9.1e}")

    print("\n== lqr() vs textbook scipy recursion (scipy.linalg.solve per step) and dense KKT ==")
    print(f"{'T':>5} {'n':>4} {'m':>3} {'ref rec ms':>11} {'lqr ms':>8} {'speedup':>8} "
          f"{'KKT ms':>9} {'max|du|':>9}")  # fmt: skip
    for T, n in ((200, 4), (200, 20), (50, 100)):
        m = max(1, n // 4)
        prob = random_problem(rng, T, n, m)
        t_ref = median_ms(lambda p=prob: reference_recursion(*p), r)
        t_our = median_ms(lambda p=prob: lqr(*p), r)
        u_our = lqr(*prob).u
        du = np.abs(u_our - reference_recursion(*prob)).max()
        kkt = "-"
        if n == 4:
            t_kkt = median_ms(lambda p=prob: kkt_solve(*p), max(3, r // 2))
            du = max(du, np.abs(u_our - kkt_solve(*prob)).max())
            kkt = f"{t_kkt:.2f}"
        print(f"{T:>5} {n:>4} {m:>3} {t_ref:>11.2f} {t_our:>8.2f} {t_ref / t_our:>8.2f} "
              f"{kkt:>9} {du:>9.1e}")  # fmt: skip

    print("\n== lqr() at T=1000, n=20, m=5 (backward + forward pass, with x0) ==")
    prob = random_problem(rng, 1000, 20, 5)
    t_np = median_ms(lambda: lqr(*prob), r)
    t_ref = median_ms(lambda: reference_recursion(*prob), max(3, r // 2))
    tprob = [torch.from_numpy(a) for a in prob]
    t_torch = median_ms(lambda: lqr(*tprob), r)
    gprob = [a.clone().requires_grad_(i == 3) for i, a in enumerate(tprob)]
    t_grad = median_ms(lambda: lqr(*gprob).cost.backward(), max(3, r // 2))
    bprob = [np.broadcast_to(a, (16,) + a.shape) for a in prob]
    t_batch = median_ms(lambda: lqr(*bprob), max(3, r // 2))
    print(f"numpy float64 (LAPACK path)           {t_np:8.2f} ms")
    print(
        f"textbook scipy recursion              {t_ref:8.2f} ms  (lqr speedup {t_ref / t_np:.2f}x)"
    )
    print(f"torch float64, no grad (LAPACK path)  {t_torch:8.2f} ms  (zero-copy via numpy)")
    print(f"torch float64, grad wrt c + backward  {t_grad:8.2f} ms  (torch.linalg kernels)")
    print(f"numpy batch of 16 (stacked gufuncs)   {t_batch:8.2f} ms  "
          f"({t_batch / 16:.2f} ms per problem)")  # fmt: skip

    print("\n== LinearMPC: first solve (compiles the cvxpy problem) vs re-solve from a new x0 ==")
    print(f"{'solver':>9} {'n':>4} {'m':>3} {'H':>4} {'first ms':>9} {'re-solve ms':>12} "
          f"{'ratio':>6} {'iters':>7}")  # fmt: skip
    for n, m, H in ((4, 2, 20), (20, 5, 50)):
        A, B, Q, R, _ = random_lti(rng, n, m)
        x0 = rng.normal(size=n)
        for solver in ("CLARABEL", "OSQP"):
            firsts, resolves, iters = [], [], []
            for _ in range(2):
                mpc = LinearMPC(A, B, Q, R, H, u_min=-0.2, u_max=0.2, solver=solver)
                firsts.append(mpc.solve(x0).solve_time)
                for i in range(max(3, r // 2)):
                    resolves.append(mpc.solve(x0 + 0.01 * (i + 1)).solve_time)
                    iters.append(mpc.problem.solver_stats.num_iters)
            t1, t2 = 1e3 * statistics.median(firsts), 1e3 * statistics.median(resolves)
            it = int(statistics.median(iters))
            print(
                f"{solver:>9} {n:>4} {m:>3} {H:>4} {t1:>9.2f} {t2:>12.2f} {t1 / t2:>6.1f} {it:>7}"
            )


if __name__ == "__main__":
    main()
