"""A sweep's folder: its plan (``sweep.yaml``), one status file per trial, the trials' runs.

Layout of ``runs/<sweep-name>/``::

    sweep.yaml               the plan: algorithm, swept keys, every trial's full config (versioned)
    driver.lock              while a driver runs the sweep: its host and process id
    status/<trial>.yaml      per trial: running / done / error, its run directory, the error
    logs/<trial>.log         the trial's console output (``--backend local``)
    <trial>-<time>/          each trial's usual run directory (config.yaml, *.csv, checkpoints/)
    summary.csv              one row per trial (written by mbrl.sweep.summary)
    settings.csv             one row per setting: mean and std over its seeds
    returns.png, .svg        mean ± std return curves per setting
    ray/                     Ray Tune's own records (--backend ray)

Trials write only their own status file, so concurrent trials never write the same file.
The plan stores each trial's resolved config, so a trial (on this machine or a Ray worker) needs
no preset file, and a resumed sweep runs exactly what it planned.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mbrl.util.io import atomic_open

__all__ = [
    "SWEEP_FORMAT",
    "STATUSES",
    "AlgorithmRef",
    "SweepBusy",
    "SweepPlan",
    "TrialSpec",
    "TrialStatus",
    "driver_lock",
    "find_run_dir",
    "read_plan",
    "read_status",
    "write_plan",
    "write_status",
]

SWEEP_FORMAT = 1
"""Version of ``sweep.yaml``."""

STATUSES = ("pending", "running", "done", "error")
PLAN_FILE = "sweep.yaml"


class SweepBusy(ValueError):
    """Another driver is running this sweep (see :func:`driver_lock`)."""


@dataclass(frozen=True)
class AlgorithmRef:
    """Where an algorithm lives: ``module.<runner>(config, resume=...)`` with ``module.<config>``
    (the fields of :class:`mbrl.cli.Algorithm`; stored so trials need no CLI import)."""

    name: str
    module: str
    config: str
    runner: str


@dataclass(frozen=True)
class TrialSpec:
    """One point of the grid.

    Attributes:
        index: position in the grid (0-based).
        name: ``t<index>-<slug>``; the run directory is ``<name>-<time>`` in the sweep folder.
        point: ``{swept key: value text}``.
        config: the trial's resolved config as plain data (``config_to_dict``).
    """

    index: int
    name: str
    point: dict[str, str]
    config: dict[str, Any]


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep runs (``sweep.yaml``)."""

    algorithm: AlgorithmRef
    keys: tuple[str, ...]
    command: tuple[str, ...]
    trials: tuple[TrialSpec, ...]
    format_version: int = SWEEP_FORMAT


@dataclass(frozen=True)
class TrialStatus:
    """A trial's ``status/<name>.yaml``: ``status`` in :data:`STATUSES`, its run directory
    (``None`` before one exists), the error text of a failed attempt, and the time it ran."""

    status: str
    run_dir: str | None = None
    error: str | None = None
    wall_time_s: float | None = None
    updated: float = field(default_factory=time.time)


def write_plan(sweep_dir: Path, plan: SweepPlan) -> Path:
    """Write ``sweep.yaml`` atomically."""
    data = {
        "format_version": plan.format_version,
        "algorithm": vars(plan.algorithm),
        "keys": list(plan.keys),
        "command": list(plan.command),
        "trials": [vars(t) for t in plan.trials],
    }
    path = sweep_dir / PLAN_FILE
    with atomic_open(path, "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    return path


def read_plan(sweep_dir: str | os.PathLike) -> SweepPlan:
    """Read ``<sweep_dir>/sweep.yaml``; ``ValueError`` naming the folder if it is not a sweep."""
    path = Path(sweep_dir) / PLAN_FILE
    if not path.is_file():
        raise ValueError(f"{str(sweep_dir)!r}: not a sweep folder (no {PLAN_FILE})")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or data.get("format_version") != SWEEP_FORMAT:
        version = data.get("format_version") if isinstance(data, dict) else None
        raise ValueError(f"{str(path)!r}: format_version {version!r}, expected {SWEEP_FORMAT}")
    try:
        return SweepPlan(
            algorithm=AlgorithmRef(**data["algorithm"]),
            keys=tuple(data["keys"]),
            command=tuple(data["command"]),
            trials=tuple(TrialSpec(**t) for t in data["trials"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{str(path)!r}: malformed sweep plan ({exc})") from None


def status_path(sweep_dir: Path, name: str) -> Path:
    return Path(sweep_dir) / "status" / f"{name}.yaml"


def write_status(sweep_dir: Path, name: str, status: TrialStatus) -> None:
    """Write ``status/<name>.yaml`` atomically."""
    if status.status not in STATUSES:
        raise ValueError(f"status: expected one of {', '.join(STATUSES)}, got {status.status!r}")
    path = status_path(sweep_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w") as f:
        yaml.safe_dump(vars(status), f, sort_keys=False)


def read_status(sweep_dir: Path, name: str) -> TrialStatus:
    """The trial's status (``pending`` when it has no status file yet)."""
    path = status_path(sweep_dir, name)
    if not path.is_file():
        return TrialStatus("pending")
    data = yaml.safe_load(path.read_text())
    return TrialStatus(**data) if isinstance(data, dict) else TrialStatus("pending")


def find_run_dir(sweep_dir: Path, name: str) -> Path | None:
    """The trial's run directory ``<name>-<YYYYmmdd-HHMMSS>[-k]`` holding a ``run.yaml``
    (the newest if several), or ``None``."""
    pattern = re.compile(rf"^{re.escape(name)}-\d{{8}}-\d{{6}}(?:-\d+)?$")
    found = [
        p
        for p in Path(sweep_dir).iterdir()
        if p.is_dir() and pattern.match(p.name) and (p / "run.yaml").is_file()
    ]
    return max(found, key=lambda p: (p.stat().st_mtime, p.name)) if found else None


@contextlib.contextmanager
def driver_lock(sweep_dir: Path) -> Iterator[None]:
    """Hold ``driver.lock`` while running the sweep, so two drivers never run the same trials.

    A lock left by a process of this host that no longer exists is taken over; one held by a
    live process, or by another host, raises :class:`SweepBusy` naming it (remove the file if
    that driver is known to be gone).
    """
    path = Path(sweep_dir) / "driver.lock"
    me = f"{socket.gethostname()} {os.getpid()}"
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            owner = path.read_text().strip() if path.is_file() else ""
            host, _, pid = owner.partition(" ")
            if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
                path.unlink(missing_ok=True)  # its driver died: take the sweep over
                continue
            raise SweepBusy(
                f"{str(sweep_dir)!r} is being run by another mbrl sweep ({owner or 'unknown'}); "
                f"if that process is gone, remove {str(path)!r}"
            ) from None
    try:
        os.write(fd, me.encode())
        os.close(fd)
        yield
    finally:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
