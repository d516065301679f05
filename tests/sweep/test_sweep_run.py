"""Tiny PETS sweeps end to end: ``--backend local`` in the default suite (two seeds, a failing
setting, resume), and the same under a local Ray (slow)."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest

from mbrl import cli
from mbrl.algorithms.pets import PETSConfig, run_pets
from mbrl.sweep import AlgorithmRef, SweepOptions, plan_sweep, run_sweep
from mbrl.sweep.state import find_run_dir, read_status
from mbrl.util.config import config_from_dict
from mbrl.util.plotting import read_csv_columns

TINY = [
    "num_trials=2",
    "trial_length=10",
    "initial_random_episodes=1",
    "model.num_members=2",
    "model.num_elites=2",
    "model.hidden=16",
    "model.num_layers=2",
    "model.batch_size=16",
    "model.max_epochs=3",
    "planner.name=cem",
    "planner.horizon=5",
    "planner.population=16",
    "planner.num_elites=4",
    "planner.iterations=2",
    "planner.num_particles=2",
]


def _csv_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweeps")
    argv = ["sweep", "pets", "--task", "pendulum-swingup", *TINY, "seed=0,1"]
    argv += ["--backend", "local", "--threads-per-trial", "1", "--run-root", str(root)]
    code = cli.main([*argv, "--name", "s"])
    return code, root / "s"


def test_local_two_point_pets_sweep(local_sweep):
    code, sweep_dir = local_sweep
    assert code == 0
    rows = _csv_rows(sweep_dir / "summary.csv")
    assert [(r["trial"], r["seed"], r["status"]) for r in rows] == [
        ("t000-seed=0", "0", "done"),
        ("t001-seed=1", "1", "done"),
    ]
    finals = []
    for r in rows:  # the returns are the run directory's trial.csv
        trial = read_csv_columns(f"{r['run_dir']}/trial.csv")
        assert trial["return"].size == 2 and r["error"] == ""
        assert float(r["final_return"]) == trial["return"][-1]
        assert float(r["best_return"]) == trial["return"].max()
        assert float(r["env_steps"]) == trial["env_steps"][-1]
        assert r["returns_from"] == "trial.csv" and r["run_dir"].startswith(str(sweep_dir))
        finals.append(trial["return"][-1])
    (setting,) = _csv_rows(sweep_dir / "settings.csv")  # the seeds are one setting
    assert (setting["trials"], setting["done"], setting["failed"]) == ("2", "2", "0")
    assert float(setting["final_mean"]) == pytest.approx(np.mean(finals))
    assert float(setting["final_std"]) == pytest.approx(np.std(finals))
    assert (sweep_dir / "returns.png").stat().st_size > 0
    assert "trial t001-seed=1: done" in (sweep_dir / "logs" / "t001-seed=1.log").read_text()


def test_rerunning_a_finished_sweep_reruns_nothing(local_sweep, capsys):
    _, sweep_dir = local_sweep
    done = [p for p in sweep_dir.iterdir() if p.is_dir() and (p / "run.yaml").is_file()]
    stamps = {p: (p / "trial.csv").stat().st_mtime_ns for p in done}
    assert cli.main(["sweep", "--resume", str(sweep_dir), "--backend", "local"]) == 0
    assert "2 trial(s), 2 done, 0 to run" in capsys.readouterr().out
    after = [p for p in sweep_dir.iterdir() if p.is_dir() and (p / "run.yaml").is_file()]
    assert {p: (p / "trial.csv").stat().st_mtime_ns for p in after} == stamps


def test_an_interrupted_trial_resumes_from_its_checkpoint(tmp_path):
    algo = cli.ALGORITHMS["pets"]
    ref = AlgorithmRef("pets", algo.module, algo.config, algo.runner)
    sweep_dir, plan = plan_sweep(
        ref, None, ["task=pendulum-swingup"], [*TINY, "seed=3"], run_root=tmp_path, name="s"
    )
    (spec,) = plan.trials
    # the trial's own run, stopped after its first MPC trial (as a kill after a checkpoint)
    cfg = config_from_dict(PETSConfig, spec.config)
    first = run_pets(dataclasses.replace(cfg, num_trials=1))
    assert find_run_dir(sweep_dir, spec.name) == first.run_dir
    before = _csv_rows(first.run_dir / "trial.csv")
    summary = run_sweep(sweep_dir, SweepOptions(backend="local", threads_per_trial=1))
    (row,) = summary.trials
    assert row.status == "done" and row.run_dir == str(first.run_dir)
    log = (sweep_dir / "logs" / f"{spec.name}.log").read_text()
    assert f"resuming {first.run_dir}" in log
    after = _csv_rows(first.run_dir / "trial.csv")
    assert [r["trial"] for r in after] == ["1.0", "2.0"] and after[0] == before[0]
    assert read_status(sweep_dir, spec.name).status == "done"


@pytest.mark.slow
def test_local_ray_sweep_two_points(tmp_path):
    pytest.importorskip(
        "ray.tune", reason="Ray Tune not installed (pip install -e '.[distributed]')"
    )
    argv = ["sweep", "pets", "--task", "pendulum-swingup", *TINY, "seed=0"]
    argv += ["device=cpu,cuda:99", "--run-root", str(tmp_path), "--name", "r"]
    assert cli.main(argv) == 1
    sweep_dir = tmp_path / "r"
    ok, failed = _csv_rows(sweep_dir / "summary.csv")
    assert ok["status"] == "done" and failed["status"] == "error"
    assert failed["error"].startswith("SetupError: device: 'cuda:99'")
    trial = read_csv_columns(f"{ok['run_dir']}/trial.csv")
    assert float(ok["final_return"]) == trial["return"][-1]
    assert any((sweep_dir / "ray").iterdir())  # Ray Tune's own records
    # resuming runs only the failed trial again, under Ray too
    assert cli.main(["sweep", "--resume", str(sweep_dir)]) == 1
    assert read_status(sweep_dir, ok["trial"]).status == "done"


FAKE_ALGORITHM = """
import os
from dataclasses import dataclass
from pathlib import Path

from mbrl.util.lifecycle import RunSettings, open_run


@dataclass
class FakeConfig(RunSettings):
    mode: str = "ok"


@dataclass(frozen=True)
class FakeResult:
    run_dir: Path


def run_fake(cfg, resume=None):
    run, _ = open_run(cfg, "fake", cfg.run_name or "fake", resume)
    with run:
        for step in (1, 2):
            run.logger.log({"return": 10.0 * step + cfg.seed}, step, group="episode")
    if cfg.mode == "raise":
        raise RuntimeError("boom in the run")
    if cfg.mode == "exit":
        os._exit(3)  # dies without a word, as a killed process
    return FakeResult(run.path)
"""


def test_a_crashing_trial_is_recorded_and_the_others_go_on(tmp_path, monkeypatch):
    """Trials that raise, or whose process dies, fail alone (a fake algorithm, for speed)."""
    (tmp_path / "fake_algorithm.py").write_text(FAKE_ALGORITHM)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    ref = AlgorithmRef("fake", "fake_algorithm", "FakeConfig", "run_fake")
    sweep_dir, _ = plan_sweep(
        ref, None, ["task=pendulum-swingup"], ["mode=exit,raise,ok"], run_root=tmp_path, name="f"
    )
    lines = []
    summary = run_sweep(sweep_dir, SweepOptions(backend="local", threads_per_trial=1), lines.append)
    died, raised, ok = summary.trials
    assert died.status == "error" and died.error.startswith("trial process exited with code 3")
    assert raised.status == "error" and raised.error == "RuntimeError: boom in the run"
    assert raised.final_return == 20.0  # its logs are read all the same
    assert ok.status == "done" and (ok.final_return, ok.best_return) == (20.0, 20.0)
    assert ok.returns_from == "episode.csv"
    text = "\n".join(lines)
    assert "FAILED: trial process exited with code 3" in text and "FAILED: RuntimeError" in text
    assert "Traceback" in (sweep_dir / "logs" / f"{raised.name}.log").read_text()
