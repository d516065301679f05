"""The fused oneDNN inference forward against the reference forward (``inference_path="rows"``).

float32: equal to 1e-5. bfloat16: the fused forward's error against the float32 reference is
bounded by ``BF16_RTOL`` times the largest output magnitude, and is of the same size as the error
of the reference layout run under bfloat16 autocast (an independent bfloat16 evaluation).
"""

import pytest
import torch

from mbrl.models import PROPAGATIONS, DynamicsModel, GaussianEnsemble, ModelEnv
from mbrl.models.ensemble import SMALL_BATCH_ROWS
from mbrl.models.fused_forward import fused_available

BF16_RTOL = 1e-2
"""Fused bfloat16 outputs lie within this fraction of the largest float32 output magnitude (a
bfloat16 value carries 8 significant bits, a relative rounding of 2**-9 per operation, and each
layer adds its own)."""

needs_fp32 = pytest.mark.skipif(not fused_available(torch.float32), reason="no oneDNN")
needs_bf16 = pytest.mark.skipif(
    not fused_available(torch.bfloat16), reason="no native bfloat16 matmul on this CPU"
)


def make(activation="silu", e=5, hidden=64, layers=3, in_dim=7, out_dim=5):
    ens = GaussianEnsemble(
        in_dim,
        out_dim,
        num_members=e,
        hidden=hidden,
        num_layers=layers,
        activation=activation,
        generator=torch.Generator().manual_seed(0),
    )
    with torch.no_grad():  # non-zero biases, so a dropped bias would show
        for b in ens.biases:
            b.normal_(0.0, 0.1, generator=torch.Generator().manual_seed(1))
    return ens


def forward(ens, x, path, members=None, dtype=None):
    ens.inference_path = path
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
        return ens(x, members)


@needs_fp32
@pytest.mark.parametrize("activation", ["silu", "relu", "tanh", "gelu", "leakyrelu", "elu"])
def test_fp32_equals_reference(activation):
    ens = make(activation)
    g = torch.Generator().manual_seed(2)
    per_member = torch.randn(5, 300, 7, generator=g)
    shared = torch.randn(40, 7, generator=g)
    for x, members in ((per_member, None), (shared, None), (shared, torch.tensor([4, 1]))):
        ref = forward(ens, x, "rows", members)
        got = forward(ens, x, "fused", members)
        for a, b in zip(got, ref, strict=True):
            assert a.dtype == torch.float32
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@needs_fp32
def test_blocks_of_rows_equal_all_rows():
    ens = make()
    x = torch.randn(5, 1000, 7, generator=torch.Generator().manual_seed(3))
    ens.inference_chunk_rows = 128  # 7 full blocks and a partial one
    got = forward(ens, x, "fused")
    ens.inference_chunk_rows = None
    ref = forward(ens, x, "rows")
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


@needs_bf16
@pytest.mark.parametrize("activation", ["silu", "elu"])
def test_bf16_within_tolerance_of_fp32(activation):
    ens = make(activation, hidden=200)
    x = torch.randn(5, 500, 7, generator=torch.Generator().manual_seed(4))
    ref = forward(ens, x, "rows")
    fused = forward(ens, x, "fused", dtype=torch.bfloat16)
    blocks = forward(ens, x, "blocks", dtype=torch.bfloat16)
    for got, other, want in zip(fused, blocks, ref, strict=True):
        assert got.dtype == torch.float32  # outputs in the parameters' dtype
        scale = want.abs().max()
        err = (got - want).abs().max()
        assert err <= BF16_RTOL * scale
        # the same size as an independent bfloat16 evaluation's error (not e.g. a dropped bias)
        assert err <= 3 * (other - want).abs().max() + 1e-3 * scale
    # and far from float32's agreement: the matmuls did run in bfloat16
    assert (fused[0] - ref[0]).abs().max() > 1e-5


@needs_fp32
def test_layout_follows_weight_updates():
    """The cast weights are rebuilt after an in-place update (optimiser step) or a reload."""
    ens = make()
    x = torch.randn(5, 20, 7, generator=torch.Generator().manual_seed(5))
    before = forward(ens, x, "fused")[0]
    with torch.no_grad():
        ens.weights[1].mul_(1.5)
        ens.biases[2][3].add_(0.25)  # one member's bias, through a view
    after = forward(ens, x, "fused")[0]
    torch.testing.assert_close(after, forward(ens, x, "rows")[0], rtol=1e-5, atol=1e-5)
    assert (after - before).abs().max() > 1e-3
    ens.load_state_dict(make().state_dict())
    torch.testing.assert_close(forward(ens, x, "fused")[0], before, rtol=1e-5, atol=1e-5)


def test_inference_path_checked_and_autograd_uses_rows():
    ens = make()
    ens.inference_path = "fast"
    with pytest.raises(ValueError, match="inference_path"), torch.no_grad():
        ens(torch.randn(3, 7))
    ens.inference_path = "fused"
    x = torch.randn(3, 7, requires_grad=True)
    ens(x)[0].sum().backward()  # with autograd the reference path serves every setting
    assert x.grad is not None


@needs_bf16
def test_auto_takes_the_fused_path_in_bf16_only():
    ens = make()
    x = torch.randn(5, SMALL_BATCH_ROWS + 20, 7)
    forward(ens, x, "auto")
    assert ens._packed is None  # float32: the block path
    got = forward(ens, x, "auto", dtype=torch.bfloat16)
    assert ens._packed is not None and ens._packed.key[0] == torch.bfloat16
    torch.testing.assert_close(got, forward(ens, x, "fused", dtype=torch.bfloat16), rtol=0, atol=0)


@needs_bf16
def test_parameters_made_in_inference_mode_take_the_block_path():
    with torch.inference_mode():
        ens = make()
        x = torch.randn(5, SMALL_BATCH_ROWS + 20, 7)
        ens.inference_path = "auto"
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto = ens(x)[0]
        ens.inference_path = "blocks"
        with torch.autocast("cpu", dtype=torch.bfloat16):
            blocks = ens(x)[0]
        assert torch.equal(auto, blocks)
        assert ens._packed is None
        ens.inference_path = "fused"
        with pytest.raises(ValueError, match="inference_mode"):
            ens(x)


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_auto_takes_the_reference_path_for_few_rows_and_the_block_path_beyond(dtype):
    """The "auto" path with at most SMALL_BATCH_ROWS rows per member is the reference forward,
    bit for bit (shared rows, per-member rows, a member selection); one row more takes the block
    path."""
    ens = make()
    g = torch.Generator().manual_seed(3)
    few = (
        (torch.randn(SMALL_BATCH_ROWS, 7, generator=g), None),
        (torch.randn(5, 3, 7, generator=g), None),
        (torch.randn(1, 7, generator=g), torch.tensor([4, 1])),
    )
    for x, members in few:
        auto = forward(ens, x, "auto", members, dtype)
        ref = forward(ens, x, "rows", members, dtype)
        assert all(torch.equal(a, b) for a, b in zip(auto, ref, strict=True))
    x = torch.randn(SMALL_BATCH_ROWS + 1, 7, generator=g)
    if dtype is None:  # float32: the block path, as "blocks" gives it
        auto = forward(ens, x, "auto")
        assert all(torch.equal(a, b) for a, b in zip(auto, forward(ens, x, "blocks"), strict=True))


def model_env(propagation, learn_reward):
    model = DynamicsModel(
        3,
        2,
        num_members=4,
        hidden=32,
        num_layers=2,
        learn_reward=learn_reward,
        generator=torch.Generator().manual_seed(0),
    )
    g = torch.Generator().manual_seed(1)
    model.input_normalizer.fit(torch.randn(50, 5, generator=g))
    model.output_normalizer.fit(0.1 * torch.randn(50, model.target_dim, generator=g))

    def reward_fn(obs, act, next_obs):
        return -next_obs.square().sum(-1) - 0.1 * act.square().sum(-1)

    reward = None if learn_reward else reward_fn
    return ModelEnv(model, reward_fn=reward, propagation=propagation)


def rollout(env, path, dtype=None):
    env.model.ensemble.inference_path = path
    obs0 = torch.randn(30, 3, generator=torch.Generator().manual_seed(2))
    actions = torch.randn(30, 8, 2, generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
        return env.rollout(obs0, actions, generator=gen)


@needs_fp32
@pytest.mark.parametrize("propagation", PROPAGATIONS)
@pytest.mark.parametrize("learn_reward", [False, True])
def test_every_propagation_same_through_fused_path(propagation, learn_reward):
    env = model_env(propagation, learn_reward)
    ref = rollout(env, "rows")
    got = rollout(env, "fused")
    torch.testing.assert_close(got.obs, ref.obs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.rewards, ref.rewards, rtol=1e-5, atol=1e-5)
    assert torch.equal(got.terminated, ref.terminated)


@needs_bf16
@pytest.mark.parametrize("propagation", PROPAGATIONS)
def test_every_propagation_bf16_fused_close_to_fp32(propagation):
    env = model_env(propagation, learn_reward=False)
    ref = rollout(env, "rows")
    got = rollout(env, "fused", dtype=torch.bfloat16)
    # the same random draws; the states differ only by bfloat16 rounding of the predicted
    # changes, which are small against the states (output normaliser std 0.1): a tenth of the
    # forward's tolerance
    scale = ref.obs.abs().max()
    assert (got.obs - ref.obs).abs().max() <= 0.1 * BF16_RTOL * scale
    assert (got.obs - ref.obs).abs().max() > 0
