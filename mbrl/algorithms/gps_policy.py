"""The distilled policy and its supervised step.

* :class:`DistilledPolicy` — ``π_θ(x) = center + half_range · tanh(mean(φ(x)))``: the mean action
  of SAC's actor class (:class:`mbrl.agents.networks.GaussianPolicy`) on features ``φ(x)`` (the
  task's ``obs_preprocess_fn``, e.g. ``[cos θ, sin θ, θ̇]``), in float64, deterministic.
* :class:`PolicyData` — the pairs ``(x, u)`` the policy is fitted to, with the multipliers
  ``λ``, weights ``ρ`` and, for noisy training data, the teacher's feedback gains ``K``.
* :func:`fit_policy` — the policy step, by Adam on minibatches:

      min_θ  Σ_j ρ_j ‖π_θ(x̂_j) − û_j‖² + λ_jᵀ (π_θ(x̂_j) − û_j),

  with ``(x̂, û) = (x, u)`` for the clean pairs and, for each of ``noise_copies`` noisy copies
  drawn afresh every epoch, ``x̂ = x + ε``, ``û = clip(u + K ε)``, ``ε ~ N(0, noise_std² I)``
  (the lecture's fix for policy drift: the teacher's correction at a state slightly off its
  trajectory). Behaviour cloning is the case ``λ = 0``, ``ρ = 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mbrl.agents.networks import GaussianPolicy
from mbrl.algorithms.gps_problem import DTYPE

Tensor = torch.Tensor

__all__ = [
    "DistilledPolicy",
    "FitSettings",
    "PolicyData",
    "fit_policy",
    "noise_scales",
    "noisy_pairs",
]


class DistilledPolicy(nn.Module):
    """A deterministic MLP policy ``x (N, n) -> u (N, m)`` in ``[low, high]`` (float64).

    Args:
        obs_dim: state size ``n``.
        act_dim: control size ``m``.
        action_low: ``(m,)`` lower bounds.
        action_high: ``(m,)`` upper bounds.
        features: ``φ(x (N, n)) -> (N, d)`` (``None``: ``x`` itself).
        hidden: MLP width (as in :class:`GaussianPolicy`).
        num_layers: number of hidden layers.
        activation: hidden activation name.
        generator: source of the initial weights.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        action_low: Sequence[float] | np.ndarray | Tensor,
        action_high: Sequence[float] | np.ndarray | Tensor,
        *,
        features: Callable[[Tensor], Tensor] | None = None,
        hidden: int = 64,
        num_layers: int = 2,
        activation: str = "tanh",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.features = features
        d = obs_dim if features is None else int(features(torch.zeros(1, obs_dim)).shape[-1])
        self.net = GaussianPolicy(
            d,
            act_dim,
            hidden=hidden,
            num_layers=num_layers,
            action_low=action_low,
            action_high=action_high,
            activation=activation,
            generator=generator,
        ).to(DTYPE)

    def forward(self, x: Tensor) -> Tensor:
        """``u (N, m)`` for ``x (N, n)``."""
        if x.dim() != 2 or x.shape[-1] != self.obs_dim:
            raise ValueError(f"x: expected shape (N, {self.obs_dim}), got {tuple(x.shape)}")
        x = x.to(DTYPE)
        return self.net.mean_action(x if self.features is None else self.features(x))


@dataclass(frozen=True)
class PolicyData:
    """``N`` training pairs for the policy step.

    Attributes:
        x: ``(N, n)`` states. u: ``(N, m)`` target controls.
        lam: ``(N, m)`` multipliers (zeros for imitation). rho: ``(N,)`` weights ``ρ``.
        K: ``(N, m, n)`` the teacher's feedback gains at ``x`` (``None``: no noisy copies).
    """

    x: Tensor
    u: Tensor
    lam: Tensor
    rho: Tensor
    K: Tensor | None = None

    def __post_init__(self) -> None:
        N = self.x.shape[0]
        shapes = {"u": (N, self.u.shape[-1]), "lam": tuple(self.u.shape), "rho": (N,)}
        for name, shape in shapes.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(
                    f"{name}: expected shape {shape}, got {tuple(getattr(self, name).shape)}"
                )
        if self.K is not None and tuple(self.K.shape) != (N, self.u.shape[1], self.x.shape[1]):
            raise ValueError(f"K: expected shape (N, m, n), got {tuple(self.K.shape)}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @classmethod
    def imitation(cls, x: Tensor, u: Tensor, K: Tensor | None = None) -> PolicyData:
        """Behaviour-cloning pairs: ``λ = 0``, ``ρ = 1``."""
        x, u = x.to(DTYPE), u.to(DTYPE)
        lam = torch.zeros_like(u)
        return cls(x, u, lam, torch.ones(x.shape[0], dtype=DTYPE), K)

    def concat(self, other: PolicyData) -> PolicyData:
        """Both sets of pairs (aggregation, as DAgger); gains kept only if both have them."""
        K = None if self.K is None or other.K is None else torch.cat([self.K, other.K])
        parts = [torch.cat([getattr(self, f), getattr(other, f)]) for f in ("x", "u", "lam", "rho")]
        return PolicyData(*parts, K)

    def state(self) -> dict[str, Tensor | None]:
        """Plain tensors for a checkpoint."""
        return {f: getattr(self, f) for f in ("x", "u", "lam", "rho", "K")}


@dataclass(frozen=True)
class FitSettings:
    """The policy step's SGD.

    Attributes:
        epochs: passes over the data per policy step. batch_size: pairs per Adam step.
        noise_std: ``σ`` of the state noise ``ε`` of the noisy copies (state units).
        noise_copies: noisy copies of every pair per epoch (0: clean pairs only).
        noise_du_frac: ``None``, or ``c > 0``: pair ``j``'s noise is ``σ_j = min(σ, c h /
            ‖K_j‖_F)`` (``h`` the mean half-width of the control box), so the RMS target
            perturbation ``E‖K_j ε‖² = σ_j² ‖K_j‖_F²`` stays within ``(c h)²``: ``u + Kε`` is the
            teacher's action only where its local linear model holds, and with stiff gains a
            fixed ``σ`` pushes most targets against the box.
    """

    epochs: int = 50
    batch_size: int = 256
    noise_std: float = 0.0
    noise_copies: int = 0
    noise_du_frac: float | None = None


def noise_scales(K: Tensor, std: float, du_frac: float | None, half_width: float) -> Tensor:
    """Per-pair noise ``σ_j (N,)`` of :class:`FitSettings` for gains ``K (N, m, n)``:
    ``std``, capped at ``du_frac · half_width / ‖K_j‖_F`` when ``du_frac`` is given."""
    sigma = torch.full((K.shape[0],), float(std), dtype=K.dtype)
    if du_frac is None:
        return sigma
    norm = torch.linalg.matrix_norm(K).clamp_min(1e-12)
    return torch.minimum(sigma, du_frac * half_width / norm)


def noisy_pairs(
    x: Tensor,
    u: Tensor,
    K: Tensor,
    eps: Tensor,
    u_min: Tensor | None = None,
    u_max: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Inputs ``x + ε (N, n)`` and targets ``u + K ε (N, m)`` (clipped to the box when given).

    For a linear system with quadratic cost, ``u_t + K_t ε`` is exactly the teacher's
    closed-loop action at ``x_t + ε``.
    """
    if eps.shape != x.shape or K.shape != (*u.shape, x.shape[-1]):
        raise ValueError(
            f"eps, K: expected shapes {tuple(x.shape)} and {(*u.shape, x.shape[-1])}, got "
            f"{tuple(eps.shape)} and {tuple(K.shape)}"
        )
    target = u + (K @ eps.unsqueeze(-1)).squeeze(-1)
    if u_min is not None and u_max is not None:
        target = torch.maximum(torch.minimum(target, u_max), u_min)
    return x + eps, target


def _epoch_data(
    data: PolicyData, fit: FitSettings, gen: torch.Generator, u_min: Tensor, u_max: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The clean pairs and this epoch's noisy copies: ``x, u, λ, ρ``."""
    xs, us, lams, rhos = [data.x], [data.u], [data.lam], [data.rho]
    if data.K is not None and fit.noise_copies > 0 and fit.noise_std > 0:
        half = float((u_max - u_min).mean()) / 2.0
        sigma = noise_scales(data.K, fit.noise_std, fit.noise_du_frac, half).unsqueeze(-1)
        for _ in range(fit.noise_copies):
            eps = sigma * torch.randn(data.x.shape, generator=gen, dtype=DTYPE)
            xn, un = noisy_pairs(data.x, data.u, data.K, eps, u_min, u_max)
            xs.append(xn)
            us.append(un)
            lams.append(data.lam)
            rhos.append(data.rho)
    return torch.cat(xs), torch.cat(us), torch.cat(lams), torch.cat(rhos)


def fit_policy(
    policy: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: PolicyData,
    fit: FitSettings,
    generator: torch.Generator,
    u_min: Tensor,
    u_max: Tensor,
) -> float:
    """The policy step (see the module docstring). Returns the last epoch's mean loss."""
    if len(data) == 0:
        raise ValueError("data: no pairs to fit")
    last = float("nan")
    for _ in range(fit.epochs):
        x, u, lam, rho = _epoch_data(data, fit, generator, u_min, u_max)
        perm = torch.randperm(x.shape[0], generator=generator)
        total = 0.0
        for start in range(0, x.shape[0], fit.batch_size):
            b = perm[start : start + fit.batch_size]
            r = policy(x[b]) - u[b]
            loss = (rho[b] * r.square().sum(-1) + (lam[b] * r).sum(-1)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * b.numel()
        last = total / x.shape[0]
    return last
