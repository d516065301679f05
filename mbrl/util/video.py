"""Offscreen videos of MuJoCo tasks: the OpenGL back end, frame writers and episode recording.

MuJoCo renders offscreen through EGL (GPU or Mesa) or OSMesa (software), chosen by the
``MUJOCO_GL`` environment variable, which must be set before the first rendering context is
made. :func:`select_gl_backend` tries ``MUJOCO_GL`` if it is set, else ``egl`` then ``osmesa``;
each is tried in a separate Python process, so a back end that crashes (a missing library can
end in a segfault) cannot take this process down. When none works it raises
:class:`RenderError` saying what to install (Debian/Ubuntu: ``libegl1`` or ``libosmesa6``).

Writers: ``.mp4`` needs ``imageio-ffmpeg`` (the ``video`` extra: ``pip install
'mbrl-toolkit[video]'``); ``.gif`` needs only ``imageio`` (always installed). Files are written
under a temporary name and renamed when complete, so a video file is never partial.

Only MuJoCo tasks render. The analytic tasks (pendulum, cart-pole, linear systems) have no
model to draw: asking for their video raises :class:`RenderError` naming the task.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "GL_BACKENDS",
    "INSTALL_HINT",
    "MAX_FPS",
    "RenderError",
    "VideoResult",
    "VideoWriter",
    "EpisodeRecorder",
    "default_suffix",
    "frame_skip",
    "is_renderable",
    "make_render_env",
    "probe_gl_backend",
    "record_episodes",
    "select_gl_backend",
]

GL_BACKENDS = ("egl", "osmesa")
"""Offscreen OpenGL back ends tried, in this order, when ``MUJOCO_GL`` is not set."""

INSTALL_HINT = (
    "Install an offscreen OpenGL library: EGL (Debian/Ubuntu: apt-get install libegl1 "
    "libgl1; with an NVIDIA GPU its driver provides EGL) or OSMesa (Debian/Ubuntu: "
    "apt-get install libosmesa6), then retry; or set MUJOCO_GL to a back end that works here"
)
"""What to install when no back end works (part of :class:`RenderError`'s message)."""

MAX_FPS = 30
"""Frame rate cap: tasks with shorter steps keep every ``k``-th frame (:func:`frame_skip`)."""

_PROBE_TIMEOUT_S = 120.0
_PROBE = """
import mujoco
m = mujoco.MjModel.from_xml_string(
    '<mujoco><worldbody><light pos="0 0 2"/><geom size="0.1"/></worldbody></mujoco>')
d = mujoco.MjData(m)
mujoco.mj_forward(m, d)
r = mujoco.Renderer(m, 16, 16)
r.update_scene(d)
px = r.render()
assert px.shape == (16, 16, 3), px.shape
r.close()
"""
_SELECTED: str | None = None


class RenderError(RuntimeError):
    """A video cannot be made: no OpenGL back end, a task that cannot render, a missing writer."""


@dataclass(frozen=True)
class VideoResult:
    """A written video.

    Attributes:
        path: the video file.
        episodes: episodes recorded.
        frames: frames written (after :func:`frame_skip`).
        fps: frames per second of the file (real time: ``1 / (dt * skip)``).
        returns: each episode's return.
        lengths: each episode's steps.
        backend: the ``MUJOCO_GL`` back end used.
    """

    path: Path
    episodes: int
    frames: int
    fps: float
    returns: tuple[float, ...]
    lengths: tuple[int, ...]
    backend: str


def probe_gl_backend(name: str, timeout: float = _PROBE_TIMEOUT_S) -> str | None:
    """Try rendering one 16x16 MuJoCo frame with ``MUJOCO_GL=name`` in a child Python process.

    Returns ``None`` when it works, else the reason (the child's last error line, or the signal
    that killed it).
    """
    env = {**os.environ, "MUJOCO_GL": name, "OMP_NUM_THREADS": "1"}
    if name in GL_BACKENDS:
        env["PYOPENGL_PLATFORM"] = name
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"no frame within {timeout:.0f} s"
    if proc.returncode == 0:
        return None
    if proc.returncode < 0:
        return f"the test process was killed by signal {-proc.returncode}"
    lines = [ln.strip() for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {proc.returncode}"


def select_gl_backend() -> str:
    """Pick the offscreen back end and set ``MUJOCO_GL`` (and ``PYOPENGL_PLATFORM``) for it.

    ``MUJOCO_GL`` set by the user is tried alone; otherwise :data:`GL_BACKENDS` in order. The
    choice is remembered for the process. Call it before anything renders: the back end of a
    process is fixed once PyOpenGL is imported.

    Raises:
        RenderError: no back end works; the message lists each one's failure and
            :data:`INSTALL_HINT`.
    """
    global _SELECTED
    if _SELECTED is not None:
        return _SELECTED
    wanted = os.environ.get("MUJOCO_GL", "").strip().lower()
    candidates = (wanted,) if wanted else GL_BACKENDS
    failures = []
    for name in candidates:
        reason = probe_gl_backend(name)
        if reason is None:
            _check_pyopengl(name)
            os.environ["MUJOCO_GL"] = name
            if name in GL_BACKENDS:
                os.environ.setdefault("PYOPENGL_PLATFORM", name)
            _SELECTED = name
            return name
        failures.append(f"MUJOCO_GL={name}: {reason}")
    raise RenderError(
        "no offscreen OpenGL back end works here (" + "; ".join(failures) + "). " + INSTALL_HINT
    )


def _check_pyopengl(name: str) -> None:
    """PyOpenGL fixes its platform when first imported: refuse a mismatch up front."""
    platform = os.environ.get("PYOPENGL_PLATFORM")
    if name in GL_BACKENDS and "OpenGL" in sys.modules and platform not in (None, name):
        raise RenderError(
            f"MUJOCO_GL={name} works here, but this process already imported PyOpenGL for "
            f"PYOPENGL_PLATFORM={platform}; start it with MUJOCO_GL={name} "
            f"PYOPENGL_PLATFORM={name} set"
        )


def is_renderable(task: Any) -> bool:
    """True when ``task`` is a MuJoCo task (its environment can render ``rgb_array`` frames)."""
    from envs.mujoco_tasks.common import EnvFactory

    return isinstance(getattr(task, "env_factory", None), EnvFactory)


def make_render_env(task: Any, width: int = 320, height: int = 320) -> Any:
    """A fresh environment of ``task`` rendering ``(height, width, 3)`` uint8 frames offscreen.

    Selects the GL back end first (:func:`select_gl_backend`). Raises :class:`RenderError`
    naming the task if it is not a MuJoCo task.
    """
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or not 16 <= value <= 4096:
            raise ValueError(f"{name}: expected an int in [16, 4096] pixels, got {value!r}")
    if not is_renderable(task):
        raise RenderError(
            f"task {task.name!r} has no MuJoCo model to render: videos are made of MuJoCo "
            "tasks only (`mbrl tasks`, kind MuJoCo); analytic tasks have no renderer"
        )
    select_gl_backend()
    return task.make_env(render_mode="rgb_array", width=width, height=height)


def frame_skip(dt: float | None, max_fps: float = MAX_FPS) -> tuple[int, float]:
    """``(k, fps)``: keep every ``k``-th step's frame so real-time playback is ``<= max_fps``.

    ``dt`` is the task's seconds per step (``None``: 1/30 s assumed).
    """
    step_fps = 1.0 / dt if dt else 30.0
    k = max(1, math.ceil(step_fps / max_fps - 1e-9))
    return k, step_fps / k


def default_suffix() -> str:
    """``".mp4"`` when ``imageio-ffmpeg`` is installed, else ``".gif"``."""
    return ".mp4" if importlib.util.find_spec("imageio_ffmpeg") is not None else ".gif"


class VideoWriter:
    """Append ``(H, W, 3)`` uint8 frames to an ``.mp4`` or ``.gif`` file, written atomically.

    Use as a context manager: the file appears under its name only when the block ends without
    an exception (it is written to a hidden temporary file first, removed on failure).

    Args:
        path: the video file (suffix ``.mp4`` or ``.gif``).
        fps: frames per second.
    """

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".mp4", ".gif"):
            raise ValueError(f"path: expected a .mp4 or .gif file, got {str(path)!r}")
        if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
            raise RenderError(
                "MP4 needs imageio-ffmpeg: pip install 'mbrl-toolkit[video]' "
                "(or pip install imageio-ffmpeg), or write a .gif"
            )
        if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps: expected a positive number, got {fps!r}")
        self.fps = float(fps)
        self.frames = 0
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp-{os.getpid()}{suffix}")
        self._writer: Any = None

    def __enter__(self) -> VideoWriter:
        import imageio

        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.suffix.lower() == ".gif":
            duration_ms = 10 * max(1, round(100.0 / self.fps))  # GIF delays are in 1/100 s
            self._writer = imageio.get_writer(self._tmp, mode="I", duration=duration_ms, loop=0)
        else:
            self._writer = imageio.get_writer(
                self._tmp, fps=self.fps, codec="libx264", macro_block_size=1, quality=7
            )
        return self

    def append(self, frame: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 frame (all frames of a file share one size)."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"frame: expected (H, W, 3) uint8, got {frame.shape} {frame.dtype.name}"
            )
        self._writer.append_data(frame)
        self.frames += 1

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                writer.close()
        finally:
            if exc_type is None and self.frames > 0:
                os.replace(self._tmp, self.path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    self._tmp.unlink()
        if exc_type is None and self.frames == 0:
            raise RenderError(f"{str(self.path)!r}: no frames were written")


class EpisodeRecorder:
    """Records every ``every``-th training episode of a rendering environment into ``folder``.

    ``every = 0`` records nothing. Episode numbers count from 1, so ``every = 5`` records
    episodes 5, 10, ... as ``<folder>/<prefix>-0005.mp4`` (``.gif`` without imageio-ffmpeg,
    :func:`default_suffix`). The environment must come from :func:`make_render_env`. The
    partial files of a killed run (hidden temporary names) are removed when it is created.

    Args:
        every: record episodes whose number is a multiple of this (``0``: off).
        folder: where the videos go (``<run>/videos``).
        dt: the task's seconds per step (sets :func:`frame_skip` and the frame rate).
        prefix: file name prefix (``"trial"``, ``"episode"``).
    """

    def __init__(self, every: int, folder: str | os.PathLike, dt: float | None, prefix: str):
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"every: expected an int >= 0, got {every!r}")
        self.every = every
        self.folder = Path(folder)
        self.prefix = prefix
        self.skip, self.fps = frame_skip(dt)
        self.suffix = default_suffix()
        self.removed = self.clean()

    def clean(self) -> list[Path]:
        """Remove the partial videos a killed run left in :attr:`folder`; return them."""
        if not self.folder.is_dir():
            return []
        stale = sorted(self.folder.glob(f".{self.prefix}-*.tmp-*"))
        for path in stale:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return stale

    def path(self, number: int) -> Path:
        """The video file of episode ``number``."""
        return self.folder / f"{self.prefix}-{number:04d}{self.suffix}"

    @contextlib.contextmanager
    def episode(self, env: Any, number: int) -> Iterator[Callable[[int], None]]:
        """Context of episode ``number``: yields ``on_step(step)``, to call after each step
        (``step`` counts from 1); it renders ``env`` at step 1 and every :attr:`skip` steps.
        When the episode is not recorded, ``on_step`` does nothing."""
        if not self.every or number % self.every:
            yield lambda step: None
            return
        with VideoWriter(self.path(number), self.fps) as writer:

            def on_step(step: int) -> None:
                if step == 1 or step % self.skip == 0:
                    writer.append(env.render())

            yield on_step


@contextlib.contextmanager
def _closing(env: Any) -> Iterator[Any]:
    try:
        yield env
    finally:
        env.close()


def record_episodes(
    task: Any,
    policy: Callable[[np.ndarray], Any],
    path: str | os.PathLike,
    *,
    episodes: int = 1,
    seed: int = 0,
    reset: Callable[[], None] | None = None,
    width: int = 320,
    height: int = 320,
    max_steps: int | None = None,
) -> VideoResult:
    """Run ``episodes`` episodes of ``policy(obs) -> action`` on MuJoCo ``task`` and write them,
    one after another, to the video ``path`` (``.mp4`` or ``.gif``), in real time.

    Episode ``i`` resets with seed ``seed + i``; ``reset()`` (e.g. ``MPCAgent.reset``) is called
    before each. ``max_steps`` caps each episode (default: the task's ``max_episode_steps``).

    Raises:
        RenderError: ``task`` is not a MuJoCo task, no GL back end works, or MP4 without
            ``imageio-ffmpeg``.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes: expected an int >= 1, got {episodes!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    horizon = task.max_episode_steps if max_steps is None else max_steps
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"max_steps: expected an int >= 1, got {max_steps!r}")
    skip, fps = frame_skip(task.dt)
    writer = VideoWriter(path, fps)  # checks the suffix and the MP4 writer before rendering
    returns, lengths = [], []
    with _closing(make_render_env(task, width, height)) as env, writer:
        for i in range(episodes):
            if reset is not None:
                reset()
            ret, n = _episode(env, policy, writer, seed + i, horizon, skip)
            returns.append(ret)
            lengths.append(n)
    return VideoResult(
        Path(path), episodes, writer.frames, fps, tuple(returns), tuple(lengths), _SELECTED or ""
    )


def _episode(
    env: Any,
    policy: Callable[[np.ndarray], Any],
    writer: VideoWriter,
    seed: int,
    horizon: int,
    skip: int,
) -> tuple[float, int]:
    """One rendered episode: the reset frame, then every ``skip``-th step's frame."""
    obs, _ = env.reset(seed=seed)
    writer.append(env.render())
    total, n = 0.0, 0
    while n < horizon:
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        total += float(reward)
        n += 1
        if n % skip == 0 or terminated or truncated:
            writer.append(env.render())
        if terminated or truncated:
            break
    return total, n
