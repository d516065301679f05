"""Tests of mbrl.util.progress.progress."""

from __future__ import annotations

import io

import pytest

from mbrl.util.progress import progress


def test_iterates_int_and_iterable_and_shows_postfix():
    out = io.StringIO()
    bar = progress(3, "train", file=out, mininterval=0)
    seen = []
    for i in bar:
        seen.append(i)
        bar.set_postfix(ret=1.5, loss=0.25)
    bar.close()
    assert seen == [0, 1, 2]
    text = out.getvalue()
    assert "train" in text and "ret=1.5" in text and "loss=0.25" in text and "3/3" in text
    assert list(progress(["a", "b"], "x", file=io.StringIO())) == ["a", "b"]


def test_manual_total():
    out = io.StringIO()
    with progress(None, "steps", total=10, file=out, mininterval=0) as bar:
        bar.update(4)
        bar.update(6)
    assert "10/10" in out.getvalue()


def test_disable_by_env(monkeypatch):
    monkeypatch.setenv("MBRL_NO_PROGRESS", "1")
    out = io.StringIO()
    bar = progress(5, "quiet", file=out, disable=False)
    assert list(bar) == [0, 1, 2, 3, 4]
    assert out.getvalue() == ""
    monkeypatch.setenv("MBRL_NO_PROGRESS", "0")
    out = io.StringIO()
    list(progress(2, "loud", file=out))
    assert "loud" in out.getvalue()


def test_disable_passthrough_and_errors():
    out = io.StringIO()
    list(progress(2, "off", file=out, disable=True))
    assert out.getvalue() == ""
    with pytest.raises(ValueError, match="non-negative"):
        progress(-1)
    with pytest.raises(TypeError, match="bool"):
        progress(True)
