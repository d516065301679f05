"""PETS loop: run-directory contents, seeding, config errors, the ``mbrl pets`` command."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import yaml

from mbrl.algorithms.pets import PETSConfig, load_pets_config, run_pets
from mbrl.cli import main as cli_main
from mbrl.data import ReplayBuffer
from mbrl.models import DynamicsModel
from mbrl.util.config import ConfigError, list_presets, load_config

TINY = [
    "task=pendulum-swingup",
    "num_trials=2",
    "trial_length=15",
    "initial_random_episodes=1",
    "progress=false",
    "model.num_members=2",
    "model.num_elites=2",
    "model.hidden=16",
    "model.num_layers=2",
    "model.batch_size=16",
    "model.max_epochs=5",
    "planner.name=cem",
    "planner.horizon=5",
    "planner.population=16",
    "planner.num_elites=4",
    "planner.iterations=2",
    "planner.num_particles=2",
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny networks gain nothing from intra-op threads; on a busy CPU they cost up to 10x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(tmp_path, *extra: str) -> PETSConfig:
    return load_config(PETSConfig, None, [*TINY, f"run_root={tmp_path}", *extra])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pets")
    return run_pets(tiny_config(root)), run_pets(tiny_config(root))


def test_run_directory_contents(two_runs):
    result, _ = two_runs
    run = result.run_dir
    assert len(result.returns) == 2 and result.lengths == [15, 15]
    assert all(np.isfinite(result.returns))
    # 1 random episode + 2 trials of 15 steps
    assert result.env_steps == 45
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["task"] == "pendulum-swingup" and cfg["planner"]["horizon"] == 5
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"group", "step", "key", "value"} <= set(rows[0])
    trial_keys = {r["key"] for r in rows if r["group"] == "trial"}
    assert {"return", "plan_time_per_step", "train_mse", "holdout_mse"} <= trial_keys
    model_keys = {r["key"] for r in rows if r["group"] == "model"}
    assert {"train_mse", "holdout_mse", "train_nll", "holdout_nll"} <= model_keys
    logged = [float(r["value"]) for r in rows if r["group"] == "trial" and r["key"] == "return"]
    np.testing.assert_allclose(logged, result.returns, rtol=1e-12)
    # per-trial wide CSV, checkpoints and the learning curve
    assert (run / "trial.csv").is_file()
    ckpt = run / "checkpoints"
    buffer = ReplayBuffer.load(ckpt / "buffer.npz")
    assert len(buffer) == 45
    model = DynamicsModel.load(ckpt / "model.pt")
    assert model.num_members == 2
    assert (ckpt / "pets_state.pt").is_file() and (ckpt / "latest.pt").is_file()
    png = result.plot_path
    assert png is not None and png.parent.parent == run
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_logged_returns_match_the_environment(two_runs):
    """The buffer's rewards of each trial sum to the reported return."""
    result, _ = two_runs
    buffer = ReplayBuffer.load(result.run_dir / "checkpoints" / "buffer.npz")
    episodes = list(buffer.trajectories())
    assert [len(e.reward) for e in episodes] == [15, 15, 15]
    for ep, ret in zip(episodes[1:], result.returns, strict=True):
        assert float(ep.reward.astype(np.float64).sum()) == pytest.approx(ret, rel=1e-5)


def test_same_seed_same_run(two_runs):
    a, b = two_runs
    assert a.run_dir != b.run_dir
    assert a.returns == b.returns
    assert a.random_returns == b.random_returns
    assert a.holdout_losses == b.holdout_losses


def test_different_seed_differs(tmp_path, two_runs):
    c = run_pets(tiny_config(tmp_path, "seed=1", "num_trials=0"))
    assert c.returns == [] and c.plot_path is None
    assert c.random_returns != two_runs[0].random_returns
    assert (c.run_dir / "checkpoints" / "model.pt").is_file()


def test_retrain_every_n_steps(tmp_path):
    r = run_pets(tiny_config(tmp_path, "num_trials=1", "trial_length=10", "train_every=5"))
    # one round after the 10 random steps, then after env steps 15 and 20
    assert len(r.holdout_losses) == 3
    assert r.env_steps == 20


def test_bad_config_keys_list_valid_keys(tmp_path):
    with pytest.raises(ConfigError, match="valid keys at top level: .*num_trials"):
        tiny_config(tmp_path, "trails=3")
    with pytest.raises(ConfigError, match="valid keys at planner: .*horizon"):
        tiny_config(tmp_path, "planner.horizn=3")
    with pytest.raises(ConfigError, match="valid keys at model: .*hidden"):
        tiny_config(tmp_path, "model.hiden=3")


def test_bad_values_raise(tmp_path):
    with pytest.raises(ValueError, match="replan_every: expected an int >= 1"):
        tiny_config(tmp_path, "replan_every=0")
    with pytest.raises(ValueError, match="replan_every: 6 exceeds planner.horizon 5"):
        tiny_config(tmp_path, "replan_every=6")
    with pytest.raises(ValueError, match="initial_random"):
        tiny_config(tmp_path, "initial_random_episodes=0")
    cfg = tiny_config(tmp_path)
    cfg.num_trials = -1
    with pytest.raises(ValueError, match="num_trials"):
        run_pets(cfg)
    with pytest.raises(ValueError, match="discrete"):  # CEM on a discrete task
        run_pets(tiny_config(tmp_path, "task=cartpole-discrete"))
    with pytest.raises(TypeError, match="PETSConfig"):
        run_pets({"task": "pendulum-swingup"})


def test_every_preset_loads():
    names = [n for n in list_presets() if n.startswith("pets_") or n == "demo"]
    assert {"pets_cartpole_swingup", "pets_inverted_pendulum", "demo"} <= set(names)
    for name in names:
        cfg = load_config(PETSConfig, name)
        assert cfg.num_trials >= 1


def test_task_picks_default_preset():
    cfg = load_pets_config("cartpole-swingup", None, ["planner.name=icem"])
    assert cfg.task == "cartpole-swingup"
    assert cfg.planner.name == "icem"
    assert cfg.planner.horizon == load_config(PETSConfig, "pets_cartpole_swingup").planner.horizon


def test_cli_pets_command(tmp_path, capsys):
    args = ["pets", "--preset", "pets_pendulum_swingup", *TINY, "num_trials=1", "trial_length=10"]
    code = cli_main([*args, f"run_root={tmp_path}"])
    assert code == 0
    out = capsys.readouterr().out
    assert "returns per trial" in out and str(tmp_path) in out
    assert cli_main(["pets", "--task", "pendulum-swingup", "trails=1"]) == 2
    assert "valid keys" in capsys.readouterr().err
