"""The ``mbrl`` command line: ``mbrl <command> [options]`` (also ``python -m mbrl``).

Algorithms are listed once, in :data:`ALGORITHMS`, and imported only when their command runs;
no algorithm imports this module. Each algorithm command takes the same options::

    mbrl pets --task cartpole-swingup planner=icem seed=3     # preset pets_<task>, overrides
    mbrl pets --preset path/to/my.yaml --run-root /data/runs
    mbrl resume runs/pets-cartpole-swingup-20261202-101500  # continue a stopped run
    mbrl demo                                               # = mbrl pets --preset demo
    mbrl plot runs/pets-* --out compare                     # compare runs: compare.png, .svg
    mbrl video runs/pets-reacher-20261202-101500 --out reacher.mp4  # the saved agent, rendered
    mbrl sweep pets --task cartpole-swingup seed=0,1,2 planner=cem,icem   # a grid (docs/sweeps.md)

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
    """The top-level parser: one sub-command per algorithm, plus resume, demo, tasks, plot and
    video."""
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
    sub.add_parser(
        "sweep",
        help="run an algorithm over a grid of settings and seeds (Ray Tune, or --backend local)",
        add_help=False,
    )
    _add_video(sub)
    return parser


def _add_video(sub: Any) -> None:
    p = sub.add_parser(
        "video",
        help="render a run's saved agent on its MuJoCo task to MP4 or GIF",
        description="Render the agent of RUN_DIR's latest checkpoint offscreen (PETS: the MPC "
        "agent around the saved ensemble; SAC/MBPO: the deterministic policy). MuJoCo tasks "
        "only; the OpenGL back end is EGL or OSMesa (MUJOCO_GL). See docs/video.md.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    p.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="FILE.mp4 (needs imageio-ffmpeg) or FILE.gif; default RUN_DIR/videos/playback-<step>",
    )
    p.add_argument("--episodes", type=int, default=1, help="episodes, one after another (1)")
    p.add_argument("--seed", type=int, default=0, help="episode i resets with seed S+i (0)")
    p.add_argument("--max-steps", type=int, default=None, help="cap on steps per episode")
    p.add_argument("--device", default="cpu", help="torch device of the networks (cpu)")
    p.add_argument("--size", type=int, default=320, help="frame width and height, pixels (320)")


def build_sweep_parser() -> argparse.ArgumentParser:
    """The parser of ``mbrl sweep`` (parsed on its own: options and overrides may mix)."""
    p = argparse.ArgumentParser(
        prog="mbrl sweep",
        description="Run ALGORITHM once per point of the grid the KEY=V1,V2,... arguments span "
        "(KEY=V sets V for every point; values are split at commas outside brackets and "
        "quotes). Each trial writes its run directory under RUN_ROOT/<sweep name>/; the sweep "
        "writes summary.csv, settings.csv and returns.png there. See docs/sweeps.md.",
    )
    p.add_argument("algorithm", nargs="?", help=f"one of: {', '.join(ALGORITHMS)}")
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=V1[,V2...]", help="e.g. seed=0,1,2 planner=cem,icem"
    )
    p.add_argument("--task", default=None, help="task name; picks the preset <algorithm>_<task>")
    p.add_argument("--preset", default=None, help="YAML preset name or path for every trial")
    p.add_argument("--run-root", default="runs", help="folder the sweep folder goes in (runs)")
    p.add_argument("--name", default=None, help="sweep folder name (default: sweep-ALGO-TASK-TIME)")
    p.add_argument(
        "--resume", default=None, metavar="SWEEP_DIR", help="continue an interrupted sweep"
    )
    p.add_argument("--backend", default="ray", choices=["ray", "local"], help="(default: ray)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start Ray here)")
    p.add_argument("--max-concurrent", type=int, default=None, help="most trials at once (Ray)")
    p.add_argument(
        "--threads-per-trial", type=int, default=None, help="CPU threads per trial (default: share)"
    )
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial (Ray)")
    p.add_argument(
        "--dry-run", action="store_true", help="check every trial's config, list them, run none"
    )
    return p


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-root", default=None, help="folder the run directory goes in")
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides, e.g. seed=3"
    )


def parse_command(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv`` (without ``sweep``) with :func:`build_parser`. ``KEY=VALUE`` overrides may
    stand before and after options (``mbrl pets planner=icem --run-root R seed=3``), in order;
    anything else unknown exits through argparse (code 2)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in a and not a.startswith("-") for a in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code. Bad usage exits via argparse (code 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sweep"]:
        return _sweep(build_sweep_parser().parse_intermixed_args(argv[1:]), argv)
    args = parse_command(argv)
    if args.command == "tasks":
        return _tasks(args.describe)
    if args.command == "plot":
        return _plot(args)
    if args.command == "video":
        return _video(args)
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


def _video(args: argparse.Namespace) -> int:
    from mbrl.util.video import RenderError, select_gl_backend

    try:
        name = read_run_info(args.run_dir)["algorithm"]
        if name not in ALGORITHMS:
            raise SetupError(f"run_dir: unknown algorithm {name!r} in run.yaml")
        select_gl_backend()  # before MuJoCo is imported: MUJOCO_GL is read at import
        config_cls, _ = ALGORITHMS[name].load()
        from mbrl.algorithms.playback import render_run

        result = render_run(
            args.run_dir,
            config_cls,
            args.out,
            episodes=args.episodes,
            seed=args.seed,
            device=args.device,
            max_steps=args.max_steps,
            width=args.size,
            height=args.size,
        )
    except (ConfigError, SetupError, RenderError, ValueError, FileNotFoundError) as exc:
        print(f"mbrl video: {exc}", file=sys.stderr)
        return 2
    returns = ", ".join(f"{r:.2f}" for r in result.returns)
    print(
        f"wrote {result.path}: {result.episodes} episode(s), {result.frames} frames at "
        f"{result.fps:.1f} fps (MUJOCO_GL={result.backend}); returns {returns}"
    )
    return 0


def _sweep(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``mbrl sweep``: 0 when every trial is done, 1 when one failed, 2 on bad usage."""
    from mbrl.sweep import SweepError, SweepOptions, run_sweep
    from mbrl.sweep.backends import import_ray

    sweep_dir = None
    try:
        options = SweepOptions(
            args.backend,
            args.address,
            args.max_concurrent,
            args.threads_per_trial,
            args.gpus_per_trial,
        )
        if args.backend == "ray" and not args.dry_run:
            import_ray()
        sweep_dir = _sweep_folder(args, argv)
        if sweep_dir is None:  # a dry run
            return 0
        summary = run_sweep(sweep_dir, options)
    except KeyboardInterrupt:
        where = f" with: mbrl sweep --resume {sweep_dir}" if sweep_dir is not None else ""
        print(f"mbrl sweep: interrupted; finished trials are kept, resume{where}", file=sys.stderr)
        return 130
    except (SweepError, ConfigError, SetupError, FileNotFoundError, ValueError) as exc:
        print(f"mbrl sweep: {exc}", file=sys.stderr)
        return 2
    return 0 if all(r.status == "done" for r in summary.trials) else 1


def _sweep_folder(args: argparse.Namespace, argv: Sequence[str]) -> Path | None:
    """The folder of the sweep to run: ``--resume``'s, or a new plan's (``None`` after
    ``--dry-run``, which prints the plan and writes nothing)."""
    from mbrl.sweep import AlgorithmRef, SweepError, plan_sweep

    if args.resume is not None:
        if args.algorithm is not None or args.overrides or args.task or args.preset:
            raise SweepError("--resume SWEEP_DIR takes no algorithm, task, preset or KEY=V")
        if args.dry_run:
            raise SweepError("--dry-run checks a new sweep; it does not go with --resume")
        return Path(args.resume)
    if args.algorithm not in ALGORITHMS:
        raise SweepError(
            f"algorithm: expected one of {', '.join(ALGORITHMS)}, got {args.algorithm!r}"
        )
    algo = ALGORITHMS[args.algorithm]
    ref = AlgorithmRef(args.algorithm, algo.module, algo.config, algo.runner)
    preset = args.preset
    if preset is None and args.task is not None:
        preset = task_preset(args.algorithm, args.task)
    base = [f"task={args.task}"] if args.task is not None else []
    sweep_dir, plan = plan_sweep(
        ref,
        preset,
        base,
        args.overrides,
        run_root=args.run_root,
        name=args.name,
        command=["mbrl", *argv],
        create=not args.dry_run,
    )
    if not args.dry_run:
        return sweep_dir
    print(f"{len(plan.trials)} trial(s) in {sweep_dir} (dry run: nothing written)")
    for t in plan.trials:
        print(f"  {t.name}: " + " ".join(f"{k}={v}" for k, v in t.point.items()))
    return None
