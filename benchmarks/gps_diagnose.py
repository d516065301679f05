"""Diagnose a ``mbrl gps`` run from its latest checkpoint (the cart-pole study in docs/gps.md).

Rebuilds the run's trajectories (its controls rolled through the true dynamics from its
conditions) and prints:

* the violation ``‖π(x_t) − u_t‖`` (RMS), ``λ``'s RMS and the policy-step offset ``λ / 2ρ``;
* the policy alone from its own *training* starts and from the held-out starts;
* the task gains' Frobenius norms and, for ``noise_std``, the RMS of ``Kε`` and the fraction of
  noisy targets outside the control box;
* with ``--refit``: one more policy step on the same pairs, four ways (as the run, without
  noisy copies, without ``λ``, without both), each from the checkpoint's policy;
* with ``--tight``: the clean pairs alone fitted to convergence (Adam, 100 epochs × 3 rounds at
  each of 1e-3, 3e-4, 1e-4), and after each round the policy from its training starts and the
  median step at which its state is 0.5 away from its trajectory.

    python benchmarks/gps_diagnose.py RUN_DIR [--refit] [--tight]
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch

from mbrl.algorithms.gps import _build
from mbrl.algorithms.gps_config import GPSConfig
from mbrl.algorithms.gps_policy import FitSettings, PolicyData, fit_policy
from mbrl.algorithms.gps_problem import policy_rollouts
from mbrl.algorithms.gps_trajectory import policy_violation, task_gains
from mbrl.util.checkpoint import Checkpointer, load_state
from mbrl.util.config import load_config


def _rms(v: torch.Tensor) -> float:
    return float(v.square().sum(-1).mean().sqrt())


def _returns(problem, policy, x0) -> str:
    r = -policy_rollouts(problem, policy, x0).cost
    return f"mean {float(r.mean()):.1f} median {float(r.median()):.1f} min {float(r.min()):.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--refit", action="store_true")
    ap.add_argument("--tight", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = Path(args.run_dir)
    cfg = load_config(GPSConfig, run / "config.yaml")
    ctx, ev = _build(cfg)
    path, meta = Checkpointer(run / "checkpoints", kind="gps").load_latest()
    state = load_state(path / "state.pt")
    ctx.policy.load_state_dict(state["policy"])
    u, lam, rho = state["loop"]["u"], state["loop"]["lam"], state["loop"]["rho"]
    p, x0 = ctx.problem, ctx.conditions(0)
    xs = [x0]
    for t in range(u.shape[1]):
        xs.append(p.dynamics(xs[-1], u[:, t]))
    x = torch.stack(xs, 1)
    B, T, m = u.shape
    n = x.shape[-1]
    print(f"checkpoint at iteration {meta['step']}, rho {rho}")
    print(f"trajectories' task cost (mean) {float(p.trajectory_cost(x, u).mean()):.2f}")
    print(f"violation (RMS) {_rms(policy_violation(ctx.policy, x, u)):.4f}")
    print(f"RMS lambda {_rms(lam):.4f}; lambda / (2 rho) {_rms(lam) / (2 * rho):.4f}")
    print(f"policy alone from its training starts: {_returns(p, ctx.policy, x0)}")
    print(f"policy alone from the held-out starts: {_returns(p, ctx.policy, ev.x0)}")
    K = task_gains(p, x, u)
    q = torch.tensor([0.5, 0.9, 0.99, 1.0], dtype=K.dtype)
    norms = torch.quantile(torch.linalg.matrix_norm(K).flatten(), q)
    print("task gains' norm, quantiles 50/90/99/100%:", [round(float(v), 2) for v in norms])
    g = torch.Generator().manual_seed(0)
    eps = cfg.noise_std * torch.randn(B * T, n, generator=g, dtype=x.dtype)
    du = (K.reshape(B * T, m, n) @ eps.unsqueeze(-1)).squeeze(-1)
    tgt = u.reshape(B * T, m) + du
    out = float(((tgt > p.u_max) | (tgt < p.u_min)).to(x.dtype).mean())
    print(f"sigma {cfg.noise_std}: RMS K eps {_rms(du):.3f}, targets outside the box {out:.3f}")

    def pairs(lam_used: torch.Tensor) -> PolicyData:
        return PolicyData(
            x[:, :T].reshape(B * T, n), u.reshape(B * T, m), lam_used.reshape(B * T, m),
            torch.full((B * T,), rho, dtype=x.dtype), K.reshape(B * T, m, n),
        )  # fmt: skip

    if args.refit:
        zero = torch.zeros_like(lam)
        ways = [("as the run", lam, cfg.noise_copies), ("no noisy copies", lam, 0)]
        ways += [("lambda = 0", zero, cfg.noise_copies), ("lambda = 0, no copies", zero, 0)]
        for name, lam_used, copies in ways:
            pol = copy.deepcopy(ctx.policy)
            opt = torch.optim.Adam(pol.parameters(), lr=cfg.lr)
            fit = FitSettings(cfg.epochs, cfg.batch_size, cfg.noise_std, copies, cfg.noise_du_frac)
            fit_policy(pol, opt, pairs(lam_used), fit, torch.Generator().manual_seed(1),
                       p.u_min, p.u_max)  # fmt: skip
            print(
                f"refit [{name}]: violation {_rms(policy_violation(pol, x, u)):.3f}; training "
                f"starts {_returns(p, pol, x0)}; held-out {_returns(p, pol, ev.x0)}"
            )
    if args.tight:
        pol = copy.deepcopy(ctx.policy)
        data = PolicyData.imitation(x[:, :T].reshape(B * T, n), u.reshape(B * T, m))
        for lr in (1e-3, 3e-4, 1e-4):
            opt = torch.optim.Adam(pol.parameters(), lr=lr)
            for _ in range(3):
                fit_policy(pol, opt, data, FitSettings(100, 256), torch.Generator().manual_seed(1),
                           p.u_min, p.u_max)  # fmt: skip
                off = (policy_rollouts(p, pol, x0).x - x).norm(dim=-1) > 0.5  # (B, T+1)
                first = [int(o.nonzero()[0]) if bool(o.any()) else T for o in off]
                print(
                    f"tight fit, lr {lr}: violation {_rms(policy_violation(pol, x, u)):.4f}; "
                    f"training starts {_returns(p, pol, x0)}; state 0.5 off its trajectory "
                    f"after (median) {sorted(first)[B // 2]} of {T} steps"
                )


if __name__ == "__main__":
    main()
