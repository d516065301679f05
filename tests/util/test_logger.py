"""Tests of mbrl.util.logger.Logger: long and wide CSVs, new keys, NaN, TensorBoard."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from mbrl.util.logger import Logger


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_wide_and_long_csv_with_new_keys(tmp_path):
    with Logger(tmp_path, tensorboard=False) as log:
        log.log({"loss": 1.5}, step=0)
        log.log({"loss": 1.25, "ret": 10.0}, step=1)  # new key "ret" appears
        log.log({"ret": 12.0}, step=2)
        log.log({"success": 1.0}, step=5, group="eval")
    rows = read_rows(tmp_path / "train.csv")
    assert rows[0] == ["step", "timestamp", "loss", "ret"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert [r[2:] for r in rows[1:]] == [["1.5", ""], ["1.25", "10.0"], ["", "12.0"]]
    assert all(float(r[1]) > 1.7e9 for r in rows[1:])  # Unix timestamps
    assert read_rows(tmp_path / "eval.csv")[0] == ["step", "timestamp", "success"]

    long = read_rows(tmp_path / "metrics.csv")
    assert long[0] == ["timestamp", "group", "step", "key", "value"]
    assert [r[1:] for r in long[1:]] == [
        ["train", "0", "loss", "1.5"],
        ["train", "1", "loss", "1.25"],
        ["train", "1", "ret", "10.0"],
        ["train", "2", "ret", "12.0"],
        ["eval", "5", "success", "1.0"],
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.csv", "metrics.csv", "train.csv"]


def test_nan_inf_and_scalar_types(tmp_path):
    with Logger(tmp_path, tensorboard=False) as log:
        log.log(
            {
                "a": math.nan,
                "b": -math.inf,
                "c": np.float32(2.5),
                "d": torch.tensor(3.0),
                "e": np.array([4.0]),
                "f": True,
                "g": 7,
                "wall_time": 1.0,
            },
            step=np.int64(3),
        )
        assert log.last()["c"] == 2.5 and math.isnan(log.last()["a"])
    rows = read_rows(tmp_path / "train.csv")
    assert rows[1][0] == "3"
    assert rows[1][2:] == ["nan", "-inf", "2.5", "3.0", "4.0", "1.0", "7.0", "1.0"]


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(metrics={"a": "x"}, step=0), TypeError, r"metrics\['a'\]: expected a real number"),
        (
            dict(metrics={"a": np.zeros(2)}, step=0),
            ValueError,
            r"metrics\['a'\]: expected a scalar",
        ),
        (dict(metrics={"a": torch.ones(3)}, step=0), ValueError, r"metrics\['a'\]: expected a sc"),
        (dict(metrics={"": 1.0}, step=0), ValueError, "invalid key"),
        (dict(metrics={"step": 1.0}, step=0), ValueError, "reserved"),
        (dict(metrics={"a": 1.0}, step=1.5), TypeError, "step: expected an int"),
        (dict(metrics={"a": 1.0}, step=0, group="a/b"), ValueError, "group"),
        (dict(metrics={"a": 1.0}, step=0, group="metrics"), ValueError, "reserved"),
        (dict(metrics=[1.0], step=0), TypeError, "metrics: expected a mapping"),
    ],
)
def test_log_validation(tmp_path, kwargs, exc, match):
    with Logger(tmp_path, tensorboard=False) as log, pytest.raises(exc, match=match):
        log.log(**kwargs)


def test_reopen_appends(tmp_path):
    with Logger(tmp_path, tensorboard=False) as log:
        log.log({"x": 1.0}, step=0)
    with Logger(tmp_path, tensorboard=False) as log:
        log.log({"x": 2.0, "y": 3.0}, step=1)
    rows = read_rows(tmp_path / "train.csv")
    assert rows[0] == ["step", "timestamp", "x", "y"]
    assert [r[2:] for r in rows[1:]] == [["1.0", ""], ["2.0", "3.0"]]
    long = read_rows(tmp_path / "metrics.csv")
    assert long.count(long[0]) == 1 and len(long) == 4  # one header, three values


def test_closed_logger_raises(tmp_path):
    log = Logger(tmp_path, tensorboard=False)
    log.close()
    log.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        log.log({"x": 1.0}, step=0)


def test_tensorboard_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with Logger(tmp_path) as log:
        log.log({"loss": 0.5}, step=1)
        log.log({"loss": 0.25, "nan_metric": math.nan}, step=2)
        log.log({"ret": 3.0}, step=2, group="eval")
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"train/loss", "train/nan_metric", "eval/ret"}
    loss = acc.Scalars("train/loss")
    assert [(e.step, e.value) for e in loss] == [(1, 0.5), (2, 0.25)]
    assert math.isnan(acc.Scalars("train/nan_metric")[0].value)
