"""mbrl-lib side of ``bench_models_vs_mbrllib.py`` (run it through that script, not directly).

mbrl-lib's top-level package is also called ``mbrl``, so this file runs in its own virtual
environment (``.venv-mbrllib``, ``pip install torch==2.13.0 mbrl``) with its working directory
outside the repository. It loads the transitions written by the orchestrator, trains a
``GaussianMLP`` ensemble wrapped in ``OneDTransitionRewardModel`` with mbrl-lib's
``ModelTrainer`` and bootstrap iterators, times queries, and prints one JSON line
(``RESULT {...}``) with its figures. The timing helpers are duplicated from the orchestrator
on purpose: this process cannot import this project.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from _timing import best_time, matmul_flops


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help=".npz written by the orchestrator")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--holdout", type=float, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    # mbrl-lib, from this venv's site-packages (binds the name ``mbrl``)
    import mbrl.util.common
    import mbrl.util.replay_buffer

    import mbrl.models

    if not mbrl.__version__.startswith("0.2") or "site-packages" not in mbrl.__file__:
        raise RuntimeError(f"expected mbrl-lib 0.2.x from site-packages, got {mbrl.__file__}")

    data = np.load(args.data)
    obs, act, nxt, rew = data["obs"], data["act"], data["next_obs"], data["reward"]
    q_obs, q_act, q_next = data["q_obs"], data["q_act"], data["q_next"]
    n, obs_dim = obs.shape
    act_dim = act.shape[1]
    e, hidden, layers = 7, 200, 4

    peak_start = matmul_flops(repeats=3, inner=1) / 1e9
    gauss = mbrl.models.GaussianMLP(
        obs_dim + act_dim,
        obs_dim + 1,  # OneDTransitionRewardModel's default learned_rewards=True: + reward
        device="cpu",
        num_layers=layers,
        ensemble_size=e,
        hid_size=hidden,
        propagation_method="fixed_model",  # TS-infinity
        learn_logvar_bounds=True,  # PETS: learned soft bounds (as in this project)
        activation_fn_cfg={"_target_": "torch.nn.SiLU"},
    )
    wrapper = mbrl.models.OneDTransitionRewardModel(gauss, target_is_delta=True, normalize=True)
    trainer = mbrl.models.ModelTrainer(wrapper, optim_lr=1e-3, weight_decay=5e-5)
    rng = np.random.default_rng(args.seed)
    buffer = mbrl.util.replay_buffer.ReplayBuffer(n, (obs_dim,), (act_dim,), rng=rng)
    zeros = np.zeros(n, dtype=bool)
    buffer.add_batch(obs, act, nxt, rew, zeros, zeros)

    # Timed like mbrl-lib's own train_model_and_save_model_and_data: normaliser, bootstrap
    # iterators (sampling with replacement per member), then train with a validation set.
    t0 = time.perf_counter()
    wrapper.update_normalizer(buffer.get_all())
    train_it, val_it = mbrl.util.common.get_basic_buffer_iterators(
        buffer, 256, args.holdout, ensemble_size=e, shuffle_each_epoch=True
    )
    trainer.train(train_it, val_it, num_epochs=args.epochs, silent=True)
    train_s = time.perf_counter() - t0
    n_train = train_it.num_stored

    gen = torch.Generator().manual_seed(args.seed)
    b = q_obs.shape[0]
    t_obs, t_act = torch.from_numpy(q_obs), torch.from_numpy(q_act)
    queries = {}
    with torch.inference_mode():
        x = wrapper._get_model_input(t_obs, t_act)  # normalised (B, in)
        xg = x.reshape(e, b // e, -1)  # member m gets rows m*B/E..; (E, B/E, in)
        state = wrapper.reset(t_obs, rng=gen)
        queries["forward_per_member"] = best_time(
            lambda: gauss(xg, use_propagation=False), args.repeats, 2
        )
        queries["forward_shared"] = best_time(
            lambda: gauss(x, use_propagation=False), max(2, args.repeats // 2), 2
        )
        queries["sample_tsinf"] = best_time(
            lambda: wrapper.sample(t_act, state, deterministic=False, rng=gen), args.repeats, 2
        )
        mean, _ = gauss(x, use_propagation=False)  # (E, B, obs_dim + 1): delta, reward
        pred = t_obs + mean[..., :obs_dim].mean(0)
    delta = torch.from_numpy(q_next - q_obs)
    err = ((pred - torch.from_numpy(q_next)).square().mean(0) / delta.var(0)).mean().item()
    result = {
        "torch": torch.__version__,
        "lib": f"mbrl-lib {mbrl.__version__}",
        "threads": torch.get_num_threads(),
        "peak_start": peak_start,
        "peak_end": matmul_flops(repeats=3, inner=1) / 1e9,
        "train_s": train_s,
        "n_train": n_train,
        "epochs": args.epochs,
        "queries": queries,
        "query_rows": b,
        "one_step_err": err,
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
