"""Per-seed returns of PETS run directories and their mean ± std (ddof=0) over seeds, as a
Markdown table (the tables of docs/pets.md, "Results over seeds").

    python benchmarks/pets_seed_table.py RUN_DIR [RUN_DIR ...] --last 5
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import yaml


def returns_of(run_dir: Path) -> tuple[int, list[float]]:
    """``(seed, returns per trial)`` of one run directory."""
    seed = int(yaml.safe_load((run_dir / "config.yaml").read_text())["seed"])
    with (run_dir / "trial.csv").open() as f:
        rets = [float(r["return"]) for r in csv.DictReader(f)]
    return seed, rets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dirs", type=Path, nargs="+")
    ap.add_argument("--last", type=int, default=5, help="mean over the last N trials")
    args = ap.parse_args()
    runs = sorted(returns_of(d) for d in args.run_dirs)
    n = max(len(r) for _, r in runs)
    head = " | ".join(str(i) for i in range(1, n + 1))
    print(f"| seed | {head} | mean of last {args.last} |")
    print("| --- " * (n + 2) + "|")
    for seed, rets in runs:
        cells = " | ".join(f"{r:.1f}" for r in rets) + " |" * (n - len(rets))
        tail = np.mean(rets[-args.last :]) if len(rets) == n else float("nan")
        print(f"| {seed} | {cells} | {tail:.1f} |")
    full = np.array([r for _, r in runs if len(r) == n])
    if len(full):
        mean, std = full.mean(0), full.std(0)
        cells = " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in zip(mean, std, strict=True))
        tails = full[:, -args.last :].mean(1)
        tail = f"{tails.mean():.1f} ± {tails.std():.1f}"
        print(f"| mean ± std ({len(full)} seeds) | {cells} | {tail} |")


if __name__ == "__main__":
    main()
