"""The ensemble and its training as one config, and the functions that build them from it.

>>> cfg = ModelConfig(num_members=5, num_layers=3)
>>> model = build_model(cfg, task, generator=gen)
>>> trainer = build_trainer(cfg, model, generator=gen)
>>> result = train_on_buffer(cfg, trainer, buffer)

Every default is taken from the signature of the class the field configures
(:class:`DynamicsModel` or :class:`ModelTrainer`), so the Python API and the command line build
the same model under the same name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from mbrl.models.dynamics_model import DynamicsModel
from mbrl.models.trainer import MetricLogger, ModelTrainer, TrainResult
from mbrl.util.config import default_of

__all__ = [
    "ModelConfig",
    "build_model",
    "build_trainer",
    "load_training_state",
    "train_on_buffer",
    "training_state",
]


@dataclass
class ModelConfig:
    """Probabilistic ensemble (:class:`DynamicsModel`) and its training (:class:`ModelTrainer`).

    Attributes:
        num_members: ensemble size ``E``.
        num_elites: members with the lowest holdout loss, selected after each training round
            (``None``: ``min(5, num_members)``).
        use_elites: plan with the elites only (PETS uses every member: ``False``).
        hidden: width of each hidden layer.
        num_layers: number of hidden layers.
        activation: hidden activation (``"silu"``, ``"relu"``, ...).
        learn_reward: also learn the reward (planners then use it instead of the task's, unless
            ``planner.use_learned_reward=false``).
        lr: AdamW learning rate.
        weight_decay: decoupled (AdamW) weight decay of the weight matrices.
        batch_size: minibatch size per member.
        holdout_ratio: fraction of the data held out for early stopping / elite selection.
        patience: epochs without holdout improvement before training stops.
        max_epochs: cap on the epochs of one early-stopped training round (``None``: no cap).
        epochs: train exactly this many epochs per round instead of early stopping.
    """

    num_members: int = default_of(DynamicsModel, "num_members")
    num_elites: int | None = default_of(DynamicsModel, "num_elites")
    use_elites: bool = default_of(DynamicsModel, "use_elites")
    hidden: int = default_of(DynamicsModel, "hidden")
    num_layers: int = default_of(DynamicsModel, "num_layers")
    activation: str = default_of(DynamicsModel, "activation")
    learn_reward: bool = default_of(DynamicsModel, "learn_reward")
    lr: float = default_of(ModelTrainer, "lr")
    weight_decay: float = default_of(ModelTrainer, "weight_decay")
    batch_size: int = default_of(ModelTrainer, "batch_size")
    holdout_ratio: float = default_of(ModelTrainer, "holdout_ratio")
    patience: int = default_of(ModelTrainer, "patience")
    max_epochs: int | None = default_of(ModelTrainer, "max_epochs")
    epochs: int | None = None

    def __post_init__(self) -> None:
        for name in ("num_members", "hidden", "num_layers", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        for name in ("num_elites", "max_epochs", "epochs"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{name}: expected a positive int or None, got {value!r}")
        if self.num_elites is not None and self.num_elites > self.num_members:
            raise ValueError(
                f"num_elites: expected at most num_members ({self.num_members}), "
                f"got {self.num_elites}"
            )
        if not 0.0 <= self.holdout_ratio < 1.0:
            raise ValueError(f"holdout_ratio: expected a value in [0, 1), got {self.holdout_ratio}")
        if not (0.0 < self.lr < float("inf")):
            raise ValueError(f"lr: expected a finite positive number, got {self.lr}")
        if not (0.0 <= self.weight_decay < float("inf")):
            raise ValueError(
                f"weight_decay: expected a finite number >= 0, got {self.weight_decay}"
            )
        if self.holdout_ratio == 0 and self.epochs is None:
            raise ValueError("epochs: required when holdout_ratio=0 (no early stopping possible)")

    def check_first_round(self, most_transitions: int, where: str) -> None:
        """Raise ``ValueError`` naming ``where`` when ``most_transitions``, the most data the
        first training round can get, is too few for one holdout row."""
        if self.holdout_ratio > 0 and int(most_transitions * self.holdout_ratio) < 1:
            raise ValueError(
                f"{where}: at most {most_transitions} transitions before the first training, "
                f"too few for model.holdout_ratio={self.holdout_ratio} "
                f"(need {math.ceil(1 / self.holdout_ratio)})"
            )


def build_model(
    cfg: ModelConfig,
    task: Any,
    *,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> DynamicsModel:
    """The ensemble that ``cfg`` describes, sized for ``task`` (an :class:`envs.Task`)."""
    return DynamicsModel.for_task(
        task,
        num_members=cfg.num_members,
        hidden=cfg.hidden,
        num_layers=cfg.num_layers,
        activation=cfg.activation,
        learn_reward=cfg.learn_reward,
        num_elites=cfg.num_elites,
        use_elites=cfg.use_elites,
        generator=generator,
    ).to(device)


def build_trainer(
    cfg: ModelConfig,
    model: DynamicsModel,
    *,
    generator: torch.Generator | None = None,
    logger: MetricLogger | None = None,
    progress_bar: bool = True,
) -> ModelTrainer:
    """The :class:`ModelTrainer` that ``cfg`` describes, for ``model``."""
    return ModelTrainer(
        model,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        batch_size=cfg.batch_size,
        holdout_ratio=cfg.holdout_ratio,
        max_epochs=cfg.max_epochs,
        patience=cfg.patience,
        num_elites=cfg.num_elites,
        logger=logger,
        generator=generator,
        progress_bar=progress_bar,
    )


def train_on_buffer(
    cfg: ModelConfig, trainer: ModelTrainer, buffer: Any, task: Any = None
) -> TrainResult:
    """One training round on the transitions of ``buffer`` (a :class:`mbrl.data.ReplayBuffer`),
    with the rewards when the model learns them, and ``cfg.epochs`` if set.

    With a ``task`` whose ``model_data_fn`` is set, the transitions it marks False (e.g. a
    hard joint stop the smooth model cannot represent) are left out of training and holdout.
    """
    data = buffer.get_all()
    fn = getattr(task, "model_data_fn", None)
    if fn is not None:
        keep = fn(*(torch.as_tensor(x) for x in (data.obs, data.act, data.next_obs)))
        keep = keep.cpu().numpy().astype(bool)
        data = type(data)(*(x[keep] for x in data))
    reward = data.reward if trainer.model.learn_reward else None
    return trainer.train(data.obs, data.act, data.next_obs, reward, epochs=cfg.epochs)


def training_state(model: DynamicsModel, trainer: ModelTrainer) -> dict[str, Any]:
    """The model's weights (normalisers and elites included) and the trainer's state, as
    plain tensors for a checkpoint; :func:`load_training_state` puts them back."""
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {"model": weights, "trainer": trainer.state_dict()}


def load_training_state(model: DynamicsModel, trainer: ModelTrainer, state: dict[str, Any]) -> None:
    """Restore what :func:`training_state` saved into ``model`` and ``trainer`` (in place)."""
    model.load_state_dict(state["model"])
    model.set_elites(torch.nonzero(model.elite_mask).flatten())
    trainer.load_state_dict(state["trainer"])
