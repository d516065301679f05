"""Training of a :class:`DynamicsModel`: bootstrap ensembles, holdout early stopping (PETS/MBPO).

One call to :meth:`ModelTrainer.train`:

1. converts the data to tensors on the model's device and checks it (shapes, NaN, size);
2. splits it at random into a training set and a holdout set (``holdout_ratio``);
3. fits the model's input and output normalisers on the training set; for a model trained
   before, its weights are re-expressed in the new units so that its predictions are unchanged
   by the refit (``preserve_on_refit``; docs/pets.md, "Regression after reaching 1000");
4. draws a bootstrap resample (with replacement) of the training indices for every member:
   :attr:`ModelTrainer.bootstrap_indices` ``(E, N_train)``;
5. trains with AdamW: each epoch shuffles every member's bootstrap sample independently, and each
   step gives every member its own minibatch in one batched forward pass;
6. after every epoch evaluates each member's holdout MSE (normalised target units, mean over
   dimensions) and NLL, keeps each member's best weights, and stops once no member improved its
   holdout MSE by more than 1 % (relative) for ``patience`` epochs (``epochs=None``; with a fixed
   ``epochs`` it trains exactly that many and keeps the final weights);
7. selects the ``num_elites`` members with the lowest holdout MSE as the model's elites.

If a training or holdout loss becomes NaN or infinite (e.g. a learning rate far too large), the
weights from before that epoch are restored and ``FloatingPointError`` names the epoch, the loss
and ``lr``. Hyper-parameters are validated up front (``ValueError`` naming the argument).

Holdout MSE (not NLL) drives early stopping and elites, as in MBPO: it is positive, so a relative
improvement threshold is meaningful, and it does not reward over-confident variances.
Weight decay is AdamW's decoupled decay on the weight matrices only (not on biases or the
log-variance bounds); ``weight_decay`` may be one value or one per layer (PETS-style).
All randomness (split, bootstrap, shuffling) comes from the trainer's CPU ``torch.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from mbrl.models.dynamics_model import DynamicsModel
from mbrl.util.progress import progress

Tensor = torch.Tensor
ArrayLike = Tensor | np.ndarray

_IMPROVEMENT = 0.01  # relative holdout improvement that resets the patience counter


class MetricLogger(Protocol):
    """Anything with ``log(metrics, step)``, e.g. :class:`mbrl.util.logger.Logger`."""

    def log(self, metrics: dict[str, float], step: int) -> Any:
        """Record scalar ``metrics`` at ``step``."""
        ...


@dataclass
class TrainResult:
    """What one :meth:`ModelTrainer.train` call did.

    Attributes:
        epochs: epochs run.
        train_nll / train_mse: per-epoch mean training minibatch loss (normalised units,
            averaged over members).
        holdout_nll / holdout_mse: per-epoch holdout losses averaged over members (empty when
            there is no holdout set).
        best_holdout_mse: ``(E,)`` each member's holdout MSE with its kept weights.
        elite_indices: the selected elites, best first.
        stopped_early: True if early stopping ended training.
        num_train / num_holdout: sizes of the split.
    """

    epochs: int
    train_nll: list[float] = field(default_factory=list)
    train_mse: list[float] = field(default_factory=list)
    holdout_nll: list[float] = field(default_factory=list)
    holdout_mse: list[float] = field(default_factory=list)
    best_holdout_mse: Tensor | None = None
    elite_indices: list[int] = field(default_factory=list)
    stopped_early: bool = False
    num_train: int = 0
    num_holdout: int = 0

    def last_metrics(self) -> dict[str, float]:
        """The last epoch's losses, the elites' holdout MSE and the epoch count (``nan`` for
        what was not measured), for a run's log."""

        def last(values: list[float]) -> float:
            return values[-1] if values else math.nan

        elite_mse = math.nan
        if self.best_holdout_mse is not None and self.elite_indices:
            elite_mse = float(self.best_holdout_mse[self.elite_indices].mean())
        return {
            "train_mse": last(self.train_mse),
            "train_nll": last(self.train_nll),
            "holdout_mse": last(self.holdout_mse),
            "holdout_nll": last(self.holdout_nll),
            "elite_holdout_mse": elite_mse,
            "epochs": float(self.epochs),
        }


class ModelTrainer:
    """Fits a :class:`DynamicsModel` on transitions (see module docs for the procedure).

    Args:
        model: the model to train (in place; its elites are set at the end of each call).
        lr: AdamW learning rate.
        weight_decay: decoupled decay of the weight matrices: one float, or one per layer
            (``num_layers + 1`` values, input layer first).
        batch_size: minibatch size per member.
        holdout_ratio: fraction of the data held out for early stopping and elites, in
            ``[0, 1)``. With 0, elites use the training MSE and ``epochs`` is required.
        max_epochs: cap on epochs when early stopping (``None``: no cap).
        patience: epochs without a >1 % holdout improvement of any member before stopping.
        num_elites: elites to select; defaults to the model's ``num_elites``.
        logger: object with ``log(metrics: dict[str, float], step: int)``; gets
            ``model/train_nll``, ``model/train_mse``, ``model/holdout_nll``,
            ``model/holdout_mse`` once per epoch (step = epochs trained so far, over all calls).
        seed: seed of the trainer's generator (ignored if ``generator`` is given).
        generator: CPU ``torch.Generator`` for every random choice of the trainer.
        progress_bar: show a tqdm bar with the current losses (also off with
            ``MBRL_NO_PROGRESS=1``).
        eval_batch_size: rows per forward pass when evaluating the holdout set.
        preserve_on_refit: when a call refits the normalisers of an already trained model,
            re-express its weights in the new units so its predictions are unchanged
            (:meth:`DynamicsModel.refit_normalizers`); ``False``: the old weights are read in
            the new units (the behaviour before this option).
    """

    def __init__(
        self,
        model: DynamicsModel,
        *,
        lr: float = 1e-3,
        weight_decay: float | Sequence[float] = 5e-5,
        batch_size: int = 256,
        holdout_ratio: float = 0.1,
        max_epochs: int | None = 50,
        patience: int = 5,
        num_elites: int | None = None,
        logger: MetricLogger | None = None,
        log_group: str | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        progress_bar: bool = True,
        eval_batch_size: int = 8192,
        preserve_on_refit: bool = False,
    ) -> None:
        if not isinstance(model, DynamicsModel):
            raise TypeError(f"model: expected a DynamicsModel, got {type(model).__name__}")
        _check_hyper_parameters(
            model,
            lr=lr,
            batch_size=batch_size,
            holdout_ratio=holdout_ratio,
            max_epochs=max_epochs,
            patience=patience,
            num_elites=num_elites,
            seed=seed,
            progress_bar=progress_bar,
            eval_batch_size=eval_batch_size,
        )
        if logger is not None and not callable(getattr(logger, "log", None)):
            raise TypeError("logger: expected an object with a log(metrics, step) method")
        self.model = model
        self.num_elites = num_elites
        self.lr = float(lr)
        self.batch_size = batch_size
        self.holdout_ratio = float(holdout_ratio)
        self.max_epochs = max_epochs
        self.patience = patience
        self.logger = logger
        self.log_group = log_group
        self.progress_bar = progress_bar
        self.eval_batch_size = int(eval_batch_size)
        if not isinstance(preserve_on_refit, bool):
            raise ValueError(f"preserve_on_refit: expected a bool, got {preserve_on_refit!r}")
        self.preserve_on_refit = preserve_on_refit
        if generator is None:
            generator = torch.Generator()
            if seed is not None:
                generator.manual_seed(int(seed))
            else:
                generator.seed()
        if generator.device.type != "cpu":
            raise ValueError(f"generator: expected a CPU generator, got device {generator.device}")
        self.generator = generator
        self.optimizer = self._make_optimizer(weight_decay)
        self.bootstrap_indices: Tensor | None = None
        """``(E, N_train)`` bootstrap resample of training-row indices (last call)."""
        self.train_indices: Tensor | None = None
        """``(N_train,)`` rows of the data used for training (last call)."""
        self.holdout_indices: Tensor | None = None
        """``(N_holdout,)`` rows of the data held out (last call)."""
        self.total_epochs = 0

    def _make_optimizer(self, weight_decay: float | Sequence[float]) -> torch.optim.AdamW:
        decayed, other = self.model.ensemble.decay_groups()
        if _is_real(weight_decay):
            decays = [float(weight_decay)] * len(decayed)  # type: ignore[arg-type]
        else:
            if isinstance(weight_decay, str) or not isinstance(weight_decay, Sequence):
                raise ValueError(
                    f"weight_decay: expected a non-negative number or one per layer, got "
                    f"{weight_decay!r}"
                )
            if not all(_is_real(d) for d in weight_decay):
                raise ValueError(f"weight_decay: expected numbers, got {weight_decay!r}")
            decays = [float(d) for d in weight_decay]
            if len(decays) != len(decayed):
                raise ValueError(
                    f"weight_decay: expected one float or {len(decayed)} (one per layer), "
                    f"got {len(decays)}"
                )
        if any(d < 0 or not math.isfinite(d) for d in decays):
            raise ValueError(f"weight_decay: expected non-negative values, got {weight_decay!r}")
        groups: list[dict[str, Any]] = [
            {"params": [p], "weight_decay": d} for p, d in zip(decayed, decays, strict=True)
        ]
        groups.append({"params": other, "weight_decay": 0.0})
        # The fused (single-kernel) AdamW is faster on CPU and CUDA; other devices use the default.
        fused = self.model.device.type in ("cpu", "cuda") and self.model.dtype in (
            torch.float32,
            torch.float64,
        )
        return torch.optim.AdamW(groups, lr=self.lr, fused=fused or None)

    # ------------------------------------------------------------------ data
    def _as_tensor(self, name: str, x: Any, ndim: int) -> Tensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.asarray(x))
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"{name}: expected a torch.Tensor or numpy array, got {type(x).__name__}"
            )
        if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64, torch.bool)):
            raise ValueError(f"{name}: expected a numeric array, got {x.dtype}")
        x = x.to(device=self.model.device, dtype=self.model.dtype)
        if ndim == 1 and x.ndim == 2 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != ndim:
            want = "(N,)" if ndim == 1 else "(N, d)"
            raise ValueError(f"{name}: expected shape {want}, got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        return x

    def _prepare(
        self, obs: Any, act: Any, next_obs: Any, reward: Any
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        if hasattr(obs, "get_all") and act is None and next_obs is None:
            data = obs.get_all()
            if isinstance(data, dict):
                obs, act, next_obs = data["obs"], data["act"], data["next_obs"]
                reward = data.get("reward") if reward is None else reward
            else:
                obs, act, next_obs = data.obs, data.act, data.next_obs
                reward = getattr(data, "reward", None) if reward is None else reward
        if act is None or next_obs is None:
            raise ValueError("act, next_obs: required unless obs is a replay buffer (get_all())")
        m = self.model
        obs = self._as_tensor("obs", obs, 2)
        act = self._as_tensor("act", act, 2)
        next_obs = self._as_tensor("next_obs", next_obs, 2)
        n = obs.shape[0]
        if obs.shape[1] != m.obs_dim:
            raise ValueError(f"obs: expected shape (N, {m.obs_dim}), got {tuple(obs.shape)}")
        if act.shape != (n, m.act_dim):
            raise ValueError(f"act: expected shape ({n}, {m.act_dim}), got {tuple(act.shape)}")
        if next_obs.shape != obs.shape:
            raise ValueError(
                f"next_obs: expected shape {tuple(obs.shape)} like obs, got {tuple(next_obs.shape)}"
            )
        if m.learn_reward:
            if reward is None:
                raise ValueError("reward: required because the model learns the reward")
            reward = self._as_tensor("reward", reward, 1)
            if reward.shape != (n,):
                raise ValueError(f"reward: expected shape ({n},), got {tuple(reward.shape)}")
        else:
            reward = None
        return obs, act, next_obs, reward

    def _split(self, n: int) -> tuple[Tensor, Tensor]:
        n_hold = int(n * self.holdout_ratio)
        if self.holdout_ratio > 0 and n_hold < 1:
            need = math.ceil(1.0 / self.holdout_ratio)
            raise ValueError(
                f"obs: {n} transitions are too few for holdout_ratio={self.holdout_ratio} "
                f"(need at least {need} for one holdout row)"
            )
        perm = torch.randperm(n, generator=self.generator)
        return perm[n_hold:], perm[:n_hold]

    # ------------------------------------------------------------------ training
    def train(
        self,
        obs: Any,
        act: ArrayLike | None = None,
        next_obs: ArrayLike | None = None,
        reward: ArrayLike | None = None,
        *,
        epochs: int | None = None,
    ) -> TrainResult:
        """Train on transitions ``obs (N, obs_dim)``, ``act (N, act_dim)``, ``next_obs
        (N, obs_dim)``, ``reward (N,)`` (needed iff the model learns rewards).

        ``obs`` may instead be a replay buffer whose ``get_all()`` returns the four arrays (as
        attributes or dict keys ``obs``, ``act``, ``next_obs``, ``reward``). Arrays may be numpy
        or torch. ``epochs``: train exactly this many epochs; ``None``: early stopping (see
        module docs). Returns a :class:`TrainResult`; the model is updated in place.
        """
        if epochs is not None and not _is_positive_int(epochs):
            raise ValueError(f"epochs: expected a positive int or None, got {epochs!r}")
        obs, act, next_obs, reward = self._prepare(obs, act, next_obs, reward)
        n = obs.shape[0]
        if n < 2:
            raise ValueError(f"obs: expected at least 2 transitions, got {n}")
        if self.holdout_ratio == 0 and epochs is None:
            raise ValueError("epochs: required when holdout_ratio=0 (no early stopping possible)")
        model = self.model
        ens = model.ensemble
        dev = model.device
        train_idx, hold_idx = self._split(n)
        self.train_indices, self.holdout_indices = train_idx, hold_idx
        x_all = model.model_inputs(obs, act)
        y_all = model.model_targets(obs, next_obs, reward)
        t_dev, h_dev = train_idx.to(dev), hold_idx.to(dev)
        model.refit_normalizers(x_all[t_dev], y_all[t_dev], preserve=self.preserve_on_refit)
        x_all = model.input_normalizer.normalize(x_all).detach()
        y_all = model.output_normalizer.normalize(y_all).detach()
        x_train, y_train = x_all[t_dev], y_all[t_dev]
        x_hold, y_hold = x_all[h_dev], y_all[h_dev]
        n_train = x_train.shape[0]
        e = ens.num_members
        self.bootstrap_indices = torch.randint(n_train, (e, n_train), generator=self.generator)
        has_hold = x_hold.shape[0] > 0
        x_eval, y_eval = (x_hold, y_hold) if has_hold else (x_train, y_train)

        result = TrainResult(epochs=0, num_train=n_train, num_holdout=x_hold.shape[0])
        best_mse, _ = self.evaluate_normalized(x_eval, y_eval)
        best_state = self._snapshot()
        since_improved = 0
        limit = epochs if epochs is not None else self.max_epochs
        bar = progress(limit, "model", disable=not self.progress_bar, leave=False, unit="epoch")
        epoch_iter = range(limit) if limit is not None else _count()
        try:
            for _ in epoch_iter:
                tr_nll, tr_mse, mse, nll = self._checked_epoch(
                    x_train, y_train, x_eval, y_eval, result.epochs + 1
                )
                result.epochs += 1
                self.total_epochs += 1
                result.train_nll.append(tr_nll)
                result.train_mse.append(tr_mse)
                metrics = {"model/train_nll": tr_nll, "model/train_mse": tr_mse}
                if has_hold:
                    result.holdout_nll.append(float(nll.mean()))
                    result.holdout_mse.append(float(mse.mean()))
                    metrics["model/holdout_nll"] = result.holdout_nll[-1]
                    metrics["model/holdout_mse"] = result.holdout_mse[-1]
                self._log(metrics)
                bar.update(1)
                bar.set_postfix({k.split("/")[1]: f"{v:.4g}" for k, v in metrics.items()})
                if epochs is not None:
                    best_mse = mse
                    continue
                improved = (best_mse - mse) / best_mse.clamp_min(1e-12) > _IMPROVEMENT
                if bool(improved.any()):
                    best_mse = torch.where(improved, mse, best_mse)
                    self._update_snapshot(best_state, improved)
                    since_improved = 0
                else:
                    since_improved += 1
                if since_improved >= self.patience:
                    result.stopped_early = True
                    break
        finally:
            bar.close()
        if epochs is None:
            self._restore(best_state)
            best_mse, _ = self.evaluate_normalized(x_eval, y_eval)
        k = self.num_elites if self.num_elites is not None else model.num_elites
        elites = torch.argsort(best_mse.cpu(), stable=True)[:k]
        model.set_elites(elites)
        result.best_holdout_mse = best_mse.detach().cpu()
        result.elite_indices = elites.tolist()
        self._log({"model/elite_holdout_mse": float(best_mse[elites.to(best_mse.device)].mean())})
        return result

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        """What continues training exactly: the optimizer, the generator, the epoch count.

        Plain tensors, dicts and numbers (loadable with ``weights_only=True``). The model's own
        weights are not included (``model.state_dict()``).
        """
        return {
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "total_epochs": self.total_epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the model must already hold its weights)."""
        missing = {"optimizer", "generator", "total_epochs"} - set(state)
        if missing:
            raise ValueError(f"state: missing keys {sorted(missing)} of a ModelTrainer state")
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.total_epochs = int(state["total_epochs"])

    def _log(self, metrics: dict[str, float]) -> None:
        if self.logger is None:
            return
        if self.log_group is None:
            self.logger.log(metrics, self.total_epochs)
        else:
            self.logger.log(metrics, self.total_epochs, group=self.log_group)  # type: ignore[call-arg]

    def _checked_epoch(
        self, x: Tensor, y: Tensor, x_eval: Tensor, y_eval: Tensor, epoch: int
    ) -> tuple[float, float, Tensor, Tensor]:
        """One training epoch and its evaluation: ``(train_nll, train_mse, mse (E,), nll (E,))``.

        If a loss turns NaN or infinite, the weights from before the epoch (whose losses were
        all finite) are restored and ``FloatingPointError`` names the epoch and the loss.
        """
        before = self._snapshot()
        try:
            tr_nll, tr_mse = self._train_epoch(x, y)
            mse, nll = self.evaluate_normalized(x_eval, y_eval)
            if not bool(torch.isfinite(mse).all() & torch.isfinite(nll).all()):
                raise _Diverged(f"evaluation loss (MSE {mse.tolist()}, NLL {nll.tolist()})")
        except _Diverged as exc:
            self._restore(before)
            raise FloatingPointError(
                f"model training diverged in epoch {epoch}: {exc} is not finite "
                f"(lr={self.lr!r}); the weights from before that epoch were restored. Lower lr, "
                "or check the data's scale"
            ) from None
        return tr_nll, tr_mse, mse, nll

    def _train_epoch(self, x: Tensor, y: Tensor) -> tuple[float, float]:
        """One pass over every member's (shuffled) bootstrap sample; mean minibatch NLL/MSE."""
        assert self.bootstrap_indices is not None
        ens = self.model.ensemble
        boot = self.bootstrap_indices
        e, n = boot.shape
        order = torch.argsort(torch.rand(e, n, generator=self.generator), dim=1)
        shuffled = boot.gather(1, order).to(x.device)
        ens.train()
        tot_nll = tot_mse = 0.0
        steps = 0
        for start in range(0, n, self.batch_size):
            idx = shuffled[:, start : start + self.batch_size]
            xb, yb = x[idx], y[idx]
            mean, logvar = ens(xb)
            nll = ens.gaussian_nll(mean, logvar, yb)
            loss = nll.sum() + ens.logvar_bound_penalty()
            with torch.no_grad():
                step_nll = float(nll.mean())
                step_mse = float((mean - yb).square().mean())
            if not (math.isfinite(step_nll) and math.isfinite(step_mse)):
                # checked before the update: a non-finite gradient never reaches the weights
                raise _Diverged(
                    f"training loss of minibatch {steps + 1} (NLL {step_nll}, MSE {step_mse})"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            tot_nll += step_nll
            tot_mse += step_mse
            steps += 1
        return tot_nll / steps, tot_mse / steps

    @torch.no_grad()
    def evaluate_normalized(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Per-member ``(mse (E,), nll (E,))`` of normalised inputs ``x (N, in)`` against
        normalised targets ``y (N, out)`` (means over rows and dimensions)."""
        ens = self.model.ensemble
        e = ens.num_members
        sse = torch.zeros(e, device=x.device, dtype=x.dtype)
        snll = torch.zeros(e, device=x.device, dtype=x.dtype)
        n = x.shape[0]
        for start in range(0, n, self.eval_batch_size):
            xb, yb = (
                x[start : start + self.eval_batch_size],
                y[start : start + self.eval_batch_size],
            )
            mean, logvar = ens(xb)
            rows = xb.shape[0]
            sse += (mean - yb).square().mean(dim=(1, 2)) * rows
            snll += ens.gaussian_nll(mean, logvar, yb) * rows
        return sse / n, snll / n

    def evaluate(self, obs: Any, act: Any, next_obs: Any, reward: Any = None) -> dict[str, Tensor]:
        """Per-member ``{"mse": (E,), "nll": (E,)}`` on transitions, in normalised target units
        (the model's current normalisers)."""
        obs, act, next_obs, reward = self._prepare(obs, act, next_obs, reward)
        m = self.model
        x = m.input_normalizer.normalize(m.model_inputs(obs, act))
        y = m.output_normalizer.normalize(m.model_targets(obs, next_obs, reward))
        mse, nll = self.evaluate_normalized(x, y)
        return {"mse": mse, "nll": nll}

    # ------------------------------------------------------------------ per-member weights
    def _snapshot(self) -> dict[str, Tensor]:
        return {k: p.detach().clone() for k, p in self.model.ensemble.named_parameters()}

    def _update_snapshot(self, state: dict[str, Tensor], members: Tensor) -> None:
        idx = members.nonzero().flatten()
        for k, p in self.model.ensemble.named_parameters():
            state[k][idx] = p.detach()[idx]

    @torch.no_grad()
    def _restore(self, state: dict[str, Tensor]) -> None:
        for k, p in self.model.ensemble.named_parameters():
            p.copy_(state[k])


class _Diverged(Exception):
    """Internal: a loss became non-finite (message: which loss and its value)."""


def _is_real(x: Any) -> bool:
    """A real number (int, float, numpy scalar), not a bool."""
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def _is_positive_int(x: Any) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool) and x >= 1


def _check_hyper_parameters(
    model: DynamicsModel,
    *,
    lr: Any,
    batch_size: Any,
    holdout_ratio: Any,
    max_epochs: Any,
    patience: Any,
    num_elites: Any,
    seed: Any,
    progress_bar: Any,
    eval_batch_size: Any,
) -> None:
    """Raise ``ValueError`` naming the first bad :class:`ModelTrainer` argument."""
    if not (_is_real(lr) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: expected a finite positive number, got {lr!r}")
    for name, value in (
        ("batch_size", batch_size),
        ("patience", patience),
        ("eval_batch_size", eval_batch_size),
    ):
        if not _is_positive_int(value):
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if max_epochs is not None and not _is_positive_int(max_epochs):
        raise ValueError(f"max_epochs: expected a positive int or None, got {max_epochs!r}")
    if not (_is_real(holdout_ratio) and 0.0 <= holdout_ratio < 1.0):
        raise ValueError(f"holdout_ratio: expected a value in [0, 1), got {holdout_ratio!r}")
    e = model.ensemble.num_members
    if num_elites is not None and not (_is_positive_int(num_elites) and num_elites <= e):
        raise ValueError(f"num_elites: expected an int in 1..{e} or None, got {num_elites!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise ValueError(f"seed: expected an int or None, got {seed!r}")
    if not isinstance(progress_bar, bool):
        raise ValueError(f"progress_bar: expected a bool, got {progress_bar!r}")


def _count() -> Any:
    i = 0
    while True:
        yield i
        i += 1
