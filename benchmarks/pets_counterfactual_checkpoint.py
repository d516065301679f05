"""Write a PETS checkpoint whose model is retrained without rail-contact transitions.

Copies nothing itself: given the original run ``R`` and a copy ``C`` of it without its
checkpoint ``ckpt-J``, this retrains round ``J`` from ``ckpt-(J-1)`` (warm start, trainer seed
0) on ``ckpt-J``'s buffer minus the transitions with ``|obs[0]|`` or ``|next_obs[0]| >= 0.999``,
and writes ``C/checkpoints/ckpt-J`` with that model and otherwise ``R``'s state, so that
``mbrl resume C`` replays trial ``J+1`` with the clean model (docs/pets.md, point 4).

    cp -r R C && rm -r C/checkpoints/ckpt-00000005
    python benchmarks/pets_counterfactual_checkpoint.py R C --after-trial 5
    mbrl resume C
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch

from envs import get_task
from mbrl.algorithms.pets_config import PETSConfig
from mbrl.data import ReplayBuffer
from mbrl.models import build_model, build_trainer, load_training_state, training_state
from mbrl.util.checkpoint import Checkpointer, save_state
from mbrl.util.config import load_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("copy_dir", type=Path)
    ap.add_argument("--after-trial", type=int, required=True)
    args = ap.parse_args()
    r, c, j = args.run_dir, args.copy_dir, args.after_trial
    ck = r / "checkpoints"
    cfg = load_config(PETSConfig, c / "config.yaml")
    orig = torch.load(ck / f"ckpt-{j:08d}" / "state.pt", weights_only=True)
    before = torch.load(ck / f"ckpt-{j - 1:08d}" / "state.pt", weights_only=True)
    gen = torch.Generator().manual_seed(0)
    model = build_model(cfg.model, get_task(cfg.task), generator=gen)
    trainer = build_trainer(cfg.model, model, generator=gen, progress_bar=False)
    load_training_state(model, trainer, before)
    trainer.generator.manual_seed(0)
    src = ck / f"ckpt-{j:08d}" / "buffer.npz"
    d = ReplayBuffer.load(src).get_all()
    keep = (np.abs(d.obs[:, 0]) < 0.999) & (np.abs(d.next_obs[:, 0]) < 0.999)
    print(f"left out {int((~keep).sum())} rail-contact transitions")
    res = trainer.train(d.obs[keep], d.act[keep], d.next_obs[keep])
    print(f"{res.epochs} epochs, {res.last_metrics()}")
    state = {**orig, **training_state(model, trainer)}
    writers = {
        "state.pt": save_state(state),
        "buffer.npz": lambda p: shutil.copyfile(src, p),
        "model.pt": model.save,
    }
    print(Checkpointer(c / "checkpoints", kind="pets", keep=20).save(j, writers))


if __name__ == "__main__":
    main()
