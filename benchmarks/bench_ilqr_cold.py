"""Benchmark: the first ``ilqr()`` call in a fresh process against warm calls (cold start).

Each repeat launches a fresh Python subprocess that imports the package, then times the first
``ilqr()`` call of the process and ``--warm`` further identical calls (pendulum swing-up with
Gymnasium physics, T = 100, |u| <= 2, no terminal cost, zero initial controls, autodiff, one
thread).  Printed per process: import time, first call, fastest warm call and their ratio; then
the median ratio over the processes.  ``--tree DIR`` (repeatable) measures another source tree
(e.g. an older commit exported with ``git archive``) in the same run, interleaved.

    OMP_NUM_THREADS=1 python benchmarks/bench_ilqr_cold.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, math, time
t0 = time.perf_counter()
import torch
torch.set_num_threads(1)
import envs
from control import ilqr
from envs.analytic.angles import angle_normalize
t_import = time.perf_counter() - t0
dyn = envs.get_task("pendulum-swingup", max_speed=None).dynamics_fn

def cost(x, u):
    return angle_normalize(x[:, 0]) ** 2 + 0.1 * x[:, 1] ** 2 + 0.001 * u[:, 0] ** 2

def run():
    t = time.perf_counter()
    r = ilqr(dyn, cost, torch.tensor([math.pi, 0.0], dtype=torch.float64),
             torch.zeros(100, 1, dtype=torch.float64), u_min=-2.0, u_max=2.0, max_iter=200)
    return time.perf_counter() - t, int(r.iterations[0])

first, it = run()
warm = [run()[0] for _ in range(WARM)]
print(json.dumps(dict(t_import=t_import, first=first, warm=min(warm), iterations=it)))
"""


def measure(tree: Path, warm: int) -> dict:
    """One fresh process on source tree ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", CHILD.replace("WARM", str(warm))],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run ``--repeats`` fresh processes per tree and print the cold/warm ratios."""
    parser = argparse.ArgumentParser(description="ilqr cold start vs warm calls")
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per tree")
    parser.add_argument("--warm", type=int, default=3, help="warm calls per process")
    parser.add_argument("--tree", action="append", default=[], help="other source tree(s)")
    args = parser.parse_args()
    trees = [Path(__file__).resolve().parents[1]] + [Path(t).resolve() for t in args.tree]
    ratios: dict[Path, list[float]] = {t: [] for t in trees}
    print(f"{'tree':40s} {'import s':>8s} {'first s':>8s} {'warm s':>8s} {'ratio':>6s} iters")
    for _ in range(args.repeats):
        for tree in trees:  # interleaved: the machine's load hits every tree alike
            r = measure(tree, args.warm)
            ratio = r["first"] / r["warm"]
            ratios[tree].append(ratio)
            print(
                f"{str(tree)[-40:]:40s} {r['t_import']:8.3f} {r['first']:8.3f} {r['warm']:8.3f} "
                f"{ratio:6.2f} {r['iterations']}",
                flush=True,
            )
    for tree, rs in ratios.items():
        print(f"median cold/warm ratio {statistics.median(rs):5.2f}  ({tree})")


if __name__ == "__main__":
    main()
