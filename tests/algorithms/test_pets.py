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
from mbrl.util.checkpoint import Checkpointer
from mbrl.util.config import ConfigError, list_presets, load_config
from mbrl.util.lifecycle import SetupError

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


def _latest(run):
    found = Checkpointer(run / "checkpoints", kind="pets").latest()
    assert found is not None
    return found


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
    ckpt = _latest(run)
    assert ckpt.name == "ckpt-00000002"  # after the first training (0) and each trial
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "buffer.npz",
        "manifest.json",
        "model.pt",
        "state.pt",
    ]
    buffer = ReplayBuffer.load(ckpt / "buffer.npz")
    assert len(buffer) == 45
    model = DynamicsModel.load(ckpt / "model.pt")
    assert model.num_members == 2
    assert (run / "run.yaml").is_file()
    png = result.plot_path
    assert png is not None and png.parent.parent == run
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_logged_returns_match_the_environment(two_runs):
    """The buffer's rewards of each trial sum to the reported return."""
    result, _ = two_runs
    buffer = ReplayBuffer.load(_latest(result.run_dir) / "buffer.npz")
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
    assert (_latest(c.run_dir) / "model.pt").is_file()


def test_retrain_every_n_steps(tmp_path):
    r = run_pets(tiny_config(tmp_path, "num_trials=1", "trial_length=10", "train_every=5"))
    # one round after the 10 random steps, then after env steps 15 and 20
    assert len(r.holdout_losses) == 3
    assert r.env_steps == 20


def test_bad_config_keys_list_valid_keys(tmp_path):
    with pytest.raises(ConfigError, match="valid keys at top level: .*num_trials"):
        tiny_config(tmp_path, "trails=3")
    with pytest.raises(ConfigError, match="valid keys at planner \\(CEMConfig\\): .*horizon"):
        tiny_config(tmp_path, "planner.horizn=3")
    with pytest.raises(ConfigError, match="valid keys at model \\(ModelConfig\\): .*hidden"):
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


@pytest.mark.parametrize(
    "override, match",
    [
        ("task=no-such-task", "task: .*no-such-task"),
        ("device=cuda:7", "device: 'cuda:7'"),
        ("device=tpu", "device: 'tpu' is not a torch device"),
        ("trial_length=3", "trial_length: at most 3 transitions before the first training"),
    ],
)
def test_setup_errors_leave_no_run_directory(tmp_path, override, match):
    root = tmp_path / "runs"
    with pytest.raises(SetupError, match=match):
        run_pets(tiny_config(root, override))
    assert not root.exists() or list(root.iterdir()) == []


def test_unwritable_run_root(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SetupError, match="run_root: .*not a folder"):
        run_pets(tiny_config(blocker / "runs"))


def test_cli_reports_setup_errors_in_one_line(tmp_path, capsys):
    code = cli_main(["pets", *TINY, "task=no-such-task", f"run_root={tmp_path}"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("mbrl pets: task:") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_resume_continues_and_extends_a_finished_run(tmp_path, capsys):
    first = run_pets(tiny_config(tmp_path, "num_trials=1"))
    cfg = load_config(PETSConfig, first.run_dir / "config.yaml", ["num_trials=2"])
    again = run_pets(cfg, resume=first.run_dir)
    assert again.run_dir == first.run_dir and again.returns[:1] == first.returns
    assert len(again.returns) == 2 and again.env_steps == 45
    with pytest.raises(SetupError, match="not a run directory"):
        run_pets(cfg, resume=tmp_path)
    assert cli_main(["resume", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_corrupted_checkpoint_is_named(tmp_path):
    first = run_pets(tiny_config(tmp_path, "num_trials=1"))
    state = _latest(first.run_dir) / "state.pt"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))
    cfg = load_config(PETSConfig, first.run_dir / "config.yaml")
    with pytest.raises(SetupError, match="state.pt'?: checksum mismatch"):
        run_pets(cfg, resume=first.run_dir)


def test_demo_is_the_demo_preset_through_pets(tmp_path, capsys):
    import envs

    cfg = load_config(PETSConfig, "demo")
    assert cfg.planner.name == "cem"
    assert not envs.get_task(cfg.task).is_analytic  # the main job: MPC on a MuJoCo task
    short = [
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
    assert cli_main(["demo", "--run-root", str(tmp_path), *short]) == 0
    out = capsys.readouterr().out
    assert "trial  return" in out and f"run directory: {tmp_path}" in out
    runs = list(tmp_path.iterdir())
    assert len(runs) == 1 and (runs[0] / "plots" / "learning_curve.png").is_file()
    assert runs[0].name.startswith("demo-pets-reacher")


@pytest.mark.parametrize(
    "override, match",
    [
        ("num_trials=-1", "num_trials"),
        ("model.hidden=-3", "hidden"),
        ("model.num_elites=9", "num_elites"),
        ("planner.population=0", "population"),
        ("device=cuda:3", "device"),
        ("task=nope", "task"),
        ("trial_length=2", "trial_length"),
    ],
)
def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, capsys, override, match):
    code = cli_main(["pets", *TINY, f"run_root={tmp_path}", override])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("mbrl pets: ") and err.count("\n") == 1 and match in err
    assert list(tmp_path.iterdir()) == []
