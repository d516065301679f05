"""Transition storage: :class:`ReplayBuffer` (ring buffer) and its :class:`Batch` record."""

from mbrl.data.replay_buffer import Batch, ReplayBuffer

__all__ = ["Batch", "ReplayBuffer"]
