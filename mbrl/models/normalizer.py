"""Per-feature standardisation whose statistics are fitted on data and saved with the model."""

from __future__ import annotations

import torch
from torch import nn

Tensor = torch.Tensor


class Normalizer(nn.Module):
    """Standardise features: ``(x - mean) / std`` with ``mean``/``std`` ``(dim,)`` buffers.

    The statistics start as ``mean = 0``, ``std = 1`` (identity) and are set by :meth:`fit`.
    Features whose standard deviation is below ``min_std`` (e.g. constant inputs) get ``std = 1``,
    so they are centred but never blown up.

    Args:
        dim: number of features (last dimension of the data).
        min_std: threshold below which a feature's std is replaced by 1.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, dim: int, min_std: float = 1e-6) -> None:
        super().__init__()
        if dim < 0:
            raise ValueError(f"dim: expected a non-negative int, got {dim}")
        self.dim = int(dim)
        self.min_std = float(min_std)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, data: Tensor) -> None:
        """Set ``mean``/``std`` from ``data (N, dim)`` (population std, ``N >= 1``)."""
        if data.ndim != 2 or data.shape[1] != self.dim:
            raise ValueError(f"data: expected shape (N, {self.dim}), got {tuple(data.shape)}")
        if data.shape[0] < 1:
            raise ValueError("data: expected at least one row to fit the normaliser")
        if not torch.isfinite(data).all():
            raise ValueError("data: contains NaN or infinite values")
        data = data.to(self.mean.dtype)
        mean = data.mean(0)
        std = data.std(0, correction=0)
        std = torch.where(std < self.min_std, torch.ones_like(std), std)
        self.mean.copy_(mean)
        self.std.copy_(std)

    def normalize(self, x: Tensor) -> Tensor:
        """``(x - mean) / std`` for ``x (..., dim)``."""
        return (x - self.mean) / self.std

    def denormalize(self, x: Tensor) -> Tensor:
        """``x * std + mean`` for ``x (..., dim)`` (inverse of :meth:`normalize`)."""
        return x * self.std + self.mean

    def denormalize_var(self, var: Tensor) -> Tensor:
        """Variance in original units from a variance in normalised units: ``var * std**2``."""
        return var * self.std.square()

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
