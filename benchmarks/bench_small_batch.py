"""The ensemble's float32 CPU inference paths on few rows: ``rows`` (reference) against ``blocks``.

``GaussianEnsemble``'s ``"auto"`` path takes ``rows`` for at most
``mbrl.models.ensemble.SMALL_BATCH_ROWS`` rows per member and ``blocks`` beyond. This measures
where that crossover lies, in one process with the two paths interleaved (a shared machine's
load drift hits both alike), for the ensembles of the PETS presets:

- ``ip``: InvertedPendulum-v5 (5 members, 3 × 64);
- ``cartpole``: cart-pole swing-up (5 members, 3 × 200);
- ``halfcheetah``: HalfCheetah-v5 (7 members, 4 × 200).

and then one whole iLQR planning step through the IP ensemble (the IP preset's planner: its line
search calls the model on a handful of rows per step), "auto" against "blocks" forced. Each
figure is the best of 3 timings per round, and the best over the rounds.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_small_batch.py [--rounds 5]

Measured figures: docs/planning.md ("Few rows: the reference path").
"""

from __future__ import annotations

import argparse

import torch
from _timing import best_time

from envs import get_task
from mbrl.models import DynamicsModel
from mbrl.planning import make_planner, planner_config

MODELS = {
    "ip": ("inverted-pendulum", 5, 3, 64),
    "cartpole": ("cartpole-swingup", 5, 3, 200),
    "halfcheetah": ("halfcheetah", 7, 4, 200),
}
ROWS = (1, 8, 32, 128, 512, 2048)
PATHS = ("rows", "blocks")


def model_for(name: str) -> DynamicsModel:
    """The untrained ensemble ``name`` of :data:`MODELS` (weights from seed 0), in eval mode."""
    task, members, layers, hidden = MODELS[name]
    return DynamicsModel.for_task(
        get_task(task),
        num_members=members,
        hidden=hidden,
        num_layers=layers,
        generator=torch.Generator().manual_seed(0),
    ).eval()


@torch.inference_mode()
def forward_table(rounds: int) -> None:
    print("model        rows/member   rows us   blocks us   rows/blocks (min over rounds)")
    for name in MODELS:
        ens = model_for(name).ensemble
        for n in ROWS:
            x = torch.randn(n, ens.in_dim, generator=torch.Generator().manual_seed(1))
            best = {p: float("inf") for p in PATHS}
            for _ in range(rounds):
                for p in PATHS:
                    ens.inference_path = p
                    calls = max(1, 2048 // n)  # about equal time per timing at every row count
                    best[p] = min(best[p], best_time(lambda e=ens, v=x: e(v), 3, calls))
            r, b = best["rows"] * 1e6, best["blocks"] * 1e6
            print(f"{name:12s} {n:11d} {r:9.0f} {b:11.0f}   {r / b:.2f}")


def ilqr_step(rounds: int) -> None:
    model = model_for("ip")
    task = get_task("inverted-pendulum")
    cfg = planner_config("ilqr", horizon=25, max_iter=10, obs_cost_weights=[0.5, 5.0, 0.5, 0.0])
    planner = make_planner(cfg, model, task)
    obs = torch.tensor([0.1, 0.02, 0.0, 0.0])
    plan = planner.plan(obs).actions
    best = {p: float("inf") for p in ("auto", "blocks")}
    for _ in range(rounds):
        for p in best:
            model.ensemble.inference_path = p
            best[p] = min(best[p], best_time(lambda: planner.plan(obs, plan), 3))
    a, b = best["auto"] * 1e3, best["blocks"] * 1e3
    print(f"iLQR plan, IP preset planner: auto {a:.1f} ms, blocks {b:.1f} ms, ratio {a / b:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    forward_table(args.rounds)
    ilqr_step(args.rounds)


if __name__ == "__main__":
    main()
