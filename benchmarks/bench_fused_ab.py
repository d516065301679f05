"""Interleaved A/B of the ensemble's bfloat16 inference paths inside one CEM planning step.

One process, one untrained :class:`mbrl.models.DynamicsModel` at PETS's cart-pole or HalfCheetah
settings (as ``bench_planning.py``), planning with ``precision="bfloat16"``. Each round times,
for each ``GaussianEnsemble.inference_path`` in turn (``fused``, then ``blocks``): one planning
step, then the step's bare forwards (``horizon * iterations`` calls of the ensemble on
``(E, ceil(P K / E), in)`` random inputs under bfloat16 autocast). Alternating the paths within
one process lets a shared machine's load drift hit both alike; every round's seconds are printed.

Run::

    .venv/bin/python benchmarks/bench_fused_ab.py --config cartpole --rounds 3
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_planning import CONFIGS, cem_config, planning_model

from envs import get_task
from mbrl.planning import make_planner

PATHS = ("fused", "blocks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="cartpole", choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    spec = CONFIGS[args.config]
    task = get_task(spec["task"])
    model = planning_model(spec)
    iterations, particles = 5, 20
    planner = make_planner(cem_config(spec, "bf16", iterations, particles), model, task)
    obs = torch.zeros(task.obs_dim)
    gen = torch.Generator().manual_seed(0)
    e = model.num_members
    rows = -(-spec["population"] * particles // e)
    x = torch.randn(e, rows, model.ensemble.weights[0].shape[1], generator=gen)
    calls = spec["horizon"] * iterations
    seconds: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for path in PATHS:
            model.ensemble.inference_path = path
            t0 = time.perf_counter()
            planner.plan(obs, generator=gen)
            seconds.setdefault(("plan", path), []).append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                for _ in range(calls):
                    model.ensemble(x)
            seconds.setdefault(("forwards", path), []).append(time.perf_counter() - t0)
    print(f"{args.config}, bfloat16, {args.threads} thread(s); seconds per round")
    for (what, path), values in seconds.items():
        print(f"{what:<9} {path:<7} " + " ".join(f"{v:.3f}" for v in values))


if __name__ == "__main__":
    main()
