"""A stopped guided-policy-search run resumed from its checkpoint ends exactly as an
uninterrupted one (policy weights, multipliers, aggregated data and generators restored)."""

from __future__ import annotations

import pytest
import torch

from mbrl.algorithms.gps import load_policy, run_gps
from mbrl.algorithms.gps_config import GPSConfig


def _cfg(root, method: str, iterations: int) -> GPSConfig:
    return GPSConfig(
        method=method, num_conditions=2, iterations=iterations, horizon=25, eval_episodes=2,
        teacher_horizon=8, teacher_first_iters=5, traj_iters=5, epochs=3, timing_steps=2,
        run_root=str(root), progress=False,
    )  # fmt: skip


@pytest.mark.parametrize("method", ["gps", pytest.param("dagger", marks=pytest.mark.slow)])
def test_resumed_run_equals_uninterrupted_run(tmp_path, method):
    whole = run_gps(_cfg(tmp_path / "a", method, 3))
    first = run_gps(_cfg(tmp_path / "b", method, 2))
    resumed = run_gps(_cfg(tmp_path / "b", method, 3), resume=first.run_dir)
    assert resumed.run_dir == first.run_dir
    assert resumed.policy_returns == whole.policy_returns
    assert resumed.violations == whole.violations
    assert resumed.teacher_labels == whole.teacher_labels
    a, b = load_policy(whole.run_dir), load_policy(resumed.run_dir)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)
    rows = (resumed.run_dir / "iteration.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 3  # header and one row per iteration, none logged twice
