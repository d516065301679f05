import math

import pytest
import torch

from mbrl.models import GaussianEnsemble


def make(e=4, **kw):
    return GaussianEnsemble(
        3,
        2,
        num_members=e,
        hidden=16,
        num_layers=2,
        generator=torch.Generator().manual_seed(0),
        **kw,
    )


def test_shapes_and_broadcast_equals_per_member():
    ens = make()
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(1))
    mean, logvar = ens(x)
    assert mean.shape == (4, 10, 2) and logvar.shape == (4, 10, 2)
    mean2, logvar2 = ens(x.expand(4, 10, 3).contiguous())
    torch.testing.assert_close(mean, mean2)
    torch.testing.assert_close(logvar, logvar2)
    # members differ (independent initialisation)
    assert (mean[0] - mean[1]).abs().max() > 1e-3


def test_each_member_is_its_own_mlp():
    """The batched forward equals a plain per-member MLP evaluated one member at a time."""
    ens = make()
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(2))
    mean, logvar = ens(x)
    for e in range(4):
        h = x
        for i, (w, b) in enumerate(zip(ens.weights, ens.biases, strict=True)):
            h = h @ w[e] + b[e, 0]
            if i < len(ens.weights) - 1:
                h = torch.nn.functional.silu(h)
        mu, raw = h[:, :2], h[:, 2:]
        hi, lo = ens.max_logvar[e, 0], ens.min_logvar[e, 0]
        lv = hi - torch.nn.functional.softplus(hi - raw)
        lv = lo + torch.nn.functional.softplus(lv - lo)
        torch.testing.assert_close(mean[e], mu)
        torch.testing.assert_close(logvar[e], lv)


def test_members_subset():
    ens = make()
    x = torch.randn(5, 3)
    mean, _ = ens(x)
    sub, _ = ens(x, members=torch.tensor([3, 1]))
    torch.testing.assert_close(sub, mean[[3, 1]])
    with pytest.raises(ValueError, match="x"):
        ens(torch.randn(3, 5, 3), members=torch.tensor([3, 1]))


def test_logvar_soft_bounds():
    ens = make()
    with torch.no_grad():
        ens.weights[-1].mul_(1e4)  # push raw log-variances to extremes
    _, logvar = ens(torch.randn(200, 3) * 10)
    # soft bounds: within softplus tails (exp(-10.5) ~ 3e-5) of [min_logvar, max_logvar]
    assert logvar.max() <= 0.5 + 1e-4 and logvar.min() >= -10 - 1e-4
    assert logvar.max() > 0.49 and logvar.min() < -9.99


def test_member_gradients_are_independent():
    """Member e's loss has no gradient on another member's parameters."""
    ens = make()
    x, y = torch.randn(4, 8, 3), torch.randn(4, 8, 2)
    mean, logvar = ens(x)
    ens.gaussian_nll(mean, logvar, y)[1].backward()
    for p in ens.parameters():
        assert p.grad is not None
        others = [0, 2, 3]
        assert p.grad[others].abs().max() == 0
        assert p.grad[1].abs().max() > 0 or p is ens.min_logvar or p is ens.max_logvar


def test_nll_value():
    mean = torch.zeros(1, 1, 1)
    logvar = torch.full((1, 1, 1), math.log(4.0))
    target = torch.full((1, 1), 2.0)
    nll = GaussianEnsemble.gaussian_nll(mean, logvar, target)
    expected = 0.5 * (4.0 / 4.0 + math.log(4.0) + math.log(2 * math.pi))
    torch.testing.assert_close(nll, torch.tensor([expected]))


def test_loss_includes_bound_penalty():
    ens = make()
    x, y = torch.randn(4, 8, 3), torch.randn(4, 8, 2)
    mean, logvar = ens(x)
    expected = ens.gaussian_nll(mean, logvar, y).sum() + 0.01 * (
        ens.max_logvar.sum() - ens.min_logvar.sum()
    )
    torch.testing.assert_close(ens.loss(x, y), expected)


def test_init_is_truncated_normal_and_seeded():
    a, b = make(), make()
    for wa, wb in zip(a.weights, b.weights, strict=True):
        torch.testing.assert_close(wa, wb)
        std = 1 / (2 * math.sqrt(wa.shape[1]))
        assert wa.abs().max() <= 2 * std + 1e-6
    assert all((bias == 0).all() for bias in a.biases)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_members"):
        GaussianEnsemble(3, 2, num_members=0)
    with pytest.raises(ValueError, match="activation"):
        GaussianEnsemble(3, 2, activation="nope")
    assert GaussianEnsemble(3, 2, 2, 8, 1, activation=torch.nn.ReLU).activation_name == "relu"


def test_flops_count():
    ens = GaussianEnsemble(10, 3, num_members=2, hidden=20, num_layers=2)
    assert ens.flops_per_sample() == 2 * (10 * 20 + 20 * 20 + 20 * 6)


def test_bfloat16_autocast_close_to_float32():
    ens = make()
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(3))
    mean, _ = ens(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mean_bf, _ = ens(x)
    assert mean_bf.dtype == torch.bfloat16
    torch.testing.assert_close(mean_bf.float(), mean, atol=0.05, rtol=0.05)


def test_inference_chunking_gives_same_result():
    ens = make()
    ens.inference_chunk_rows = 7
    ens.inference_path = "blocks"  # "auto" would take the reference path for so few rows
    x = torch.randn(30, 3, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        chunked = ens(x)
        per_member = ens(x.expand(4, 30, 3))
    full = ens(x)  # autograd on: one block
    for a, b, c in zip(chunked, full, per_member, strict=True):
        torch.testing.assert_close(a, b.detach())
        torch.testing.assert_close(c, b.detach())


def test_block_inference_in_and_out_of_inference_mode():
    ens = make()
    ens.inference_chunk_rows = 8
    ens.inference_path = "blocks"  # "auto" would take the reference path for so few rows
    x = torch.randn(21, 3, generator=torch.Generator().manual_seed(6))
    ref_mean, ref_logvar = (t.detach() for t in ens(x))
    with torch.inference_mode():
        a = ens(x)
    with torch.no_grad():  # reuses buffers created under inference mode
        b = ens(x)
        c = ens(x[:5])  # fewer rows than one block
    for got in (a, b):
        torch.testing.assert_close(got[0], ref_mean)
        torch.testing.assert_close(got[1], ref_logvar)
    torch.testing.assert_close(c[0], ref_mean[:, :5])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        bf_mean, _ = ens(x)
    assert bf_mean.dtype == torch.float32  # layers in bf16, outputs in the parameters' dtype
    torch.testing.assert_close(bf_mean, ref_mean, atol=0.05, rtol=0.05)
    assert not torch.equal(bf_mean, ref_mean)  # really computed in bf16
    tanh = GaussianEnsemble(3, 2, 2, 8, 2, activation="tanh")
    tanh.inference_chunk_rows = 4
    tanh.inference_path = "blocks"
    with torch.no_grad():
        torch.testing.assert_close(
            tanh(x)[0],
            tanh._forward_rows(
                x.expand(2, 21, 3),
                list(tanh.weights),
                list(tanh.biases),
                tanh.max_logvar,
                tanh.min_logvar,
            )[0],
        )
