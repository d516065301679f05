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
# cuda:99 passes the config check but fails when the run starts, on any machine
GRID = ["seed=0,1", "device=cpu,cuda:99"]


def _csv_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweeps")
    argv = ["sweep", "pets", "--task", "pendulum-swingup", *TINY, *GRID]
    argv += ["--backend", "local", "--threads-per-trial", "1", "--run-root", str(root)]
    code = cli.main([*argv, "--name", "s"])
    return code, root / "s"


def test_local_sweep_runs_every_point_and_isolates_failures(local_sweep, capsys):
    code, sweep_dir = local_sweep
    assert code == 1  # a trial failed; the others ran
    rows = _csv_rows(sweep_dir / "summary.csv")
    assert [(r["seed"], r["device"]) for r in rows] == [
        ("0", "cpu"),
        ("0", "cuda:99"),
        ("1", "cpu"),
        ("1", "cuda:99"),
    ]
    assert [r["status"] for r in rows] == ["done", "error", "done", "error"]
    for r in rows[1::2]:
        assert r["error"].startswith("SetupError: device: 'cuda:99'") and r["run_dir"] == ""
    finals = []
    for r in rows[0::2]:  # the returns are the run directory's trial.csv
        trial = read_csv_columns(f"{r['run_dir']}/trial.csv")
        assert trial["return"].size == 2
        assert float(r["final_return"]) == trial["return"][-1]
        assert float(r["best_return"]) == trial["return"].max()
        assert r["returns_from"] == "trial.csv" and r["run_dir"].startswith(str(sweep_dir))
        finals.append(trial["return"][-1])
    cpu, cuda = _csv_rows(sweep_dir / "settings.csv")
    assert (cpu["device"], cpu["trials"], cpu["done"], cpu["failed"]) == ("cpu", "2", "2", "0")
    assert float(cpu["final_mean"]) == pytest.approx(np.mean(finals))
    assert float(cpu["final_std"]) == pytest.approx(np.std(finals))
    assert (cuda["done"], cuda["failed"], cuda["final_mean"]) == ("0", "2", "")
    assert (sweep_dir / "returns.png").stat().st_size > 0
    assert (sweep_dir / "logs" / "t001-seed=0_device=cuda-99.log").is_file()


def test_rerunning_a_sweep_skips_done_trials_and_retries_failed(local_sweep, capsys):
    _, sweep_dir = local_sweep
    done = [p for p in sweep_dir.iterdir() if p.is_dir() and (p / "run.yaml").is_file()]
    stamps = {p: (p / "trial.csv").stat().st_mtime_ns for p in done}
    assert cli.main(["sweep", "--resume", str(sweep_dir), "--backend", "local"]) == 1
    out = capsys.readouterr().out
    assert "4 trial(s), 2 done, 2 to run" in out and out.count("FAILED: SetupError") == 4
    after = [p for p in sweep_dir.iterdir() if p.is_dir() and (p / "run.yaml").is_file()]
    assert sorted(after) == sorted(done)  # no new run directory
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
