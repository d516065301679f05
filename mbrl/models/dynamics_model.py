"""Learned dynamics: a :class:`GaussianEnsemble` over normalised inputs predicting state deltas.

Inputs are ``[obs_preprocess_fn(obs), act]`` standardised by an input :class:`Normalizer`; the
ensemble's targets are ``[next_obs - obs, reward]`` (reward only with ``learn_reward=True``)
standardised by an output :class:`Normalizer`. :meth:`DynamicsModel.predict` and
:meth:`DynamicsModel.sample` answer in the original units, so the model satisfies
:class:`mbrl.models.model_env.EnsembleModel` and plugs into :class:`ModelEnv`.

Elites: after training, :attr:`elite_indices` holds the members with the lowest holdout error.
With ``use_elites = True`` (MBPO) the model *is* its elites as far as callers can tell:
``num_members`` is the number of elites, ``predict``/``sample``/``mean_next_obs`` evaluate only
them, and per-member inputs ``(num_elites, N, d)`` go to elite ``elite_indices[m]``. So under
:class:`ModelEnv` with TS∞, particle ``b`` follows ``elite_indices[b % num_elites]``. With
``use_elites = False`` (the default, as in PETS) every member is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from mbrl.models.ensemble import GaussianEnsemble, activation_name
from mbrl.models.model_env import Prediction
from mbrl.models.normalizer import Normalizer
from mbrl.util.io import CheckpointError, read_verified, save_verified, torch_loads

Tensor = torch.Tensor
ObsPreprocessFn = Callable[[Tensor], Tensor]

_FORMAT_VERSION = 2  # 2: verified file (kind, version, SHA-256); 1 (plain torch.save) is refused
_KIND = "DynamicsModel checkpoint"
_CONFIG_KEYS = frozenset(
    {
        "obs_dim",
        "act_dim",
        "num_members",
        "hidden",
        "num_layers",
        "activation",
        "learn_reward",
        "num_elites",
        "use_elites",
        "task_name",
        "has_obs_preprocess",
        "feature_dim",
    }
)


class DynamicsModel(nn.Module):
    """Probabilistic ensemble dynamics model ``p(next_obs, reward | obs, act)``.

    Args:
        obs_dim: observation size.
        act_dim: action size.
        num_members: ensemble size ``E``.
        hidden: hidden-layer width.
        num_layers: number of hidden layers.
        activation: activation name or class (see :data:`mbrl.models.ensemble.ACTIVATIONS`).
        obs_preprocess_fn: optional map ``obs (..., obs_dim) -> features (..., d)`` applied to
            observations before they enter the network (e.g. angle -> cos, sin). It is not saved:
            pass it again to :meth:`load`, or give ``task_name`` so :meth:`load` can fetch the
            task's ``obs_preprocess_fn`` from the registry.
        learn_reward: also predict the reward (an extra output dimension).
        num_elites: how many elites the trainer selects (``<= num_members``).
        use_elites: evaluate only the elites (see module docs).
        task_name: registry name whose ``obs_preprocess_fn`` this model uses (saved).
        generator: source of the initial weights.
    """

    elite_mask: Tensor

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        *,
        num_members: int = 7,
        hidden: int = 200,
        num_layers: int = 4,
        activation: str | type[nn.Module] = "silu",
        obs_preprocess_fn: ObsPreprocessFn | None = None,
        learn_reward: bool = False,
        num_elites: int | None = None,
        use_elites: bool = False,
        task_name: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("obs_dim", obs_dim),
            ("act_dim", act_dim),
            ("num_members", num_members),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if num_elites is None:
            num_elites = min(5, num_members)
        if not 1 <= num_elites <= num_members:
            raise ValueError(f"num_elites: expected 1..{num_members}, got {num_elites}")
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.obs_preprocess_fn = obs_preprocess_fn
        self.learn_reward = bool(learn_reward)
        self.task_name = task_name
        self.num_elites = int(num_elites)
        self.use_elites = bool(use_elites)
        self.feature_dim = self._feature_dim()
        self.target_dim = obs_dim + (1 if learn_reward else 0)
        self.ensemble = GaussianEnsemble(
            self.feature_dim + act_dim,
            self.target_dim,
            num_members=num_members,
            hidden=hidden,
            num_layers=num_layers,
            activation=activation,
            generator=generator,
        )
        self.input_normalizer = Normalizer(self.feature_dim + act_dim)
        self.output_normalizer = Normalizer(self.target_dim)
        mask = torch.zeros(num_members, dtype=torch.bool)
        mask[: self.num_elites] = True
        self.register_buffer("elite_mask", mask)

    @classmethod
    def for_task(cls, task: Any, **kwargs: Any) -> DynamicsModel:
        """A model sized for ``task`` (an :class:`envs.Task`), using its ``obs_preprocess_fn``."""
        return cls(
            task.obs_dim,
            task.act_dim,
            obs_preprocess_fn=task.obs_preprocess_fn,
            task_name=task.name if task.obs_preprocess_fn is not None else None,
            **kwargs,
        )

    def _feature_dim(self) -> int:
        if self.obs_preprocess_fn is None:
            return self.obs_dim
        out = self.obs_preprocess_fn(torch.zeros(2, self.obs_dim))
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
            raise ValueError(
                "obs_preprocess_fn: expected a map (N, obs_dim) -> (N, d); got output "
                f"{getattr(out, 'shape', type(out))} for input (2, {self.obs_dim})"
            )
        return int(out.shape[1])

    # ------------------------------------------------------------------ properties
    @property
    def num_members(self) -> int:
        """Members callers see: the elites when ``use_elites`` else all ``E``."""
        return self.num_elites if self.use_elites else self.ensemble.num_members

    @property
    def elite_indices(self) -> list[int]:
        """Indices of the elite members (set by the trainer; before training: ``0..k-1``)."""
        return self.elite_mask.nonzero().flatten().tolist()

    def set_elites(self, indices: list[int] | Tensor) -> None:
        """Mark ``indices`` (distinct member indices, at least one) as the elites.

        Also sets :attr:`num_elites` to ``len(indices)``.
        """
        idx = torch.as_tensor(indices, dtype=torch.long).flatten()
        e = self.ensemble.num_members
        if idx.numel() < 1 or len(set(idx.tolist())) != idx.numel():
            raise ValueError(f"indices: expected distinct member indices, got {idx.tolist()}")
        if idx.min() < 0 or idx.max() >= e:
            raise ValueError(f"indices: expected members in 0..{e - 1}, got {idx.tolist()}")
        mask = torch.zeros_like(self.elite_mask)
        mask[idx.to(mask.device)] = True
        self.elite_mask.copy_(mask)
        self.num_elites = int(idx.numel())

    def _members(self) -> Tensor | None:
        return self.elite_mask.nonzero().flatten() if self.use_elites else None

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return self.ensemble.max_logvar.device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the parameters."""
        return self.ensemble.max_logvar.dtype

    # ------------------------------------------------------------------ normalisation
    @torch.no_grad()
    def refit_normalizers(self, inputs: Tensor, targets: Tensor, *, preserve: bool = True) -> None:
        """Fit the input and output normalisers on raw ``inputs (N, feature_dim + act_dim)``
        and ``targets (N, target_dim)`` (see :meth:`model_inputs`, :meth:`model_targets`).

        With ``preserve`` (the default) the ensemble's first layer, its output layer and its
        log-variance bounds are re-expressed in the new units, so every prediction in original
        units (means and variances) is unchanged by the refit; training then starts from the
        function the previous round learned, not from that function seen through shifted and
        rescaled inputs. With ``preserve=False``, or while the normalisers still hold their
        initial identity statistics (never fitted: nothing learned to preserve), only the
        statistics change.

        With old statistics ``(m, s)`` and new ``(m', s')``, an input normalised the old way is
        ``(x - m) / s = (s' / s) x_new + (m' - m) / s``, so the first layer becomes
        ``W0' = diag(s' / s) W0``, ``b0' = b0 + ((m' - m) / s) W0``. A mean output ``μ`` in old
        target units is ``μ' = μ (t / t') + (n - n') / t'`` in the new ones (target statistics
        ``(n, t) -> (n', t')``), and a log-variance shifts by ``2 log(t / t')`` (so do both
        bounds, which keeps the soft bounding exact).
        """
        inp, out = self.input_normalizer, self.output_normalizer
        old = (inp.mean.clone(), inp.std.clone(), out.mean.clone(), out.std.clone())
        fitted = any(bool((n.mean != 0).any() or (n.std != 1).any()) for n in (inp, out))
        inp.fit(inputs)
        out.fit(targets)
        if preserve and fitted:
            self._reexpress_weights(*old)

    @torch.no_grad()
    def _reexpress_weights(
        self, in_mean: Tensor, in_std: Tensor, out_mean: Tensor, out_std: Tensor
    ) -> None:
        """Rewrite the ensemble for the normalisers' new statistics (old ones given), keeping
        its function in original units (see :meth:`refit_normalizers`)."""
        ens = self.ensemble
        inp, out = self.input_normalizer, self.output_normalizer
        w0, b0 = ens.weights[0], ens.biases[0]  # (E, in, H), (E, 1, H)
        shift = (inp.mean - in_mean) / in_std  # (in,)
        b0.add_(torch.einsum("i,eih->eh", shift.to(w0.dtype), w0).unsqueeze(1))
        w0.mul_((inp.std / in_std).to(w0.dtype)[None, :, None])
        d = self.target_dim
        wl, bl = ens.weights[-1], ens.biases[-1]  # (E, H, 2d), (E, 1, 2d)
        scale = (out_std / out.std).to(wl.dtype)  # (d,)
        offset = ((out_mean - out.mean) / out.std).to(wl.dtype)
        wl[..., :d].mul_(scale)
        bl[..., :d].mul_(scale).add_(offset)
        log_shift = 2.0 * torch.log(scale)
        bl[..., d:].add_(log_shift)
        ens.max_logvar.add_(log_shift)
        ens.min_logvar.add_(log_shift)

    # ------------------------------------------------------------------ data transforms
    def model_inputs(self, obs: Tensor, act: Tensor) -> Tensor:
        """Raw network inputs ``[preprocess(obs), act]``: ``(..., feature_dim + act_dim)``."""
        feats = obs if self.obs_preprocess_fn is None else self.obs_preprocess_fn(obs)
        return torch.cat([feats, act], dim=-1)

    def model_targets(self, obs: Tensor, next_obs: Tensor, reward: Tensor | None) -> Tensor:
        """Un-normalised training targets ``[next_obs - obs, reward]``: ``(..., target_dim)``."""
        delta = next_obs - obs
        if not self.learn_reward:
            return delta
        if reward is None:
            raise ValueError("reward: required because the model was built with learn_reward=True")
        return torch.cat([delta, reward.unsqueeze(-1)], dim=-1)

    def _check(self, obs: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        if not isinstance(obs, torch.Tensor):
            raise TypeError(f"obs: expected a torch.Tensor, got {type(obs).__name__}")
        if not isinstance(act, torch.Tensor):
            raise TypeError(f"act: expected a torch.Tensor, got {type(act).__name__}")
        m = self.num_members
        if obs.ndim not in (2, 3) or obs.shape[-1] != self.obs_dim:
            raise ValueError(
                f"obs: expected shape (N, {self.obs_dim}) or ({m}, N, {self.obs_dim}), "
                f"got {tuple(obs.shape)}"
            )
        if act.shape[:-1] != obs.shape[:-1] or act.shape[-1] != self.act_dim:
            raise ValueError(
                f"act: expected shape {(*obs.shape[:-1], self.act_dim)} to match obs, "
                f"got {tuple(act.shape)}"
            )
        if obs.ndim == 3 and obs.shape[0] != m:
            raise ValueError(
                f"obs: per-member input must have {m} rows in dim 0 (num_members), "
                f"got {tuple(obs.shape)}"
            )
        for name, x in (("obs", obs), ("act", act)):
            if not x.is_floating_point():
                raise ValueError(f"{name}: expected a floating-point tensor, got {x.dtype}")
            # a NaN or inf anywhere makes the sum non-finite, so a finite sum proves every entry
            # finite with one reduction (this check runs at every imagined step)
            if not torch.isfinite(x.sum()) and not torch.isfinite(x).all():
                raise ValueError(f"{name}: contains NaN or infinite values")
        return obs.to(self.dtype), act.to(self.dtype)

    # ------------------------------------------------------------------ queries
    def _forward_normalized(self, obs: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        x = self.input_normalizer.normalize(self.model_inputs(obs, act))
        return self.ensemble(x, self._members())

    def predict(self, obs: Tensor, act: Tensor) -> Prediction:
        """Per-member Gaussian over next observation (and reward), in original units.

        Args:
            obs: ``(N, obs_dim)`` (shared by all members) or ``(M, N, obs_dim)`` per member,
                ``M = num_members``.
            act: ``(N, act_dim)`` or ``(M, N, act_dim)``, matching ``obs``.

        Returns:
            :class:`Prediction` with ``next_obs_mean``/``next_obs_var`` ``(M, N, obs_dim)`` and
            ``reward_mean``/``reward_var`` ``(M, N)`` (``None`` without ``learn_reward``),
            in ``obs.dtype``. Differentiable with respect to ``obs``, ``act`` and the weights.
        """
        in_dtype, obs_in = obs.dtype, obs
        obs, act = self._check(obs, act)
        mean_n, logvar_n = self._forward_normalized(obs, act)
        mean = self.output_normalizer.denormalize(mean_n.to(self.dtype))
        var = self.output_normalizer.denormalize_var(torch.exp(logvar_n.to(self.dtype)))
        d = self.obs_dim
        next_mean = obs_in + mean[..., :d].to(in_dtype)
        next_var = var[..., :d].to(in_dtype)
        if not self.learn_reward:
            return Prediction(next_mean, next_var, None, None)
        return Prediction(next_mean, next_var, mean[..., d].to(in_dtype), var[..., d].to(in_dtype))

    def sample(
        self, obs: Tensor, act: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Draw from each member's Gaussian: ``next_obs (M, N, obs_dim)``, ``reward (M, N)|None``.

        Shapes as in :meth:`predict`. Noise comes from ``generator`` (``None``: torch's global
        generator); the generator's device must be the model's device.
        """
        pred = self.predict(obs, act)
        mean, var = pred.next_obs_mean, pred.next_obs_var
        if self.learn_reward:
            assert pred.reward_mean is not None and pred.reward_var is not None
            mean = torch.cat([mean, pred.reward_mean.unsqueeze(-1)], -1)
            var = torch.cat([var, pred.reward_var.unsqueeze(-1)], -1)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        draw = mean + var.sqrt() * noise
        if not self.learn_reward:
            return draw, None
        return draw[..., : self.obs_dim], draw[..., self.obs_dim]

    def mean_next_obs(self, obs: Tensor, act: Tensor) -> Tensor:
        """Mean over members of each member's mean next observation (differentiable).

        ``obs (..., obs_dim)``, ``act (..., act_dim)`` with equal leading dims (any number,
        including none); returns ``(..., obs_dim)`` in ``obs.dtype``. Used by gradient-based
        planners (iLQR) and as the model's ``forward``.
        """
        if not isinstance(obs, torch.Tensor) or obs.ndim < 1 or obs.shape[-1] != self.obs_dim:
            raise ValueError(
                f"obs: expected a tensor of shape (..., {self.obs_dim}), got "
                f"{tuple(getattr(obs, 'shape', ()))}"
            )
        if not isinstance(act, torch.Tensor) or act.shape != (*obs.shape[:-1], self.act_dim):
            raise ValueError(
                f"act: expected shape {(*obs.shape[:-1], self.act_dim)}, got "
                f"{tuple(getattr(act, 'shape', ()))}"
            )
        lead = obs.shape[:-1]
        pred = self.predict(obs.reshape(-1, self.obs_dim), act.reshape(-1, self.act_dim))
        return pred.next_obs_mean.mean(0).reshape(*lead, self.obs_dim)

    def forward(self, obs: Tensor, act: Tensor) -> Tensor:
        """Same as :meth:`mean_next_obs`."""
        return self.mean_next_obs(obs, act)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """Constructor arguments as plain data (saved in checkpoints)."""
        ens = self.ensemble
        return {
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "num_members": ens.num_members,
            "hidden": ens.hidden,
            "num_layers": ens.num_layers,
            "activation": activation_name(ens.activation_name),
            "learn_reward": self.learn_reward,
            "num_elites": self.num_elites,
            "use_elites": self.use_elites,
            "task_name": self.task_name,
            "has_obs_preprocess": self.obs_preprocess_fn is not None,
            "feature_dim": self.feature_dim,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write weights, normalisers, elites and :meth:`config` to ``path`` atomically.

        The file is a verified file (:func:`mbrl.util.io.save_verified`): kind
        ``"DynamicsModel checkpoint"``, a ``format_version`` and a SHA-256 checksum that
        :meth:`load` checks.
        """
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        save_verified({"config": self.config(), "state_dict": state}, path, _KIND, _FORMAT_VERSION)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        map_location: str | torch.device | None = None,
        *,
        obs_preprocess_fn: ObsPreprocessFn | None = None,
    ) -> DynamicsModel:
        """Rebuild a model written by :meth:`save` (``torch.load`` with ``weights_only=True``).

        If the model was built with an ``obs_preprocess_fn``, pass it again; otherwise, if the
        checkpoint names a task, the task's ``obs_preprocess_fn`` is taken from the registry.

        Raises ``FileNotFoundError`` for a missing file and
        :class:`mbrl.util.io.CheckpointError` (a ``ValueError``) naming ``path`` for a file
        that is not a valid checkpoint: foreign, truncated, corrupt (checksum), of a newer
        ``format_version``, with an inconsistent configuration or non-finite weights.
        """
        payload = read_verified(path, _KIND, _FORMAT_VERSION)
        ckpt = torch_loads(payload.data, path, _KIND, map_location)
        cfg, state = _checked_contents(ckpt, path)
        has_pre = cfg.pop("has_obs_preprocess")
        feature_dim = cfg.pop("feature_dim")
        if has_pre and obs_preprocess_fn is None:
            if cfg.get("task_name") is None:
                raise ValueError(
                    "obs_preprocess_fn: the saved model used an observation preprocessor; "
                    "pass the same function to DynamicsModel.load"
                )
            import envs  # local import: the model package does not otherwise need the tasks

            try:
                obs_preprocess_fn = envs.get_task(cfg["task_name"]).obs_preprocess_fn
            except KeyError as exc:
                raise ValueError(
                    f"obs_preprocess_fn: the saved model names task {cfg['task_name']!r}, which "
                    "is not registered; pass the model's obs_preprocess_fn to DynamicsModel.load"
                ) from exc
        if not has_pre and obs_preprocess_fn is not None:
            raise ValueError("obs_preprocess_fn: the saved model used no observation preprocessor")
        try:
            # the configuration is checked against the tensors actually in the file before
            # anything is allocated (a config declaring huge sizes must not allocate them)
            with torch.device("meta"):
                probe = cls(**cfg, obs_preprocess_fn=obs_preprocess_fn)
        except (TypeError, ValueError) as exc:
            raise _bad_file(path, f"invalid configuration: {exc}") from exc
        expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()}
        if expected != found:
            diff = sorted(
                k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k)
            )
            raise _bad_file(
                path,
                "weights do not fit the configuration: "
                + ", ".join(f"{k}: {found.get(k)} vs {expected.get(k)} expected" for k in diff[:4]),
            )
        model = cls(**cfg, obs_preprocess_fn=obs_preprocess_fn)
        if model.feature_dim != feature_dim:
            raise ValueError(
                f"obs_preprocess_fn: produces {model.feature_dim} features, the saved model "
                f"expects {feature_dim}"
            )
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise _bad_file(path, f"weights do not fit the configuration: {exc}") from exc
        if not bool(model.elite_mask.any()):
            raise _bad_file(path, "no elite member")
        model.num_elites = int(model.elite_mask.sum())
        if map_location is not None:
            model.to(map_location)
        return model


def _bad_file(path: str | os.PathLike, reason: str) -> CheckpointError:
    return CheckpointError(f"{os.fspath(path)!r}: not a valid {_KIND} file ({reason})")


def _checked_contents(
    ckpt: Any, path: str | os.PathLike
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(config, state_dict)`` of a loaded checkpoint, checked: keys, types, finite weights."""
    if not isinstance(ckpt, dict) or set(ckpt) != {"config", "state_dict"}:
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise _bad_file(path, f"expected keys ['config', 'state_dict'], got {keys}")
    cfg, state = ckpt["config"], ckpt["state_dict"]
    if not isinstance(cfg, dict) or set(cfg) != _CONFIG_KEYS:
        got = sorted(cfg) if isinstance(cfg, dict) else type(cfg).__name__
        raise _bad_file(path, f"config: expected keys {sorted(_CONFIG_KEYS)}, got {got}")
    for key in ("learn_reward", "use_elites", "has_obs_preprocess"):
        if not isinstance(cfg[key], bool):
            raise _bad_file(path, f"config[{key!r}]: expected a bool, got {cfg[key]!r}")
    if cfg["task_name"] is not None and not isinstance(cfg["task_name"], str):
        raise _bad_file(
            path, f"config['task_name']: expected a str or None, got {cfg['task_name']!r}"
        )
    fd = cfg["feature_dim"]
    if isinstance(fd, bool) or not isinstance(fd, int) or fd < 1:
        raise _bad_file(path, f"config['feature_dim']: expected a positive int, got {fd!r}")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise _bad_file(path, "state_dict: expected a dict of named tensors")
    for name, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise _bad_file(path, f"state_dict[{name!r}] contains NaN or infinite values")
        if name.endswith("normalizer.std") and not bool((value > 0).all()):
            raise _bad_file(path, f"state_dict[{name!r}]: a normaliser std must be positive")
    mask = state.get("elite_mask")
    if mask is not None and mask.dtype != torch.bool:
        raise _bad_file(path, f"state_dict['elite_mask']: expected bool, got {mask.dtype}")
    return dict(cfg), state
