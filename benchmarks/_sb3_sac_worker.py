"""stable-baselines3 side of ``bench_sac.py`` (run it through that script, not directly).

Runs in its own virtual environment (``/tmp/venv-sb3``: ``pip install torch==2.13.0``, then
``pip install stable-baselines3 gymnasium``). It builds SB3's ``SAC("MlpPolicy")`` (default
``net_arch`` 2 x 256, ReLU, Adam at 3e-4, automatic entropy tuning, tau 0.005, gamma 0.99) on
an environment with the benchmark's observation and action sizes, fills its replay buffer with
random transitions, and then answers the orchestrator's commands on stdin, one per line:

* ``run N``: ``N`` calls of SAC's update (``model.train(gradient_steps=N, batch_size=B)``,
  replay sampling included, as SB3 does it), answered with ``RESULT {"seconds": ...}``;
* ``quit``.

It prints ``READY`` once warmed up. This process cannot import this project.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import gymnasium as gym
import numpy as np
import torch


def build(obs_dim: int, act_dim: int, batch: int, buffer: int, seed: int):  # noqa: ANN201
    from stable_baselines3 import SAC
    from stable_baselines3.common.logger import configure

    class Dummy(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32)

        def reset(self, seed=None, options=None):  # noqa: ANN001, ANN202
            return np.zeros(obs_dim, np.float32), {}

        def step(self, action):  # noqa: ANN001, ANN202
            return np.zeros(obs_dim, np.float32), 0.0, False, False, {}

    model = SAC(
        "MlpPolicy",
        Dummy(),
        batch_size=batch,
        learning_starts=0,
        buffer_size=buffer + 1,
        device="cpu",
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    rb = model.replay_buffer
    rb.observations[:buffer, 0] = rng.standard_normal((buffer, obs_dim))
    rb.next_observations[:buffer, 0] = rng.standard_normal((buffer, obs_dim))
    rb.actions[:buffer, 0] = rng.uniform(-1.0, 1.0, (buffer, act_dim))
    rb.rewards[:buffer, 0] = rng.standard_normal(buffer)
    rb.dones[:buffer, 0] = rng.random(buffer) < 0.01
    rb.pos = buffer
    model.set_logger(configure(None, [""]))
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--obs-dim", "--act-dim", "--batch", "--buffer", "--seed", "--threads"):
        parser.add_argument(name, type=int, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = build(args.obs_dim, args.act_dim, args.batch, args.buffer, args.seed)
    model.train(gradient_steps=20, batch_size=args.batch)  # warm-up
    print("READY", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        n = int(cmd[1])
        start = time.perf_counter()
        model.train(gradient_steps=n, batch_size=args.batch)
        print("RESULT " + json.dumps({"seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    main()
