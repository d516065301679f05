"""Tests of the mbrl command line (mbrl.cli)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import envs
from mbrl import cli


def test_tasks_prints_table(capsys):
    assert cli.main(["tasks"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "obs_dim", "act_dim", "episode_len", "kind", "actions"]
    assert set(out[1]) <= {"-", " "}
    names = envs.list_tasks()
    if names:
        rows = {line.split()[0]: line.split() for line in out[2:]}
        assert set(rows) == set(names)
        task = envs.get_task(names[0])
        assert rows[names[0]][1:4] == [
            str(task.obs_dim),
            str(task.act_dim),
            str(task.max_episode_steps),
        ]
    else:
        assert out[2] == "(no tasks registered)"


def test_tasks_describe(capsys):
    assert cli.main(["tasks", "--describe"]) == 0
    assert capsys.readouterr().out.split()[6] == "description"


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["no-such-command"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        cli.main(["tasks", "--bogus"])
    assert info.value.code == 2


def test_algorithms_are_imported_lazily():
    """Building the parser or listing tasks imports no algorithm module."""
    code = (
        "import sys; from mbrl import cli; cli.build_parser(); cli.main(['tasks']);"
        "bad = [m for m in sys.modules if m.startswith('mbrl.algorithms.')]; print(bad)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_every_algorithm_entry_loads():
    for name, algo in cli.ALGORITHMS.items():
        config_cls, runner = algo.load()
        assert callable(runner) and config_cls.__name__.lower().startswith(name)


def _module_imports(path: Path, package_root: Path) -> set[str]:
    """Modules of this project that ``path`` imports at module level (not inside functions,
    not under ``TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in ("mbrl", "control", "envs")}


def test_no_import_cycles_and_layering():
    root = Path(__file__).resolve().parents[2]
    modules = {}
    for pkg in ("mbrl", "control", "envs"):
        for path in (root / pkg).rglob("*.py"):
            rel = path.relative_to(root).with_suffix("")
            name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            modules[name] = path
    graph = {
        name: {m for m in _module_imports(path, root) if m in modules and m != name}
        for name, path in modules.items()
    }
    # control/ and envs/ import nothing from mbrl/; no algorithm imports the CLI
    for name, deps in graph.items():
        if name.split(".")[0] in ("control", "envs"):
            assert not {d for d in deps if d.startswith("mbrl")}, name
        if name.startswith("mbrl.algorithms"):
            assert "mbrl.cli" not in deps, name
    # no cycle among module-level imports (a package's __init__ importing its own modules
    # is not a cycle through the package itself)
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if node.startswith(dep + "."):
                continue  # a module importing its own package
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, node, dep]))
            if state.get(dep) is None:
                visit(dep, [*stack, node])
        state[node] = 2

    for name in sorted(graph):
        if state.get(name) is None:
            visit(name, [])


def test_resume_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert cli.main(["resume", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("mbrl resume: ")


def test_python_dash_m_mbrl():
    proc = subprocess.run(
        [sys.executable, "-m", "mbrl", "--version"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.startswith("mbrl ")


def test_overrides_may_stand_before_and_after_options():
    """``mbrl pets --task T planner=icem --run-root R seed=3`` keeps both overrides, in order."""
    argv = ["pets", "--task", "cartpole-swingup", "planner=icem", "--run-root", "r", "seed=3"]
    args = cli.parse_command(argv)
    assert args.overrides == ["planner=icem", "seed=3"] and args.run_root == "r"
    args = cli.parse_command(["resume", "runs/x", "num_trials=20", "seed=1"])
    assert args.overrides == ["num_trials=20", "seed=1"]
    with pytest.raises(SystemExit) as exc:  # an unknown option is still refused
        cli.parse_command(["pets", "seed=3", "--run-root", "r", "--bogus"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):  # so is a stray word among late overrides
        cli.parse_command(["pets", "seed=1", "--run-root", "r", "seed=3", "oops"])
    with pytest.raises(SystemExit):  # and KEY=VALUE for a command without overrides
        cli.parse_command(["tasks", "--describe", "x=1"])
