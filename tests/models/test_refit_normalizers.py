"""Refitting the normalisers of a trained model: function-preserving by default in the trainer's
option, and the old behaviour (statistics only) when asked."""

import pytest
import torch

from mbrl.models import DynamicsModel, ModelTrainer


def trained_model(seed=0, learn_reward=False):
    """A 3-member model trained briefly on random data (weights far from the initial ones)."""
    g = torch.Generator().manual_seed(seed)
    model = DynamicsModel(
        3, 2, num_members=3, hidden=16, num_layers=2, generator=g, learn_reward=learn_reward
    )
    obs, act = torch.randn(300, 3, generator=g), torch.rand(300, 2, generator=g) * 2 - 1
    nxt = obs + 0.1 * torch.tanh(obs @ torch.randn(3, 3, generator=g)) + 0.05 * act.sum(1, True)
    rew = obs[:, 0] - act[:, 1]
    trainer = ModelTrainer(model, seed=seed, progress_bar=False)
    trainer.train(obs, act, nxt, rew if learn_reward else None, epochs=5)
    return model


def shifted_data(model, n=500, seed=1):
    """Raw inputs/targets with other means and scales than the training data's."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, model.input_normalizer.dim, generator=g) * 3.0 + 2.0
    y = torch.randn(n, model.target_dim, generator=g) * 0.01 - 0.5
    return x, y


@pytest.mark.parametrize("learn_reward", [False, True])
def test_preserving_refit_keeps_every_prediction(learn_reward):
    model = trained_model(learn_reward=learn_reward)
    g = torch.Generator().manual_seed(7)
    obs, act = torch.randn(64, 3, generator=g) * 2, torch.rand(64, 2, generator=g) * 2 - 1
    before = model.predict(obs, act)
    x, y = shifted_data(model)
    model.refit_normalizers(x, y)
    # the statistics really changed (else the test proves nothing)
    assert torch.allclose(model.input_normalizer.mean, x.mean(0), atol=1e-5)
    assert torch.allclose(model.output_normalizer.std, y.std(0, correction=0), rtol=1e-4)
    after = model.predict(obs, act)
    torch.testing.assert_close(after.next_obs_mean, before.next_obs_mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(after.next_obs_var, before.next_obs_var, rtol=1e-3, atol=1e-9)
    if learn_reward:
        torch.testing.assert_close(after.reward_mean, before.reward_mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(after.reward_var, before.reward_var, rtol=1e-3, atol=1e-9)


def test_statistics_only_refit_changes_predictions():
    model = trained_model()
    obs, act = torch.randn(64, 3), torch.zeros(64, 2)
    before = model.predict(obs, act).next_obs_mean
    model.refit_normalizers(*shifted_data(model), preserve=False)
    after = model.predict(obs, act).next_obs_mean
    assert (after - before).abs().max() > 0.1


def test_first_fit_of_an_untrained_model_only_sets_statistics():
    """Identity statistics (never fitted): the weights are left as initialised."""
    model = DynamicsModel(
        3, 2, num_members=2, hidden=8, num_layers=1, generator=torch.Generator().manual_seed(0)
    )
    weights = [w.detach().clone() for w in model.ensemble.parameters()]
    x, y = shifted_data(model)
    model.refit_normalizers(x, y)
    for w, w0 in zip(model.ensemble.parameters(), weights, strict=True):
        assert torch.equal(w, w0)
    assert torch.allclose(model.input_normalizer.std, x.std(0, correction=0), rtol=1e-4)


def test_trainer_option_is_checked():
    model = DynamicsModel(1, 1, num_members=2, hidden=8, num_layers=1)
    with pytest.raises(ValueError, match="preserve_on_refit"):
        ModelTrainer(model, preserve_on_refit="yes")
