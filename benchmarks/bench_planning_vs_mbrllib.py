"""One PETS planning step (CEM through the ensemble) of this project against mbrl-lib 0.2.x.

Both sides plan at PETS's settings (Chua et al., 2018) through an untrained ensemble propagated
with TS-infinity (every particle keeps one member):

* cart-pole: population 500, 10 % elites, horizon 15, 5 iterations, 20 particles, ensemble
  5 members x 3 hidden layers x 200 SiLU units;
* HalfCheetah: population 399, 10 % elites, horizon 30, 5 iterations, 20 particles, ensemble
  7 x 4 x 200 (PETS's population is 400; mbrl-lib's TS-infinity needs the particle count, here
  399 x 20, to be a multiple of the 7 members).

mbrl-lib's side (``benchmarks/_mbrllib_planning_worker.py``, in its own venv, see
``bench_models_vs_mbrllib.py`` for the setup) is PETS as its users run it: ``GaussianMLP`` in
``OneDTransitionRewardModel`` (double-precision input normaliser), ``ModelEnv``, and
``TrajectoryOptimizerAgent.plan`` with a ``CEMOptimizer`` scored by
``ModelEnv.evaluate_action_sequences``. This project's side is ``CEMPlanner.plan`` through a
``DynamicsModel`` in float32, and in bfloat16 (``precision="bfloat16"``) through the default
inference path and, for comparison, through the reference block path (``--ours`` picks them).

Each side runs in its own process with ``--threads`` torch threads and, by default,
flush-to-zero (``torch.set_flush_denormal(True)``: an untrained model's diverging rollouts
otherwise hit subnormal floats, which cost each side differently). Rounds alternate the order of
the processes, so drift of a shared machine's load hits both alike, and this project's variants
are interleaved step by step within its process. The best of the rounds is reported per figure,
with the ratio mbrl-lib / this project (above 1: this project is faster) and the fraction of the
bfloat16 (or float32) ``torch.matmul`` peak measured in this project's process. "1st step" is
this project's first planning step with a fresh model (it includes laying out the weights for the
fused path; nothing is compiled).

Run::

    .venv/bin/python benchmarks/bench_planning_vs_mbrllib.py \\
        --peer-python /tmp/venv-mbrllib/bin/python
    .venv/bin/python benchmarks/bench_planning_vs_mbrllib.py --configs cartpole --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch
from _timing import best_time, launch, matmul_flops

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_mbrllib_planning_worker.py"
DEFAULT_PEER_PYTHON = ROOT / ".venv-mbrllib" / "bin" / "python"

CONFIGS = {
    "cartpole": dict(
        task="cartpole-swingup", population=500, horizon=15, members=5, layers=3, hidden=200
    ),
    "halfcheetah": dict(
        task="halfcheetah", population=399, horizon=30, members=7, layers=4, hidden=200
    ),
}
ELITE_RATIO = 0.1
OURS = {
    # name: (planner precision, ensemble inference path)
    "fp32": ("float32", "auto"),
    "bf16": ("bfloat16", "auto"),
    "bf16-blocks": ("bfloat16", "blocks"),
    "fp32-fused": ("float32", "fused"),
}


def run_ours(args: argparse.Namespace) -> dict:
    """This project's side (``--worker ours``): seconds per planning step of each variant."""
    from bench_planning import planning_model

    from envs import get_task

    spec = CONFIGS[args.config]
    task = get_task(spec["task"])
    model = planning_model(spec)
    obs = torch.zeros(task.obs_dim)
    plans = {v: planner_step(model, task, spec, OURS[v][0], args, obs) for v in args.ours}
    peaks = {d: matmul_flops(d, 4096, repeats=3, inner=1) for d in (torch.float32, torch.bfloat16)}
    first: dict[str, float] = {}
    for variant, plan in plans.items():
        model.ensemble.inference_path = OURS[variant][1]
        model.ensemble._packed = None  # the first step lays out the weights (as in an MPC run)
        first[variant] = best_time(plan, 1, warmup=0)
    for _ in range(max(0, args.warmup - 1)):
        for variant, plan in plans.items():
            model.ensemble.inference_path = OURS[variant][1]
            plan()
    times: dict[str, list[float]] = {v: [] for v in plans}
    for _ in range(args.repeats):  # the variants interleaved, so load drift hits all alike
        for variant, plan in plans.items():
            model.ensemble.inference_path = OURS[variant][1]
            times[variant].append(best_time(plan, 1, warmup=0))
    out: dict[str, dict[str, float]] = {}
    for variant, plan in plans.items():
        dtype = torch.bfloat16 if OURS[variant][0] == "bfloat16" else torch.float32
        steps = plan.info["model_steps"]  # type: ignore[attr-defined]
        out[variant] = {
            "first_s": first[variant],
            "plan_s": min(times[variant]),
            "model_steps": steps,
            "flops": steps * model.ensemble.flops_per_sample(),
            "peak": peaks[dtype],
        }
    return {"lib": "this project", "threads": torch.get_num_threads(), "variants": out}


class PlanStep:
    """One planning step from ``obs`` (callable); ``info`` holds the last step's diagnostics."""

    def __init__(self, planner: object, obs: torch.Tensor) -> None:
        self.planner = planner
        self.obs = obs
        self.gen = torch.Generator().manual_seed(0)
        self.info: dict[str, float] = {}

    def __call__(self) -> None:
        self.info = self.planner.plan(self.obs, generator=self.gen).info  # type: ignore[attr-defined]


def planner_step(
    model: object,
    task: object,
    spec: dict,
    precision: str,
    args: argparse.Namespace,
    obs: torch.Tensor,
) -> PlanStep:
    """A CEM planner at configuration ``spec`` in ``precision``, as a :class:`PlanStep`."""
    from mbrl.planning import CEMConfig, make_planner

    cfg = CEMConfig(
        horizon=spec["horizon"],
        population=spec["population"],
        num_elites=round(ELITE_RATIO * spec["population"]),
        iterations=args.iterations,
        num_particles=args.particles,
        propagation="tsinf",
        precision=precision,
        return_mean_elites=True,
    )
    return PlanStep(make_planner(cfg, model, task), obs)


def commands(args: argparse.Namespace, config: str, tmp: Path) -> dict[str, tuple[list, Path]]:
    """Command line and working directory of each side for one configuration."""
    spec = CONFIGS[config]
    common = [
        f"--config={config}",
        f"--iterations={args.iterations}",
        f"--particles={args.particles}",
        f"--threads={args.threads}",
        f"--repeats={args.repeats}",
        f"--warmup={args.warmup}",
        f"--flush-denormal={int(args.flush_denormal)}",
    ]
    peer = [
        args.peer_python,
        str(WORKER),
        f"--population={spec['population']}",
        f"--elite-ratio={ELITE_RATIO}",
        f"--horizon={spec['horizon']}",
        f"--members={spec['members']}",
        f"--layers={spec['layers']}",
        f"--hidden={spec['hidden']}",
    ]
    ours = [sys.executable, str(Path(__file__).resolve()), "--worker=ours", "--ours", *args.ours]
    # cwd outside the repository for mbrl-lib: this project's mbrl is not importable there
    return {"peer": (peer + common, tmp), "ours": (ours + common, ROOT)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--ours", nargs="+", default=["fp32", "bf16"], choices=list(OURS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--particles", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2, help="timed planning steps per run")
    parser.add_argument("--warmup", type=int, default=1, help="untimed planning steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side, alternating")
    parser.add_argument(
        "--no-flush-denormal",
        dest="flush_denormal",
        action="store_false",
        help="leave subnormal floats on (default: flush-to-zero on both sides)",
    )
    parser.add_argument("--peer-python", default=str(DEFAULT_PEER_PYTHON))
    parser.add_argument("--worker", choices=["ours"], help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=list(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--flush-denormal", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker == "ours":
        torch.set_flush_denormal(bool(args.flush_denormal))
        print("RESULT " + json.dumps(run_ours(args)), flush=True)
        return
    if not Path(args.peer_python).exists():
        sys.exit(f"--peer-python: {args.peer_python} not found (see the module docstring)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    say(
        f"torch {torch.__version__}, {args.threads} thread(s) per side, flush-to-zero "
        f"{'on' if args.flush_denormal else 'off'}, {args.iterations} CEM iterations, "
        f"{args.particles} particles, TS-inf; best of {args.rounds} rounds x {args.repeats} steps"
    )
    say(
        f"{'config':<12} {'side':<25} {'s/step':>8} {'mbrl-lib/this':>13} {'GFLOP/s':>8} "
        f"{'peak GF/s':>9} {'% peak':>7} {'1st step s':>10}"
    )
    with tempfile.TemporaryDirectory(prefix="bench_planning_mbrllib_") as tmp:
        for config in args.configs:
            sides = commands(args, config, Path(tmp))
            peer: list[float] = []
            ours: dict[str, list[dict]] = {v: [] for v in args.ours}
            for r in range(args.rounds):
                # alternate the order (peer, ours, ours, peer, ...)
                for name in ("peer", "ours") if r % 2 == 0 else ("ours", "peer"):
                    cmd, cwd = sides[name]
                    res = launch(cmd, cwd, env, timeout=3600)
                    if name == "peer":
                        peer.append(res["plan_s"])
                    else:
                        for v, fig in res["variants"].items():
                            ours[v].append(fig)
            report(config, min(peer), ours)


def report(config: str, peer_s: float, ours: dict[str, list[dict]]) -> None:
    """Print one configuration's rows: mbrl-lib, then each of this project's variants."""
    say(f"{config:<12} {'mbrl-lib 0.2.0 fp32':<25} {peer_s:>8.3f} {'1.00x':>13}")
    for variant, runs in ours.items():
        best = min(runs, key=lambda f: f["plan_s"])
        rate = best["flops"] / best["plan_s"]
        say(
            f"{config:<12} {'this project ' + variant:<25} {best['plan_s']:>8.3f} "
            f"{peer_s / best['plan_s']:>12.2f}x {rate / 1e9:>8.1f} {best['peak'] / 1e9:>9.1f} "
            f"{100 * rate / best['peak']:>6.1f}% {min(f['first_s'] for f in runs):>10.3f}"
        )


def say(text: str) -> None:
    """Print and flush."""
    print(text, flush=True)


if __name__ == "__main__":
    main()
