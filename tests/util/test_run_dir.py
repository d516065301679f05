"""Tests of mbrl.util.run_dir.RunDir and mbrl.util.plotting.plot_curves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
import yaml

from mbrl.util.config import load_config
from mbrl.util.plotting import plot_curves, read_csv_columns
from mbrl.util.run_dir import RunDir


@dataclass
class Inner:
    horizon: int = 10


@dataclass
class RunCfg:
    seed: int = 1
    inner: Inner = field(default_factory=Inner)


def test_layout_and_config(tmp_path):
    cfg = RunCfg(seed=4, inner=Inner(horizon=12))
    with RunDir.create(tmp_path / "runs", "pets", cfg, tensorboard=False) as run:
        assert run.path.parent == tmp_path / "runs"
        assert re.fullmatch(r"pets-\d{8}-\d{6}", run.name)
        assert run.checkpoint_dir.is_dir()
        assert yaml.safe_load(run.config_path.read_text()) == {"seed": 4, "inner": {"horizon": 12}}
        assert load_config(RunCfg, run.config_path) == cfg
        run.logger.log({"ret": 1.0}, step=0)
        assert (run.path / "train.csv").is_file() and (run.path / "metrics.csv").is_file()
        assert run.plot_path("curve") == run.path / "plots" / "curve.png"
        assert run.plot_path("curve.pdf").parent.is_dir()


def test_unique_names_and_dict_or_no_config(tmp_path):
    runs = [RunDir.create(tmp_path, "r", {"a": (1, 2)}, tensorboard=False) for _ in range(3)]
    names = [r.name for r in runs]
    assert len(set(names)) == 3
    assert names[1] == names[0] + "-1" and names[2] == names[0] + "-2"
    assert yaml.safe_load(runs[0].config_path.read_text()) == {"a": [1, 2]}
    for r in runs:
        r.close()
    with RunDir.create(tmp_path, "noconf", None, tensorboard=False) as run:
        assert not run.config_path.exists()


def test_create_errors(tmp_path):
    with pytest.raises(ValueError, match="name"):
        RunDir.create(tmp_path, "a/b")
    with pytest.raises(TypeError, match="config"):
        RunDir.create(tmp_path, "x", config=3)
    assert list(tmp_path.iterdir()) == []  # a failed create leaves nothing behind
    with pytest.raises(FileNotFoundError):
        RunDir.open(tmp_path / "missing")


def test_plot_curves(tmp_path):
    with RunDir.create(tmp_path, "plot", tensorboard=False) as run:
        for step in range(5):
            metrics = {"return": float(step**2)}
            if step >= 2:
                metrics["loss"] = 1.0 / step  # a key appearing later
            run.logger.log(metrics, step=step)
        csv_path = run.logger.csv_path("train")
        cols = read_csv_columns(csv_path)
        assert cols["return"].tolist() == [0.0, 1.0, 4.0, 9.0, 16.0]
        assert cols["loss"][:2].tolist() != cols["loss"][:2].tolist()  # NaN for missing cells
        out = plot_curves(csv_path, "step", ["return", "loss"], run.plot_path("curves"))
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
        out2 = plot_curves([csv_path, csv_path], "step", "return", tmp_path / "two.png")
        assert out2.is_file()
        with pytest.raises(ValueError, match="no column 'retrun'; available columns: step"):
            plot_curves(csv_path, "step", "retrun", tmp_path / "x.png")
        with pytest.raises(FileNotFoundError):
            plot_curves(tmp_path / "none.csv", "step", "return", tmp_path / "x.png")


def test_plot_curves_reference_line_and_integer_ticks(tmp_path):
    from matplotlib.image import imread

    from mbrl.util.plotting import plot_curves

    csv_path = tmp_path / "trial.csv"
    csv_path.write_text("trial,return\n1,-17.0\n2,-7.0\n3,-8.0\n")
    plain = plot_curves(csv_path, "trial", "return", tmp_path / "plain.png")
    marked = plot_curves(
        csv_path,
        "trial",
        "return",
        tmp_path / "marked.png",
        hlines={"random policy": -41.5},
        integer_x=True,
    )
    assert imread(marked).shape == imread(plain).shape
    assert not (imread(marked) == imread(plain)).all()  # the reference line and legend are drawn
