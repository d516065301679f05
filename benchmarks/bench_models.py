"""Throughput of the probabilistic ensemble against this machine's dense-matmul peak.

Prints, in one run:

* dense matmul FLOP/s (``torch.matmul`` on large square matrices), float32 and bfloat16;
* training throughput of a 7-member x 4-layer x 200-unit ensemble on HalfCheetah-v5
  transitions collected with random actions (samples/s and fraction of the fp32 peak, counting
  ``3 x`` the forward FLOPs per sample and member);
* query throughput at batch 10,000 (model-steps/s, fraction of peak), float32 and bfloat16
  autocast, with the one-step prediction error of each;

FLOPs: forward ``2 * sum(fan_in * fan_out)`` per sample and member (activations, bias and
log-variance bounds not counted). Run::

    .venv/bin/python benchmarks/bench_models.py            # 100k transitions, 3 epochs
    .venv/bin/python benchmarks/bench_models.py --transitions 20000 --epochs 1   # quick
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from _timing import best_time, matmul_flops

from mbrl.models import DynamicsModel, ModelTrainer


def collect_halfcheetah(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` HalfCheetah-v5 transitions with uniform random actions: obs, act, next_obs."""
    env = gym.make("HalfCheetah-v5")
    rng = np.random.default_rng(seed)
    obs_dim = env.observation_space.shape[0]
    act_dim = env.action_space.shape[0]
    obs_buf = np.empty((n, obs_dim), np.float32)
    act_buf = np.empty((n, act_dim), np.float32)
    next_buf = np.empty((n, obs_dim), np.float32)
    obs, _ = env.reset(seed=seed)
    for i in range(n):
        act = rng.uniform(-1.0, 1.0, act_dim)
        nxt, _, term, trunc, _ = env.step(act)
        obs_buf[i], act_buf[i], next_buf[i] = obs, act, nxt
        obs = nxt
        if term or trunc:
            obs, _ = env.reset()
    env.close()
    return obs_buf, act_buf, next_buf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transitions", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--query-batch", type=int, default=10_000)
    parser.add_argument("--matmul-size", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--compile", action="store_true", help="also time a torch.compile'd ensemble forward"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    say(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads"
    )
    peak32 = matmul_flops(torch.float32, args.matmul_size)
    peak16 = matmul_flops(torch.bfloat16, args.matmul_size)
    say(
        f"matmul peak ({args.matmul_size}^2, at start): fp32 {peak32 / 1e9:.1f} GFLOP/s, "
        f"bf16 {peak16 / 1e9:.1f} GFLOP/s"
    )

    t0 = time.perf_counter()
    obs, act, nxt = collect_halfcheetah(args.transitions + 10_000, args.seed)
    say(
        f"HalfCheetah-v5 data: {args.transitions + 10_000} random-action transitions "
        f"collected in {time.perf_counter() - t0:.1f} s"
    )
    test = slice(args.transitions, None)
    train = slice(0, args.transitions)

    gen = torch.Generator().manual_seed(args.seed)
    model = DynamicsModel(
        obs.shape[1], act.shape[1], num_members=7, hidden=200, num_layers=4, generator=gen
    )
    ens = model.ensemble
    fwd = ens.flops_per_sample()
    e = ens.num_members
    say(
        f"ensemble: E={e}, {ens.num_layers} x {ens.hidden} {ens.activation_name}, "
        f"in {ens.in_dim}, out {ens.out_dim}; forward {fwd / 1e3:.1f} kFLOP/sample/member"
    )
    trainer = ModelTrainer(model, seed=args.seed, batch_size=256, progress_bar=False)
    # One train(epochs=1) call per epoch (each refits the normalisers and redraws the
    # bootstrap, which is cheap), each between two timed matmuls: on a shared machine the
    # fraction of peak is the median over epochs of (epoch FLOP/s) / (mean adjacent peak).
    pair_a = torch.randn(2048, 2048)
    pair_b = torch.randn(2048, 2048)

    def peak_now() -> float:
        return 2.0 * 2048**3 / best_time(lambda: torch.matmul(pair_a, pair_b), repeats=1, inner=3)

    train_s, fracs, before = 0.0, [], peak_now()
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        result = trainer.train(obs[train], act[train], nxt[train], epochs=1)
        dt = time.perf_counter() - t0
        after = peak_now()
        train_s += dt
        fracs.append(3 * fwd * e * result.num_train / dt / (0.5 * (before + after)))
        before = after
    train_samples = result.num_train * args.epochs  # transitions seen per member
    train_flops = 3 * fwd * e * train_samples / train_s
    say(
        f"\ntraining: {args.epochs} epochs on {result.num_train} transitions "
        f"(holdout {result.num_holdout}), batch 256/member, {train_s:.1f} s (incl. holdout "
        f"evaluation)\n  {train_samples / train_s:,.0f} samples/s per member "
        f"({e * train_samples / train_s:,.0f} member-samples/s), "
        f"{train_flops / 1e9:.1f} GFLOP/s = {sorted(fracs)[len(fracs) // 2]:.0%} of the fp32 "
        f"peak (median over epochs of paired ratios)"
    )

    b = args.query_batch
    q_obs = torch.from_numpy(obs[test][:b].copy())
    q_act = torch.from_numpy(act[test][:b].copy())
    q_next = torch.from_numpy(nxt[test][:b].copy())
    b = q_obs.shape[0]
    n_per = -(-b // e)
    # TS∞-style query: each of the b particles goes through one member: (E, b / E, d) inputs
    g_obs = torch.cat([q_obs, q_obs[: n_per * e - b]]).reshape(e, n_per, -1)
    g_act = torch.cat([q_act, q_act[: n_per * e - b]]).reshape(e, n_per, -1)
    xg = model.input_normalizer.normalize(model.model_inputs(g_obs, g_act))

    queries: list[tuple[str, Callable[[], object], int]] = [
        ("ensemble forward, (E, B/E) per member", lambda: ens(xg), n_per * e),
        (
            "DynamicsModel.sample, (E, B/E) per member",
            lambda: model.sample(g_obs, g_act),
            n_per * e,
        ),
        ("DynamicsModel.predict, (B,) to all E", lambda: model.predict(q_obs, q_act), b * e),
    ]
    # On a shared machine the available speed drifts: time each query in alternation with a
    # matmul of the same dtype and report the median of the paired ratios as "of peak".
    pair_n = 2048
    mats = {
        dt: (torch.randn(pair_n, pair_n, dtype=dt), torch.randn(pair_n, pair_n, dtype=dt))
        for dt in (torch.float32, torch.bfloat16)
    }

    def paired(
        fn: Callable[[], object], dtype: torch.dtype, rounds: int = 5
    ) -> tuple[float, float]:
        a, b = mats[dtype]
        fn()
        q_times, p_times = [], []
        for _ in range(rounds):
            p_times.append(best_time(lambda: torch.matmul(a, b), repeats=1, inner=3))
            q_times.append(best_time(fn, repeats=1, inner=3))
        ratios = sorted(p / q for p, q in zip(p_times, q_times, strict=True))
        # ratio of times; times the FLOP ratio gives the fraction of peak (below)
        return min(q_times), ratios[len(ratios) // 2] / (2.0 * pair_n**3)

    timings: list[tuple[str, str, float, int, float]] = []
    with torch.inference_mode():
        for name, fn, member_rows in queries:
            t, r = paired(fn, torch.float32)
            timings.append((name, "fp32", t, member_rows, r * fwd * member_rows))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            for name, fn, member_rows in queries:
                t, r = paired(fn, torch.bfloat16)
                timings.append((name, "bf16", t, member_rows, r * fwd * member_rows))
    if args.compile:
        t0 = time.perf_counter()
        compiled = torch.compile(ens)
        with torch.inference_mode():
            compiled(xg)
            say(f"torch.compile of the ensemble: {time.perf_counter() - t0:.1f} s")
            t, r = paired(lambda: compiled(xg), torch.float32)
        timings.append(
            ("torch.compile(ensemble), (E, B/E)", "fp32", t, n_per * e, r * fwd * n_per * e)
        )

    with torch.inference_mode():
        pred32 = model.mean_next_obs(q_obs, q_act)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pred16 = model.mean_next_obs(q_obs, q_act)
    scale = (q_next - q_obs).var(0)  # error relative to the variance of the true state change
    err32 = ((pred32 - q_next).square().mean(0) / scale).mean().item()
    err16 = ((pred16.float() - q_next).square().mean(0) / scale).mean().item()
    diff = ((pred16.float() - pred32).square().mean(0) / scale).mean().item()

    # The machine may be shared: the peak drifts (see the paired ratios).
    end32 = matmul_flops(torch.float32, args.matmul_size)
    end16 = matmul_flops(torch.bfloat16, args.matmul_size)
    say(
        f"\nmatmul peak ({args.matmul_size}^2, at end): fp32 {end32 / 1e9:.1f}, "
        f"bf16 {end16 / 1e9:.1f} GFLOP/s"
    )
    say(f"\nqueries at batch {b} (model-steps = rows x members evaluated; 'of peak' = median of")
    say(f"5 paired ratios against a {pair_n}^2 matmul of the same dtype timed alternately):")
    say(f"  {'query':44s} {'dtype':5s} {'model-steps/s':>14s} {'GFLOP/s':>8s} {'of peak':>8s}")
    for name, dtype, t, member_rows, frac in timings:
        flops = fwd * member_rows / t
        say(f"  {name:44s} {dtype:5s} {member_rows / t:14,.0f} {flops / 1e9:8.1f} {frac:8.0%}")
    t32 = next(t for _, d, t, _, _ in timings if d == "fp32")
    t16 = next(t for _, d, t, _, _ in timings if d == "bf16")
    say(f"\nbf16 autocast speed-up of the ensemble forward: {t32 / t16:.2f}x")
    say(
        "one-step error of the mean prediction, MSE / Var(true delta), mean over dims: "
        f"fp32 {err32:.4f}, bf16 {err16:.4f} (bf16 vs fp32 difference {diff:.2e})"
    )


def say(text: str) -> None:
    """Print and flush (so a long run shows its figures as they come)."""
    print(text, flush=True)


if __name__ == "__main__":
    main()
