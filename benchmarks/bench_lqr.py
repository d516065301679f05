"""Benchmark the linear-quadratic solvers against python-control and plain scipy/numpy references.

Run:  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lqr.py \
          [--repeats 7] [--peer-python /tmp/venv-ctrl/bin/python] [--only dlqr]

Prints wall times (ms) and ratios measured in this run:
  * dlqr() vs python-control's dlqr (with slycot) and scipy.linalg.solve_discrete_are, n = 4, 20,
    100, best of repeats; python-control runs in its own venv and process
    (benchmarks/_python_control_worker.py; its package is also named ``control``), interleaved
    with ours over --rounds rounds. Without --peer-python only scipy is compared,
  * batched dlqr() vs a loop of unbatched calls,
  * lqr() vs a textbook numpy/scipy recursion (scipy.linalg.solve per step) and, for small
    problems, vs solving the dense KKT system of the QP,
  * lqr() at T=1000, n=20, m=5 (numpy, torch, batched),
  * LinearMPC (Clarabel and OSQP): first solve (compiles the cvxpy problem) vs re-solves, for
    regulation and for tracking a moving reference with time-varying dynamics.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from control.dare import dare_gain, dare_residual
from control.linear_mpc import LinearMPC
from control.linear_quadratic import dlqr, lqr

PEER_WORKER = Path(__file__).resolve().parent / "_python_control_worker.py"
DLQR_SIZES = (4, 20, 100)
DLQR_INNER = (20, 5, 1)  # calls per timing at each n (short calls are timed in groups)


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


def best_ms(fn: Callable[[], object], repeats: int, inner: int = 1) -> float:
    """Best over ``repeats`` of the mean time (ms) of ``inner`` back-to-back calls (same helper
    as in the python-control worker)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - start) / inner)
    return 1e3 * best


def run_peer(peer_python: str, data: Path, repeats: int) -> dict:
    """Time python-control's dlqr and scipy's DARE in the peer venv, in its own process."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [peer_python, str(PEER_WORKER), f"--data={data}", f"--repeats={repeats}",
         "--sizes=" + ",".join(map(str, DLQR_SIZES)),
         "--inner=" + ",".join(map(str, DLQR_INNER))],
        cwd=data.parent, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"python-control worker failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def bench_dlqr(rng: np.random.Generator, repeats: int, rounds: int, peer: str | None) -> None:
    """dlqr() vs python-control (+slycot) vs scipy, rounds interleaved; best time per column."""
    problems = {n: random_lti(rng, n, max(1, n // 4)) for n in DLQR_SIZES}
    ours: dict[int, list[float]] = {n: [] for n in DLQR_SIZES}
    sp: dict[int, list[float]] = {n: [] for n in DLQR_SIZES}
    pc: dict[int, list[float]] = {n: [] for n in DLQR_SIZES}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "dare.npz"
        np.savez(data, **{f"{k}{n}": a for n, p in problems.items() for k, a in zip("ABQRN", p)})  # noqa: B905
        info = None
        for _ in range(rounds):
            if peer:
                info = run_peer(peer, data, repeats)
                for n in DLQR_SIZES:
                    pc[n].append(info["times"][str(n)]["python_control_ms"])
            for n, inner in zip(DLQR_SIZES, DLQR_INNER, strict=True):
                p = problems[n]
                ours[n].append(best_ms(lambda p=p: dlqr(*p), repeats, inner))
                sp[n].append(best_ms(
                    lambda p=p: scipy.linalg.solve_discrete_are(*p[:4], s=p[4]), repeats, inner
                ))  # fmt: skip
        S_pc = {n: np.load(Path(tmp) / f"dare_S{n}.npy") for n in DLQR_SIZES} if peer else {}
    if info is not None:
        print(f"peer: python-control {info['control']}, slycot {info['slycot']}, numpy "
              f"{info['numpy']}, scipy {info['scipy']} (own venv and process)")  # fmt: skip
    print(f"best of {repeats} x {rounds} interleaved rounds; 'res' = relative DARE residual")
    print(f"{'n':>4} {'m':>3} {'ours ms':>8} {'pyctrl ms':>9} {'scipy ms':>9} {'ours/pyctrl':>11} "
          f"{'ours/scipy':>10} {'res ours':>9} {'res scipy':>9} {'res pyctrl':>10} "
          f"{'max|dS|/|S|':>11}")  # fmt: skip
    for n in DLQR_SIZES:
        A, B, Q, R, N = problems[n]
        S_ours = dlqr(A, B, Q, R, N)[1]
        S_sp = scipy.linalg.solve_discrete_are(A, B, Q, R, s=N)
        res = [_residual(A, B, Q, R, N, S) for S in (S_ours, S_sp)]
        t_o, t_s = min(ours[n]), min(sp[n])
        t_p = min(pc[n]) if peer else float("nan")
        res_p = _residual(A, B, Q, R, N, S_pc[n]) if peer else float("nan")
        dS = np.abs(S_ours - S_sp).max() / np.abs(S_sp).max()
        print(f"{n:>4} {B.shape[1]:>3} {t_o:>8.3f} {t_p:>9.3f} {t_s:>9.3f} {t_o / t_p:>11.2f} "
              f"{t_o / t_s:>10.2f} {res[0]:>9.1e} {res[1]:>9.1e} {res_p:>10.1e} "
              f"{dS:>11.1e}")  # fmt: skip


def _residual(A, B, Q, R, N, S) -> float:
    K, _ = dare_gain(A, B, R, N, S)
    return float(dare_residual(A, B, Q, N, S, K))


def bench_dlqr_batched(rng: np.random.Generator, repeats: int) -> None:
    print("\n== dlqr() batched over 64 problems vs a loop of 64 unbatched calls ==")
    print(f"{'n':>4} {'m':>3} {'loop ms':>9} {'batched ms':>10} {'speedup':>8} "
          f"{'max|dS|/|S|':>11}")  # fmt: skip
    for n in (4, 20):
        m = max(1, n // 4)
        probs = [random_lti(rng, n, m) for _ in range(64)]
        stacked = [np.stack(a) for a in zip(*probs, strict=True)]
        t_loop = best_ms(lambda ps=probs: [dlqr(*p) for p in ps], max(3, repeats // 2))
        t_batch = best_ms(lambda st=stacked: dlqr(*st), max(3, repeats // 2))
        S_b = dlqr(*stacked)[1]
        dS = max(np.abs(S_b[i] - (S := dlqr(*p)[1])).max() / np.abs(S).max()
                 for i, p in enumerate(probs))  # fmt: skip
        print(f"{n:>4} {m:>3} {t_loop:>9.2f} {t_batch:>10.2f} {t_loop / t_batch:>8.2f} "
              f"{dS:>11.1e}")  # fmt: skip


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
    parser.add_argument("--rounds", type=int, default=3, help="interleaved dlqr timing rounds")
    parser.add_argument("--peer-python", help="python of a venv with control + slycot")
    parser.add_argument("--only", choices=["dlqr"], help="run only the dlqr comparison")
    args = parser.parse_args()
    r = args.repeats
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, torch {torch.__version__}, "
          f"torch threads {torch.get_num_threads()}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; median of {r}")  # fmt: skip

    print("\n== dlqr() vs python-control (slycot) and scipy's DARE (with cross term N) ==")
    bench_dlqr(rng, r, args.rounds, args.peer_python)
    bench_dlqr_batched(rng, r)
    if args.only == "dlqr":
        return

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

    print("\n== LinearMPC tracking a moving reference with time-varying A_t, B_t and affine c_t ==")
    print("(re-solve: new x0 and a shifted reference each call, no recompilation)")
    print(f"{'solver':>9} {'n':>4} {'m':>3} {'H':>4} {'first ms':>9} {'re-solve ms':>12} "
          f"{'ratio':>6} {'max|du| vs lqr':>15}")  # fmt: skip
    for n, m, H in ((4, 2, 20), (20, 5, 50)):
        A, B, Q, R, _ = random_lti(rng, n, m)
        A_t = A + 0.02 * rng.normal(size=(H, n, n))
        B_t = B + 0.02 * rng.normal(size=(H, n, m))
        c_t = 0.01 * rng.normal(size=(H, n))
        x_ref = np.sin(0.1 * np.arange(H + 1 + 10)[:, None] + np.arange(n))
        x0 = rng.normal(size=n)
        du = _tracking_vs_lqr(A_t, B_t, c_t, Q, R, x0, x_ref[: H + 1])
        for solver in ("CLARABEL", "OSQP"):
            firsts, resolves = [], []
            for _ in range(2):
                mpc = LinearMPC(A_t, B_t, Q, R, H, c=c_t, x_ref=x_ref[: H + 1], u_min=-0.2,
                                u_max=0.2, solver=solver)  # fmt: skip
                firsts.append(mpc.solve(x0).solve_time)
                for i in range(max(3, r // 2)):
                    shift = x_ref[i + 1 : i + 2 + H]
                    resolves.append(mpc.solve(x0 + 0.01 * (i + 1), x_ref=shift).solve_time)
            t1, t2 = 1e3 * statistics.median(firsts), 1e3 * statistics.median(resolves)
            print(f"{solver:>9} {n:>4} {m:>3} {H:>4} {t1:>9.2f} {t2:>12.2f} {t1 / t2:>6.1f} "
                  f"{du[solver]:>15.1e}")  # fmt: skip


def _tracking_vs_lqr(A_t, B_t, c_t, Q, R, x0, x_ref) -> dict[str, float]:
    """max |u_MPC - u_lqr| with inactive bounds, for each solver (lqr built by hand)."""
    H, n, m = B_t.shape
    C = np.zeros((H, n + m, n + m))
    C[:, :n, :n], C[:, n:, n:] = Q, R
    c = np.concatenate([-x_ref[:H] @ Q, np.zeros((H, m))], axis=-1)
    ref = lqr(np.concatenate([A_t, B_t], -1), c_t, C, c, x0, C_final=Q, c_final=-Q @ x_ref[H])
    out = {}
    for solver in ("CLARABEL", "OSQP"):
        mpc = LinearMPC(A_t, B_t, Q, R, H, c=c_t, x_ref=x_ref, solver=solver)
        out[solver] = float(np.abs(mpc.solve(x0).u - ref.u).max())
    return out


if __name__ == "__main__":
    main()
