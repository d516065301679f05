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


def test_validation_starts_select_the_best_iterate_and_survive_a_resume(tmp_path):
    """``validation_starts``: the final policy is the iterate with the highest validation
    return (logged per iteration); its held-out returns are the result's, ``load_policy``
    gives its weights, and a resumed run selects as an uninterrupted one."""
    import csv

    import numpy as np

    from mbrl.algorithms.gps import _build
    from mbrl.algorithms.gps_problem import policy_rollouts

    def cfg(root, iterations):
        c = _cfg(root, "gps", iterations)
        c.validation_starts, c.lr = 6, 1.0  # large steps: the iterates differ
        return c

    whole = run_gps(cfg(tmp_path / "a", 4))
    first = run_gps(cfg(tmp_path / "b", 2))
    resumed = run_gps(cfg(tmp_path / "b", 4), resume=first.run_dir)
    with open(whole.run_dir / "iteration.csv") as f:
        rows = list(csv.DictReader(f))
    val = [float(r["validation_return"]) for r in rows]
    best = int(np.argmax(val)) + 1
    assert whole.selected_iteration == resumed.selected_iteration == best
    assert np.mean(whole.final_returns) == whole.policy_returns[best - 1]
    assert resumed.final_returns == whole.final_returns
    ctx, evaluation = _build(cfg(tmp_path / "c", 4))
    policy = load_policy(whole.run_dir)
    got = -policy_rollouts(ctx.problem, policy, evaluation.validation_x0).cost.mean()
    assert float(got) == val[best - 1]
    held_out = -policy_rollouts(ctx.problem, policy, evaluation.x0).cost
    assert held_out.tolist() == whole.final_returns
    # the validation starts are neither the held-out starts nor the conditions
    others = torch.cat([evaluation.x0, ctx.conditions(0)])
    assert float(torch.cdist(evaluation.validation_x0, others).min()) > 0
    with pytest.raises(ValueError, match="validation_starts"):
        GPSConfig(validation_starts=1001)


def test_select_keeps_the_iterate_with_the_highest_validation_return(tmp_path):
    from mbrl.algorithms.gps import _build, _Progress, _select
    from mbrl.algorithms.gps_problem import policy_rollouts

    c = _cfg(tmp_path, "gps", 3)
    c.validation_starts = 4
    ctx, evaluation = _build(c)
    xv = evaluation.validation_x0
    first = {k: v.clone() for k, v in ctx.policy.state_dict().items()}
    other = {k: v.clone() for k, v in first.items()}
    other[[k for k in other if k.endswith("bias")][-1]] += 5.0  # actions at the bound
    weights = {"first": first, "other": other}
    returns = {}
    for name, w in weights.items():
        ctx.policy.load_state_dict(w)
        returns[name] = float(-policy_rollouts(ctx.problem, ctx.policy, xv).cost.mean())
    better = max(returns, key=returns.get)
    assert returns["first"] != returns["other"]
    for order in (("first", "other"), ("other", "first")):
        prog = _Progress()
        for i, name in enumerate(order):
            ctx.policy.load_state_dict(weights[name])
            prog.policy_returns.append(0.0)
            assert _select(ctx, prog, xv, [float(i)]) == returns[name]
        assert prog.best_iteration == 1 + order.index(better)
        assert prog.best_returns == [float(order.index(better))]
        for k, v in prog.best_policy.items():
            torch.testing.assert_close(v, weights[better][k], rtol=0, atol=0)
