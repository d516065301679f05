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
so both see the same machine load; it reports the best and the median round of each side, their
ratios, and the ratio of every pair of adjacent rounds. ``--baseline-root DIR`` adds a third
process running this project's agent from another checkout (e.g. ``git archive`` of an older
commit unpacked in ``DIR``), alternated with the other two, to measure a change against SB3
and against the code before it in the same run. Setup of the SB3 venv (torch first, so pip
keeps this exact torch)::

    python3 -m venv /tmp/venv-sb3
    /tmp/venv-sb3/bin/pip install torch==2.13.0
    /tmp/venv-sb3/bin/pip install stable-baselines3 gymnasium

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sac.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sac.py --rounds 10 --updates 200
    mkdir -p /tmp/base && git archive 1ef43e3 mbrl envs control | tar -x -C /tmp/base
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sac.py --baseline-root /tmp/base
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
    """Line protocol of ``_sb3_sac_worker.py``, for this project's agent (from ``--root``)."""
    sys.path.insert(0, args.root)
    from mbrl.agents.sac import SAC, SACConfig
    from mbrl.data.replay_buffer import ReplayBuffer

    if not Path(sys.modules[SAC.__module__].__file__ or "").is_relative_to(args.root):
        raise RuntimeError(f"ours worker: mbrl imported from outside {args.root}")

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
    parser.add_argument(
        "--baseline-root", help="also time this project's agent from this checkout's code"
    )
    parser.add_argument("--worker", choices=["ours"], help=argparse.SUPPRESS)
    parser.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
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
    cmd = [sys.executable, __file__, "--worker", "ours", *sizes]
    workers = [Worker("ours", cmd, str(ROOT), env)]
    if args.baseline_root:
        root = str(Path(args.baseline_root).resolve())
        workers.append(Worker("base", [*cmd, f"--root={root}"], "/tmp", env))
    workers.append(Worker("sb3", [args.peer_python, str(SB3_WORKER), *sizes], "/tmp", env))
    times: dict[str, list[float]] = {w.name: [] for w in workers}
    try:
        for r in range(args.rounds):
            for w in workers if r % 2 == 0 else workers[::-1]:
                times[w.name].append(w.run(args.updates))
    finally:
        for w in workers:
            w.close()
    report(args, times)


def report(args: argparse.Namespace, times: dict[str, list[float]]) -> None:
    """Rates per side and the ratios of ``ours`` to every other side."""
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
    for other in [k for k in times if k != "ours"]:
        per_round = [o / s for o, s in zip(times[other], times["ours"], strict=True)]
        print(
            f"ratio ours/{other}: best {max(rate['ours']) / max(rate[other]):.2f}, median "
            f"{statistics.median(rate['ours']) / statistics.median(rate[other]):.2f}, "
            f"per-round median {statistics.median(per_round):.2f}, min "
            f"{min(per_round):.2f}, rounds " + " ".join(f"{x:.2f}" for x in per_round)
        )


if __name__ == "__main__":
    main()
