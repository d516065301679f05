"""Every registered task computes float16/bfloat16 inputs in float32."""

import pytest
import torch

import envs


@pytest.mark.parametrize("name", [n for n in envs.list_tasks() if envs.get_task(n).is_analytic])
@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16])
def test_analytic_low_precision_inputs_are_computed_in_float32(name, low):
    task = envs.get_task(name)
    g = torch.Generator().manual_seed(0)
    obs = 3 * torch.randn(256, task.obs_dim, generator=g)
    nxt = obs + 0.2 * torch.randn(256, task.obs_dim, generator=g)
    act = torch.rand(256, task.act_dim, generator=g) * 2 - 1
    inputs = [x.to(low) for x in (obs, act, nxt)]
    reward = task.reward_fn(*inputs)
    assert reward.dtype == torch.float32
    ref = task.reward_fn(*[x.double() for x in inputs])
    torch.testing.assert_close(reward.double(), ref, rtol=1e-6, atol=1e-5)
    term = task.termination_fn(*inputs)
    assert torch.equal(term, task.termination_fn(*[x.double() for x in inputs]))


def test_wrapper_passes_float32_and_float64_through_unchanged():
    task = envs.get_task("pendulum-swingup")
    for dtype in (torch.float32, torch.float64):
        obs, act = torch.randn(4, 2, dtype=dtype), torch.randn(4, 1, dtype=dtype)
        out = task.reward_fn(obs, act, obs)
        assert out.dtype == dtype
        assert torch.equal(out, task.reward_fn.fn(obs, act, obs))
