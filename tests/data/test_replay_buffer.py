"""Tests of mbrl.data.ReplayBuffer: ring semantics, sampling, episodes, save/load, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbrl.data import Batch, ReplayBuffer

OBS, ACT = 3, 2


def transition(i: int, done: bool = False, truncated: bool = False):
    """A transition whose values encode its index ``i`` (so order can be checked)."""
    obs = np.full(OBS, i, dtype=np.float32)
    act = np.full(ACT, -i, dtype=np.float32)
    return obs, act, obs + 0.5, float(i) * 10.0, done, truncated


def fill(buf: ReplayBuffer, n: int, episode_len: int = 0, start: int = 0) -> None:
    for i in range(start, start + n):
        done = episode_len > 0 and (i + 1) % episode_len == 0
        buf.add(*transition(i, done=done))


def test_add_and_get_all_in_insertion_order():
    buf = ReplayBuffer(10, OBS, ACT)
    assert len(buf) == 0 and buf.capacity == 10
    fill(buf, 4)
    assert len(buf) == 4
    b = buf.get_all()
    np.testing.assert_array_equal(b.obs[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(b.act[:, 1], [0, -1, -2, -3])
    np.testing.assert_array_equal(b.next_obs[:, 2], [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(b.reward, [0, 10, 20, 30])
    assert b.obs.dtype == np.float32 and b.terminated.dtype == bool
    assert b.batch_size == 4


def test_ring_wraparound_keeps_newest():
    buf = ReplayBuffer(5, OBS, ACT)
    fill(buf, 12)
    assert len(buf) == 5
    np.testing.assert_array_equal(buf.get_all().obs[:, 0], [7, 8, 9, 10, 11])
    np.testing.assert_array_equal(buf.get_all().reward, [70, 80, 90, 100, 110])


def test_add_batch_equals_repeated_add_and_wraps():
    a = ReplayBuffer(7, OBS, ACT)
    b = ReplayBuffer(7, OBS, ACT)
    items = [transition(i, done=(i % 4 == 3)) for i in range(11)]
    for t in items:
        a.add(*t)
    cols = [np.stack([np.asarray(t[k]) for t in items[:5]]) for k in range(6)]
    b.add_batch(*cols)
    cols = [np.stack([np.asarray(t[k]) for t in items[5:]]) for k in range(6)]
    b.add_batch(*cols)
    for x, y in zip(a.get_all(), b.get_all(), strict=True):
        np.testing.assert_array_equal(x, y)
    assert [len(t.reward) for t in a.trajectories()] == [len(t.reward) for t in b.trajectories()]


def test_add_batch_larger_than_capacity_keeps_last():
    buf = ReplayBuffer(4, OBS, ACT)
    items = [transition(i) for i in range(10)]
    buf.add_batch(*[np.stack([np.asarray(t[k]) for t in items]) for k in range(6)])
    assert len(buf) == 4
    np.testing.assert_array_equal(buf.get_all().obs[:, 0], [6, 7, 8, 9])


def test_sample_reproducible_and_uniform():
    buf = ReplayBuffer(50, OBS, ACT)
    fill(buf, 70)  # wrapped: holds 20..69
    s1 = buf.sample(64, np.random.default_rng(123))
    s2 = buf.sample(64, np.random.default_rng(123))
    for x, y in zip(s1, s2, strict=True):
        np.testing.assert_array_equal(x, y)
    s3 = buf.sample(64, np.random.default_rng(124))
    assert not np.array_equal(s1.obs, s3.obs)
    assert s1.obs.shape == (64, OBS) and s1.reward.shape == (64,)
    # Each sampled row is a consistent stored transition.
    np.testing.assert_array_equal(s1.reward, s1.obs[:, 0] * 10)
    assert s1.obs[:, 0].min() >= 20 and s1.obs[:, 0].max() <= 69
    # Uniform: every stored transition is drawn, with roughly equal frequency.
    big = buf.sample(50_000, np.random.default_rng(0))
    counts = np.bincount(big.obs[:, 0].astype(int) - 20, minlength=50)
    assert counts.min() > 0
    assert np.abs(counts / 50_000 - 1 / 50).max() < 0.006  # ~5 standard deviations


def test_sample_before_wrap_only_uses_filled_slots():
    buf = ReplayBuffer(100, OBS, ACT)
    fill(buf, 3)
    s = buf.sample(1000, np.random.default_rng(1))
    assert set(np.unique(s.obs[:, 0]).tolist()) == {0.0, 1.0, 2.0}


def test_sample_errors():
    buf = ReplayBuffer(4, OBS, ACT)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(2, np.random.default_rng(0))
    fill(buf, 2)
    with pytest.raises(ValueError, match="batch_size"):
        buf.sample(0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        buf.sample(2, 0)


def test_trajectories_across_wraparound():
    buf = ReplayBuffer(10, OBS, ACT)
    # Episodes of length 4: 0-3, 4-7, 8-11, 12-15, then 16-17 unfinished.
    fill(buf, 18, episode_len=4)
    # Stored: 8..17 -> episodes [8..11], [12..15], [16, 17] (unfinished).
    eps = list(buf.trajectories())
    assert [e.obs[:, 0].tolist() for e in eps] == [[8, 9, 10, 11], [12, 13, 14, 15], [16, 17]]
    assert all(isinstance(e, Batch) for e in eps)
    assert eps[0].terminated.tolist() == [False, False, False, True]
    complete = list(buf.trajectories(include_incomplete=False))
    assert [e.obs[:, 0].tolist() for e in complete] == [[8, 9, 10, 11], [12, 13, 14, 15]]


def test_trajectories_head_cut_by_wraparound_is_incomplete():
    buf = ReplayBuffer(10, OBS, ACT)
    fill(buf, 16, episode_len=5)  # episodes 0-4, 5-9, 10-14, 15...; stored 6..15
    eps = list(buf.trajectories())
    assert [e.obs[:, 0].tolist() for e in eps] == [[6, 7, 8, 9], [10, 11, 12, 13, 14], [15]]
    complete = list(buf.trajectories(include_incomplete=False))
    assert [e.obs[:, 0].tolist() for e in complete] == [[10, 11, 12, 13, 14]]


def test_trajectories_truncation_ends_episode_and_empty_buffer():
    buf = ReplayBuffer(10, OBS, ACT)
    assert list(buf.trajectories()) == []
    buf.add(*transition(0))
    buf.add(*transition(1, truncated=True))
    buf.add(*transition(2, done=True))
    eps = list(buf.trajectories(include_incomplete=False))
    assert [e.obs[:, 0].tolist() for e in eps] == [[0, 1], [2]]
    assert eps[0].truncated.tolist() == [False, True]
    assert eps[0].done.tolist() == [False, True]


def test_to_torch():
    buf = ReplayBuffer(10, OBS, ACT, act_dtype=np.int64)
    buf.add(np.ones(OBS), np.array([1, 0]), np.zeros(OBS), 2.0, False, True)
    t = buf.get_all().to_torch("cpu", torch.float64)
    assert t.obs.dtype == torch.float64 and t.act.dtype == torch.float64
    assert t.terminated.dtype == torch.bool and t.truncated.tolist() == [True]
    torch.testing.assert_close(t.reward, torch.tensor([2.0], dtype=torch.float64))


def test_save_load_roundtrip_identical(tmp_path):
    buf = ReplayBuffer(10, OBS, ACT, obs_dtype=np.float64, act_dtype=np.int32)
    for i in range(23):
        buf.add(
            np.full(OBS, i + 0.25), np.array([i, -i]), np.full(OBS, i), i * 1.5, i % 6 == 5, False
        )
    path = buf.save(tmp_path / "buf.npz")
    loaded = ReplayBuffer.load(path)
    assert loaded.capacity == 10 and len(loaded) == 10
    assert loaded.obs_dtype == np.float64 and loaded.act_dtype == np.int32
    for x, y in zip(buf.get_all(), loaded.get_all(), strict=True):
        np.testing.assert_array_equal(x, y)
        assert x.dtype == y.dtype
    assert [e.obs[:, 0].tolist() for e in buf.trajectories()] == [
        e.obs[:, 0].tolist() for e in loaded.trajectories()
    ]
    # The ring position is restored: further adds overwrite the same slots.
    for b in (buf, loaded):
        b.add(np.zeros(OBS), np.zeros(ACT), np.zeros(OBS), 99.0, True, False)
    for x, y in zip(buf.get_all(), loaded.get_all(), strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(
        buf.sample(8, np.random.default_rng(5)),
        loaded.sample(8, np.random.default_rng(5)),
        strict=True,
    ):
        np.testing.assert_array_equal(x, y)


def test_save_load_partial_and_empty(tmp_path):
    buf = ReplayBuffer(100, OBS, ACT)
    loaded = ReplayBuffer.load(buf.save(tmp_path / "empty.npz"))
    assert len(loaded) == 0 and loaded.capacity == 100
    fill(buf, 7, episode_len=3)
    loaded = ReplayBuffer.load(buf.save(tmp_path / "part.npz"))
    np.testing.assert_array_equal(loaded.get_all().obs, buf.get_all().obs)
    fill(buf, 1, start=7)
    fill(loaded, 1, start=7)
    assert [len(e.reward) for e in loaded.trajectories()] == [3, 3, 2]
    assert [len(e.reward) for e in buf.trajectories()] == [3, 3, 2]


def test_failed_save_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "buf.npz"
    buf = ReplayBuffer(10, OBS, ACT)
    fill(buf, 3)
    buf.save(path)
    before = path.read_bytes()
    fill(buf, 5, start=3)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        buf.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["buf.npz"]  # no temp file left behind
    monkeypatch.undo()
    assert len(ReplayBuffer.load(path)) == 3


def test_load_missing_and_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        ReplayBuffer.load(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="not a valid replay buffer"):
        ReplayBuffer.load(bad)
    # A valid buffer file cut in half is rejected too.
    buf = ReplayBuffer(10, OBS, ACT)
    fill(buf, 10)
    good = buf.save(tmp_path / "good.npz").read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="not a valid replay buffer"):
        ReplayBuffer.load(cut)
    # A foreign npz (missing fields) is rejected.
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="not a valid replay buffer"):
        ReplayBuffer.load(other)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("obs", np.zeros(OBS + 1), r"obs: expected shape \(3,\)"),
        ("obs", np.zeros((1, OBS)), r"obs: expected shape"),
        ("obs", np.array([0.0, np.nan, 0.0]), "obs: contains NaN"),
        ("obs", ["a", "b", "c"], "obs: expected numeric"),
        ("act", np.zeros(ACT + 1), r"act: expected shape \(2,\)"),
        ("act", np.array([np.inf, 0.0]), "act: contains NaN or inf"),
        ("next_obs", np.zeros(OBS - 1), "next_obs: expected shape"),
        ("next_obs", np.array([0.0, 0.0, -np.inf]), "next_obs: contains NaN"),
        ("reward", np.nan, "reward: contains NaN"),
        ("reward", [1.0, 2.0], r"reward: expected shape \(\)"),
        ("reward", "1.0", "reward: expected numeric"),
        ("reward", 1e39, "reward: values overflow"),
        ("terminated", 2, "terminated: expected booleans"),
        ("terminated", None, "terminated: expected numeric"),
        ("truncated", [True, False], r"truncated: expected shape \(\)"),
        ("obs", np.array([1 + 2j, 0, 0]), "obs: expected numeric"),
    ],
)
def test_add_validation(field, value, match):
    buf = ReplayBuffer(5, OBS, ACT)
    names = ["obs", "act", "next_obs", "reward", "terminated", "truncated"]
    args = dict(zip(names, transition(1), strict=True))
    args[field] = value
    with pytest.raises(ValueError, match=match):
        buf.add(**args)
    assert len(buf) == 0  # nothing was written


def test_add_batch_validation():
    buf = ReplayBuffer(5, OBS, ACT)
    n = 3
    good = dict(
        obs=np.zeros((n, OBS)),
        act=np.zeros((n, ACT)),
        next_obs=np.zeros((n, OBS)),
        reward=np.zeros(n),
        terminated=np.zeros(n, bool),
        truncated=np.zeros(n, bool),
    )
    cases = [
        ("obs", np.zeros((n, OBS + 1)), r"obs: expected shape \(3, 3\)"),
        ("act", np.zeros((n + 1, ACT)), r"act: expected shape \(3, 2\)"),
        ("next_obs", np.full((n, OBS), np.nan), "next_obs: contains NaN"),
        ("reward", np.zeros((n, 1)), r"reward: expected shape \(N,\)"),
        ("terminated", np.zeros(n + 1, bool), r"terminated: expected shape \(3,\)"),
        ("truncated", np.array(["x"] * n), "truncated: expected numeric"),
    ]
    for field, value, match in cases:
        with pytest.raises(ValueError, match=match):
            buf.add_batch(**{**good, field: value})
    buf.add_batch(**good)
    assert len(buf) == n


def test_integer_action_dtype_validation():
    buf = ReplayBuffer(5, OBS, 1, act_dtype=np.int64)
    with pytest.raises(ValueError, match="act: expected integral"):
        buf.add(np.zeros(OBS), np.array([0.5]), np.zeros(OBS), 0.0, False, False)
    buf.add(np.zeros(OBS), np.array([1.0]), np.zeros(OBS), 0.0, False, False)
    assert buf.get_all().act.tolist() == [[1]]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(capacity=0, obs_dim=1, act_dim=1), "capacity"),
        (dict(capacity=2.5, obs_dim=1, act_dim=1), "capacity"),
        (dict(capacity=2, obs_dim=0, act_dim=1), "obs_dim"),
        (dict(capacity=2, obs_dim=1, act_dim=-1), "act_dim"),
        (dict(capacity=2, obs_dim=1, act_dim=1, obs_dtype=np.str_), "obs_dtype"),
        (dict(capacity=2, obs_dim=1, act_dim=1, act_dtype=bool), "act_dtype"),
    ],
)
def test_constructor_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReplayBuffer(**kwargs)


def test_clear():
    buf = ReplayBuffer(5, OBS, ACT)
    fill(buf, 7)
    buf.clear()
    assert len(buf) == 0 and list(buf.trajectories()) == []
    fill(buf, 2)
    np.testing.assert_array_equal(buf.get_all().obs[:, 0], [0, 1])


# ---------------------------------------------------------------------- verified files
def _rewrite(path, mutate, version=2):
    """Load the payload arrays of a saved buffer, mutate them, write a *validly checksummed*
    file back (so only the content checks can catch the change)."""
    import io as _io

    from mbrl.util.io import read_verified, write_verified

    data = read_verified(path, "replay buffer", 2).data
    with np.load(_io.BytesIO(data)) as npz:
        arrays = dict(npz)
    mutate(arrays)
    out = _io.BytesIO()
    np.savez(out, **arrays)
    write_verified(path, out.getvalue(), "replay buffer", version)


def _saved(tmp_path, n=6, capacity=10):
    buf = ReplayBuffer(capacity, OBS, ACT)
    fill(buf, n)
    return buf.save(tmp_path / "buf.npz")


def test_buffer_flipped_bytes_rejected(tmp_path):
    path = _saved(tmp_path)
    raw = path.read_bytes()
    for pos in (len(raw) // 2, len(raw) - 3):
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        path.write_bytes(bytes(bad))
        with pytest.raises(ValueError, match=r"buf\.npz.*checksum"):
            ReplayBuffer.load(path)


@pytest.mark.parametrize("key", ["obs", "act", "next_obs", "reward"])
def test_buffer_nan_data_rejected(tmp_path, key):
    path = _saved(tmp_path)

    def poison(a):
        a[key] = a[key].copy()
        a[key].reshape(-1)[1] = np.nan

    _rewrite(path, poison)
    with pytest.raises(ValueError, match=f"{key} contains NaN"):
        ReplayBuffer.load(path)


@pytest.mark.parametrize("key", ["obs", "next_obs", "act", "reward"])
def test_buffer_changed_dtype_rejected(tmp_path, key):
    path = _saved(tmp_path)

    def to_half(a):
        a[key] = a[key].astype(np.float16)

    _rewrite(path, to_half)
    with pytest.raises(ValueError, match=f"{key} has dtype float16"):
        ReplayBuffer.load(path)


def test_buffer_huge_capacity_rejected_without_allocating(tmp_path):
    path = _saved(tmp_path)

    def huge(a):
        a["meta"] = a["meta"].copy()
        a["meta"][1] = 10**13  # capacity

    _rewrite(path, huge)
    with pytest.raises(ValueError, match=r"capacity=10000000000000.*GiB.*memory"):
        ReplayBuffer.load(path)


@pytest.mark.parametrize(
    "content", [b"", b"garbage", b"MBRL-VERIFIED\n", b"PK\x03\x04", b"\x00" * 64]
)
def test_buffer_empty_and_foreign_files(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"x\.npz.*not a valid replay buffer file"):
        ReplayBuffer.load(path)


def test_buffer_truncated_at_every_size(tmp_path):
    path = _saved(tmp_path)
    raw = path.read_bytes()
    for cut in range(0, len(raw), max(1, len(raw) // 40)):
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="not a valid replay buffer file"):
            ReplayBuffer.load(path)


def test_buffer_format_version(tmp_path):
    path = _saved(tmp_path)
    _rewrite(path, lambda a: None, version=3)
    with pytest.raises(ValueError, match="format_version 3 is newer"):
        ReplayBuffer.load(path)


def test_buffer_format_1_files_still_load(tmp_path):
    """A bare .npz as version 1 wrote it (zip CRC, no header) is still read and checked."""
    buf = ReplayBuffer(10, OBS, ACT)
    fill(buf, 4)
    b = buf.get_all()
    meta = np.array([1, 10, OBS, ACT, 4, 4, 1], dtype=np.int64)
    fields = b._asdict()
    start = np.zeros(4, dtype=bool)
    start[0] = True
    np.savez(tmp_path / "v1.npz", **fields, episode_start=start, meta=meta)
    loaded = ReplayBuffer.load(tmp_path / "v1.npz")
    np.testing.assert_array_equal(loaded.get_all().obs, b.obs)
    fields["obs"] = fields["obs"].copy()
    fields["obs"][0, 0] = np.inf
    np.savez(tmp_path / "v1.npz", **fields, episode_start=start, meta=meta)
    with pytest.raises(ValueError, match="obs contains NaN or inf"):
        ReplayBuffer.load(tmp_path / "v1.npz")


def test_save_into_a_path_whose_parent_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    buf = ReplayBuffer(4, OBS, ACT)
    with pytest.raises(NotADirectoryError, match=r"path: .*afile/buf\.npz.*is a file"):
        buf.save(tmp_path / "afile" / "buf.npz")
    with pytest.raises(NotADirectoryError, match=r"path: .*afile/deeper/buf\.npz"):
        buf.save(tmp_path / "afile" / "deeper" / "buf.npz")
