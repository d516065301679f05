"""Transition storage (:class:`ReplayBuffer`, :class:`Batch`) and episode collection."""

from mbrl.data.collect import (
    Policy,
    RandomPolicy,
    buffer_for_task,
    collect_episode,
    collect_random_data,
)
from mbrl.data.replay_buffer import Batch, ReplayBuffer

__all__ = [
    "Batch",
    "Policy",
    "RandomPolicy",
    "ReplayBuffer",
    "buffer_for_task",
    "collect_episode",
    "collect_random_data",
]
