"""Kill and resume: a PETS run SIGKILLed at random moments (and inside a checkpoint write),
resumed each time, ends with the same per-trial returns and model weights as a run that was
never stopped, loses at most one episode per kill, and logs no row twice."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mbrl.util.checkpoint import Checkpointer
from mbrl.util.lifecycle import STATE_FILE

TINY = [
    "--task",
    "pendulum-swingup",
    "seed=3",
    "num_trials=6",
    "trial_length=30",
    "progress=false",
    "model.num_members=3",
    "model.num_elites=3",
    "model.hidden=16",
    "model.num_layers=2",
    "model.max_epochs=4",
    "planner.horizon=5",
    "planner.population=16",
    "planner.num_elites=4",
    "planner.iterations=2",
    "planner.num_particles=2",
]

# Runs the CLI; with KILL_AT_HASH=k the process SIGKILLs itself while hashing the k-th
# checkpoint file, i.e. in the middle of a checkpoint write (state.pt written, buffer not).
DRIVER = """
import os, signal, sys
import mbrl.util.checkpoint as ck
k = int(os.environ.get("KILL_AT_HASH", "0"))
if k:
    original, calls = ck._sha256, [0]
    def hashing(path):
        calls[0] += 1
        if calls[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(path)
    ck._sha256 = hashing
from mbrl.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MBRL_NO_PROGRESS="1")
    env.update(extra)
    return env


def _cli(args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, *args],
        env=_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _run_dir(root: Path) -> Path | None:
    found = sorted(root.glob("pets-*"))
    return found[0] if found else None


def _trial_returns(run: Path) -> list[str]:
    path = run / "trial.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1)), "duplicated trials"
    return [r["return"] for r in rows]


def _wait_for_progress(proc: subprocess.Popen, run: Path | None, logged: int) -> None:
    """Wait until ``proc`` logged a trial beyond the first ``logged`` (or ended)."""
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        found = run if run is not None else None
        if found is None:
            time.sleep(0.05)
            continue
        if len(_trial_returns(found)) > logged:
            return
        time.sleep(0.05)


def _latest_step(run: Path) -> int | None:
    found = Checkpointer(run / "checkpoints", kind="pets").latest()
    return None if found is None else int(found.name.split("-")[1])


def _final_model(run: Path) -> dict[str, torch.Tensor]:
    latest = Checkpointer(run / "checkpoints", kind="pets").latest()
    assert latest is not None
    return torch.load(latest / STATE_FILE, weights_only=True)["model"]


def _metric_keys(run: Path) -> list[tuple[str, str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return sorted((r["group"], r["step"], r["key"]) for r in csv.DictReader(f))


@pytest.mark.timeout(600)
def test_killed_and_resumed_run_equals_uninterrupted_run(tmp_path):
    ref_root, root = tmp_path / "ref", tmp_path / "killed"
    proc = _cli(["pets", *TINY, "--run-root", str(ref_root)])
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    ref = _run_dir(ref_root)
    assert ref is not None and len(_trial_returns(ref)) == 6
    with open(ref / "trial.csv", newline="") as f:
        stamps = [float(r["timestamp"]) for r in csv.DictReader(f)]
    ref_seconds_per_trial = (stamps[-1] - stamps[0]) / (len(stamps) - 1)

    rng = random.Random(0)
    kills, resumes = 0, 0
    # 1. the first start is killed inside its second checkpoint write (after trial 1; three
    #    files per checkpoint: the 5th hash is in the second one);
    # 2. three resumes are killed at a random moment after they made progress (a new trial
    #    logged: the machine's load must not decide whether anything happens);
    # 3. the last resume runs to the end.
    plan = [{"KILL_AT_HASH": "5"}, {}, {}, {}, None]
    for extra in plan:
        run = _run_dir(root)
        args = ["pets", *TINY, "--run-root", str(root)] if run is None else ["resume", str(run)]
        resumes += run is not None
        proc = _cli(args, **(extra or {}))
        if extra is None:
            assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
            break
        if not extra:
            _wait_for_progress(proc, run, len(_trial_returns(run)) if run else 0)
            time.sleep(rng.uniform(0.0, ref_seconds_per_trial))
            proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=300)
        assert code in (0, -signal.SIGKILL), proc.stderr.read().decode()
        kills += code == -signal.SIGKILL
        run = _run_dir(root)
        assert run is not None
        logged, saved = len(_trial_returns(run)), _latest_step(run)
        # At most the episode whose checkpoint the kill prevented is lost: the rows logged
        # past the checkpoint are redone (and rewound from the logs).
        assert saved is not None and logged - saved <= 1
        print(f"kill {kills}: trials logged {logged}, in the latest checkpoint {saved}")
    run = _run_dir(root)
    assert run is not None and kills >= 2 and resumes >= 2
    assert _trial_returns(run) == _trial_returns(ref)  # bit for bit (repr of the floats)
    ref_model, model = _final_model(ref), _final_model(run)
    assert ref_model.keys() == model.keys()
    assert all(torch.equal(ref_model[k], model[k]) for k in ref_model)
    assert _metric_keys(run) == _metric_keys(ref)  # no row logged twice, none missing
    leftovers = [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert len(Checkpointer(run / "checkpoints", kind="pets").list()) == 3  # keep_checkpoints
    print(f"{kills} kills, {resumes} resumes; returns equal bit for bit: {_trial_returns(run)}")


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_over(tmp_path):
    proc = _cli(["pets", *TINY, "--run-root", str(tmp_path)], KILL_AT_HASH="1")
    assert proc.wait(timeout=300) == -signal.SIGKILL
    run = _run_dir(tmp_path)
    assert run is not None and _latest_step(run) is None
    assert any(p.name.startswith(".tmp-") for p in (run / "checkpoints").iterdir())
    time.sleep(0.01)
    proc = _cli(["resume", str(run), "num_trials=1"])
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    assert len(_trial_returns(run)) == 1
    assert not any(p.name.startswith(".") for p in (run / "checkpoints").iterdir())
