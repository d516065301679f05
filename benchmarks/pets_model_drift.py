"""Model error of every kept PETS checkpoint on the states of every trial of the run.

For a PETS run directory whose checkpoints were all kept (``keep_checkpoints`` >= trials + 1),
this loads the buffer of the newest checkpoint (every transition of the run), splits it into the
trials, and evaluates the model of each checkpoint (``ckpt-k``: trained after trial ``k``, the
model that planned trial ``k + 1``) on each trial's transitions:

- one-step RMSE per observation dimension of the members' mean prediction (original units);
- ``k``-step open-loop RMSE: each member's mean rolled ``k`` steps with the recorded actions
  from every state of the trial, the member predictions averaged, against the true state;
- the normalisers' statistics of the checkpoint (input and target std).

Usage::

    python benchmarks/pets_model_drift.py RUN_DIR [--steps 1 10 20] [--trials 3 4 5 6]

Measured figures: docs/pets.md ("Regression after reaching 1000").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mbrl.data import ReplayBuffer
from mbrl.models import DynamicsModel


def trial_episodes(run_dir: Path, buffer: ReplayBuffer) -> list:
    """The MPC trials' episodes (the last ``num_trials`` episodes of the buffer, in order)."""
    episodes = list(buffer.trajectories())
    rows = (run_dir / "trial.csv").read_text().splitlines()
    n_trials = len(rows) - 1
    return episodes[-n_trials:]


@torch.no_grad()
def open_loop_rmse(model: DynamicsModel, obs: np.ndarray, act: np.ndarray, nxt: np.ndarray, k: int):
    """``(obs_dim,)`` RMSE of the ``k``-step open-loop prediction from every start of one
    episode (``obs``/``act``/``nxt`` ``(T, .)``); ``None`` if the episode is shorter than k."""
    t = obs.shape[0]
    if t < k:
        return None
    starts = np.arange(t - k + 1)
    s = torch.as_tensor(obs[starts], dtype=torch.float32)
    s = s.unsqueeze(0).expand(model.num_members, -1, -1).contiguous()
    for i in range(k):
        a = torch.as_tensor(act[starts + i], dtype=torch.float32)
        a = a.unsqueeze(0).expand(model.num_members, -1, -1).contiguous()
        s = model.predict(s, a).next_obs_mean
    pred = s.mean(0).numpy()
    true = nxt[starts + k - 1]
    return np.sqrt(((pred - true) ** 2).mean(0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 10, 20])
    ap.add_argument("--trials", type=int, nargs="*", default=None, help="1-based trials")
    ap.add_argument("--json", type=Path, default=None, help="also write the table as JSON")
    ap.add_argument("--tail", type=int, default=None, help="only the last N steps of a trial")
    args = ap.parse_args()
    ckpt_root = args.run_dir / "checkpoints"
    ckpts = sorted(p for p in ckpt_root.glob("ckpt-*") if p.is_dir())
    buffer = ReplayBuffer.load(ckpts[-1] / "buffer.npz")
    trials = trial_episodes(args.run_dir, buffer)
    which = args.trials or list(range(1, len(trials) + 1))
    print("trial  len   last next_obs                      max |obs| over the trial")
    for j, ep in enumerate(trials, 1):
        last = " ".join(f"{v:+.3f}" for v in ep.next_obs[-1])
        top = " ".join(f"{v:.3f}" for v in np.abs(ep.next_obs).max(0))
        print(f"{j:5d}  {len(ep.obs):4d}  {last}   {top}")
    out = []
    print("ckpt  trial  len   k   rmse per obs dim")
    for ck in ckpts:
        model = DynamicsModel.load(ck / "model.pt")
        k_id = int(ck.name.split("-")[1])
        in_std = model.input_normalizer.std.numpy().round(4).tolist()
        out_std = model.output_normalizer.std.numpy().round(5).tolist()
        print(f"ckpt-{k_id}: input std {in_std}  target std {out_std}")
        for j in which:
            ep = trials[j - 1]
            cut = slice(-args.tail, None) if args.tail else slice(None)
            for k in args.steps:
                r = open_loop_rmse(model, ep.obs[cut], ep.act[cut], ep.next_obs[cut], k)
                if r is None:
                    continue
                row = dict(ckpt=k_id, trial=j, length=len(ep.obs), k=k, rmse=r.tolist())
                out.append(row)
                errs = " ".join(f"{v:.4g}" for v in r)
                print(f"{k_id:4d}  {j:5d}  {len(ep.obs):4d}  {k:2d}  {errs}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
