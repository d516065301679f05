"""The shared sequence objective: particle layout, risk objectives, non-finite handling."""

from __future__ import annotations

import math

import pytest
import torch

from mbrl.models.model_env import ModelEnv, Prediction, nonfinite_rows
from mbrl.planning import CEMPlanner, SequenceObjective


class TwoMemberModel:
    """Deterministic 2-member ensemble on a scalar state: member 0 ``x' = 1 + 2u``, member 1
    ``x' = 1 - u``. With reward ``x'`` and one step, action ``u`` has member returns
    ``(1 + 2u, 1 - u)``: mean ``1 + u/2``, population std ``1.5 |u|``, worst ``1 - u`` (u >= 0)."""

    num_members = 2

    def predict(self, obs: torch.Tensor, act: torch.Tensor) -> Prediction:
        if obs.ndim == 2:
            obs, act = obs.expand(2, -1, -1), act.expand(2, -1, -1)
        slope = torch.tensor([2.0, -1.0], dtype=obs.dtype).view(2, 1, 1)
        mean = 1.0 + slope * act + 0.0 * obs
        return Prediction(mean, torch.zeros_like(mean))

    def sample(self, obs, act, generator=None):
        return self.predict(obs, act).next_obs_mean, None


def _objective(kind: str, k: int, propagation: str = "tsinf", beta: float = 1.0):
    env = ModelEnv(TwoMemberModel(), reward_fn=lambda o, a, n: n[..., 0], propagation=propagation)
    return SequenceObjective(env, num_particles=k, objective=kind, risk_beta=beta)


U = torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1)  # three one-step sequences


@pytest.mark.parametrize("k", [2, 4, 6])
def test_risk_objectives_exact_values(k):
    x0 = torch.zeros(1)
    torch.testing.assert_close(_objective("mean", k)(x0, U), torch.tensor([1.0, 1.25, 1.5]))
    torch.testing.assert_close(
        _objective("mean_minus_std", k)(x0, U), torch.tensor([1.0, 0.5, 0.0])
    )
    torch.testing.assert_close(
        _objective("mean_minus_std", k, beta=0.5)(x0, U), torch.tensor([1.0, 0.875, 0.75])
    )
    torch.testing.assert_close(_objective("worst_member", k)(x0, U), torch.tensor([1.0, 0.5, 0.0]))


def test_odd_particle_count_weights_members_equally():
    # K = 3: sequence 0 gets members (0, 1, 0), sequence 1 gets (1, 0, 1) under TS∞; the
    # member-based objectives average member means, not particles
    x0 = torch.zeros(1)
    u = torch.tensor([1.0, 1.0]).view(2, 1, 1)
    torch.testing.assert_close(_objective("mean_minus_std", 3)(x0, u), torch.tensor([0.0, 0.0]))
    torch.testing.assert_close(_objective("worst_member", 3)(x0, u), torch.tensor([0.0, 0.0]))
    # with one particle per sequence only one member is present: std 0
    torch.testing.assert_close(_objective("mean_minus_std", 1)(x0, u), torch.tensor([3.0, 0.0]))


def test_risk_objectives_change_the_plan():
    """Mean prefers u = 1 (1.5), the risk-averse objectives u = 0 (1.0)."""
    plans = {}
    for kind in ("mean", "mean_minus_std", "worst_member"):
        planner = CEMPlanner(
            _objective(kind, 2), 1, 0.0, 1.0, population=100, num_elites=10, iterations=5
        )
        plans[kind] = planner.plan(torch.zeros(1), generator=torch.Generator().manual_seed(0))
    assert float(plans["mean"].actions[0, 0]) > 0.95
    assert plans["mean"].value == pytest.approx(1.5, abs=0.03)
    for kind in ("mean_minus_std", "worst_member"):
        assert float(plans[kind].actions[0, 0]) < 0.05
        assert plans[kind].value == pytest.approx(1.0, abs=0.05)


def test_member_objectives_need_tsinf():
    with pytest.raises(ValueError, match="tsinf"):
        _objective("worst_member", 2, propagation="ts1")
    _objective("mean", 2, propagation="ts1")  # fine


def test_particles_are_contiguous_per_sequence_and_counted():
    seen = []

    def model(obs, act):
        seen.append(act.clone())
        return obs + act

    obj = SequenceObjective(ModelEnv(model, reward_fn=lambda o, a, n: n[..., 0]), num_particles=3)
    acts = torch.tensor([[[1.0], [2.0]], [[3.0], [4.0]]])  # (P=2, H=2, 1)
    scores = obj(torch.zeros(1), acts)
    torch.testing.assert_close(scores, torch.tensor([1.0 + 3.0, 3.0 + 7.0]))
    torch.testing.assert_close(seen[0][:, 0], torch.tensor([1.0, 1.0, 1.0, 3.0, 3.0, 3.0]))
    assert obj.model_steps == 2 * 3 * 2


def test_nonfinite_particles_score_minus_inf():
    def model(obs, act):
        return torch.where(act > 0.5, obs * math.inf, obs + act)

    obj = SequenceObjective(ModelEnv(model, reward_fn=lambda o, a, n: a[..., 0]), num_particles=2)
    acts = torch.tensor([0.1, 0.9, 0.3]).view(3, 1, 1)
    scores = obj(torch.zeros(1), acts)
    assert scores[1] == -math.inf  # state diverged even though the reward ignores it
    torch.testing.assert_close(scores[[0, 2]], torch.tensor([0.1, 0.3]))


def test_nonfinite_rows_matches_entrywise_check():
    big = torch.finfo(torch.float32).max
    x = torch.randn(6, 4, 3, generator=torch.Generator().manual_seed(0))
    x[1, 2, 0] = math.nan
    x[2, 0, 1] = -math.inf
    x[3] = big  # finite entries whose sum overflows: not a bad row
    x[4, 3, 2] = math.inf
    x[4, 0, 0] = -math.inf  # inf - inf: NaN sum
    expected = ~torch.isfinite(x).all(dim=2).all(dim=1)
    assert expected.tolist() == [False, True, True, False, True, False]
    assert torch.equal(nonfinite_rows(x), expected)
    assert not nonfinite_rows(torch.zeros(3, 2)).any()


def test_discount():
    env = ModelEnv(lambda o, a: o, reward_fn=lambda o, a, n: torch.ones_like(a[..., 0]))
    obj = SequenceObjective(env, discount=0.5)
    assert float(obj(torch.zeros(1), torch.zeros(1, 3, 1))[0]) == pytest.approx(1.75)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_particles=0), "num_particles"),
        (dict(objective="median"), "objective"),
        (dict(risk_beta=-1.0), "risk_beta"),
        (dict(discount=0.0), "discount"),
    ],
)
def test_bad_arguments(kwargs, match):
    env = ModelEnv(lambda o, a: o, reward_fn=lambda o, a, n: n[..., 0])
    with pytest.raises((ValueError, TypeError), match=match):
        SequenceObjective(env, **kwargs)


def test_bfloat16_precision_runs_the_model_in_bf16_and_stays_close():
    """precision='bfloat16' runs the ensemble's matrix products in bfloat16 (scores differ from
    float32 by bf16 rounding, not more); the scores come back in float32."""
    from envs import get_task
    from mbrl.models import DynamicsModel
    from mbrl.planning import CEMConfig, make_planner, planner_config

    task = get_task("pendulum-swingup")
    model = DynamicsModel.for_task(
        task, num_members=3, hidden=64, num_layers=2, generator=torch.Generator().manual_seed(0)
    )
    model.eval()
    env = ModelEnv(model, task, propagation="expectation")
    obs = torch.tensor([3.0, 0.5])
    acts = torch.rand(64, 10, 1, generator=torch.Generator().manual_seed(1)) * 4 - 2
    f32 = SequenceObjective(env, num_particles=1)(obs, acts)
    b16 = SequenceObjective(env, num_particles=1, precision="bfloat16")(obs, acts)
    assert f32.dtype == b16.dtype == torch.float32
    assert not torch.equal(f32, b16)  # bf16 arithmetic really happened
    torch.testing.assert_close(b16, f32, rtol=0.02, atol=0.05)
    # through make_planner
    cfg = planner_config("cem", horizon=5, population=32, num_elites=4, precision="bfloat16")
    res = make_planner(cfg, model, task).plan(obs, generator=torch.Generator().manual_seed(0))
    assert res.actions.shape == (5, 1) and torch.isfinite(res.actions).all()
    with pytest.raises(ValueError, match="precision"):
        CEMConfig(precision="float16")
    with pytest.raises(ValueError, match="precision"):
        planner_config("ilqr", precision="bfloat16")
    with pytest.raises(ValueError, match="precision"):
        SequenceObjective(env, precision="half")
