"""Verified files: checksum, kind and format_version checked on every read."""

import hashlib
import json

import pytest
import torch

from mbrl.util.io import (
    MAGIC,
    CheckpointError,
    load_verified,
    read_verified,
    save_verified,
    write_verified,
)


def test_roundtrip_and_header(tmp_path):
    path = save_verified({"w": torch.arange(4.0), "n": 3}, tmp_path / "a.ckpt", "thing", 2)
    obj = load_verified(path, "thing", 2)
    assert torch.equal(obj["w"], torch.arange(4.0)) and obj["n"] == 3
    payload = read_verified(path, "thing", 5)
    assert payload.format_version == 2
    raw = path.read_bytes()
    assert raw.startswith(MAGIC)
    header = json.loads(raw[len(MAGIC) :].split(b"\n", 1)[0])
    assert header["sha256"] == hashlib.sha256(payload.data).hexdigest()


def test_every_flipped_byte_is_caught(tmp_path):
    path = write_verified(tmp_path / "a.bin", bytes(range(256)) * 4, "thing", 1)
    good = path.read_bytes()
    for pos in range(0, len(good), 37):
        bad = bytearray(good)
        bad[pos] ^= 0x10
        path.write_bytes(bytes(bad))
        with pytest.raises(CheckpointError, match=r"a\.bin.*not a valid thing file"):
            read_verified(path, "thing", 1)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty file"),
        (b"hello world", "no verified-file header"),
        (b"PK\x03\x04rest of a zip", "older version"),
        (MAGIC + b"{not json\n", "unreadable header"),
        (MAGIC + b"x" * 5000, "truncated or unreadable header"),
    ],
)
def test_foreign_files(tmp_path, content, match):
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        read_verified(path, "thing", 1)


def test_truncated_kind_and_version(tmp_path):
    path = write_verified(tmp_path / "a.bin", b"x" * 1000, "thing", 3)
    with pytest.raises(CheckpointError, match="newer"):
        read_verified(path, "thing", 2)
    with pytest.raises(CheckpointError, match="holds a 'thing'"):
        read_verified(path, "other", 3)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="truncated"):
        read_verified(path, "thing", 3)
    with pytest.raises(FileNotFoundError, match="nope"):
        read_verified(tmp_path / "nope", "thing", 1)
    with pytest.raises(CheckpointError, match="not a regular file"):
        read_verified(tmp_path, "thing", 1)


def test_unloadable_payload_names_the_file(tmp_path):
    path = write_verified(tmp_path / "a.bin", b"not a torch file", "thing", 1)
    with pytest.raises(CheckpointError, match=r"a\.bin.*payload unreadable"):
        load_verified(path, "thing", 1)


def test_write_into_a_path_whose_parent_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"path: .*file/sub/a\.bin.*is a file"):
        write_verified(tmp_path / "file" / "sub" / "a.bin", b"x", "thing", 1)


def test_write_onto_a_directory_names_it(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match=r"path: .*d' is a directory"):
        write_verified(tmp_path / "d", b"x", "thing", 1)
