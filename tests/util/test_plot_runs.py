"""Tests of mbrl.util.plotting.plot_runs and the ``mbrl plot`` command, on hand-written runs."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from mbrl import cli
from mbrl.util.plotting import group_runs, load_run_curves, mean_std_band, plot_runs


def write_run(root, name, *, seed, planner="cem", returns=(1.0, 2.0, 3.0), steps=None):
    """A run directory as PETS writes it: config.yaml, trial.csv, model.csv."""
    run = root / name
    run.mkdir(parents=True)
    config = {
        "task": "pendulum-swingup",
        "seed": seed,
        "num_trials": len(returns),
        "run_root": str(root),
        "run_name": name,
        "planner": {"name": planner, "horizon": 5},
        "model": {"hidden": 16},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    steps = steps or [10 * (i + 2) for i in range(len(returns))]
    lines = [
        "step,timestamp,trial,return,length,env_steps,plan_time_per_step,train_mse,holdout_mse"
    ]
    for i, (ret, s) in enumerate(zip(returns, steps, strict=True)):
        lines.append(f"{i + 1},0.0,{i + 1},{ret},10,{s},0.002,0.5,{1.0 / (i + 1)}")
    (run / "trial.csv").write_text("\n".join(lines) + "\n")
    model = ["step,timestamp,train_mse,holdout_mse", "10,0.0,0.9,2.0"]
    model += [f"{s},0.0,0.5,{1.0 / (i + 1)}" for i, s in enumerate(steps)]
    (run / "model.csv").write_text("\n".join(model) + "\n")
    (run / "random.csv").write_text("step,timestamp,return,length,env_steps\n0,0.0,-1.0,10,10\n")
    return run


@pytest.fixture
def four_runs(tmp_path):
    """Two settings (planner cem / icem) with two seeds each."""
    return [
        write_run(tmp_path, "cem-0", seed=0, returns=(1.0, 2.0, 3.0)),
        write_run(tmp_path, "icem-0", seed=0, planner="icem", returns=(5.0, 6.0, 7.0)),
        write_run(tmp_path, "cem-1", seed=1, returns=(3.0, 4.0, 9.0)),
        write_run(tmp_path, "icem-1", seed=1, planner="icem", returns=(5.0, 8.0, 7.0)),
    ]


def test_seeds_of_one_setting_form_a_group(four_runs):
    groups = group_runs([load_run_curves(d) for d in four_runs])
    assert [g.label for g in groups] == ["planner.name=cem", "planner.name=icem"]
    assert [[r.run_dir.name for r in g.runs] for g in groups] == [
        ["cem-0", "cem-1"],
        ["icem-0", "icem-1"],
    ]
    assert "seed" not in groups[0].settings and groups[0].settings["planner.horizon"] == 5
    np.testing.assert_array_equal(groups[0].runs[0].random_returns, [-1.0])
    # one setting only: the label is the task
    same = group_runs([load_run_curves(d) for d in four_runs[::2]])
    assert len(same) == 1 and same[0].label == "pendulum-swingup" and len(same[0].runs) == 2


def test_band_is_mean_and_std_over_seeds(four_runs):
    cem = [load_run_curves(four_runs[0]), load_run_curves(four_runs[2])]
    band = mean_std_band([r.trials for r in cem], [r.returns for r in cem], interpolate=False)
    np.testing.assert_array_equal(band.x, [1, 2, 3])
    np.testing.assert_allclose(band.mean, [2.0, 3.0, 6.0])
    np.testing.assert_allclose(band.std, np.std([[1, 2, 3], [3, 4, 9]], axis=0))
    np.testing.assert_array_equal(band.count, [2, 2, 2])


def test_band_interpolates_steps_inside_each_run_only():
    """Runs whose episodes end at different step counts: interpolated, never extrapolated."""
    xs = [np.array([10.0, 30.0]), np.array([20.0, 40.0])]
    ys = [np.array([0.0, 2.0]), np.array([5.0, 7.0])]
    band = mean_std_band(xs, ys, interpolate=True)
    np.testing.assert_array_equal(band.x, [10, 20, 30, 40])
    np.testing.assert_array_equal(band.count, [1, 2, 2, 1])
    np.testing.assert_allclose(band.mean, [0.0, 3.0, 4.0, 7.0])  # (1 + 5) / 2, (2 + 6) / 2
    np.testing.assert_allclose(band.std, [0.0, 2.0, 2.0, 0.0])
    nan_y = mean_std_band([np.array([1.0, 2.0])], [np.array([np.nan, 4.0])], interpolate=False)
    np.testing.assert_array_equal(nan_y.x, [2.0])
    with pytest.raises(ValueError, match="xs, ys"):
        mean_std_band([], [], interpolate=False)


@pytest.mark.parametrize("x", ["env_steps", "trials"])
def test_plot_runs_writes_png_and_svg(four_runs, tmp_path, x):
    result = plot_runs(four_runs, tmp_path / "out" / "cmp.png", x=x, title="t")
    png, svg = result.png, result.svg
    assert [len(g.runs) for g in result.groups] == [2, 2]
    assert png == tmp_path / "out" / "cmp.png" and svg == tmp_path / "out" / "cmp.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert "<svg" in text and text.count("<svg") == 1


def test_cli_plot(four_runs, tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli.main(["plot", *map(str, four_runs), "--out", str(out), "--x", "trials"]) == 0
    printed = capsys.readouterr().out
    assert "planner.name=cem: 2 run(s)" in printed and "planner.name=icem: 2 run(s)" in printed
    assert (tmp_path / "cli.png").is_file() and (tmp_path / "cli.svg").is_file()


def test_cli_plot_errors_in_one_line(four_runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default output, ./curves.png, must not appear
    missing = tmp_path / "nope"
    assert cli.main(["plot", str(four_runs[0]), str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mbrl plot: ") and "nope" in err and err.count("\n") == 1
    (four_runs[1] / "trial.csv").unlink()
    assert cli.main(["plot", str(four_runs[1])]) == 2
    assert "has none of trial.csv, eval.csv" in capsys.readouterr().err
    assert cli.main(["plot", str(four_runs[0]), str(four_runs[0])]) == 2
    assert "more than once" in capsys.readouterr().err
    assert not (tmp_path / "curves.png").exists()


def test_eval_csv_runs_load_and_group_by_seed(tmp_path):
    """SAC/MBPO runs log evaluations to eval.csv: x is the env step of each evaluation."""
    runs = []
    for seed, returns in ((0, (10.0, 20.0, 60.0)), (1, (30.0, 40.0, 80.0))):
        run = tmp_path / f"mbpo-{seed}"
        run.mkdir()
        config = {"task": "hopper", "seed": seed, "run_root": str(tmp_path), "sac": {"lr": 3e-4}}
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        rows = ["step,timestamp,return,return_std,updates"]
        rows += [f"{1000 * (i + 1)},0.0,{r},1.0,0.0" for i, r in enumerate(returns)]
        (run / "eval.csv").write_text("\n".join(rows) + "\n")
        runs.append(run)
    curves = load_run_curves(runs[0])
    np.testing.assert_array_equal(curves.env_steps, [1000.0, 2000.0, 3000.0])
    np.testing.assert_array_equal(curves.trials, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(curves.returns, [10.0, 20.0, 60.0])
    assert np.isnan(curves.plan_time).all() and curves.model_steps.size == 0
    groups = group_runs([load_run_curves(r) for r in runs])
    assert len(groups) == 1 and len(groups[0].runs) == 2
    band = mean_std_band(
        [c.env_steps for c in groups[0].runs], [c.returns for c in groups[0].runs], True
    )
    np.testing.assert_allclose(band.mean, [20.0, 30.0, 70.0])
    np.testing.assert_allclose(band.std, np.std([[10.0, 20.0, 60.0], [30.0, 40.0, 80.0]], axis=0))
    out = tmp_path / "curves"
    assert cli.main(["plot", *map(str, runs), "--out", str(out)]) == 0
    assert (tmp_path / "curves.png").is_file()
