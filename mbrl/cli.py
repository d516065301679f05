"""The ``mbrl`` command line: ``mbrl <command> [options]`` (also ``python -m mbrl``).

Algorithms are listed once, in :data:`ALGORITHMS`, and imported only when their command runs;
no algorithm imports this module. Each algorithm command takes the same options::

    mbrl pets --task cartpole-swingup planner=icem seed=3     # preset pets_<task>, overrides
    mbrl pets --preset path/to/my.yaml --run-root /data/runs
    mbrl resume runs/pets-cartpole-swingup-20261202-101500  # continue a stopped run
    mbrl demo                                               # = mbrl pets --preset demo
    mbrl plot runs/pets-* --out compare                     # compare runs: compare.png, .svg

A bad setting, task, device or run folder ends with one line ``mbrl <command>: ...`` and exit
code 2, before any run directory is made.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mbrl
from mbrl.util.config import ConfigError, load_config, task_preset
from mbrl.util.lifecycle import SetupError, read_run_info

__all__ = ["ALGORITHMS", "Algorithm", "build_parser", "main"]


@dataclass(frozen=True)
class Algorithm:
    """An algorithm command: ``module.<runner>(config, resume=None)`` with ``module.<config>``.

    The runner's result must have a ``summary() -> str`` method (printed at the end).
    """

    module: str
    config: str
    runner: str
    help: str

    def load(self) -> tuple[type, Callable[..., Any]]:
        """Import the module; return ``(config class, runner)``."""
        mod = importlib.import_module(self.module)
        return getattr(mod, self.config), getattr(mod, self.runner)


ALGORITHMS: dict[str, Algorithm] = {
    "pets": Algorithm(
        "mbrl.algorithms.pets",
        "PETSConfig",
        "run_pets",
        "PETS: probabilistic ensemble + MPC planner (CEM, iCEM, MPPI, MCTS, iLQR)",
    ),
    "sac": Algorithm(
        "mbrl.algorithms.offpolicy",
        "SACRunConfig",
        "run_sac",
        "SAC alone (model-free baseline), evaluated every eval_every steps",
    ),
    "mbpo": Algorithm(
        "mbrl.algorithms.offpolicy",
        "MBPOConfig",
        "run_mbpo",
        "MBPO: SAC on real data and short rollouts through a learned ensemble",
    ),
    "gps": Algorithm(
        "mbrl.algorithms.gps",
        "GPSConfig",
        "run_gps",
        "guided policy search: iLQR trajectories distilled into a policy "
        "(method=gps|bc|bc_noise|dagger|plato)",
    ),
}

DEMO_PRESET = "demo"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: one sub-command per algorithm, plus resume, demo, tasks and plot."""
    parser = argparse.ArgumentParser(prog="mbrl", description="Model-based RL and control.")
    parser.add_argument("--version", action="version", version=f"mbrl {mbrl.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for name, algo in ALGORITHMS.items():
        p = sub.add_parser(name, help=algo.help, description=algo.help)
        p.add_argument("--task", default=None, help="task name (mbrl tasks); picks its preset")
        p.add_argument(
            "--preset", default=None, help=f"YAML preset name or path; default: {name}_<task>"
        )
        _add_common(p)
        p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue this run")
    p = sub.add_parser("resume", help="continue a stopped run from its latest checkpoint")
    p.add_argument("run_dir", help="the run directory")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. num_trials=20")
    p = sub.add_parser("demo", help="the main demo: PETS with CEM on MuJoCo Reacher-v5")
    p.add_argument("--preset", default=DEMO_PRESET, help="YAML preset (default: demo)")
    _add_common(p)
    p = sub.add_parser("tasks", help="list the registered tasks")
    p.add_argument("--describe", action="store_true", help="add each task's description")
    p = sub.add_parser(
        "plot",
        help="compare runs: return, model loss and planning time; seeds as mean ± std",
        description="Overlay the learning curves of run directories. Runs whose config.yaml "
        "differ only in seed are drawn as one mean ± std band. Writes OUT.png and OUT.svg.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories")
    p.add_argument("--out", default="curves", help="output path without suffix (default: curves)")
    p.add_argument(
        "--x", default="env_steps", choices=["env_steps", "trials"], help="x axis (env_steps)"
    )
    p.add_argument("--title", default=None, help="figure title")
    return parser


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-root", default=None, help="folder the run directory goes in")
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides, e.g. seed=3"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code. Bad usage exits via argparse (code 2)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "tasks":
        return _tasks(args.describe)
    if args.command == "plot":
        return _plot(args)
    try:
        if args.command == "resume":
            info = read_run_info(args.run_dir)
            name, preset, resume = (
                info["algorithm"],
                Path(args.run_dir) / "config.yaml",
                args.run_dir,
            )
            overrides = list(args.overrides)
        else:
            name = "pets" if args.command == "demo" else args.command
            resume = getattr(args, "resume", None)
            preset = _preset(name, args)
            overrides = _overrides(args)
        if name not in ALGORITHMS:
            raise SetupError(f"run_dir: unknown algorithm {name!r} in run.yaml")
        config_cls, runner = ALGORITHMS[name].load()
        cfg = load_config(config_cls, preset, overrides)
        result = runner(cfg, resume=resume)
    except (ConfigError, SetupError, FileNotFoundError) as exc:
        print(f"mbrl {args.command}: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


def _preset(algorithm: str, args: argparse.Namespace) -> str | Path | None:
    if args.command == "demo" or args.preset is not None:
        return args.preset
    if args.resume is not None:
        return Path(args.resume) / "config.yaml"
    return task_preset(algorithm, args.task) if args.task is not None else None


def _overrides(args: argparse.Namespace) -> list[str]:
    extra = []
    if getattr(args, "task", None) is not None:
        extra.append(f"task={args.task}")
    if args.run_root is not None:
        extra.append(f"run_root={args.run_root}")
    return [*extra, *args.overrides]


def _task_kind(task: Any) -> str:
    if task.is_analytic:
        return "analytic"
    module = getattr(task.env_factory, "__module__", "") or ""
    return "MuJoCo" if "mujoco" in module.lower() else "simulator"


def _tasks(describe: bool) -> int:
    import envs

    header = ["name", "obs_dim", "act_dim", "episode_len", "kind", "actions"]
    if describe:
        header.append("description")
    rows: list[list[str]] = []
    failures = 0
    for name in envs.list_tasks():
        try:
            task = envs.get_task(name)
        except Exception as exc:  # noqa: BLE001  (report every broken task, keep listing)
            failures += 1
            rows.append([name, "-", "-", "-", "error", f"{type(exc).__name__}: {exc}"])
            continue
        actions = f"discrete({task.num_actions})" if task.is_discrete else "continuous"
        row = [name, str(task.obs_dim), str(task.act_dim), str(task.max_episode_steps)]
        row += [_task_kind(task), actions] + ([task.description] if describe else [])
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows] if i < len(r)) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
    if not rows:
        print("(no tasks registered)")
    return 1 if failures else 0


def _plot(args: argparse.Namespace) -> int:
    from mbrl.util.plotting import plot_runs

    try:
        result = plot_runs(args.run_dirs, args.out, x=args.x, title=args.title)
    except (FileNotFoundError, ValueError) as exc:
        print(f"mbrl plot: {exc}", file=sys.stderr)
        return 2
    for group in result.groups:
        print(f"{group.label}: {len(group.runs)} run(s)")
    print(f"wrote {result.png} and {result.svg}")
    return 0
