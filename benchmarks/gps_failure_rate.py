"""How often each kept iterate of a ``mbrl gps`` run (analytic task) fails over its task's start
distribution: the policy alone from ``--starts`` fresh start states (``env.reset(seed=
FRESH_SEED_BASE + i)``: never a condition, a held-out or a validation start), beside its mean
on the run's 20 held-out starts (the cart-pole study in docs/gps.md).

For every checkpoint the run kept (``keep_checkpoints``), prints the mean and median return
over the fresh starts and how many fall below ``--fail-below``; with ``--trace``, the state
and action every 10 steps of the last checkpoint's worst held-out start.

    python benchmarks/gps_failure_rate.py RUN_DIR [--starts 1000] [--fail-below -1000] [--trace]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from envs import get_task
from mbrl.algorithms.gps import _build, _close
from mbrl.algorithms.gps_config import GPSConfig
from mbrl.algorithms.gps_problem import policy_rollouts, start_states
from mbrl.util.checkpoint import load_state
from mbrl.util.config import load_config

FRESH_SEED_BASE = 50_000_000
"""Fresh starts are ``env.reset(seed=FRESH_SEED_BASE + i)`` (conditions, held-out and
validation starts use seeds below 30,000,000)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--starts", type=int, default=1000)
    ap.add_argument("--fail-below", type=float, default=-1000.0)
    ap.add_argument("--trace", action="store_true")
    args = ap.parse_args()
    cfg = load_config(GPSConfig, args.run_dir / "config.yaml")
    task = get_task(cfg.task)
    if not task.is_analytic:
        raise SystemExit(f"run_dir: {cfg.task!r} is not an analytic task")
    ctx, ev = _build(cfg)
    _close(ctx)
    fresh = start_states(task, [FRESH_SEED_BASE + i for i in range(args.starts)])
    checkpoints = sorted((args.run_dir / "checkpoints").glob("ckpt-*"))
    if not checkpoints:
        raise SystemExit(f"run_dir: {str(args.run_dir)!r} has no checkpoint")
    print(f"iterate  fresh mean  fresh median  below {args.fail_below:g}  held-out mean")
    for ck in checkpoints:
        ctx.policy.load_state_dict(load_state(ck / "state.pt")["policy"])
        policy = ctx.policy.eval()
        with torch.no_grad():
            ret = -policy_rollouts(ev.problem, policy, fresh).cost
            held = policy_rollouts(ev.problem, policy, ev.x0)
        below = int((ret < args.fail_below).sum())
        print(
            f"{int(ck.name.split('-')[1]):7d}  {float(ret.mean()):10.1f}  "
            f"{float(ret.median()):12.1f}  {below:5d} of {args.starts}  "
            f"{float(-held.cost.mean()):13.1f}"
        )
    if args.trace:
        i = int(held.cost.argmax())
        ret_i = float(-held.cost[i])
        print(f"worst held-out start {i}: return {ret_i:.1f}; t, x, u every 10 steps")
        for t in range(0, held.x.shape[1], 10):
            u = held.u[i, min(t, held.u.shape[1] - 1)].tolist()
            print(t, [round(v, 2) for v in held.x[i, t].tolist()], [round(v, 2) for v in u])


if __name__ == "__main__":
    main()
