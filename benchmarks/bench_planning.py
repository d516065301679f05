"""Time one CEM planning step at PETS's settings, against this machine's dense-matmul peak.

Configurations (Chua et al., 2018), each through an untrained :class:`mbrl.models.DynamicsModel`
propagated with TS∞:

* cart-pole (``cartpole-swingup``): population 500, 50 elites, horizon 15, 5 iterations,
  20 particles, ensemble 5 members x 3 hidden layers x 200 units;
* HalfCheetah (``halfcheetah``): population 400, 40 elites, horizon 30, 5 iterations,
  20 particles, ensemble 7 x 4 x 200.

Printed per configuration and precision (float32; bfloat16: the planner's
``precision="bfloat16"``, i.e. bfloat16 autocast, through the ensemble's ``--inference-path``:
by default the fused oneDNN forward in bfloat16 and the block path in float32):

* seconds per planning step (best of ``--repeats`` after a warm-up);
* model-steps/s (particle-steps through the ensemble);
* achieved model FLOP/s (forward ``2 * sum(fan_in * fan_out)`` per particle-step, one member
  per particle under TS∞) as a fraction of ``torch.matmul``'s FLOP/s on large square matrices
  in the same precision, measured in the same run right before each row (the load of a shared
  machine varies);
* the share of the planning time spent in the bare ensemble forward on the same batches (the
  rest: the model's sampling/normalisation, ModelEnv, rewards, the planner);
* minor page faults during one more planning step (fresh memory the allocator had to map).

Run::

    .venv/bin/python benchmarks/bench_planning.py                 # CPU
    .venv/bin/python benchmarks/bench_planning.py --repeats 1 --warmup 0   # quicker
    .venv/bin/python benchmarks/bench_planning.py --device cuda   # GPU
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import resource

import torch
from _timing import best_time, matmul_flops

from envs import get_task
from mbrl.models import DynamicsModel
from mbrl.planning import CEMConfig, make_planner

CONFIGS = {
    "cartpole": dict(
        task="cartpole-swingup",
        population=500,
        num_elites=50,
        horizon=15,
        members=5,
        layers=3,
        hidden=200,
    ),
    "halfcheetah": dict(
        task="halfcheetah",
        population=400,
        num_elites=40,
        horizon=30,
        members=7,
        layers=4,
        hidden=200,
    ),
}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bfloat16 autocast context for ``precision == "bf16"``, else a no-op."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def planning_model(spec: dict) -> DynamicsModel:
    """The untrained ensemble of configuration ``spec`` (weights from seed 0), in eval mode."""
    model = DynamicsModel.for_task(
        get_task(spec["task"]),
        num_members=spec["members"],
        hidden=spec["hidden"],
        num_layers=spec["layers"],
        generator=torch.Generator().manual_seed(0),
    )
    return model.eval()


def cem_config(spec: dict, precision: str, iterations: int, particles: int) -> CEMConfig:
    """The CEM planner of configuration ``spec`` (TS∞) in ``precision`` ("bf16" or "fp32")."""
    return CEMConfig(
        horizon=spec["horizon"],
        population=spec["population"],
        num_elites=spec["num_elites"],
        iterations=iterations,
        num_particles=particles,
        propagation="tsinf",
        precision="bfloat16" if precision == "bf16" else "float32",
    )


def run_config(
    name: str,
    spec: dict,
    precision: str,
    device: torch.device,
    repeats: int,
    iterations: int,
    particles: int,
    warmup: int,
    inference_path: str = "auto",
) -> dict[str, float]:
    """Time one planning step of configuration ``name``; returns the measured figures."""
    task = get_task(spec["task"])
    model = planning_model(spec).to(device)
    model.ensemble.inference_path = inference_path
    planner = make_planner(cem_config(spec, precision, iterations, particles), model, task)
    env = task.make_env()
    obs0, _ = env.reset(seed=0)
    env.close()
    obs = torch.as_tensor(obs0, dtype=torch.float32, device=device)
    pgen = torch.Generator(device=device).manual_seed(0)
    info: dict[str, float] = {}

    def plan() -> None:
        with torch.no_grad():  # bf16: the planner's own precision="bfloat16" autocast
            res = planner.plan(obs, generator=pgen)
        info.update(res.info)

    t_plan = best_time(plan, repeats, warmup=warmup, device=device)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    plan()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    steps = info["model_steps"]
    fwd = model.ensemble.flops_per_sample()

    # bare ensemble forward on the same batches: (E, B / E, in) per step, H * iterations steps
    e = model.num_members
    batch = spec["population"] * particles
    x = torch.randn(e, -(-batch // e), model.ensemble.weights[0].shape[1], device=device)
    calls = spec["horizon"] * iterations

    def forward_only() -> None:
        with torch.no_grad(), autocast(device, precision):
            for _ in range(calls):
                model.ensemble(x)

    t_fwd = best_time(forward_only, repeats, warmup=warmup, device=device)
    return {
        "plan_s": t_plan,
        "model_steps": steps,
        "steps_per_s": steps / t_plan,
        "flops_per_s": steps * fwd / t_plan,
        "forward_share": t_fwd / t_plan,
        "faults": faults,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument(
        "--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before timing")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--particles", type=int, default=20)
    parser.add_argument("--matmul-size", type=int, default=None, help="default 4096 (cuda 8192)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument(
        "--inference-path",
        default="auto",
        choices=["auto", "fused", "blocks", "rows"],
        help="GaussianEnsemble.inference_path (auto: fused in bfloat16 where supported)",
    )
    parser.add_argument(
        "--flush-denormal", action="store_true", help="torch.set_flush_denormal(True)"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(args.flush_denormal)
    device = torch.device(args.device)
    n = args.matmul_size or (8192 if device.type == "cuda" else 4096)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    print(f"torch {torch.__version__}, {where}; matmul peak: {n}x{n} torch.matmul")
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    header = (
        f"{'config':<12} {'prec':<5} {'plan s/step':>11} {'model-steps':>12} "
        f"{'steps/s':>10} {'GFLOP/s':>9} {'peak GF/s':>9} {'% peak':>7} {'fwd share':>9} "
        f"{'faults':>7}"
    )
    print(header)
    print("-" * len(header), flush=True)
    for name in args.configs:
        for prec in args.precisions:
            # the matmul peak is measured right before each row (the machine's load may vary)
            peak = matmul_flops(dtypes[prec], n, device=device)
            try:
                r = run_config(
                    name,
                    CONFIGS[name],
                    prec,
                    device,
                    args.repeats,
                    args.iterations,
                    args.particles,
                    args.warmup,
                    args.inference_path,
                )
            except RuntimeError as exc:  # e.g. an op without bfloat16 support on this device
                print(f"{name:<12} {prec:<5} unsupported: {exc}")
                continue
            print(
                f"{name:<12} {prec:<5} {r['plan_s']:>11.3f} {r['model_steps']:>12.0f} "
                f"{r['steps_per_s']:>10.3g} {r['flops_per_s'] / 1e9:>9.1f} {peak / 1e9:>9.1f} "
                f"{100 * r['flops_per_s'] / peak:>6.1f}% {100 * r['forward_share']:>8.0f}% "
                f"{r['faults']:>7.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
