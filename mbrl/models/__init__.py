"""Learned dynamics: probabilistic ensembles, their trainer, and batched imagined rollouts.

>>> from mbrl.models import DynamicsModel, ModelTrainer, ModelEnv
>>> model = DynamicsModel(obs_dim, act_dim, num_members=7)
>>> ModelTrainer(model, seed=0).train(obs, act, next_obs)
>>> rollout = ModelEnv(model, task, propagation="tsinf").rollout(obs0, actions)
"""

from mbrl.models.config import (
    ModelConfig,
    build_model,
    build_trainer,
    load_training_state,
    train_on_buffer,
    training_state,
)
from mbrl.models.dynamics_model import DynamicsModel
from mbrl.models.ensemble import ACTIVATIONS, GaussianEnsemble
from mbrl.models.model_env import (
    PROPAGATIONS,
    EnsembleModel,
    ModelEnv,
    Prediction,
    Propagation,
    Rollout,
    RolloutReturns,
)
from mbrl.models.multi_model import MultiModel
from mbrl.models.normalizer import Normalizer
from mbrl.models.trainer import ModelTrainer, TrainResult

__all__ = [
    "ACTIVATIONS",
    "PROPAGATIONS",
    "DynamicsModel",
    "EnsembleModel",
    "GaussianEnsemble",
    "ModelConfig",
    "ModelEnv",
    "ModelTrainer",
    "MultiModel",
    "Normalizer",
    "Prediction",
    "Propagation",
    "Rollout",
    "RolloutReturns",
    "TrainResult",
    "build_model",
    "build_trainer",
    "load_training_state",
    "train_on_buffer",
    "training_state",
]
