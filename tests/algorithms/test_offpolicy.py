"""SAC and MBPO run loops (mbrl.algorithms.offpolicy): learning on InvertedPendulum, exact
resume after a crash, config errors that name the field, the command line."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch

import envs
from mbrl.algorithms import offpolicy
from mbrl.algorithms.offpolicy import MBPOConfig, SACRunConfig, run_mbpo, run_sac
from mbrl.cli import main as cli_main
from mbrl.data import collect_episode
from mbrl.util.checkpoint import Checkpointer
from mbrl.util.config import ConfigError, load_config
from mbrl.util.lifecycle import STATE_FILE, SetupError

SMALL = [
    "task=inverted-pendulum",
    "progress=false",
    "agent.hidden=64",
    "model.hidden=64",
    "model.num_layers=2",
    "model.max_epochs=5",
    "rollout_batch_size=400",
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cfg(tmp_path, *extra: str) -> MBPOConfig:
    return load_config(MBPOConfig, None, [*SMALL, f"run_root={tmp_path}", *extra])


def _random_eval_return(cfg: MBPOConfig) -> float:
    """The random policy's mean return on the evaluation's start states."""
    task = envs.get_task(cfg.task)
    env, rng = task.make_env(), np.random.default_rng(0)
    low, high = task.action_low, task.action_high
    returns = [
        collect_episode(
            env,
            lambda obs: rng.uniform(low, high).astype(np.float32),
            max_steps=task.max_episode_steps,
            reset_seed=cfg.seed + offpolicy.EVAL_SEED_OFFSET + i,
        )[0]
        for i in range(cfg.eval_episodes)
    ]
    env.close()
    return float(np.mean(returns))


def test_short_mbpo_run_beats_the_random_policy(tmp_path):
    cfg = _cfg(
        tmp_path,
        "total_steps=1500",
        "initial_random_steps=300",
        "updates_per_step=4",
        "eval_every=1500",
        "eval_episodes=3",
    )
    result = run_mbpo(cfg)
    random_return = _random_eval_return(cfg)
    assert result.eval_steps == [1500] and result.env_steps == 1500
    assert result.updates == 4 * 1201
    assert result.eval_returns[-1] > 2 * random_return, (result.eval_returns, random_return)
    run = result.run_dir
    model_rows = (run / "model.csv").read_text().splitlines()
    assert len(model_rows) == 1 + 1500 // 250  # a retrain and rollouts every 250 steps
    header = model_rows[0].split(",")
    assert {"rollout_length", "fraction_terminated", "fraction_dropped"} <= set(header)
    assert (run / "sac.csv").is_file() and result.plot_path is not None
    # the wall-time split: positive, and together within the run's wall time
    with open(run / "model.csv", newline="") as f:
        model = list(csv.DictReader(f))
    with open(run / "sac.csv", newline="") as f:
        sac = list(csv.DictReader(f))
    train = [float(r["train_seconds"]) for r in model]
    rollout = [float(r["rollout_seconds"]) for r in model]
    updates = [float(r["update_seconds"]) for r in sac]
    assert min(train) > 0 and min(rollout) > 0 and min(updates) > 0
    assert all(float(r["model_steps_per_second"]) > 0 for r in model)
    assert sum(train) + sum(rollout) + sum(updates) < result.wall_time


def test_mbpo_trains_its_model_on_the_rows_the_task_keeps(tmp_path, monkeypatch):
    """The model rounds hand the task to ``train_on_buffer``, so its ``model_data_fn`` (the
    InvertedPendulum rail filter) decides which real transitions the model learns."""
    seen = []

    def recording(cfg, trainer, buffer, task=None):
        seen.append(task)
        return original(cfg, trainer, buffer, task)

    original = offpolicy.train_on_buffer
    monkeypatch.setattr(offpolicy, "train_on_buffer", recording)
    cfg = _cfg(tmp_path, "total_steps=500", "initial_random_steps=250", "updates_per_step=1")
    run_mbpo(cfg)
    assert len(seen) == 2
    assert all(t is not None and t.model_data_fn is not None for t in seen)


def _crash_after(monkeypatch, checkpoints: int) -> None:
    """Make the run raise right after its ``checkpoints``-th checkpoint (as a kill would)."""
    original, count = offpolicy.write_checkpoint, [0]

    def writing(*args, **kwargs):
        path = original(*args, **kwargs)
        count[0] += 1
        if count[0] == checkpoints:
            raise KeyboardInterrupt("simulated kill")
        return path

    monkeypatch.setattr(offpolicy, "write_checkpoint", writing)


@pytest.mark.parametrize("algorithm", ["sac", "mbpo"])
def test_a_crashed_run_resumes_to_the_same_result(tmp_path, monkeypatch, algorithm):
    extra = [
        "total_steps=700",
        "initial_random_steps=100",
        "updates_per_step=2",
        "eval_every=350",
        "eval_episodes=2",
        "checkpoint_every=100",
        "model_train_freq=100",
    ]
    if algorithm == "sac":
        cls, run = SACRunConfig, run_sac
        extra = [e for e in extra if not e.startswith("model_")]
        base = [s for s in SMALL if not s.startswith(("model.", "rollout"))]
    else:
        cls, run, base = MBPOConfig, run_mbpo, SMALL
    cfg = load_config(cls, None, [*base, *extra, f"run_root={tmp_path / 'a'}"])
    whole = run(cfg)
    cfg = load_config(cls, None, [*base, *extra, f"run_root={tmp_path / 'b'}"])
    with monkeypatch.context() as m:
        _crash_after(m, 3)
        with pytest.raises(KeyboardInterrupt):
            run(cfg)
    (crashed,) = (tmp_path / "b").iterdir()
    resumed = run(cfg, resume=crashed)
    assert resumed.eval_returns == whole.eval_returns
    assert resumed.episode_returns == whole.episode_returns
    assert resumed.updates == whole.updates
    states = [
        torch.load(Checkpointer(r.run_dir / "checkpoints", algorithm).latest() / STATE_FILE)
        for r in (whole, resumed)
    ]
    for key, value in states[0]["agent"]["policy"].items():
        assert torch.equal(value, states[1]["agent"]["policy"][key]), key


@pytest.mark.parametrize(
    "override, match",
    [
        ("real_ratio=1.5", "real_ratio"),
        ("rollout_schedule=[1, 2, 3]", "rollout_schedule"),
        ("updates_per_step=0", "updates_per_step"),
        ("model.learn_reward=false", "model.learn_reward"),
        ("total_steps=-5", "total_steps"),
    ],
)
def test_bad_settings_name_the_field(tmp_path, override, match):
    with pytest.raises((ConfigError, ValueError), match=match):
        _cfg(tmp_path, override)


def test_a_task_without_termination_fn_is_refused(tmp_path, monkeypatch):
    real = offpolicy.get_task

    def no_termination(name):
        return dataclasses.replace(real(name), termination_fn=None)

    monkeypatch.setattr(offpolicy, "get_task", no_termination)
    with pytest.raises(SetupError, match="termination_fn"):
        run_mbpo(_cfg(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_cli_commands(tmp_path, capsys):
    args = ["--task", "inverted-pendulum", f"run_root={tmp_path}", "progress=false"]
    args += ["total_steps=200", "initial_random_steps=100", "eval_every=100", "eval_episodes=1"]
    assert cli_main(["sac", *args, "agent.hidden=32"]) == 0
    out = capsys.readouterr().out
    assert "env steps  eval return" in out and "run directory" in out
    assert cli_main(["mbpo", *args, "real_ratio=2"]) == 2
    assert "real_ratio" in capsys.readouterr().err
