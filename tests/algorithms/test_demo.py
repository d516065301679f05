"""``mbrl demo`` (run_demo): a shortened run prints per-trial returns and the run directory."""

from __future__ import annotations

import pytest
import torch

from mbrl.algorithms.pets import PETSConfig
from mbrl.demo import run_demo
from mbrl.util.config import load_config

SHORT = [
    "num_trials=1",
    "trial_length=10",
    "progress=false",
    "model.hidden=16",
    "model.max_epochs=3",
    "planner.horizon=4",
    "planner.population=8",
    "planner.num_elites=2",
    "planner.iterations=1",
]


def test_demo_preset_is_pets_cem_on_a_mujoco_task():
    import envs

    cfg = load_config(PETSConfig, "demo")
    assert cfg.planner.name == "cem"
    assert not envs.get_task(cfg.task).is_analytic  # the main job: MPC on a MuJoCo task


def test_run_demo_prints_returns_and_run_dir(tmp_path, capsys):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run_demo(["--run-root", str(tmp_path), *SHORT]) == 0
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert "trial  return" in out
    assert f"run directory: {tmp_path}" in out
    assert "learning_curve.png" in out
    runs = list(tmp_path.iterdir())
    assert len(runs) == 1 and (runs[0] / "plots" / "learning_curve.png").is_file()


def test_run_demo_bad_key(capsys):
    assert run_demo(["num_trails=1"]) == 2
    assert "did you mean 'num_trials'" in capsys.readouterr().err


def test_run_demo_help_exits():
    with pytest.raises(SystemExit) as info:
        run_demo(["--help"])
    assert info.value.code == 0
