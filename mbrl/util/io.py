"""Atomic file writing (temporary file in the same folder, fsync, rename) and verified files.

Verified files (:func:`write_verified` / :func:`read_verified`, and for torch objects
:func:`save_verified` / :func:`load_verified`) are laid out as::

    MBRL-VERIFIED\n
    {"kind": ..., "format_version": ..., "payload_bytes": ..., "sha256": ...}\n   (JSON, one line)
    <payload_bytes bytes of payload>

Reading checks, in order: the magic line, the header, the ``kind``, the ``format_version``
(``1 <= v <= max_version``), the payload length (truncation) and its SHA-256 (flipped bytes).
Every failure raises :class:`CheckpointError` (a ``ValueError``) whose message starts with the
file's path and says it is not a valid file of that kind, and why.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import torch

MAGIC = b"MBRL-VERIFIED\n"
_MAX_HEADER = 4096


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    _make_parent(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _target_mode(path))
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _make_parent(path: Path) -> None:
    """Create ``path``'s folder; a clear error naming ``path`` if a file is in the way."""
    if path.is_dir():
        raise IsADirectoryError(f"path: {str(path)!r} is a directory, expected a file path")
    for parent in (path.parent, *path.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(
                    f"path: cannot write {str(path)!r}: {str(parent)!r} is a file, not a directory"
                )
            break
    path.parent.mkdir(parents=True, exist_ok=True)


def _target_mode(path: Path) -> int:
    """Mode for the replacement file: the existing file's, else ``0o666`` less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(fileobj)`` on a temporary binary file, then rename it onto ``path``."""
    with atomic_open(path, "wb") as f:
        write(f)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` atomically (temp file, then rename)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def torch_load(path: str | os.PathLike, map_location: str | torch.device | None = None) -> Any:
    """``torch.load`` with ``weights_only=True`` (tensors, dicts, lists, numbers, strings only)."""
    return torch.load(path, map_location=map_location, weights_only=True)


# ---------------------------------------------------------------------- verified files
class CheckpointError(ValueError):
    """A file that is not a valid file of the expected kind (corrupt, truncated, foreign, ...)."""


class VerifiedPayload(NamedTuple):
    """What :func:`read_verified` returns: the checked ``data`` and its ``format_version``."""

    data: bytes
    format_version: int


def _check_kind_version(kind: str, version: int) -> None:
    if not isinstance(kind, str) or not kind or "\n" in kind:
        raise ValueError(f"kind: expected a non-empty one-line str, got {kind!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version: expected a positive int, got {version!r}")


def write_verified(path: str | os.PathLike, data: bytes, kind: str, version: int) -> Path:
    """Write ``data`` atomically to ``path`` with a header naming ``kind``, ``version`` and the
    SHA-256 of ``data`` (layout in the module docs). Returns ``Path(path)``."""
    _check_kind_version(kind, version)
    header = {
        "kind": kind,
        "format_version": version,
        "payload_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    line = json.dumps(header, sort_keys=True).encode("utf-8") + b"\n"

    def write(f: IO[bytes]) -> None:
        f.write(MAGIC)
        f.write(line)
        f.write(data)

    atomic_write(path, write)
    return Path(path)


def read_verified(path: str | os.PathLike, kind: str, max_version: int) -> VerifiedPayload:
    """Read a file written by :func:`write_verified` and check it (see the module docs).

    Raises ``FileNotFoundError`` if ``path`` does not exist and :class:`CheckpointError` naming
    ``path`` for anything else that is wrong with it.
    """
    _check_kind_version(kind, max_version)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{str(path)!r}: no such file ({kind} expected)")
    if not path.is_file():
        raise CheckpointError(f"{str(path)!r}: not a valid {kind} file (not a regular file)")
    raw = path.read_bytes()

    def bad(reason: str) -> CheckpointError:
        return CheckpointError(f"{str(path)!r}: not a valid {kind} file ({reason})")

    if not raw.startswith(MAGIC):
        if raw[:4] == b"PK\x03\x04":
            raise bad(
                "a zip/torch/npz file without a verified header: written by an older version or "
                "another program; re-save it with this version"
            )
        raise bad("empty file" if not raw else "no verified-file header")
    end = raw.find(b"\n", len(MAGIC), len(MAGIC) + _MAX_HEADER)
    if end < 0:
        raise bad("truncated or unreadable header")
    try:
        header = json.loads(raw[len(MAGIC) : end].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"unreadable header: {exc}") from exc
    if not isinstance(header, dict) or set(header) != {
        "kind",
        "format_version",
        "payload_bytes",
        "sha256",
    }:
        raise bad(f"unexpected header {header!r}")
    if header["kind"] != kind:
        raise bad(f"it holds a {header['kind']!r}")
    version = header["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise bad(f"format_version {version!r} is not a positive int")
    if version > max_version:
        raise bad(
            f"format_version {version} is newer than this version reads ({max_version}); "
            "update the package"
        )
    data = raw[end + 1 :]
    size = header["payload_bytes"]
    if not isinstance(size, int) or len(data) != size:
        raise bad(f"truncated or padded: {len(data)} payload bytes, header says {size!r}")
    if hashlib.sha256(data).hexdigest() != header["sha256"]:
        raise bad("SHA-256 checksum mismatch: the file is corrupt")
    return VerifiedPayload(data, version)


def save_verified(obj: Any, path: str | os.PathLike, kind: str, version: int) -> Path:
    """``torch.save(obj)`` into a verified file (checksum, ``kind``, ``version``) atomically.

    ``obj`` should be plain data (tensors, dicts, lists, numbers, strings) so that
    :func:`load_verified` can read it with ``weights_only=True``. Returns ``Path(path)``.
    """
    buf = io.BytesIO()
    torch.save(obj, buf)
    return write_verified(path, buf.getvalue(), kind, version)


def load_verified(
    path: str | os.PathLike,
    kind: str,
    max_version: int,
    map_location: str | torch.device | None = None,
) -> Any:
    """Read a file written by :func:`save_verified`; checks as :func:`read_verified`, then
    ``torch.load(weights_only=True)`` of the payload. Use :func:`read_verified` and
    :func:`torch_loads` instead when the ``format_version`` is needed."""
    payload = read_verified(path, kind, max_version)
    return torch_loads(payload.data, path, kind, map_location)


def torch_loads(
    data: bytes,
    path: str | os.PathLike,
    kind: str,
    map_location: str | torch.device | None = None,
) -> Any:
    """``torch.load(weights_only=True)`` of ``data`` read from ``path``; errors become
    :class:`CheckpointError` naming ``path``."""
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, pickle errors, EOFError, ...
        raise CheckpointError(
            f"{os.fspath(path)!r}: not a valid {kind} file (payload unreadable: {exc})"
        ) from exc
