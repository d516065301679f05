"""Checkpoints written as a unit: a folder of files, a manifest last, then a ``latest`` pointer.

Layout under a run's ``checkpoints/``::

    ckpt-00000003/          one checkpoint (the number is the algorithm's counter, e.g. episodes)
        state.pt            torch file, loaded with weights_only=True
        buffer.npz          any other files the algorithm writes
        manifest.json       written last: kind, format_version, step, SHA-256 of every file
    ckpt-00000004/
    latest                  the name of the newest complete checkpoint (switched atomically)

A checkpoint is first written into a hidden temporary folder; only after every file and the
manifest are on disk (fsynced) is the folder renamed to ``ckpt-<step>`` and the ``latest`` pointer
replaced. A kill at any moment therefore leaves either the previous checkpoint as ``latest`` or
the new one, never a partial one; the temporary leftovers are removed by :meth:`Checkpointer.
clean` (called when a run starts or resumes). The last ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mbrl.util.io import CheckpointError, atomic_open, atomic_torch_save, torch_load

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "Checkpointer", "load_state", "save_state"]

CHECKPOINT_FORMAT = 1
"""Version of the checkpoint folder layout and manifest."""

_NAME_RE = re.compile(r"^ckpt-(\d{8,})$")
_TMP_PREFIX = ".tmp-"
_MANIFEST = "manifest.json"
_POINTER = "latest"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpointer:
    """Writes and reads the checkpoints of one run.

    Args:
        directory: the run's ``checkpoints/`` folder (created if missing).
        kind: what the checkpoints hold (e.g. ``"pets"``); loading one of another kind fails.
        keep: how many complete checkpoints to keep (the newest ones; at least 1).
    """

    def __init__(self, directory: str | Path, kind: str, keep: int = 3) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep: expected a positive int, got {keep!r}")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"kind: expected a non-empty string, got {kind!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.kind = kind
        self.keep = keep

    # ------------------------------------------------------------------ writing
    def save(self, step: int, writers: Mapping[str, Callable[[Path], Any]]) -> Path:
        """Write checkpoint ``step``: ``writers[name](path)`` writes file ``name``.

        Returns the checkpoint folder. Older checkpoints beyond ``keep`` are removed.
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step: expected an int >= 0, got {step!r}")
        if not writers or _MANIFEST in writers:
            raise ValueError(f"writers: expected file writers other than {_MANIFEST!r}")
        final = self.directory / f"ckpt-{step:08d}"
        tmp = self.directory / f"{_TMP_PREFIX}{final.name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        files = {}
        for name, write in writers.items():
            if "/" in name or name.startswith("."):
                raise ValueError(f"writers: bad file name {name!r}")
            write(tmp / name)
            files[name] = _sha256(tmp / name)
        manifest = {
            "format_version": CHECKPOINT_FORMAT,
            "kind": self.kind,
            "step": step,
            "files": files,
        }
        with atomic_open(tmp / _MANIFEST, "w") as f:
            json.dump(manifest, f, indent=1)
        _fsync_dir(tmp)
        if final.exists():  # the same step written again after a resume: replace it
            stale = self.directory / f"{_TMP_PREFIX}old-{final.name}-{os.getpid()}"
            os.rename(final, stale)
            shutil.rmtree(stale)
        os.rename(tmp, final)
        with atomic_open(self.directory / _POINTER, "w") as f:
            f.write(final.name + "\n")
        _fsync_dir(self.directory)
        self._prune(final.name)
        return final

    def _prune(self, newest: str) -> None:
        names = [p.name for p in self.list()]
        for name in names[: max(0, len(names) - self.keep)]:
            if name != newest:
                shutil.rmtree(self.directory / name, ignore_errors=True)

    def clean(self) -> list[Path]:
        """Remove what a killed write left behind (temporary folders and files); return them."""
        removed = []
        for p in self.directory.iterdir():
            if p.name.startswith(_TMP_PREFIX) or (p.name.startswith(".") and p.suffix == ".tmp"):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
                removed.append(p)
        return removed

    # ------------------------------------------------------------------ reading
    def list(self) -> list[Path]:
        """The complete checkpoint folders (with a manifest), oldest first."""
        found = [
            p
            for p in self.directory.iterdir()
            if _NAME_RE.match(p.name) and (p / _MANIFEST).is_file()
        ]
        return sorted(found, key=lambda p: int(_NAME_RE.match(p.name).group(1)))  # type: ignore[union-attr]

    def latest(self) -> Path | None:
        """The folder the ``latest`` pointer names, or ``None`` when no checkpoint was written."""
        pointer = self.directory / _POINTER
        if not pointer.is_file():
            return None
        name = pointer.read_text().strip()
        if not _NAME_RE.match(name):
            raise CheckpointError(f"{str(pointer)!r}: not a checkpoint pointer ({name[:40]!r})")
        path = self.directory / name
        if not path.is_dir():
            raise CheckpointError(f"{str(pointer)!r} names {name!r}, which does not exist")
        return path

    def verify(self, path: str | Path) -> dict[str, Any]:
        """Check checkpoint folder ``path``: its manifest, kind, version and every file's
        checksum. Returns the manifest; raises :class:`CheckpointError` naming the bad file."""
        path = Path(path)
        mpath = path / _MANIFEST
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{str(mpath)!r}: not a checkpoint manifest ({exc})") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise CheckpointError(f"{str(mpath)!r}: not a checkpoint manifest")
        if manifest.get("kind") != self.kind:
            raise CheckpointError(
                f"{str(mpath)!r}: a {manifest.get('kind')!r} checkpoint, expected {self.kind!r}"
            )
        version = manifest.get("format_version")
        if not isinstance(version, int) or not 1 <= version <= CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{str(mpath)!r}: format_version {version!r}; this version reads "
                f"1..{CHECKPOINT_FORMAT}"
            )
        for name, digest in manifest["files"].items():
            fpath = path / name
            if not fpath.is_file():
                raise CheckpointError(f"{str(fpath)!r}: missing from the checkpoint")
            if _sha256(fpath) != digest:
                raise CheckpointError(f"{str(fpath)!r}: checksum mismatch (the file is corrupted)")
        return manifest

    def load_latest(self) -> tuple[Path, dict[str, Any]] | None:
        """``(folder, manifest)`` of the verified latest checkpoint, or ``None`` if none."""
        path = self.latest()
        if path is None:
            return None
        return path, self.verify(path)


def save_state(state: Mapping[str, Any]) -> Callable[[Path], None]:
    """A writer for :meth:`Checkpointer.save` that stores ``state`` with ``torch.save``."""
    return lambda path: atomic_torch_save(dict(state), path)


def load_state(path: str | Path) -> dict[str, Any]:
    """Load a file written by :func:`save_state` (``weights_only=True``), naming it on error."""
    try:
        state = torch_load(path)
    except Exception as exc:  # noqa: BLE001  (any unpickling failure means "not ours")
        raise CheckpointError(f"{str(path)!r}: not a checkpoint state file ({exc})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{str(path)!r}: not a checkpoint state file")
    return state
