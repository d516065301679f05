"""Checkpoints as a unit (mbrl.util.checkpoint), log rewinding, RNG capture, run lifecycle."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
import torch

from mbrl.util.checkpoint import Checkpointer, CheckpointError, load_state, save_state
from mbrl.util.lifecycle import SetupError, check_device, resume_run, start_run
from mbrl.util.logger import Logger, log_row_counts, rewind_logs
from mbrl.util.seeding import capture_rng_state, restore_rng_state


def _state(value: float):
    return {"w": torch.full((3,), float(value)), "step": int(value), "meta": {"xs": [1.5, value]}}


def test_save_load_keep_last_k(tmp_path):
    ck = Checkpointer(tmp_path, kind="toy", keep=2)
    assert ck.latest() is None and ck.load_latest() is None
    for step in range(4):
        ck.save(step, {"state.pt": save_state(_state(step)), "x.txt": lambda p: p.write_text("x")})
    assert [p.name for p in ck.list()] == ["ckpt-00000002", "ckpt-00000003"]
    path, manifest = ck.load_latest()
    assert path.name == "ckpt-00000003" and manifest["step"] == 3 and manifest["kind"] == "toy"
    loaded = load_state(path / "state.pt")
    torch.testing.assert_close(loaded["w"], torch.full((3,), 3.0))
    assert loaded["meta"] == {"xs": [1.5, 3]}
    # writing the same step again (a resumed run redoing it) replaces it
    ck.save(3, {"state.pt": save_state(_state(9))})
    assert load_state(ck.latest() / "state.pt")["step"] == 9
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_write_that_fails_midway_never_becomes_latest(tmp_path):
    ck = Checkpointer(tmp_path, kind="toy")
    ck.save(0, {"state.pt": save_state(_state(0))})

    def crash(path):
        path.write_bytes(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        ck.save(1, {"state.pt": save_state(_state(1)), "buffer.npz": crash})
    assert ck.latest().name == "ckpt-00000000"
    assert [p.name for p in ck.list()] == ["ckpt-00000000"]
    leftovers = ck.clean()
    assert [p.name for p in leftovers] == [".tmp-ckpt-00000001-" + leftovers[0].name.split("-")[-1]]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # stray hidden .tmp files of atomic writes go too
    (tmp_path / ".state.pt.abc.tmp").write_bytes(b"x")
    assert len(ck.clean()) == 1


def test_corruption_kind_and_version_are_reported_with_the_file(tmp_path):
    ck = Checkpointer(tmp_path, kind="toy")
    path = ck.save(0, {"state.pt": save_state(_state(0))})
    data = bytearray((path / "state.pt").read_bytes())
    data[len(data) // 2] ^= 1
    (path / "state.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="state.pt'?: checksum mismatch"):
        ck.load_latest()
    path = ck.save(1, {"state.pt": save_state(_state(1))})
    with pytest.raises(CheckpointError, match="a 'toy' checkpoint, expected 'pets'"):
        Checkpointer(tmp_path, kind="pets").load_latest()
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="format_version 99"):
        ck.load_latest()
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="manifest.json'?: not a checkpoint manifest"):
        ck.load_latest()
    (tmp_path / "latest").write_text("../../etc\n")
    with pytest.raises(CheckpointError, match="not a checkpoint pointer"):
        ck.latest()


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04truncated"])
def test_state_files_that_are_not_ours(tmp_path, content):
    path = tmp_path / "state.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="state.pt'?: not a checkpoint state file"):
        load_state(path)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_state_files_load_weights_only(tmp_path, capsys):
    path = tmp_path / "state.pt"
    torch.save({"x": _Evil()}, path)
    with pytest.raises(CheckpointError, match="not a checkpoint state file"):
        load_state(path)
    assert "never run" not in capsys.readouterr().out


def test_rng_capture_restores_every_stream(tmp_path):
    np_rng, gen = np.random.default_rng(1), torch.Generator().manual_seed(2)
    state = capture_rng_state({"a": np_rng}, {"b": gen})
    path = tmp_path / "s.pt"
    save_state({"rng": state})(path)
    state = load_state(path)["rng"]  # survives a weights-only round trip
    draws = (
        random.random(),
        np.random.rand(),  # noqa: NPY002
        float(torch.rand(1)),
        float(np_rng.random()),
        float(torch.rand(1, generator=gen)),
    )
    restore_rng_state(state, {"a": np_rng}, {"b": gen})
    again = (
        random.random(),
        np.random.rand(),  # noqa: NPY002
        float(torch.rand(1)),
        float(np_rng.random()),
        float(torch.rand(1, generator=gen)),
    )
    assert draws == again
    with pytest.raises(ValueError, match="no saved numpy generator state for \\['zz'\\]"):
        restore_rng_state(state, {"zz": np_rng})


def test_rewind_logs_drops_rows_after_the_checkpoint(tmp_path):
    with Logger(tmp_path) as log:
        log.log({"a": 1.0}, 0, "train")
        log.log({"a": 2.0}, 1, "train")
    counts = log_row_counts(tmp_path)
    assert counts == {"metrics.csv": 2, "train.csv": 2}
    with Logger(tmp_path) as log:  # work after the checkpoint, then a kill
        log.log({"a": 3.0, "b": 1.0}, 2, "train")
        log.log({"c": 1.0}, 0, "eval")
    with open(tmp_path / "train.csv", "a") as f:
        f.write("3,17")  # a row cut short by the kill
    rewind_logs(tmp_path, counts)
    assert log_row_counts(tmp_path) == counts
    assert not (tmp_path / "eval.csv").exists()
    with Logger(tmp_path) as log:  # redo the work
        log.log({"a": 3.0}, 2, "train")
    with open(tmp_path / "train.csv", newline="") as f:
        assert [r["a"] for r in csv.DictReader(f)] == ["1.0", "2.0", "3.0"]
    # TensorBoard was rebuilt from metrics.csv: one event file, no doubled points
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rewind_logs(tmp_path, log_row_counts(tmp_path))
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert [e.value for e in acc.Scalars("train/a")] == [1.0, 2.0, 3.0]


def test_lifecycle_checks(tmp_path):
    assert check_device("cpu").type == "cpu"
    with pytest.raises(SetupError, match="device: 'gpu'"):
        check_device("gpu")
    run = start_run({"x": 1}, tmp_path, "toy", "toy")
    run.close()
    with pytest.raises(SetupError, match="is a 'toy' run, not 'pets'"):
        resume_run(run.path, "pets", {"x": 1})
    again, restored = resume_run(run.path, "toy", {"x": 2})
    again.close()
    assert restored is None and "x: 2" in (run.path / "config.yaml").read_text()
