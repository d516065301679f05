"""The ``mbrl`` command line: ``mbrl <command> [options]`` (also ``python -m mbrl``).

Commands are registered with :func:`register_command`. An algorithm module adds its own
command by calling it at import time, e.g. in ``mbrl/algorithms/pets.py``::

    def _add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--preset", default="pets_cartpole")
        parser.add_argument("overrides", nargs="*", help="config overrides key=value")

    def _run(args: argparse.Namespace) -> int:
        ...
        return 0

    register_command("pets", "train PETS", _add_arguments, _run)

and making sure the module is imported by one of :data:`COMMAND_MODULES` (``mbrl.algorithms``
imports its submodules). A command registered with ``passthrough=True`` receives the raw
argument list after its name instead of a parsed namespace (it parses its own options).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mbrl

__all__ = ["COMMAND_MODULES", "Command", "build_parser", "main", "register_command"]

COMMAND_MODULES: tuple[str, ...] = ("mbrl.algorithms",)
"""Modules imported before the parser is built, so that their commands get registered."""


@dataclass(frozen=True)
class Command:
    """A sub-command: ``run(args) -> exit code`` (``None`` means 0).

    ``add_arguments(parser)`` declares its options; for a ``passthrough`` command ``run``
    receives the list of remaining argument strings instead of a namespace.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None] | None
    run: Callable[[Any], int | None]
    passthrough: bool = False


_COMMANDS: dict[str, Command] = {}


def register_command(
    name: str,
    help: str,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None,
    run: Callable[[Any], int | None],
    *,
    passthrough: bool = False,
) -> None:
    """Register sub-command ``name`` (shown in ``mbrl --help`` with ``help``).

    Raises ``ValueError`` if ``name`` is already registered.
    """
    if not isinstance(name, str) or not name or name.startswith("-") or " " in name:
        raise ValueError(f"name: expected a command name like 'pets', got {name!r}")
    if name in _COMMANDS:
        raise ValueError(f"command {name!r} is already registered")
    _COMMANDS[name] = Command(name, help, add_arguments, run, passthrough)


def _load_command_modules() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(module)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per registered command."""
    _load_command_modules()
    parser = argparse.ArgumentParser(
        prog="mbrl",
        description="Model-based RL and optimal control toolkit.",
    )
    parser.add_argument("--version", action="version", version=f"mbrl {mbrl.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for cmd in sorted(_COMMANDS.values(), key=lambda c: c.name):
        if cmd.passthrough:
            p = sub.add_parser(cmd.name, help=cmd.help, add_help=False)
            p.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the command")
        else:
            p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
            if cmd.add_arguments is not None:
                cmd.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code. Bad usage exits via argparse (code 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Passthrough commands get their raw arguments (argparse would reject unknown options).
    if argv and argv[0] in _COMMANDS and _COMMANDS[argv[0]].passthrough:
        return _exit_code(argv[0], _COMMANDS[argv[0]].run(argv[1:]))
    args = parser.parse_args(argv)
    return _exit_code(args.command, _COMMANDS[args.command].run(args))


def _exit_code(name: str, rc: Any) -> int:
    if rc is None:
        return 0
    if isinstance(rc, int):
        return int(rc)
    raise TypeError(f"command {name!r} returned {rc!r}; expected an int exit code or None")


# ------------------------------------------------------------------------------------------
# Built-in commands
# ------------------------------------------------------------------------------------------


def _task_kind(task: Any) -> str:
    if task.is_analytic:
        return "analytic"
    module = getattr(task.env_factory, "__module__", "") or ""
    return "MuJoCo" if "mujoco" in module.lower() else "simulator"


def _tasks_add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--describe", action="store_true", help="add each task's one-line description"
    )


def _tasks_run(args: argparse.Namespace) -> int:
    import envs

    header = ["name", "obs_dim", "act_dim", "episode_len", "kind", "actions"]
    if args.describe:
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
        row = [
            name,
            str(task.obs_dim),
            str(task.act_dim),
            str(task.max_episode_steps),
            _task_kind(task),
            actions,
        ]
        if args.describe:
            row.append(task.description)
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows] if i < len(r)) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
    if not rows:
        print("(no tasks registered)")
    return 1 if failures else 0


def _demo_run(argv: list[str]) -> int | None:
    from mbrl.demo import run_demo

    return run_demo(argv)


register_command("tasks", "list the registered tasks", _tasks_add_arguments, _tasks_run)
register_command(
    "demo",
    "run the end-to-end demo (mbrl demo --help for its options)",
    None,
    _demo_run,
    passthrough=True,
)
