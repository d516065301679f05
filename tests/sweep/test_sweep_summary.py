"""Sweep results from hand-made run directories: which log the returns come from, the rows of
summary.csv and settings.csv (mean and std against numpy), and the plot."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from mbrl.sweep.state import (
    AlgorithmRef,
    SweepPlan,
    TrialSpec,
    TrialStatus,
    find_run_dir,
    write_plan,
    write_status,
)
from mbrl.sweep.summary import TrialRow, aggregate, read_returns, summarize
from mbrl.util.plotting import RETURN_LOGS


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _run_dir(parent, name, returns, log="trial.csv"):
    """A run directory whose ``log`` holds ``returns`` at env steps 10, 20, ..."""
    path = parent / f"{name}-20261202-120000"
    path.mkdir(parents=True)
    (path / "run.yaml").write_text("algorithm: pets\nformat_version: 1\n")
    steps = [10 * (i + 1) for i in range(len(returns))]
    if log == "trial.csv":  # step = trial number, env_steps its own column
        rows = [[i + 1, 0.0, r, s] for i, (r, s) in enumerate(zip(returns, steps, strict=True))]
        _write_csv(path / log, ["step", "timestamp", "return", "env_steps"], rows)
    else:
        rows = [[s, 0.0, r] for r, s in zip(returns, steps, strict=True)]
        _write_csv(path / log, ["step", "timestamp", "return"], rows)
    return path


def test_read_returns_follows_the_shared_table_of_return_logs(tmp_path):
    """The sweep reads the log ``mbrl plot`` reads: trial.csv, then eval.csv, then episode.csv."""
    assert [log.file for log in RETURN_LOGS] == [
        "trial.csv",
        "eval.csv",
        "iteration.csv",
        "episode.csv",
    ]
    run = _run_dir(tmp_path, "a", [1.0, 5.0, 3.0], log="episode.csv")
    curve = read_returns(run)
    assert curve.source == "episode.csv" and curve.x.tolist() == [10, 20, 30]
    _write_csv(run / "eval.csv", ["step", "return"], [[100, -2.0], [200, -1.0]])
    assert read_returns(run).source == "eval.csv"
    _write_csv(run / "trial.csv", ["step", "return", "env_steps"], [[1, 7.0, 50], [2, "", 60]])
    curve = read_returns(run)  # the empty cell (NaN) is dropped
    assert curve.source == "trial.csv" and curve.returns.tolist() == [7.0]
    assert curve.x.tolist() == [50]
    assert read_returns(tmp_path) is None
    _write_csv(run / "trial.csv", ["step", "return"], [[1, 7.0]])
    with pytest.raises(ValueError, match="trial.csv: no column"):
        read_returns(run)


def _row(index, point, status, returns):
    curve = None
    final = best = math.nan
    if returns:
        final, best = returns[-1], max(returns)
    return TrialRow(
        index,
        f"t{index}",
        point,
        status,
        final,
        best,
        math.nan,
        "",
        None,
        None,
        "boom" if status == "error" else None,
        curve,
    )


def test_aggregate_groups_seeds_of_a_setting():
    rows = [
        _row(0, {"planner": "cem", "seed": "0"}, "done", [1.0, 4.0, 2.0]),
        _row(1, {"planner": "cem", "seed": "1"}, "done", [6.0, 3.0]),
        _row(2, {"planner": "icem", "seed": "0"}, "done", [5.0]),
        _row(3, {"planner": "icem", "seed": "1"}, "error", []),
        _row(4, {"planner": "cem", "seed": "2"}, "running", [9.0]),  # unfinished: not counted
    ]
    cem, icem = aggregate(rows)
    assert cem.setting == {"planner": "cem"} and (cem.trials, cem.done, cem.failed) == (3, 2, 0)
    assert cem.final_mean == pytest.approx(np.mean([2.0, 3.0]))
    assert cem.final_std == pytest.approx(np.std([2.0, 3.0]))
    assert cem.best_mean == pytest.approx(np.mean([4.0, 6.0]))
    assert cem.best_std == pytest.approx(np.std([4.0, 6.0]))
    assert (icem.trials, icem.done, icem.failed) == (2, 1, 1)
    assert icem.final_mean == 5.0 and icem.final_std == 0.0 and icem.label == "planner=icem"
    (none,) = aggregate([_row(0, {"seed": "0"}, "error", [])])
    assert none.label == "all trials" and math.isnan(none.final_mean)


def test_summarize_writes_one_row_per_trial_and_per_setting(tmp_path):
    points = [{"lr": lr, "seed": s} for lr in ("0.1", "0.2") for s in ("0", "1")]
    specs = tuple(TrialSpec(i, f"t{i:03d}", p, {}) for i, p in enumerate(points))
    plan = SweepPlan(AlgorithmRef("sac", "m", "C", "run"), ("lr", "seed"), ("mbrl",), specs)
    write_plan(tmp_path, plan)
    returns = {0: [1.0, 3.0], 1: [2.0, 2.5], 2: [0.0, 8.0, 4.0]}
    for i, rets in returns.items():
        run = _run_dir(tmp_path, specs[i].name, rets, log="eval.csv")
        assert find_run_dir(tmp_path, specs[i].name) == run
        write_status(tmp_path, specs[i].name, TrialStatus("done", str(run), wall_time_s=1.5))
    write_status(
        tmp_path, specs[3].name, TrialStatus("error", None, "SetupError: device: 'cuda:9'")
    )
    summary = summarize(tmp_path)
    with open(summary.csv) as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["done", "done", "done", "error"]
    assert [r["lr"] for r in rows] == ["0.1", "0.1", "0.2", "0.2"]
    for i, rets in returns.items():
        assert float(rows[i]["final_return"]) == rets[-1]
        assert float(rows[i]["best_return"]) == max(rets)
        assert float(rows[i]["env_steps"]) == 10 * len(rets)
        assert rows[i]["returns_from"] == "eval.csv"
    assert rows[3]["error"] == "SetupError: device: 'cuda:9'" and rows[3]["final_return"] == ""
    with open(summary.settings_csv) as f:
        settings = list(csv.DictReader(f))
    assert [s["lr"] for s in settings] == ["0.1", "0.2"] and "seed" not in settings[0]
    assert float(settings[0]["final_mean"]) == pytest.approx(np.mean([3.0, 2.5]))
    assert float(settings[0]["final_std"]) == pytest.approx(np.std([3.0, 2.5]))
    assert (settings[1]["done"], settings[1]["failed"], float(settings[1]["best_mean"])) == (
        "1",
        "1",
        8.0,
    )
    assert summary.png.stat().st_size > 0 and summary.svg.read_text().lstrip().startswith("<?xml")


def test_a_damaged_log_is_reported_in_its_row_only(tmp_path):
    specs = tuple(TrialSpec(i, f"t{i:03d}", {"seed": str(i)}, {}) for i in range(2))
    write_plan(tmp_path, SweepPlan(AlgorithmRef("pets", "m", "C", "r"), ("seed",), (), specs))
    for spec, returns in zip(specs, ([1.0, 2.0], [3.0]), strict=True):
        run = _run_dir(tmp_path, spec.name, returns)
        write_status(tmp_path, spec.name, TrialStatus("done", str(run)))
    (Path(run) / "trial.csv").write_text("step,return\n1,oops\n")
    good, bad = summarize(tmp_path).trials
    assert good.final_return == 2.0 and good.error is None
    assert bad.status == "done" and math.isnan(bad.final_return)
    assert "returns not readable" in bad.error and "not a number: 'oops'" in bad.error


def test_one_driver_per_sweep(tmp_path):
    import os
    import socket

    from mbrl.sweep.state import SweepBusy, driver_lock

    lock = tmp_path / "driver.lock"
    with driver_lock(tmp_path):
        assert lock.read_text() == f"{socket.gethostname()} {os.getpid()}"
        with (
            pytest.raises(SweepBusy, match=f"another mbrl sweep .*{os.getpid()}"),
            driver_lock(tmp_path),
        ):
            pass
    assert not lock.exists()
    lock.write_text(f"{socket.gethostname()} 4194305")  # above any pid_max: a dead driver
    with driver_lock(tmp_path):
        assert lock.read_text().endswith(str(os.getpid()))
    lock.write_text("another-host 1")
    with pytest.raises(SweepBusy, match="another-host 1.*remove"), driver_lock(tmp_path):
        pass
    assert lock.read_text() == "another-host 1"


def test_gps_runs_are_read_from_iteration_csv(tmp_path):
    """GPS logs the distilled policy's return per iteration in iteration.csv."""
    run = tmp_path / "gps-run"
    run.mkdir()
    rows = ["step,timestamp,iteration,policy_return,teacher_return"]
    rows += [f"{i},0.0,{i}.0,{r},-360.0" for i, r in ((1, -900.0), (2, -400.0), (3, -370.0))]
    (run / "iteration.csv").write_text("\n".join(rows) + "\n")
    curve = read_returns(run)
    assert curve.source == "iteration.csv"
    np.testing.assert_array_equal(curve.x, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(curve.returns, [-900.0, -400.0, -370.0])
