import pytest
import torch

import envs
from mbrl.models import DynamicsModel, EnsembleModel, Prediction
from mbrl.util.io import load_verified


def make(**kw):
    kw.setdefault("num_members", 4)
    kw.setdefault("hidden", 16)
    kw.setdefault("num_layers", 2)
    kw.setdefault("generator", torch.Generator().manual_seed(0))
    return DynamicsModel(3, 2, **kw)


def fit_normalizers(model, g):
    """Give the normalisers non-trivial statistics, as training would."""
    x = torch.randn(100, model.input_normalizer.dim, generator=g) * 3 + 1
    y = torch.randn(100, model.output_normalizer.dim, generator=g) * 0.1 - 0.5
    model.input_normalizer.fit(x)
    model.output_normalizer.fit(y)


def test_satisfies_protocol_and_shapes():
    model = make(learn_reward=True)
    assert isinstance(model, EnsembleModel) and model.num_members == 4
    obs, act = torch.randn(6, 3), torch.randn(6, 2)
    pred = model.predict(obs, act)
    assert isinstance(pred, Prediction)
    assert pred.next_obs_mean.shape == (4, 6, 3) and pred.next_obs_var.shape == (4, 6, 3)
    assert pred.reward_mean.shape == (4, 6) and pred.reward_var.shape == (4, 6)
    nxt, rew = model.sample(obs.expand(4, 6, 3), act.expand(4, 6, 2))
    assert nxt.shape == (4, 6, 3) and rew.shape == (4, 6)
    assert model.mean_next_obs(obs, act).shape == (6, 3)
    assert model.mean_next_obs(obs[0], act[0]).shape == (3,)
    assert model.mean_next_obs(obs.view(2, 3, 3), act.view(2, 3, 2)).shape == (2, 3, 3)
    assert make().predict(obs, act).reward_mean is None
    assert make().sample(obs, act)[1] is None


def test_predict_is_delta_in_original_units():
    """predict = obs + denormalised network mean; var = exp(logvar) * std_out^2."""
    g = torch.Generator().manual_seed(1)
    model = make(learn_reward=True)
    fit_normalizers(model, g)
    obs, act = torch.randn(5, 3, generator=g), torch.randn(5, 2, generator=g)
    x = (torch.cat([obs, act], -1) - model.input_normalizer.mean) / model.input_normalizer.std
    mean_n, logvar_n = model.ensemble(x)
    mean = mean_n * model.output_normalizer.std + model.output_normalizer.mean
    var = logvar_n.exp() * model.output_normalizer.std**2
    pred = model.predict(obs, act)
    torch.testing.assert_close(pred.next_obs_mean, obs + mean[..., :3])
    torch.testing.assert_close(pred.next_obs_var, var[..., :3])
    torch.testing.assert_close(pred.reward_mean, mean[..., 3])
    torch.testing.assert_close(pred.reward_var, var[..., 3])
    torch.testing.assert_close(model.mean_next_obs(obs, act), (obs + mean[..., :3]).mean(0))


def test_per_member_input_goes_to_that_member():
    model = make()
    obs, act = torch.randn(4, 5, 3), torch.randn(4, 5, 2)
    pred = model.predict(obs, act)
    for e in range(4):
        alone = model.predict(obs[e], act[e]).next_obs_mean[e]
        torch.testing.assert_close(pred.next_obs_mean[e], alone)


def test_sample_statistics_and_seeding():
    g = torch.Generator().manual_seed(2)
    model = make(learn_reward=True)
    fit_normalizers(model, g)
    obs, act = torch.randn(1, 3).expand(20000, 3), torch.randn(1, 2).expand(20000, 2)
    with torch.no_grad():
        pred = model.predict(obs[:1], act[:1])
        nxt, rew = model.sample(obs, act, torch.Generator().manual_seed(3))
        nxt2, _ = model.sample(obs, act, torch.Generator().manual_seed(3))
    assert torch.equal(nxt, nxt2)
    std = pred.next_obs_var.sqrt()
    # 20000 draws: standard error of the mean is std / 141
    assert ((nxt.mean(1, keepdim=True) - pred.next_obs_mean).abs() < 5 * std / 141).all()
    torch.testing.assert_close(nxt.var(1, keepdim=True), pred.next_obs_var, rtol=0.05, atol=0)
    torch.testing.assert_close(rew.var(1), pred.reward_var[:, 0], rtol=0.05, atol=0)


def test_elites_restrict_members():
    model = make(num_elites=2)
    model.set_elites([3, 1])
    assert model.elite_indices == [1, 3] and model.num_members == 4
    obs, act = torch.randn(5, 3), torch.randn(5, 2)
    full = model.predict(obs, act).next_obs_mean
    model.use_elites = True
    assert model.num_members == 2
    sub = model.predict(obs, act).next_obs_mean
    torch.testing.assert_close(sub, full[[1, 3]])
    torch.testing.assert_close(model.mean_next_obs(obs, act), full[[1, 3]].mean(0))
    per = model.predict(obs.expand(2, 5, 3), act.expand(2, 5, 2)).next_obs_mean
    torch.testing.assert_close(per, full[[1, 3]])
    with pytest.raises(ValueError, match="obs"):
        model.predict(obs.expand(4, 5, 3), act.expand(4, 5, 2))
    with pytest.raises(ValueError, match="indices"):
        model.set_elites([0, 0])
    with pytest.raises(ValueError, match="indices"):
        model.set_elites([7])


def test_input_validation():
    model = make()
    obs, act = torch.randn(5, 3), torch.randn(5, 2)
    with pytest.raises(ValueError, match="obs"):
        model.predict(torch.randn(5, 4), act)
    with pytest.raises(ValueError, match="act"):
        model.predict(obs, torch.randn(4, 2))
    with pytest.raises(ValueError, match="obs"):
        model.predict(torch.randn(3, 5, 3), torch.randn(3, 5, 2))
    bad = obs.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="obs.*NaN"):
        model.predict(bad, act)
    with pytest.raises(ValueError, match="act.*NaN"):
        model.sample(obs, torch.full((5, 2), float("inf")))
    with pytest.raises(ValueError, match="obs.*NaN"):  # -inf among finite values
        model.predict(torch.cat([obs[:4], torch.full((1, 3), -float("inf"))]), act)
    huge = torch.full((5, 3), 3e38)  # finite entries whose float32 sum overflows: accepted
    assert model.predict(huge, act).next_obs_mean.shape == (4, 5, 3)
    with pytest.raises(ValueError, match="obs"):
        model.predict(torch.zeros(5, 3, dtype=torch.long), act)
    with pytest.raises(TypeError, match="obs"):
        model.predict(obs.numpy(), act)
    with pytest.raises(ValueError, match="act"):
        model.mean_next_obs(obs, act[:, :1])
    with pytest.raises(ValueError, match="num_elites"):
        make(num_elites=9)


def test_float64_inputs_return_float64():
    model = make()
    obs, act = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    pred = model.predict(obs, act)
    assert pred.next_obs_mean.dtype == torch.float64
    torch.testing.assert_close(
        pred.next_obs_mean.float(), model.predict(obs.float(), act.float()).next_obs_mean
    )


def test_mean_next_obs_gradient_matches_finite_differences():
    model = make().double()
    obs = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    act = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model.mean_next_obs, (obs, act))


def test_obs_preprocess_fn():
    def feats(obs):
        return torch.cat([torch.cos(obs[..., :1]), torch.sin(obs[..., :1]), obs[..., 1:]], -1)

    model = make(obs_preprocess_fn=feats)
    assert model.feature_dim == 4 and model.ensemble.in_dim == 6
    assert model.predict(torch.randn(5, 3), torch.randn(5, 2)).next_obs_mean.shape == (4, 5, 3)
    with pytest.raises(ValueError, match="obs_preprocess_fn"):
        make(obs_preprocess_fn=lambda obs: obs.sum(-1))


def test_save_load_roundtrip(tmp_path):
    g = torch.Generator().manual_seed(4)
    model = make(learn_reward=True, num_elites=3)
    fit_normalizers(model, g)
    model.set_elites([0, 2, 3])
    path = tmp_path / "model.pt"
    model.save(path)
    raw = load_verified(path, "DynamicsModel checkpoint", 2)  # plain data only
    assert raw["config"]["num_members"] == 4 and raw["config"]["learn_reward"] is True
    loaded = DynamicsModel.load(path)
    assert loaded.elite_indices == [0, 2, 3] and loaded.num_elites == 3
    obs, act = torch.randn(7, 3, generator=g), torch.randn(7, 2, generator=g)
    a, b = model.predict(obs, act), loaded.predict(obs, act)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temporary file


def test_save_load_with_preprocess(tmp_path):
    task = envs.get_task("pendulum-swingup")
    model = DynamicsModel.for_task(task, num_members=2, hidden=8, num_layers=1)
    assert model.feature_dim == 3
    model.save(tmp_path / "m.pt")
    loaded = DynamicsModel.load(tmp_path / "m.pt")  # task name saved: preprocess from registry
    obs, act = torch.randn(4, 2), torch.randn(4, 1)
    assert torch.equal(model.mean_next_obs(obs, act), loaded.mean_next_obs(obs, act))
    anonymous = DynamicsModel(
        2, 1, num_members=2, hidden=8, num_layers=1, obs_preprocess_fn=task.obs_preprocess_fn
    )
    anonymous.save(tmp_path / "a.pt")
    with pytest.raises(ValueError, match="obs_preprocess_fn"):
        DynamicsModel.load(tmp_path / "a.pt")
    again = DynamicsModel.load(tmp_path / "a.pt", obs_preprocess_fn=task.obs_preprocess_fn)
    assert torch.equal(anonymous.mean_next_obs(obs, act), again.mean_next_obs(obs, act))


def test_load_rejects_other_files(tmp_path):
    torch.save({"foo": torch.zeros(1)}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="checkpoint"):
        DynamicsModel.load(tmp_path / "x.pt")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_train_predict_sample_rollout(tmp_path):
    from mbrl.models import ModelEnv, ModelTrainer

    dev = torch.device("cuda")
    model = make(learn_reward=True).to(dev)
    g = torch.Generator().manual_seed(0)
    obs, act = torch.randn(200, 3, generator=g), torch.randn(200, 2, generator=g)
    nxt, rew = obs + 0.1 * act.sum(-1, keepdim=True), obs.sum(-1)
    ModelTrainer(model, seed=0, progress_bar=False).train(obs, act, nxt, rew, epochs=2)
    assert model.device.type == "cuda"
    cg = torch.Generator(device=dev).manual_seed(0)
    draw, r = model.sample(obs[:5].to(dev), act[:5].to(dev), cg)
    assert draw.device.type == "cuda" and r.shape == (4, 5)
    roll = ModelEnv(model, propagation="ts1").rollout(
        obs[:6].to(dev), torch.zeros(6, 3, 2, device=dev), generator=cg
    )
    assert roll.obs.shape == (6, 4, 3) and roll.obs.device.type == "cuda"
    model.save(tmp_path / "m.pt")
    cpu = DynamicsModel.load(tmp_path / "m.pt", map_location="cpu")
    torch.testing.assert_close(
        cpu.predict(obs[:5], act[:5]).next_obs_mean,
        model.predict(obs[:5].to(dev), act[:5].to(dev)).next_obs_mean.cpu(),
        atol=1e-4,
        rtol=1e-4,
    )


# ---------------------------------------------------------------------- checkpoint files
def saved(tmp_path, name="m.pt"):
    model = make(learn_reward=True, num_elites=3)
    fit_normalizers(model, torch.Generator().manual_seed(4))
    path = tmp_path / name
    model.save(path)
    return model, path


def test_checkpoint_with_flipped_bytes_is_rejected(tmp_path):
    _, path = saved(tmp_path)
    raw = bytearray(path.read_bytes())
    for pos in (len(raw) // 3, len(raw) // 2, len(raw) - 5):
        bad = raw.copy()
        bad[pos] ^= 0xFF
        path.write_bytes(bytes(bad))
        with pytest.raises(ValueError, match=r"m\.pt.*not a valid DynamicsModel checkpoint"):
            DynamicsModel.load(path)


@pytest.mark.parametrize("content", [b"", b"hello", b"\x00" * 100])
def test_empty_and_foreign_files_are_not_checkpoints(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"x\.pt.*not a valid DynamicsModel checkpoint"):
        DynamicsModel.load(path)


def test_truncated_checkpoint_is_rejected(tmp_path):
    _, path = saved(tmp_path)
    raw = path.read_bytes()
    for cut in (10, len(raw) // 2, len(raw) - 1):
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="not a valid DynamicsModel checkpoint"):
            DynamicsModel.load(path)


def test_nan_weights_are_rejected(tmp_path):
    model, path = saved(tmp_path)
    with torch.no_grad():
        model.ensemble.weights[0][1, 0, 0] = float("nan")
    model.save(path)
    with pytest.raises(ValueError, match=r"ensemble\.weights\.0.*NaN"):
        DynamicsModel.load(path)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("input_normalizer.std", 0.0, "std must be positive"),
        ("output_normalizer.std", -1.0, "std must be positive"),
        ("output_normalizer.mean", float("inf"), "NaN or infinite"),
        ("ensemble.max_logvar", float("nan"), "NaN or infinite"),
    ],
)
def test_bad_stored_values_are_rejected(tmp_path, key, value, match):
    from mbrl.util.io import load_verified, save_verified

    _, path = saved(tmp_path)
    payload = load_verified(path, "DynamicsModel checkpoint", 2)
    payload["state_dict"][key].view(-1)[0] = value
    save_verified(payload, path, "DynamicsModel checkpoint", 2)
    with pytest.raises(ValueError, match=match):
        DynamicsModel.load(path)
    payload["state_dict"][key] = payload["state_dict"][key][:1]  # wrong shape
    save_verified(payload, path, "DynamicsModel checkpoint", 2)
    with pytest.raises(ValueError, match="do not fit|NaN|positive"):
        DynamicsModel.load(path)


def test_format_version_is_read(tmp_path):
    from mbrl.util.io import load_verified, save_verified

    _, path = saved(tmp_path)
    payload = load_verified(path, "DynamicsModel checkpoint", 2)
    save_verified(payload, path, "DynamicsModel checkpoint", 3)
    with pytest.raises(ValueError, match="format_version 3 is newer"):
        DynamicsModel.load(path)
    # a plain torch.save (format 1, no checksum) is refused with a clear message
    torch.save({"format_version": 1, **payload}, path)
    with pytest.raises(ValueError, match="older version"):
        DynamicsModel.load(path)
    save_verified(payload, path, "replay buffer", 2)
    with pytest.raises(ValueError, match="holds a 'replay buffer'"):
        DynamicsModel.load(path)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("num_members", 10**9, "do not fit"),
        ("hidden", 10**7, "do not fit"),
        ("obs_dim", -1, "invalid configuration"),
        ("activation", "no-such", "invalid configuration"),
        ("learn_reward", "yes", "learn_reward.*expected a bool"),
        ("use_elites", 1, "use_elites.*expected a bool"),
        ("task_name", 5, "task_name.*expected a str"),
        ("feature_dim", "x", "feature_dim.*expected a positive int"),
    ],
)
def test_config_is_checked_before_allocating(tmp_path, key, value, match):
    from mbrl.util.io import load_verified, save_verified

    _, path = saved(tmp_path)
    payload = load_verified(path, "DynamicsModel checkpoint", 2)
    payload["config"][key] = value
    save_verified(payload, path, "DynamicsModel checkpoint", 2)
    with pytest.raises(ValueError, match=match):
        DynamicsModel.load(path)


def test_checkpoint_missing_keys_and_missing_file(tmp_path):
    from mbrl.util.io import save_verified

    path = save_verified({"config": {}}, tmp_path / "m.pt", "DynamicsModel checkpoint", 2)
    with pytest.raises(ValueError, match="expected keys"):
        DynamicsModel.load(path)
    with pytest.raises(FileNotFoundError):
        DynamicsModel.load(tmp_path / "missing.pt")
