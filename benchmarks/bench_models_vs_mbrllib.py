"""This project's probabilistic ensemble against mbrl-lib's (facebookresearch/mbrl-lib 0.2.x).

Same workload on both sides: 7 members x 4 hidden layers x 200 SiLU units, input obs 17 +
act 6, output 17 + 1 reward (mbrl-lib's ``OneDTransitionRewardModel`` learns the reward by
default, so this project's model gets ``learn_reward=True``), learned log-variance bounds,
batch 256 per member, bootstrap (with replacement) per member, 20 % held out for validation,
Adam(W) at lr 1e-3 and weight decay 5e-5, float32, ``--threads`` torch threads (default 1).
The data are HalfCheetah-v5 transitions with uniform random actions, collected once here and
handed to both sides through one ``.npz`` file.

mbrl-lib's package is also named ``mbrl``, so each side runs in its own process: this
project's with this interpreter (``--worker ours``), mbrl-lib's with the interpreter of a
separate venv (``benchmarks/_mbrllib_worker.py``, working directory outside the repository).
Setup of that venv (torch first, so pip keeps this exact torch; mbrl 0.2.0 pins
hydra-core 1.0.3, which does not import on Python 3.11, hence the newer hydra/omegaconf)::

    python3 -m venv .venv-mbrllib
    .venv-mbrllib/bin/pip install torch==2.13.0
    .venv-mbrllib/bin/pip install "mbrl==0.2.*"
    .venv-mbrllib/bin/pip install --no-deps "hydra-core==1.3.*" "omegaconf==2.3.*"

Figures (one table, ratios ours / mbrl-lib):

* training: transitions per second per member over ``--epochs`` epochs, wall time of each
  library's public training call (normaliser fit, bootstrap draw, validation before and after
  every epoch included, as each library does by default);
* queries at batch ``--query-batch`` rounded up to a multiple of 7, ``inference_mode``:
  the raw ensemble forward with each member on its own ``B/7`` rows, the raw forward with all
  ``B`` rows through every member, and one TS-infinity sampling step in original units
  (``DynamicsModel.sample`` on ``(7, B/7)`` inputs; mbrl-lib: ``OneDTransitionRewardModel.sample``
  with ``propagation_method="fixed_model"``), as model-steps/s (rows x members evaluated);
* fp32 2048^2 matmul GFLOP/s at the start and end of each side (the machine may be shared);
* one-step error of the mean prediction on 10k held-out transitions, MSE / Var(true delta).

Run::

    .venv/bin/python benchmarks/bench_models_vs_mbrllib.py             # 100k transitions
    .venv/bin/python benchmarks/bench_models_vs_mbrllib.py --transitions 20000 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _timing import best_time, launch, matmul_flops

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_mbrllib_worker.py"
DEFAULT_PEER_PYTHON = ROOT / ".venv-mbrllib" / "bin" / "python"
MEMBERS, HIDDEN, LAYERS = 7, 200, 4


def collect_halfcheetah(n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` HalfCheetah-v5 transitions with uniform random actions (float32 arrays)."""
    import gymnasium as gym

    env = gym.make("HalfCheetah-v5")
    rng = np.random.default_rng(seed)
    obs_dim = env.observation_space.shape[0]
    act_dim = env.action_space.shape[0]
    out = {
        "obs": np.empty((n, obs_dim), np.float32),
        "act": np.empty((n, act_dim), np.float32),
        "next_obs": np.empty((n, obs_dim), np.float32),
        "reward": np.empty(n, np.float32),
    }
    obs, _ = env.reset(seed=seed)
    for i in range(n):
        a = rng.uniform(-1.0, 1.0, act_dim)
        nxt, r, term, trunc, _ = env.step(a)
        out["obs"][i], out["act"][i], out["next_obs"][i], out["reward"][i] = obs, a, nxt, r
        obs = nxt
        if term or trunc:
            obs, _ = env.reset()
    env.close()
    return out


def run_ours(args: argparse.Namespace) -> dict:
    """This project's side (``--worker ours``): the same figures as the mbrl-lib worker."""
    from mbrl.models import DynamicsModel, ModelTrainer

    data = np.load(args.data)
    obs, act, nxt, rew = data["obs"], data["act"], data["next_obs"], data["reward"]
    q_obs, q_act, q_next = (torch.from_numpy(data[k]) for k in ("q_obs", "q_act", "q_next"))
    e = MEMBERS
    peak_start = matmul_flops(repeats=3, inner=1) / 1e9
    model = DynamicsModel(
        obs.shape[1],
        act.shape[1],
        num_members=e,
        hidden=HIDDEN,
        num_layers=LAYERS,
        activation="silu",
        learn_reward=True,
        generator=torch.Generator().manual_seed(args.seed),
    )
    trainer = ModelTrainer(
        model,
        lr=1e-3,
        weight_decay=5e-5,
        batch_size=256,
        holdout_ratio=args.holdout,
        seed=args.seed,
        progress_bar=False,
    )
    t0 = time.perf_counter()
    result = trainer.train(obs, act, nxt, rew, epochs=args.epochs)
    train_s = time.perf_counter() - t0

    gen = torch.Generator().manual_seed(args.seed)
    b = q_obs.shape[0]
    g_obs, g_act = q_obs.reshape(e, b // e, -1), q_act.reshape(e, b // e, -1)
    ens = model.ensemble
    queries = {}
    with torch.inference_mode():
        x = model.input_normalizer.normalize(model.model_inputs(q_obs, q_act))  # (B, in)
        xg = x.reshape(e, b // e, -1)
        queries["forward_per_member"] = best_time(lambda: ens(xg), args.repeats, 2)
        queries["forward_shared"] = best_time(lambda: ens(x), max(2, args.repeats // 2), 2)
        queries["sample_tsinf"] = best_time(
            lambda: model.sample(g_obs, g_act, generator=gen), args.repeats, 2
        )
        pred = model.predict(q_obs, q_act).next_obs_mean.mean(0)
    delta = q_next - q_obs
    err = ((pred - q_next).square().mean(0) / delta.var(0)).mean().item()
    return {
        "torch": torch.__version__,
        "lib": "this project",
        "threads": torch.get_num_threads(),
        "peak_start": peak_start,
        "peak_end": matmul_flops(repeats=3, inner=1) / 1e9,
        "train_s": train_s,
        "n_train": result.num_train,
        "epochs": args.epochs,
        "queries": queries,
        "query_rows": b,
        "one_step_err": err,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transitions", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--query-batch", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per query")
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side, alternating")
    parser.add_argument(
        "--peer-python",
        default=str(DEFAULT_PEER_PYTHON),
        help="interpreter of the venv holding mbrl-lib",
    )
    parser.add_argument("--worker", choices=["ours"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.worker == "ours":
        print("RESULT " + json.dumps(run_ours(args)), flush=True)
        return
    if not Path(args.peer_python).exists():
        sys.exit(f"--peer-python: {args.peer_python} not found (see the module docstring)")

    e = MEMBERS
    n_query = -(-args.query_batch // e) * e  # a multiple of E: B/E rows per member
    t0 = time.perf_counter()
    data = collect_halfcheetah(args.transitions + n_query, args.seed)
    say(
        f"HalfCheetah-v5: {args.transitions} training + {n_query} query random-action "
        f"transitions collected in {time.perf_counter() - t0:.1f} s"
    )
    tail = slice(args.transitions, None)
    for key, src in (("q_obs", "obs"), ("q_act", "act"), ("q_next", "next_obs")):
        data[key] = data[src][tail].copy()
    for key in ("obs", "act", "next_obs", "reward"):
        data[key] = data[key][: args.transitions]

    common = [
        f"--epochs={args.epochs}",
        f"--threads={args.threads}",
        f"--seed={args.seed}",
        f"--repeats={args.repeats}",
        f"--holdout={args.holdout}",
    ]
    with tempfile.TemporaryDirectory(prefix="bench_mbrllib_") as tmp:
        path = Path(tmp) / "data.npz"
        np.savez(path, **data)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        sides = {
            "ours": (
                [sys.executable, str(Path(__file__).resolve()), "--worker=ours", f"--data={path}"],
                ROOT,
            ),
            # cwd outside the repository: this project's mbrl is not importable there
            "peer": ([args.peer_python, str(WORKER), f"--data={path}"], Path(tmp)),
        }
        results: dict[str, list[dict]] = {"ours": [], "peer": []}
        for r in range(args.rounds):
            # alternate the order (ours, peer, peer, ours, ...) so drift hits both sides alike
            for name in ("ours", "peer") if r % 2 == 0 else ("peer", "ours"):
                cmd, cwd = sides[name]
                t0 = time.perf_counter()
                out = launch(cmd + common, cwd, env, timeout=1800)
                results[name].append(out)
                say(f"round {r + 1}: {out['lib']} done in {time.perf_counter() - t0:.1f} s")
    report(results["ours"], results["peer"], args)


def flops_per_step(in_dim: int, out_dim: int) -> int:
    """Forward FLOPs per row per member: ``2 * sum(fan_in * fan_out)`` of the ensemble."""
    sizes = [in_dim] + [HIDDEN] * LAYERS + [2 * out_dim]
    return 2 * sum(i * o for i, o in zip(sizes[:-1], sizes[1:], strict=True))


def report(ours: list[dict], peer: list[dict], args: argparse.Namespace) -> None:
    """Print the comparison table: the best of the rounds for every figure and side."""
    e = MEMBERS
    fwd = flops_per_step(23, 18)
    first = ours[0]
    say(
        f"\ntorch {first['torch']} (both), {first['threads']} / {peer[0]['threads']} threads, "
        f"float32; ensemble {e} x {LAYERS} x {HIDDEN} SiLU, in 23, out 18 (17 + reward); "
        f"forward {fwd / 1e3:.1f} kFLOP/step; best of {args.rounds} rounds per figure"
    )
    peaks = {}
    for key, runs in (("ours", ours), ("peer", peer)):
        vals = [v for run in runs for v in (run["peak_start"], run["peak_end"])]
        peaks[key] = sum(vals) / len(vals)
        say(
            f"fp32 2048^2 matmul GFLOP/s in {runs[0]['lib']}'s processes (start/end of each): "
            + ", ".join(f"{v:.1f}" for v in vals)
        )
    b = first["query_rows"]
    n_train = first["n_train"]
    say(
        f"\n{'figure':56s} {'this project':>13s} {'mbrl-lib':>13s} {'ratio':>6s} "
        f"{'ours/pk':>7s} {'peer/pk':>7s}"
    )
    # (label, value per run, FLOPs per unit of the value)
    rows: list[tuple[str, Callable[[dict], float], float]] = [
        (
            f"training, samples/s per member ({args.epochs} ep x {n_train})",
            lambda run: run["n_train"] * run["epochs"] / run["train_s"],
            3.0 * fwd * e,  # forward + backward, all members
        ),
        (
            f"forward, (E, B/E) per member, model-steps/s (B={b})",
            lambda run: run["query_rows"] / run["queries"]["forward_per_member"],
            fwd,
        ),
        (
            f"forward, (B,) through all E, model-steps/s (B={b})",
            lambda run: run["query_rows"] * e / run["queries"]["forward_shared"],
            fwd,
        ),
        (
            f"TS-inf sample step, original units, steps/s (B={b})",
            lambda run: run["query_rows"] / run["queries"]["sample_tsinf"],
            fwd,
        ),
    ]
    for label, value, flops in rows:
        a = max(value(run) for run in ours)
        p = max(value(run) for run in peer)
        fa = a * flops / 1e9 / peaks["ours"]
        fp = p * flops / 1e9 / peaks["peer"]
        say(f"{label:56s} {a:13,.0f} {p:13,.0f} {a / p:5.2f}x {fa:7.0%} {fp:7.0%}")
    say(
        f"{'one-step error, MSE / Var(true delta), lower is better':56s} "
        f"{ours[-1]['one_step_err']:13.4f} {peer[-1]['one_step_err']:13.4f}"
    )
    say(
        "\nratio = this project / mbrl-lib (above 1: this project is faster); x/pk = FLOP/s "
        "(forward 1x, training 3x per member-sample) over the mean matmul figure of that side. "
        "Training wall times (s): this project "
        + ", ".join(f"{run['train_s']:.1f}" for run in ours)
        + "; mbrl-lib "
        + ", ".join(f"{run['train_s']:.1f}" for run in peer)
        + f". One-step error after {args.epochs} epochs (last round)."
    )


def say(text: str) -> None:
    """Print and flush."""
    print(text, flush=True)


if __name__ == "__main__":
    main()
