"""MBPO wall time per 1,000 environment steps at the Hopper preset, split by phase, against
mbrl-lib 0.2.0's parts.

Per 1,000 environment steps, ``mbrl/configs/mbpo_hopper.yaml`` does
``1000 / model_train_freq`` model rounds (retrain the 7 x 4 x 200 ensemble on all real data,
then branch ``rollout_batch_size`` model rollouts of length ``k``), ``1000 * updates_per_step``
SAC updates on batches mixing ``real_ratio`` real and model transitions, and 1,000 policy
actions with environment steps. This script times one of each phase at a given state of the
run (``--real-steps`` real transitions, rollout length ``--k``) and scales to 1,000 steps:

* model training: one ``train_on_buffer`` round (the preset's ``max_epochs``, patience and
  holdout) on ``--real-steps`` Hopper transitions with uniform random actions (the data MBPO
  has after its random phase), the epochs run are reported;
* model rollouts: one ``branched_rollouts`` of ``rollout_batch_size`` rows for ``k`` steps
  through the elites (``propagation="ts1"``: one member per row), the transitions added to
  the model buffer as the loop does; throughput as model steps/s and as achieved GFLOP/s
  (ensemble member forward + policy forward per model step), and that as a fraction of a
  ``--matmul-size``\\ :sup:`2` ``torch.matmul`` at the same thread count, measured in the same
  run (``benchmarks/_timing.matmul_flops``, as ``bench_planning.py`` does);
* SAC updates: ``--updates`` calls of ``SAC.update`` on ``MixedSampler`` batches (scaled to
  ``1000 * updates_per_step``);
* acting: ``--act-steps`` environment steps with the stochastic policy (scaled to 1,000);
  evaluation episodes are not included (their length depends on the policy).

mbrl-lib 0.2.0's MBPO (``mbrl.algorithms.mbpo.train``) needs its Hydra setup and a gym
environment, so its parts are timed instead, on the same data and sizes, in its own process
and venv (``benchmarks/_mbrllib_mbpo_worker.py``; mbrl-lib's package is also named ``mbrl``):
``OneDTransitionRewardModel(GaussianMLP)`` trained with its ``ModelTrainer`` as its
``train_model_and_save_model_and_data`` does (same epochs cap, patience, holdout, lr and weight
decay as ours), its ``rollout_model_and_populate_sac_buffer`` (``propagation_method=
"random_model"``: one member per row), and its SAC's ``update_parameters`` (pytorch_sac_pranz24,
2 x 256, learned temperature, target update every step as ours). The two processes are
alternated phase by phase (ours, mbrl-lib, then the next phase), so both see the same load.
Setup of the mbrl-lib venv (as for ``bench_models_vs_mbrllib.py``)::

    python3 -m venv /tmp/venv-mbrllib
    /tmp/venv-mbrllib/bin/pip install torch==2.13.0
    /tmp/venv-mbrllib/bin/pip install "mbrl==0.2.*"
    /tmp/venv-mbrllib/bin/pip install --no-deps "hydra-core==1.3.*" "omegaconf==2.3.*"

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mbpo.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mbpo.py --k 15 --updates 100
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mbpo.py --peer-python none  # ours only

The MBPO loop logs the same split in a run's metrics: ``model.csv`` has ``train_seconds``,
``rollout_seconds`` and ``model_steps_per_second`` of every model round, ``sac.csv`` has
``update_seconds`` since its previous row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _timing import matmul_flops

ROOT = Path(__file__).resolve().parent.parent
PEER_WORKER = Path(__file__).resolve().parent / "_mbrllib_mbpo_worker.py"
DEFAULT_PEER_PYTHON = "/tmp/venv-mbrllib/bin/python"
PRESET = "mbpo_hopper"
FIELDS = ("obs", "act", "next_obs", "reward", "terminated", "truncated")


# ---------------------------------------------------------------------- data
def collect_random(task, steps: int, seed: int):  # noqa: ANN001, ANN201
    """``steps`` real transitions of ``task`` with uniform random actions (a ReplayBuffer)."""
    from mbrl.data import RandomPolicy, ReplayBuffer, collect_episode

    rng = np.random.default_rng(seed)
    buf = ReplayBuffer(steps, task.obs_dim, task.act_dim)
    env = task.make_env()
    try:
        first = True
        while len(buf) < steps:
            max_steps = min(task.max_episode_steps, steps - len(buf))
            collect_episode(
                env,
                RandomPolicy(task, rng),
                buf,
                max_steps=max_steps,
                reset_seed=seed if first else None,
            )
            first = False
    finally:
        env.close()
    return buf


# ---------------------------------------------------------------------- our worker
class Ours:
    """This project's MBPO parts at the preset, on the orchestrator's data."""

    def __init__(self, data: Path, seed: int) -> None:
        import dataclasses

        from mbrl.agents import SAC
        from mbrl.algorithms.offpolicy_config import MBPOConfig
        from mbrl.data import ReplayBuffer
        from mbrl.models import ModelEnv, build_model, build_trainer
        from mbrl.util.config import load_config
        from mbrl.util.lifecycle import get_task

        cfg = load_config(MBPOConfig, PRESET, [f"seed={seed}"])
        self.cfg, self.task = cfg, get_task(cfg.task)
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.model = build_model(cfg.model, self.task, generator=self.gen)
        self.trainer = build_trainer(cfg.model, self.model, generator=self.gen, progress_bar=False)
        self.model_env = ModelEnv(self.model, self.task, propagation="ts1", use_learned_reward=True)
        self.agent = SAC.for_task(self.task, dataclasses.replace(cfg.agent, seed=seed))
        arrays = np.load(data)
        self.real = ReplayBuffer(len(arrays["reward"]), self.task.obs_dim, self.task.act_dim)
        self.real.add_batch(*(arrays[k] for k in FIELDS))
        self.model_data: ReplayBuffer | None = None
        self.env = self.task.make_env()
        self.obs, _ = self.env.reset(seed=seed)

    def train(self) -> dict[str, float]:
        from mbrl.models import train_on_buffer

        start = time.perf_counter()
        result = train_on_buffer(self.cfg.model, self.trainer, self.real)
        return {"seconds": time.perf_counter() - start, "epochs": result.epochs}

    def rollout(self, k: int) -> dict[str, float]:
        from mbrl.data import ReplayBuffer
        from mbrl.models.model_rollouts import branched_rollouts, model_buffer_capacity

        cfg = self.cfg
        per_epoch = cfg.rollout_batch_size * max(1, cfg.epoch_length // cfg.model_train_freq)
        capacity = model_buffer_capacity(per_epoch, k, cfg.retain_epochs)
        self.model_data = ReplayBuffer(capacity, self.task.obs_dim, self.task.act_dim)
        start = time.perf_counter()
        obs = self.real.sample(self.cfg.rollout_batch_size, self.rng).obs
        start_t = torch.as_tensor(obs, dtype=self.model.dtype)
        roll = branched_rollouts(self.model_env, self.agent.policy, start_t, k, self.gen)
        if len(roll):
            self.model_data.add_batch(*roll.to_batch())
        seconds = time.perf_counter() - start
        # every kept or dropped transition was one policy forward and one member forward
        steps = len(roll) + roll.num_dropped
        flops = steps * (self.model.ensemble.flops_per_sample() + self._policy_flops())
        return {"seconds": seconds, "model_steps": steps, "transitions": len(roll), "flops": flops}

    def _policy_flops(self) -> int:
        layers = [m for m in self.agent.policy.net if isinstance(m, torch.nn.Linear)]
        return 2 * sum(m.in_features * m.out_features for m in layers)

    def updates(self, n: int) -> dict[str, float]:
        from mbrl.models.model_rollouts import MixedSampler

        assert self.model_data is not None, "rollout before updates"
        sampler = MixedSampler(self.real, self.model_data, self.cfg.real_ratio)
        batch = self.cfg.agent.batch_size
        start = time.perf_counter()
        for _ in range(n):
            self.agent.update(sampler.sample(batch, self.rng))
        return {"seconds": time.perf_counter() - start}

    def act(self, n: int) -> dict[str, float]:
        start = time.perf_counter()
        for _ in range(n):
            self.obs, _, term, trunc, _ = self.env.step(self.agent.act(self.obs))
            if term or trunc:
                self.obs, _ = self.env.reset()
        return {"seconds": time.perf_counter() - start}


def ours_worker(args: argparse.Namespace) -> None:
    """Answers ``train`` / ``rollout K`` / ``updates N`` / ``act N`` with ``RESULT {...}``."""
    torch.set_num_threads(args.threads)
    ours = Ours(Path(args.data), args.seed)
    print("READY", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        result = getattr(ours, cmd[0])(*(int(x) for x in cmd[1:]))
        print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------- orchestrator
class Worker:
    """A worker process answering one command per line with ``RESULT {json}``."""

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

    def ask(self, command: str) -> dict[str, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self._expect("RESULT "))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real-steps", type=int, default=5000, help="real transitions")
    parser.add_argument("--k", type=int, default=1, help="rollout length (preset: 1 to 15)")
    parser.add_argument("--updates", type=int, default=200, help="timed SAC updates")
    parser.add_argument("--act-steps", type=int, default=1000, help="timed env steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--matmul-size", type=int, default=4096)
    parser.add_argument("--peer-python", default=DEFAULT_PEER_PYTHON, help="'none': ours only")
    parser.add_argument("--worker", choices=["ours"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "ours":
        ours_worker(args)
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    from mbrl.algorithms.offpolicy_config import MBPOConfig
    from mbrl.util.config import load_config
    from mbrl.util.lifecycle import get_task

    torch.set_num_threads(args.threads)
    cfg = load_config(MBPOConfig, PRESET)
    task = get_task(cfg.task)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "real.npz"
        batch = collect_random(task, args.real_steps, args.seed).get_all()
        np.savez(data, **{k: getattr(batch, k) for k in FIELDS})
        common = [f"--data={data}", f"--threads={args.threads}", f"--seed={args.seed}"]
        workers = [
            Worker("ours", [sys.executable, __file__, "--worker", "ours", *common], str(ROOT), env)
        ]
        if args.peer_python != "none":
            peer = [args.peer_python, str(PEER_WORKER), *common, f"--obs-dim={task.obs_dim}"]
            peer += [f"--act-dim={task.act_dim}", f"--rollout-batch={cfg.rollout_batch_size}"]
            peer += [f"--max-epochs={cfg.model.max_epochs}", f"--patience={cfg.model.patience}"]
            peer += [f"--holdout={cfg.model.holdout_ratio}", f"--lr={cfg.model.lr}"]
            peer += [
                f"--weight-decay={cfg.model.weight_decay}",
                f"--num-elites={cfg.model.num_elites}",
            ]
            peer += [f"--target-entropy={cfg.agent.target_entropy}"]
            peer += [f"--real-ratio={cfg.real_ratio}"]
            workers.append(Worker("mbrl-lib", peer, "/tmp", env))
        peak = [matmul_flops(torch.float32, args.matmul_size, repeats=2, inner=1)]
        res: dict[str, dict[str, dict[str, float]]] = {w.name: {} for w in workers}
        try:
            for phase, cmd in (
                ("train", "train"),
                ("rollout", f"rollout {args.k}"),
                ("updates", f"updates {args.updates}"),
            ):
                for w in workers:
                    res[w.name][phase] = w.ask(cmd)
            res["ours"]["act"] = workers[0].ask(f"act {args.act_steps}")
        finally:
            for w in workers:
                w.close()
        peak.append(matmul_flops(torch.float32, args.matmul_size, repeats=2, inner=1))
    report(args, cfg, res, peak)


def report(args: argparse.Namespace, cfg, res: dict, peak: list[float]) -> None:  # noqa: ANN001
    rounds = 1000 / cfg.model_train_freq
    n_updates = 1000 * cfg.updates_per_step
    print(
        f"MBPO Hopper preset, per 1,000 env steps: {rounds:g} model rounds (data "
        f"{args.real_steps}, k={args.k}, {cfg.rollout_batch_size} rollouts), {n_updates} SAC "
        f"updates (timed {args.updates}), {args.threads} thread(s)"
    )
    print(
        f"matmul peak {args.matmul_size}^2 fp32: {peak[0] / 1e9:.1f} GFLOP/s before, "
        f"{peak[1] / 1e9:.1f} after"
    )
    print(
        f"{'side':<9} {'train s':>9} {'rollout s':>10} {'updates s':>10} {'act s':>7} "
        f"{'total s':>9}   per round: train (epochs), rollout; per update ms"
    )
    for name, r in res.items():
        t_train = rounds * r["train"]["seconds"]
        t_roll = rounds * r["rollout"]["seconds"]
        t_upd = n_updates * r["updates"]["seconds"] / args.updates
        t_act = 1000 * r["act"]["seconds"] / args.act_steps if "act" in r else float("nan")
        total = t_train + t_roll + t_upd + (0.0 if t_act != t_act else t_act)
        print(
            f"{name:<9} {t_train:>9.1f} {t_roll:>10.1f} {t_upd:>10.1f} {t_act:>7.1f} "
            f"{total:>9.1f}   {r['train']['seconds']:.1f} s ({r['train']['epochs']:g}), "
            f"{r['rollout']['seconds']:.2f} s; {1e3 * r['updates']['seconds'] / args.updates:.1f}"
        )
    for name, r in res.items():
        roll = r["rollout"]
        if "flops" not in roll:
            print(f"{name}: rollout {roll['model_steps'] / roll['seconds']:,.0f} model steps/s")
            continue
        gflops = roll["flops"] / roll["seconds"] / 1e9
        print(
            f"{name}: rollout {roll['model_steps'] / roll['seconds']:,.0f} model steps/s, "
            f"{gflops:.2f} GFLOP/s = {gflops * 1e9 / max(peak):.1%} of the matmul peak "
            f"(best of the two peak measurements)"
        )
    if "mbrl-lib" in res:
        o, m = res["ours"], res["mbrl-lib"]
        ratios = {
            "train per epoch": (m["train"]["seconds"] / m["train"]["epochs"])
            / (o["train"]["seconds"] / o["train"]["epochs"]),
            "rollout per model step": (m["rollout"]["seconds"] / m["rollout"]["model_steps"])
            / (o["rollout"]["seconds"] / o["rollout"]["model_steps"]),
            "SAC update": m["updates"]["seconds"] / o["updates"]["seconds"],
        }
        print("speed-up ours vs mbrl-lib: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
