"""SAC update throughput: this project's :class:`mbrl.agents.SAC` against stable-baselines3's SAC.

Same workload on both sides: actor and twin critics 2 x 256 ReLU, batch 256, Adam at 3e-4,
automatic entropy tuning, gamma 0.99, tau 0.005, float32, ``--threads`` torch threads (default
1), observation/action sizes ``--obs-dim``/``--act-dim`` (default 17/6, HalfCheetah's). One
"update" is everything SAC does per gradient step: draw a batch of ``--batch`` transitions
uniformly from a replay buffer of ``--buffer`` random transitions, then one step of critics,
actor and temperature and the Polyak target update (SB3: ``model.train(gradient_steps=N)``;
ours: ``ReplayBuffer.sample`` + ``SAC.update``).

Each side runs in its own process, kept alive for the whole run: ours with this interpreter
(``--worker ours``), SB3's with the interpreter of a separate venv
(``benchmarks/_sb3_sac_worker.py``, working directory outside the repository). The orchestrator
alternates timed rounds of ``--updates`` updates between the two (the order flips every round),
so both see the same machine load; it reports the best and the median round of each side and
their ratios. Setup of the SB3 venv (torch first, so pip keeps this exact torch)::

    python3 -m venv /tmp/venv-sb3
    /tmp/venv-sb3/bin/pip install torch==2.13.0
    /tmp/venv-sb3/bin/pip install stable-baselines3 gymnasium

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sac.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sac.py --rounds 10 --updates 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
SB3_WORKER = Path(__file__).resolve().parent / "_sb3_sac_worker.py"
DEFAULT_PEER_PYTHON = "/tmp/venv-sb3/bin/python"


def ours_worker(args: argparse.Namespace) -> None:
    """Line protocol of ``_sb3_sac_worker.py``, for this project's agent."""
    sys.path.insert(0, str(ROOT))
    from mbrl.agents.sac import SAC, SACConfig
    from mbrl.data.replay_buffer import ReplayBuffer

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    n, o, a = args.buffer, args.obs_dim, args.act_dim
    buf = ReplayBuffer(n, o, a)
    buf.add_batch(
        rng.standard_normal((n, o)),
        rng.uniform(-1.0, 1.0, (n, a)),
        rng.standard_normal((n, o)),
        rng.standard_normal(n),
        rng.random(n) < 0.01,
        np.zeros(n, bool),
    )
    agent = SAC(o, a, config=SACConfig(batch_size=args.batch, seed=args.seed))

    def run(k: int) -> None:
        for _ in range(k):
            agent.update(buf.sample(args.batch, rng))

    run(20)  # warm-up
    print("READY", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        start = time.perf_counter()
        run(int(cmd[1]))
        print("RESULT " + json.dumps({"seconds": time.perf_counter() - start}), flush=True)


class Worker:
    """A worker process answering ``run N`` with ``RESULT {"seconds": ...}``."""

    def __init__(self, name: str, cmd: list[str], cwd: str, env: dict[str, str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._expect("READY")

    def _expect(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise RuntimeError(f"{self.name} worker exited (code {self.proc.wait()})")

    def run(self, updates: int) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"run {updates}\n")
        self.proc.stdin.flush()
        return float(json.loads(self._expect("RESULT "))["seconds"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--obs-dim", type=int, default=17)
    parser.add_argument("--act-dim", type=int, default=6)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--buffer", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--updates", type=int, default=200, help="updates per timed round")
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds per side")
    parser.add_argument("--peer-python", default=DEFAULT_PEER_PYTHON, help="SB3 venv python")
    parser.add_argument("--worker", choices=["ours"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "ours":
        ours_worker(args)
        return
    sizes = [
        f"--{k}={getattr(args, k.replace('-', '_'))}"
        for k in ("obs-dim", "act-dim", "batch", "buffer", "seed", "threads")
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    ours = Worker("ours", [sys.executable, __file__, "--worker", "ours", *sizes], str(ROOT), env)
    sb3 = Worker("sb3", [args.peer_python, str(SB3_WORKER), *sizes], "/tmp", env)
    times: dict[str, list[float]] = {"ours": [], "sb3": []}
    try:
        for r in range(args.rounds):
            order = [ours, sb3] if r % 2 == 0 else [sb3, ours]
            for w in order:
                times[w.name].append(w.run(args.updates))
    finally:
        ours.close()
        sb3.close()
    rate = {k: [args.updates / t for t in v] for k, v in times.items()}
    print(
        f"SAC updates/s, batch {args.batch}, 2x256 nets, obs {args.obs_dim}, act "
        f"{args.act_dim}, {args.threads} thread(s), {args.rounds} alternating rounds of "
        f"{args.updates} updates"
    )
    print(f"{'side':<6} {'best':>10} {'median':>10}   rounds")
    for k, v in rate.items():
        rounds = " ".join(f"{x:.0f}" for x in v)
        print(f"{k:<6} {max(v):>10.1f} {statistics.median(v):>10.1f}   {rounds}")
    per_round = [o / s for o, s in zip(times["sb3"], times["ours"], strict=True)]
    print(
        f"ratio ours/sb3: best {max(rate['ours']) / max(rate['sb3']):.2f}, median "
        f"{statistics.median(rate['ours']) / statistics.median(rate['sb3']):.2f}, "
        f"per-round median {statistics.median(per_round):.2f}"
    )


if __name__ == "__main__":
    main()
