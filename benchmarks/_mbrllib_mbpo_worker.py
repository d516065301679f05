"""mbrl-lib 0.2.0 side of ``bench_mbpo.py`` (run it through that script, not directly).

Runs in its own virtual environment (``/tmp/venv-mbrllib``, see ``bench_mbpo.py``) with its
working directory outside the repository: mbrl-lib's package is also named ``mbrl``, so this
process cannot import this project. It builds the parts of mbrl-lib's MBPO
(``mbrl.algorithms.mbpo.train``) the way that function does, at the sizes the orchestrator
passes: a ``OneDTransitionRewardModel`` around a 7 x 4 x 200 SiLU ``GaussianMLP`` (learned
rewards, normalisation in double precision, deltas as targets, ``propagation_method=
"random_model"``: each row through one random member), its ``ModelTrainer``, a ``ModelEnv``
with Hopper's termination function, and a pytorch_sac_pranz24 SAC (2 x 256, learned
temperature, target update every step) wrapped in ``SACAgent``. Then it answers the
orchestrator's commands on stdin, one per line, each with ``RESULT {json}``:

* ``train``: one model round as ``train_model_and_save_model_and_data`` does it (buffer
  iterators with the holdout, normaliser update, ``ModelTrainer.train`` with the epoch cap and
  patience), without saving;
* ``rollout K``: ``rollout_model_and_populate_sac_buffer`` for ``K`` steps from
  ``--rollout-batch`` real states into a fresh SAC buffer sized as MBPO sizes it;
* ``updates N``: ``N`` calls of ``update_parameters``, each on the real buffer with
  probability ``--real-ratio`` and on the model buffer otherwise (as mbrl-lib's MBPO mixes);
* ``quit``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import gymnasium as gym
import numpy as np
import omegaconf
import torch

FIELDS = ("obs", "act", "next_obs", "reward", "terminated", "truncated")


class Parts:
    def __init__(self, args: argparse.Namespace) -> None:
        import mbrl.env.termination_fns
        import mbrl.util.replay_buffer
        from mbrl.planning.sac_wrapper import SACAgent
        from mbrl.third_party.pytorch_sac_pranz24.sac import SAC

        import mbrl.models

        self.args = args
        o, a = args.obs_dim, args.act_dim
        self.rng = np.random.default_rng(args.seed)
        gen = torch.Generator().manual_seed(args.seed)
        member = mbrl.models.GaussianMLP(
            in_size=o + a,
            out_size=o + 1,
            device="cpu",
            num_layers=4,
            ensemble_size=7,
            hid_size=200,
            deterministic=False,
            propagation_method="random_model",
            learn_logvar_bounds=False,
            activation_fn_cfg=omegaconf.OmegaConf.create({"_target_": "torch.nn.SiLU"}),
        )
        self.model = mbrl.models.OneDTransitionRewardModel(
            member,
            target_is_delta=True,
            normalize=True,
            normalize_double_precision=True,
            learned_rewards=True,
            num_elites=args.num_elites,
        )
        data = np.load(args.data)
        n = len(data["reward"])
        self.real = mbrl.util.replay_buffer.ReplayBuffer(
            n, (o,), (a,), np.double, np.double, np.double, rng=self.rng
        )
        self.real.add_batch(*(data[k] for k in FIELDS))
        self.trainer = mbrl.models.ModelTrainer(
            self.model, optim_lr=args.lr, weight_decay=args.weight_decay
        )

        class Box(gym.Env):
            observation_space = gym.spaces.Box(-np.inf, np.inf, (o,), np.float32)
            action_space = gym.spaces.Box(-1.0, 1.0, (a,), np.float32)

        self.model_env = mbrl.models.ModelEnv(
            Box(), self.model, mbrl.env.termination_fns.hopper, None, generator=gen
        )
        sac_args = omegaconf.OmegaConf.create(
            {
                "gamma": 0.99,
                "tau": 0.005,
                "alpha": 0.2,
                "policy": "Gaussian",
                "target_update_interval": 1,
                "automatic_entropy_tuning": True,
                "target_entropy": args.target_entropy,
                "hidden_size": 256,
                "device": "cpu",
                "lr": 3e-4,
            }
        )
        self.agent = SACAgent(SAC(o, Box.action_space, sac_args))
        self.sac_buffer = None
        self.num_updates = 0

    def train(self) -> dict[str, float]:
        import mbrl.util.common

        start = time.perf_counter()
        train_it, val_it = mbrl.util.common.get_basic_buffer_iterators(
            self.real,
            256,
            self.args.holdout,
            ensemble_size=len(self.model),
            shuffle_each_epoch=True,
            bootstrap_permutes=False,
        )
        self.model.update_normalizer(self.real.get_all())
        train_losses, _ = self.trainer.train(
            train_it,
            dataset_val=val_it,
            num_epochs=self.args.max_epochs,
            patience=self.args.patience,
            improvement_threshold=0.01,
        )
        return {"seconds": time.perf_counter() - start, "epochs": len(train_losses)}

    def rollout(self, k: int) -> dict[str, float]:
        import mbrl.algorithms.mbpo as mbpo
        import mbrl.util.replay_buffer

        o, a, b = self.args.obs_dim, self.args.act_dim, self.args.rollout_batch
        self.sac_buffer = mbrl.util.replay_buffer.ReplayBuffer(b * 4 * k, (o,), (a,), rng=self.rng)
        start = time.perf_counter()
        mbpo.rollout_model_and_populate_sac_buffer(
            self.model_env, self.real, self.agent, self.sac_buffer, True, k, b
        )
        seconds = time.perf_counter() - start
        # every row is stepped every step (finished rows are only not stored)
        return {"seconds": seconds, "model_steps": b * k, "transitions": len(self.sac_buffer)}

    def updates(self, n: int) -> dict[str, float]:
        assert self.sac_buffer is not None, "rollout before updates"
        start = time.perf_counter()
        for _ in range(n):
            use_real = self.rng.random() < self.args.real_ratio
            buffer = self.real if use_real else self.sac_buffer
            self.agent.sac_agent.update_parameters(
                buffer, 256, self.num_updates, None, reverse_mask=True
            )
            self.num_updates += 1
        return {"seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    for name in ("--threads", "--seed", "--obs-dim", "--act-dim", "--rollout-batch"):
        parser.add_argument(name, type=int, required=True)
    for name in ("--max-epochs", "--patience", "--num-elites"):
        parser.add_argument(name, type=int, required=True)
    for name in ("--holdout", "--lr", "--weight-decay", "--target-entropy", "--real-ratio"):
        parser.add_argument(name, type=float, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    parts = Parts(args)
    print("READY", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        result = getattr(parts, cmd[0])(*(int(x) for x in cmd[1:]))
        print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
