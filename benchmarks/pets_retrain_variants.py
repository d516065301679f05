"""Retrain a PETS run's model after trial ``j`` in several ways and measure each on trial ``j+1``.

The run's own round-``j`` training started from the weights of checkpoint ``ckpt-(j-1)`` and
saw the first ``data_size`` transitions of the buffer (``model.csv``). This script repeats that
round offline, with trainer seeds ``--seeds``, for each variant:

- ``warm``: as the run does: the previous round's weights and optimizer state;
- ``fresh``: a newly initialised ensemble;
- ``warm-preserve``: as ``warm``, with the normalisers refitted function-preservingly
  (``ModelTrainer(preserve_on_refit=True)``);
- ``warm-long``, ``warm-preserve-long``: as those, without the ``max_epochs`` cap (early
  stopping only);

and reports the open-loop RMSE (original units) of each on the transitions of trial ``j+1``
(by default the states the run's model failed on), next to the run's own ``ckpt-j`` model.

    python benchmarks/pets_retrain_variants.py RUN_DIR --after-trial 4 --seeds 0 1 2

Measured figures: docs/pets.md ("Regression after reaching 1000").
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
from pathlib import Path

import numpy as np
import torch
from pets_model_drift import open_loop_rmse, trial_episodes

from envs import get_task
from mbrl.algorithms.pets_config import PETSConfig
from mbrl.data import ReplayBuffer
from mbrl.models import DynamicsModel, build_model, build_trainer, load_training_state
from mbrl.util.config import load_config

VARIANTS = ("warm", "warm-preserve", "fresh", "warm-long", "warm-preserve-long")


def ckpt_dir(run_dir: Path, k: int) -> Path:
    return run_dir / "checkpoints" / f"ckpt-{k:08d}"


def round_sizes(run_dir: Path) -> list[int]:
    """Transitions seen by each training round (round 0 first), from ``model.csv``."""
    with (run_dir / "model.csv").open() as f:
        return [int(float(r["data_size"])) for r in csv.DictReader(f)]


def retrain(cfg: PETSConfig, run_dir: Path, j: int, variant: str, seed: int, data) -> DynamicsModel:
    """The round-``j`` model retrained by ``variant`` with trainer seed ``seed``."""
    task = get_task(cfg.task)
    mcfg = cfg.model
    if variant.endswith("-long"):
        mcfg = dataclasses.replace(mcfg, max_epochs=None)
    gen = torch.Generator().manual_seed(seed)
    model = build_model(mcfg, task, generator=gen)
    trainer = build_trainer(mcfg, model, generator=gen, progress_bar=False)
    trainer.preserve_on_refit = "preserve" in variant
    if variant != "fresh":
        state = torch.load(ckpt_dir(run_dir, j - 1) / "state.pt", weights_only=True)
        load_training_state(model, trainer, state)
        trainer.generator.manual_seed(seed)
    res = trainer.train(data.obs, data.act, data.next_obs)
    m = res.last_metrics()
    print(
        f"{variant} seed {seed}: {res.epochs} epochs, holdout MSE {m['holdout_mse']:.3g} "
        f"(elites {m['elite_holdout_mse']:.3g})"
    )
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--after-trial", type=int, required=True, help="j: retrain after trial j")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 10, 20, 40])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument(
        "--eval-trial", type=int, default=None, help="1-based trial to evaluate on (default j+1)"
    )
    ap.add_argument(
        "--drop-beyond",
        nargs=2,
        type=float,
        default=None,
        metavar=("DIM", "LIMIT"),
        help="leave out transitions with |obs[DIM]| or |next_obs[DIM]| >= LIMIT (rail contact)",
    )
    args = ap.parse_args()
    run_dir, j = args.run_dir, args.after_trial
    cfg = load_config(PETSConfig, run_dir / "config.yaml")
    ckpts = sorted(p for p in (run_dir / "checkpoints").glob("ckpt-*") if p.is_dir())
    buffer = ReplayBuffer.load(ckpts[-1] / "buffer.npz")
    n = round_sizes(run_dir)[j]
    data = buffer.get_all()
    data = type(data)(*(None if a is None else a[:n] for a in data))
    if args.drop_beyond is not None:
        dim, limit = int(args.drop_beyond[0]), args.drop_beyond[1]
        keep = (np.abs(data.obs[:, dim]) < limit) & (np.abs(data.next_obs[:, dim]) < limit)
        print(f"left out {int((~keep).sum())} transitions with |obs[{dim}]| >= {limit}")
        data = type(data)(*(a[keep] for a in data))
    eval_trial = args.eval_trial or j + 1
    target = trial_episodes(run_dir, buffer)[eval_trial - 1]

    def report(label: str, model: DynamicsModel) -> None:
        for k in args.steps:
            r = open_loop_rmse(model, target.obs, target.act, target.next_obs, k)
            if r is not None:
                print(f"{label:22s} k={k:2d}  " + " ".join(f"{v:.4g}" for v in r))

    print(f"round {j}: {n} transitions; evaluated on trial {eval_trial} ({len(target.obs)} steps)")
    report(f"run ckpt-{j}", DynamicsModel.load(ckpt_dir(run_dir, j) / "model.pt"))
    report(f"run ckpt-{j - 1} (before)", DynamicsModel.load(ckpt_dir(run_dir, j - 1) / "model.pt"))
    for variant in args.variants:
        for seed in args.seeds:
            report(f"{variant} seed {seed}", retrain(cfg, run_dir, j, variant, seed, data))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
