import pytest
import torch

from mbrl.models import Normalizer


def test_fit_normalize_roundtrip():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 3, generator=g) * torch.tensor([2.0, 0.5, 10.0]) + torch.tensor([1, -2, 3])
    norm = Normalizer(3)
    norm.fit(x)
    z = norm.normalize(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0, correction=0), torch.ones(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(norm.denormalize(z), x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(norm.denormalize_var(torch.ones(3)), x.var(0, correction=0))


def test_constant_feature_gets_unit_std():
    x = torch.stack([torch.linspace(0, 1, 10), torch.full((10,), 4.0)], -1)
    norm = Normalizer(2)
    norm.fit(x)
    assert norm.std[1] == 1.0 and norm.mean[1] == 4.0
    assert torch.isfinite(norm.normalize(x)).all()


def test_bad_input():
    norm = Normalizer(2)
    with pytest.raises(ValueError, match="data"):
        norm.fit(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="data"):
        norm.fit(torch.zeros(0, 2))
    with pytest.raises(ValueError, match="NaN"):
        norm.fit(torch.tensor([[0.0, float("nan")]]))


def test_statistics_are_saved_buffers():
    norm = Normalizer(2)
    norm.fit(torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
    state = norm.state_dict()
    other = Normalizer(2)
    other.load_state_dict(state)
    torch.testing.assert_close(other.mean, torch.tensor([1.0, 2.0]))
