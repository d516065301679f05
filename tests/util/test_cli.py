"""Tests of the mbrl command line (mbrl.cli)."""

from __future__ import annotations

import subprocess
import sys

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


def test_register_command_and_passthrough(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_COMMANDS", dict(cli._COMMANDS))
    seen = {}

    def add_args(p):
        p.add_argument("--n", type=int, default=1)

    def run(args):
        seen["n"] = args.n
        return 3

    cli.register_command("toy", "a toy command", add_args, run)

    def run_raw(argv):
        seen["raw"] = argv

    cli.register_command("raw", "raw args", None, run_raw, passthrough=True)
    cli.register_command("weird", "returns a string", None, lambda args: "oops")
    with pytest.raises(ValueError, match="already registered"):
        cli.register_command("toy", "again", None, run)
    with pytest.raises(ValueError, match="name"):
        cli.register_command("-x", "bad", None, run)
    assert cli.main(["toy", "--n", "5"]) == 3 and seen["n"] == 5
    assert cli.main(["raw", "--anything", "k=v"]) == 0 and seen["raw"] == ["--anything", "k=v"]
    with pytest.raises(TypeError, match="command 'weird' returned 'oops'"):
        cli.main(["weird"])
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "toy" in capsys.readouterr().out


def test_demo_dispatches_to_run_demo(monkeypatch):
    import types

    calls = []
    fake = types.ModuleType("mbrl.demo")
    fake.run_demo = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "mbrl.demo", fake)
    assert cli.main(["demo", "--preset", "x", "seed=1"]) == 0
    assert calls == [["--preset", "x", "seed=1"]]


def test_python_dash_m_mbrl():
    proc = subprocess.run(
        [sys.executable, "-m", "mbrl", "--version"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.startswith("mbrl ")
