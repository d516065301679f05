"""Videos: frame rate, writers, the GL back end choice, MuJoCo frames, ``mbrl video`` and
``record_video_every``. Tests that render skip, with the reason, where no back end works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import envs
from mbrl.algorithms.offpolicy import SACRunConfig, run_sac
from mbrl.algorithms.pets import PETSConfig, run_pets
from mbrl.algorithms.playback import load_saved_policy
from mbrl.cli import main as cli_main
from mbrl.data import collect_episode
from mbrl.util import video
from mbrl.util.config import load_config
from mbrl.util.lifecycle import SetupError
from mbrl.util.plotting import NON_SETTING_KEYS
from mbrl.util.video import (
    EpisodeRecorder,
    RenderError,
    VideoWriter,
    frame_skip,
    make_render_env,
    record_episodes,
    select_gl_backend,
)

ROOT = Path(__file__).resolve().parents[2]

TINY_PETS = [
    "task=reacher",
    "num_trials=2",
    "trial_length=10",
    "initial_random_episodes=1",
    "progress=false",
    "model.num_members=2",
    "model.num_elites=2",
    "model.hidden=16",
    "model.num_layers=2",
    "model.batch_size=16",
    "model.max_epochs=2",
    "planner.name=cem",
    "planner.horizon=3",
    "planner.population=8",
    "planner.num_elites=2",
    "planner.iterations=1",
    "planner.num_particles=1",
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def gl_backend() -> str:
    """The working offscreen back end, or skip naming why there is none."""
    try:
        return select_gl_backend()
    except RenderError as exc:
        pytest.skip(f"no offscreen OpenGL back end: {exc}")


def test_frame_skip_plays_in_real_time_at_most_max_fps():
    assert frame_skip(0.02) == (2, 25.0)  # reacher: 50 steps/s
    assert frame_skip(0.05) == (1, 20.0)  # half-cheetah: 20 steps/s
    k, fps = frame_skip(0.008)  # hopper: 125 steps/s
    assert (k, fps) == (5, pytest.approx(25.0))
    assert frame_skip(None) == (1, 30.0)
    for dt in (0.001, 0.0125, 0.04, 1 / 30, 0.5):
        k, fps = frame_skip(dt)
        assert fps <= video.MAX_FPS + 1e-9 and fps * k * dt == pytest.approx(1.0)


def _colour(i: int) -> np.ndarray:
    frame = np.zeros((32, 48, 3), np.uint8)
    frame[..., i % 3] = 200
    return frame


def test_gif_writer_round_trip_and_atomic(tmp_path):
    path = tmp_path / "sub" / "clip.gif"
    with VideoWriter(path, fps=20) as w:
        for i in range(4):
            w.append(_colour(i))
    frames = iio.imread(path, index=None)
    assert frames.shape == (4, 32, 48, 3)
    for i in range(4):
        np.testing.assert_allclose(frames[i], _colour(i), atol=8)
    assert iio.immeta(path)["duration"] == 50  # ms per frame at 20 fps
    assert sorted(p.name for p in path.parent.iterdir()) == ["clip.gif"]


def test_mp4_writer_round_trip(tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="MP4 needs imageio-ffmpeg (the video extra)")
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=25) as w:
        for i in range(6):
            w.append(_colour(i))
    frames = iio.imread(path, index=None)
    assert frames.shape == (6, 32, 48, 3)
    for i in range(6):  # lossy codec: each frame's dominant channel survives
        assert int(np.argmax(frames[i].reshape(-1, 3).mean(axis=0))) == i % 3


def test_mp4_without_imageio_ffmpeg_says_how_to_install(tmp_path, monkeypatch):
    real = video.importlib.util.find_spec
    monkeypatch.setattr(
        video.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "imageio_ffmpeg" else real(name, *a),
    )
    with pytest.raises(RenderError, match=r"pip install 'mbrl-toolkit\[video\]'"):
        VideoWriter(tmp_path / "clip.mp4", fps=10)
    assert video.default_suffix() == ".gif"


def test_writer_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "clip.gif"
    with pytest.raises(ZeroDivisionError), VideoWriter(path, fps=10) as w:
        w.append(_colour(0))
        _ = 1 / 0
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RenderError, match="no frames"), VideoWriter(path, fps=10):
        pass
    assert list(tmp_path.iterdir()) == []


def test_writer_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="path: expected a .mp4 or .gif"):
        VideoWriter(tmp_path / "clip.avi", fps=10)
    with pytest.raises(ValueError, match="fps"):
        VideoWriter(tmp_path / "clip.gif", fps=0)
    with VideoWriter(tmp_path / "clip.gif", fps=10) as w:
        with pytest.raises(ValueError, match=r"frame: expected \(H, W, 3\) uint8"):
            w.append(np.zeros((8, 8, 3), np.float32))
        w.append(_colour(1))


def test_no_back_end_says_what_to_install(monkeypatch):
    tried = []

    def broken(name, timeout=0.0):
        tried.append(name)
        return "libEGL.so.1: cannot open shared object file"

    monkeypatch.setattr(video, "probe_gl_backend", broken)
    monkeypatch.setattr(video, "_SELECTED", None)
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    with pytest.raises(RenderError) as info:
        select_gl_backend()
    assert tried == ["egl", "osmesa"]
    message = str(info.value)
    assert "MUJOCO_GL=egl" in message and "MUJOCO_GL=osmesa" in message
    assert "libegl1" in message and "libosmesa6" in message
    assert "MUJOCO_GL" not in os.environ


def test_probe_reports_a_bad_back_end_without_crashing():
    reason = video.probe_gl_backend("no-such-backend", timeout=120)
    assert reason is not None and "no-such-backend" in reason


def test_analytic_task_is_refused_by_name(tmp_path):
    with pytest.raises(RenderError, match="'pendulum-swingup' has no MuJoCo model"):
        make_render_env(envs.get_task("pendulum-swingup"))
    cfg = load_config(PETSConfig, None, [*TINY_PETS, "task=cartpole-swingup"])
    cfg.record_video_every, cfg.run_root = 1, str(tmp_path / "runs")
    with pytest.raises(SetupError, match="record_video_every.*'cartpole-swingup'"):
        run_pets(cfg)
    assert not (tmp_path / "runs").exists()  # refused before any run directory


def test_record_video_every_is_checked():
    with pytest.raises(ValueError, match="record_video_every: expected an int >= 0"):
        PETSConfig(record_video_every=-1)


def test_renders_mujoco_frames_without_changing_the_episode(gl_backend, tmp_path):
    """Frames of reacher under a constant torque: right size, moving, and the rendered
    episode's return equals the same episode's on a plain (non-rendering) environment."""
    task = envs.get_task("reacher")
    action = np.array([0.8, -0.5], np.float32)
    result = record_episodes(
        task, lambda obs: action, tmp_path / "r.gif", seed=3, width=96, height=64, max_steps=20
    )
    frames = iio.imread(result.path, index=None)
    k, _ = frame_skip(task.dt)
    assert frames.shape == (result.frames, 64, 96, 3) and result.frames == 1 + 20 // k
    assert frames.std() > 5  # not a blank image
    moved = np.abs(frames[-1].astype(int) - frames[0].astype(int)).max(axis=-1) > 40
    assert moved.sum() >= 10  # the arm moved
    env = task.make_env()
    try:
        ret, n = collect_episode(env, lambda obs: action, max_steps=20, reset_seed=3)
    finally:
        env.close()
    assert result.lengths == (n,) and result.returns[0] == pytest.approx(ret, rel=1e-12)
    assert result.backend == gl_backend


def test_episode_recorder_records_every_nth(gl_backend, tmp_path):
    task = envs.get_task("reacher")
    rec = EpisodeRecorder(2, tmp_path, task.dt, "episode")
    env = make_render_env(task, 32, 32)
    try:
        for number in (1, 2):
            with rec.episode(env, number) as frame:
                collect_episode(
                    env, lambda obs: np.zeros(2), max_steps=5, on_step=lambda s, r: frame(s)
                )
    finally:
        env.close()
    assert [p.name for p in tmp_path.iterdir()] == [rec.path(2).name]
    assert len(iio.imread(rec.path(2), index=None)) == 3  # steps 1, 2, 4 (every 2nd, and the 1st)
    partial = tmp_path / f".episode-0004.tmp-123{rec.suffix}"  # what a kill mid-episode leaves
    partial.write_bytes(b"x")
    assert EpisodeRecorder(2, tmp_path, task.dt, "episode").removed == [partial]
    assert [p.name for p in tmp_path.iterdir()] == [rec.path(2).name]


@pytest.fixture(scope="module")
def pets_result(tmp_path_factory, gl_backend):
    root = tmp_path_factory.mktemp("pets-video")
    cfg = load_config(PETSConfig, None, [*TINY_PETS, f"run_root={root}", "record_video_every=2"])
    return run_pets(cfg)


@pytest.fixture(scope="module")
def pets_run(pets_result):
    return pets_result.run_dir


def test_pets_records_every_second_trial_without_changing_the_run(pets_result, tmp_path):
    names = sorted(p.name for p in (pets_result.run_dir / "videos").iterdir())
    assert names == [f"trial-0002{video.default_suffix()}"]
    plain = run_pets(load_config(PETSConfig, None, [*TINY_PETS, f"run_root={tmp_path}"]))
    assert not (plain.run_dir / "videos").exists()
    assert plain.returns == pets_result.returns and plain.env_steps == pets_result.env_steps
    assert "record_video_every" in NON_SETTING_KEYS  # mbrl plot: same setting as the plain run


def test_mbrl_video_of_a_pets_run(pets_run, tmp_path, capsys):
    out = tmp_path / "play.gif"
    argv = ["video", str(pets_run), "--out", str(out), "--max-steps", "4", "--episodes", "2"]
    argv += ["--size", "40"]
    assert cli_main(argv) == 0
    assert "2 episode(s)" in capsys.readouterr().out
    frames = iio.imread(out, index=None)
    assert frames.shape == (2 * (1 + 4 // 2), 40, 40, 3)
    saved = load_saved_policy(pets_run, PETSConfig)
    assert saved.algorithm == "pets" and saved.step == 2 and saved.reset is not None


def test_mbrl_video_of_a_sac_run_is_the_deterministic_policy(gl_backend, tmp_path, capsys):
    overrides = ["task=inverted-pendulum", "progress=false", "total_steps=40", "eval_every=40"]
    overrides += ["initial_random_steps=20", "eval_episodes=1", "agent.hidden=16"]
    overrides += ["agent.batch_size=8", f"run_root={tmp_path}", "record_video_every=2"]
    result = run_sac(load_config(SACRunConfig, None, overrides))
    run = result.run_dir
    suffix = video.default_suffix()
    episodes = len(result.episode_returns)
    assert episodes >= 2  # random inverted-pendulum episodes end within 40 steps
    recorded = {f"episode-{i:04d}{suffix}" for i in range(2, episodes + 1, 2)}
    assert {p.name for p in (run / "videos").iterdir()} == recorded
    saved = load_saved_policy(run, SACRunConfig)
    obs = np.linspace(-0.1, 0.1, saved.task.obs_dim)
    np.testing.assert_array_equal(saved.act(obs), saved.act(obs))  # deterministic
    assert saved.reset is None and saved.step == 40
    assert cli_main(["video", str(run), "--max-steps", "3", "--size", "32"]) == 0
    written = {p.name for p in (run / "videos").iterdir()} - recorded
    assert written == {f"playback-00000040{suffix}"}


def test_mbrl_video_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["video", str(tmp_path)]) == 2
    assert "no run.yaml" in capsys.readouterr().err


def test_mbrl_video_without_a_back_end_fails_cleanly(pets_run, tmp_path):
    """A process whose MUJOCO_GL cannot work ends with exit code 2 and the install hint."""
    env = {**os.environ, "MUJOCO_GL": "no-such-backend", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mbrl", "video", str(pets_run), "--out", str(tmp_path / "x.gif")]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "libosmesa6" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.gif").exists()
