"""Tests of mbrl.util.progress.progress."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tqdm import tqdm

import mbrl.util.progress as progress_module
from mbrl.util.progress import LogProgress, progress


def test_iterates_int_and_iterable_and_shows_postfix():
    out = io.StringIO()
    bar = progress(3, "train", file=out, mininterval=0)
    seen = []
    for i in bar:
        seen.append(i)
        bar.set_postfix(ret=1.5, loss=0.25)
    bar.close()
    assert seen == [0, 1, 2]
    text = out.getvalue()
    assert "train" in text and "ret=1.5" in text and "loss=0.25" in text and "3/3" in text
    assert list(progress(["a", "b"], "x", file=io.StringIO())) == ["a", "b"]


def test_manual_total():
    out = io.StringIO()
    with progress(None, "steps", total=10, file=out, mininterval=0) as bar:
        bar.update(4)
        bar.update(6)
    assert "10/10" in out.getvalue()


def test_disable_by_env(monkeypatch):
    monkeypatch.setenv("MBRL_NO_PROGRESS", "1")
    out = io.StringIO()
    bar = progress(5, "quiet", file=out, disable=False)
    assert list(bar) == [0, 1, 2, 3, 4]
    assert out.getvalue() == ""
    monkeypatch.setenv("MBRL_NO_PROGRESS", "0")
    out = io.StringIO()
    list(progress(2, "loud", file=out))
    assert "loud" in out.getvalue()


def test_disable_passthrough_and_errors():
    out = io.StringIO()
    list(progress(2, "off", file=out, disable=True))
    assert out.getvalue() == ""
    with pytest.raises(ValueError, match="non-negative"):
        progress(-1)
    with pytest.raises(TypeError, match="bool"):
        progress(True)


# -- off a terminal: plain lines at intervals ------------------------------------------------


class _FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch):
    fake = _FakeClock()
    monkeypatch.setattr(progress_module, "_clock", fake)
    return fake


def test_tty_gets_tqdm_and_a_log_gets_plain_lines(monkeypatch):
    monkeypatch.delenv("MBRL_NO_PROGRESS", raising=False)
    assert isinstance(progress(3, "x", file=_Tty()), tqdm)
    assert isinstance(progress(3, "x", file=io.StringIO()), LogProgress)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # the default stream, not a terminal
    assert isinstance(progress(3, "x"), LogProgress)
    monkeypatch.setattr(sys, "stderr", _Tty())
    assert isinstance(progress(3, "x"), tqdm)


def test_ten_thousand_steps_give_a_handful_of_lines(clock, monkeypatch):
    """100 s of simulated time at 10 s per line: 10 lines and a final one, not 10 000."""
    monkeypatch.delenv("MBRL_PROGRESS_INTERVAL", raising=False)
    out = io.StringIO()
    with progress(None, "PETS", total=10_000, file=out) as bar:
        for step in range(10_000):
            clock.t = (step + 1) / 100  # exact multiples of 10 s
            bar.update(1)
            bar.set_postfix(trial=step // 1000 + 1, ret=f"{step * 0.5:.1f}", refresh=False)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11, lines
    assert "\r" not in out.getvalue()
    assert lines[0].startswith("PETS: 1000/10000 (10%)") and "trial=1, ret=499.0" in lines[0]
    assert lines[-1].startswith("PETS: 10000/10000 (100%)") and "(done)" in lines[-1]
    assert "trial=10, ret=4999.5" in lines[-1]


def test_interval_from_environment(clock, monkeypatch):
    monkeypatch.setenv("MBRL_PROGRESS_INTERVAL", "0")
    out = io.StringIO()
    bar = progress(4, "each", file=out)
    assert len(list(bar)) == 4
    # one line per update, then the final line
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == [
        "each: 1/4 (25%)",
        "each: 2/4 (50%)",
        "each: 3/4 (75%)",
        "each: 4/4 (100%)",
        "each: 4/4 (100%)",
    ]
    monkeypatch.setenv("MBRL_PROGRESS_INTERVAL", "soon")
    with pytest.raises(ValueError, match="MBRL_PROGRESS_INTERVAL"):
        progress(4, "bad", file=io.StringIO())
    monkeypatch.setenv("MBRL_PROGRESS_INTERVAL", "-1")
    with pytest.raises(ValueError, match="MBRL_PROGRESS_INTERVAL"):
        progress(4, "bad", file=io.StringIO())


def test_resumed_count_messages_and_leave(clock, capsys):
    """The PETS loop's use: ``initial=``, ``write`` between updates; the trainer's: leave=False."""
    out = io.StringIO()
    with progress(None, "run", total=100, initial=60, file=out) as bar:
        clock.t += 20.0
        bar.update(20)
        bar.write("trial 4/5: return 12.00")
        bar.update(20)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("run: 80/100 (80%), 1.00it/s, 20 s elapsed, ~20 s left")
    assert lines[-1].startswith("run: 100/100 (100%)") and len(lines) == 2
    assert capsys.readouterr().out == "trial 4/5: return 12.00\n"  # tqdm.write's stream
    out = io.StringIO()
    bar = progress(None, "model", total=None, leave=False, unit="epoch", file=out)
    clock.t += 11.0
    bar.update(1)
    bar.set_postfix({"train_mse": "0.25"})
    bar.close()
    bar.update(1)  # after close: silent
    assert out.getvalue().splitlines() == ["model: 1, 0.09epoch/s, 11 s elapsed"]


def test_disabled_log_bar_still_writes_messages(monkeypatch, capsys):
    monkeypatch.setenv("MBRL_NO_PROGRESS", "1")
    out = io.StringIO()
    with progress(None, "quiet", total=3, file=out) as bar:
        bar.update(3)
        bar.write("message")
    assert out.getvalue() == "" and capsys.readouterr().out == "message\n"


def test_subprocess_with_piped_stderr_prints_a_few_lines():
    """A real non-terminal: 10 000 steps with default settings leave at most a few lines."""
    code = (
        "from mbrl.util.progress import progress\n"
        "with progress(None, 'loop', total=10000) as bar:\n"
        "    for i in range(10000):\n"
        "        bar.update(1)\n"
        "        bar.set_postfix(loss=0.5, refresh=False)\n"
        "    bar.write('a message')\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MBRL_NO_PROGRESS", None)
    env.pop("MBRL_PROGRESS_INTERVAL", None)
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert 1 <= len(lines) <= 5, lines
    assert lines[-1].startswith("loop: 10000/10000 (100%)") and lines[-1].endswith("loss=0.5")
    assert proc.stdout == "a message\n"


def test_pets_loop_off_a_terminal(tmp_path, capsys, monkeypatch):
    """The PETS loop and its ModelTrainer bars print a final line and the per-trial messages."""
    from mbrl.algorithms.pets import PETSConfig, run_pets
    from mbrl.util.config import load_config

    monkeypatch.delenv("MBRL_NO_PROGRESS", raising=False)
    monkeypatch.delenv("MBRL_PROGRESS_INTERVAL", raising=False)
    overrides = [
        "task=pendulum-swingup", "num_trials=2", "trial_length=15", "initial_random_episodes=1",
        "progress=true", "model.num_members=2", "model.num_elites=2", "model.hidden=16",
        "model.num_layers=2", "model.batch_size=16", "model.max_epochs=5", "planner.name=cem",
        "planner.horizon=5", "planner.population=16", "planner.num_elites=4",
        "planner.iterations=2", "planner.num_particles=2", f"run_root={tmp_path}",
    ]  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_pets(load_config(PETSConfig, None, overrides))
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert len(err) <= 6, err  # the loop's final line, a model line only if training takes > 10 s
    assert any(line.startswith("PETS pendulum-swingup: 30/30 (100%)") for line in err), err
    assert "ret=" in err[-1] and "\r" not in captured.err
    assert captured.out.count("trial ") == 2 and "trial 2/2: return" in captured.out
