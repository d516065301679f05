"""Networks for off-policy agents: a tanh-squashed Gaussian policy and batched Q critics.

* :class:`GaussianPolicy` maps observations to a diagonal Gaussian over pre-squash actions
  ``u``; actions are ``y = tanh(u)`` in ``(-1, 1)``, rescaled affinely to ``[low, high]``. Its
  log-density is corrected for both maps (change of variables), using the stable form
  ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2 u))``. SAC uses it; guided policy search
  can reuse it (:meth:`GaussianPolicy.log_prob` evaluates the density of given actions).
* :class:`BatchedCritics` holds ``K`` Q-networks as stacked weights ``(K, fan_in, fan_out)``;
  a layer is one ``torch.baddbmm`` over all critics (the ensemble's trick, see
  :mod:`mbrl.models.ensemble`), so twin critics cost one batched forward, not a Python loop.

Initialisation of both follows ``torch.nn.Linear``: weights and biases uniform in
``±1/sqrt(fan_in)``, drawn from an explicit ``generator``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mbrl.models.ensemble import ACTIVATIONS, activation_name

Tensor = torch.Tensor

LOG_2 = math.log(2.0)
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_INPLACE_SAFE = ("relu", "leakyrelu")

__all__ = ["BatchedCritics", "GaussianPolicy", "action_bounds", "squash_log_det"]


def _check_positive_int(value: object, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return int(value)


def _uniform_(t: Tensor, fan_in: int, generator: torch.Generator | None) -> Tensor:
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        return t.uniform_(-bound, bound, generator=generator)


def _activation(name: str) -> nn.Module:
    """The activation module; ReLU and LeakyReLU in place.

    In place is safe for those two: every activation follows a ``Linear``/``baddbmm``, whose
    backward needs its inputs, not its output, and their own backward needs only the output's
    sign. (SiLU's backward needs its input, so it is not done in place.)
    """
    cls = ACTIVATIONS[name]
    if name in _INPLACE_SAFE:
        return cls(inplace=True)  # type: ignore[call-arg]
    return cls()


def squash_log_det(u: Tensor) -> Tensor:
    """``sum_i log(1 - tanh(u_i)^2)`` over the last dimension, stable for large ``|u|``.

    ``u (..., d)`` -> ``(...)``. Uses ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))``,
    which stays finite where ``1 - tanh(u)^2`` rounds to zero.
    """
    return (2.0 * (LOG_2 - u - F.softplus(-2.0 * u))).sum(-1)


def action_bounds(
    act_dim: int,
    low: Sequence[float] | np.ndarray | Tensor | None,
    high: Sequence[float] | np.ndarray | Tensor | None,
    dim_name: str = "act_dim",
) -> tuple[Tensor, Tensor]:
    """``(low, high)`` as float64 tensors ``(act_dim,)``; ``None`` means ``[-1, 1]``.

    A scalar bound is broadcast to every dimension. Raises ``ValueError`` naming
    ``action_low``/``action_high`` for a wrong shape, non-finite values or ``low >= high``.
    """
    act_dim = _check_positive_int(act_dim, dim_name)
    out = []
    for name, value, default in (("action_low", low, -1.0), ("action_high", high, 1.0)):
        if value is None:
            out.append(torch.full((act_dim,), default, dtype=torch.float64))
            continue
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64)).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: expected numbers, got {value!r}") from exc
        if t.numel() == 1 and act_dim > 1:
            t = t.expand(act_dim).clone()
        if t.shape != (act_dim,):
            raise ValueError(f"{name}: expected shape ({act_dim},), got {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}: expected finite bounds, got {t.tolist()}")
        out.append(t)
    if not (out[0] < out[1]).all():
        raise ValueError(
            f"action_low: expected < action_high elementwise, got low={out[0].tolist()}, "
            f"high={out[1].tolist()}"
        )
    return out[0], out[1]


class GaussianPolicy(nn.Module):
    """Tanh-squashed diagonal Gaussian policy ``pi(a | obs)`` on a box ``[low, high]``.

    An MLP maps ``obs (N, obs_dim)`` to the mean and log standard deviation of ``u (N, act_dim)``
    (log-std clamped to ``[log_std_min, log_std_max]``); the action is
    ``a = center + half_range * tanh(u)`` with ``center = (high + low) / 2`` and
    ``half_range = (high - low) / 2``.

    Args:
        obs_dim: observation size.
        act_dim: action size.
        hidden: width of every hidden layer.
        num_layers: number of hidden layers (``Linear`` + activation each).
        action_low: ``(act_dim,)`` lower bounds (default ``-1``).
        action_high: ``(act_dim,)`` upper bounds (default ``1``).
        activation: activation name (see :data:`mbrl.models.ensemble.ACTIVATIONS`).
        log_std_min: lower clamp of the log standard deviation.
        log_std_max: upper clamp of the log standard deviation.
        generator: source of the initial weights.
    """

    center: Tensor
    half_range: Tensor

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        *,
        hidden: int = 256,
        num_layers: int = 2,
        action_low: Sequence[float] | np.ndarray | Tensor | None = None,
        action_high: Sequence[float] | np.ndarray | Tensor | None = None,
        activation: str = "relu",
        log_std_min: float = -20.0,
        log_std_max: float = 2.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.obs_dim = _check_positive_int(obs_dim, "obs_dim")
        self.act_dim = _check_positive_int(act_dim, "act_dim")
        self.hidden = _check_positive_int(hidden, "hidden")
        self.num_layers = _check_positive_int(num_layers, "num_layers", 0)
        if not (math.isfinite(log_std_min) and math.isfinite(log_std_max)) or not (
            log_std_min < log_std_max
        ):
            raise ValueError(
                f"log_std_min: expected finite log_std_min < log_std_max, got "
                f"{log_std_min} and {log_std_max}"
            )
        self.log_std_min = float(log_std_min)
        self.log_std_max = float(log_std_max)
        self.activation_name = activation_name(activation)
        low, high = action_bounds(self.act_dim, action_low, action_high)
        self.register_buffer("center", ((high + low) / 2).float())
        self.register_buffer("half_range", ((high - low) / 2).float())
        sizes = [self.obs_dim] + [self.hidden] * self.num_layers + [2 * self.act_dim]
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            lin = nn.Linear(fan_in, fan_out)
            _uniform_(lin.weight, fan_in, generator)
            _uniform_(lin.bias, fan_in, generator)
            layers.append(lin)
            if i < len(sizes) - 2:
                layers.append(_activation(self.activation_name))
        self.net = nn.Sequential(*layers)

    # ------------------------------------------------------------------ distribution
    def mean_log_std(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Pre-squash mean and clamped log-std, each ``(N, act_dim)``, for ``obs (N, obs_dim)``."""
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def sample_squashed(
        self,
        obs: Tensor,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
        eps: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Action ``y = tanh(u) (N, act_dim)`` in ``(-1, 1)`` and its log-density ``(N,)``.

        Reparameterised (``u = mean + std * eps``, differentiable in the weights); the standard
        normal noise ``eps (N, act_dim)`` is drawn from ``generator`` unless given.
        ``deterministic=True`` returns ``tanh(mean)`` and the density there. The log-density
        is with respect to ``y`` (not the rescaled action).
        """
        mean, log_std = self.mean_log_std(obs)
        if deterministic:
            u = mean
            sq = torch.zeros_like(mean)
        else:
            if eps is None:
                eps = torch.randn(
                    mean.shape, generator=generator, dtype=mean.dtype, device=mean.device
                )
            elif eps.shape != mean.shape:
                raise ValueError(f"eps: expected shape {tuple(mean.shape)}, got {tuple(eps.shape)}")
            u = mean + log_std.exp() * eps
            sq = eps.square()
        # log N(u; mean, std) with (u - mean) / std = eps, minus the tanh Jacobian
        log_prob = -(0.5 * sq + log_std + HALF_LOG_2PI).sum(-1) - squash_log_det(u)
        return torch.tanh(u), log_prob

    def forward(
        self,
        obs: Tensor,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Action ``(N, act_dim)`` in ``[low, high]`` and its log-density ``(N,)``.

        The log-density is with respect to the rescaled action:
        ``log pi(a) = log pi(y) - sum(log half_range)``. ``deterministic=True`` returns
        ``center + half_range * tanh(mean)`` (and the density at that action).
        """
        y, log_prob = self.sample_squashed(obs, deterministic, generator)
        return self.scale(y), log_prob - self.half_range.log().sum()

    def log_prob(self, obs: Tensor, action: Tensor, eps: float = 1e-6) -> Tensor:
        """Log-density ``(N,)`` of given actions ``(N, act_dim)`` in ``[low, high]``.

        Actions are mapped back to ``u = atanh(y)`` with ``y`` clipped to ``±(1 - eps)``, so
        actions on the bounds get a finite (very low) density.
        """
        mean, log_std = self.mean_log_std(obs)
        y = self.unscale(action).clamp(-1.0 + eps, 1.0 - eps)
        u = torch.atanh(y)
        z = (u - mean) * torch.exp(-log_std)
        log_pu = -(0.5 * z.square() + log_std + HALF_LOG_2PI).sum(-1)
        return log_pu - squash_log_det(u) - self.half_range.log().sum()

    def mean_action(self, obs: Tensor) -> Tensor:
        """The deterministic action ``center + half_range * tanh(mean) (N, act_dim)``, without the
        log-density (a policy acting alone at test time, e.g. distilled by guided policy
        search); equal to ``forward(obs, deterministic=True)[0]``."""
        return self.scale(torch.tanh(self.mean_log_std(obs)[0]))

    # ------------------------------------------------------------------ bounds
    def scale(self, y: Tensor) -> Tensor:
        """``[-1, 1]`` -> ``[low, high]``: ``center + half_range * y``."""
        return torch.addcmul(self.center, self.half_range, y)

    def unscale(self, action: Tensor) -> Tensor:
        """``[low, high]`` -> ``[-1, 1]``: ``(action - center) / half_range``."""
        return (action - self.center) / self.half_range

    def extra_repr(self) -> str:
        return (
            f"obs_dim={self.obs_dim}, act_dim={self.act_dim}, hidden={self.hidden}, "
            f"num_layers={self.num_layers}, activation={self.activation_name!r}"
        )


class BatchedCritics(nn.Module):
    """``K`` Q-networks ``Q_k(obs, act)`` evaluated as one batched MLP.

    Weights are ``(K, fan_in, fan_out)``, biases ``(K, 1, fan_out)``; input is ``[obs, act]``.

    Args:
        obs_dim: observation size.
        act_dim: action size.
        num_critics: ``K`` (SAC: 2).
        hidden: width of every hidden layer.
        num_layers: number of hidden layers.
        activation: activation name.
        generator: source of the initial weights.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        *,
        num_critics: int = 2,
        hidden: int = 256,
        num_layers: int = 2,
        activation: str = "relu",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.obs_dim = _check_positive_int(obs_dim, "obs_dim")
        self.act_dim = _check_positive_int(act_dim, "act_dim")
        self.num_critics = _check_positive_int(num_critics, "num_critics")
        self.hidden = _check_positive_int(hidden, "hidden")
        self.num_layers = _check_positive_int(num_layers, "num_layers", 0)
        self.activation_name = activation_name(activation)
        self.act = _activation(self.activation_name)
        sizes = [self.obs_dim + self.act_dim] + [self.hidden] * self.num_layers + [1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        k = self.num_critics
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            self.weights.append(
                nn.Parameter(_uniform_(torch.empty(k, fan_in, fan_out), fan_in, generator))
            )
            self.biases.append(
                nn.Parameter(_uniform_(torch.empty(k, 1, fan_out), fan_in, generator))
            )

    def forward(self, obs: Tensor, act: Tensor, detach_weights: bool = False) -> Tensor:
        """``Q (K, N)`` for ``obs (N, obs_dim)``, ``act (N, act_dim)``.

        ``detach_weights=True`` evaluates with the weights detached: gradients then reach the
        inputs (e.g. the policy's actions) but not the critics.
        """
        x = torch.cat([obs, act], dim=-1)
        h = x.unsqueeze(0).expand(self.num_critics, -1, -1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if detach_weights:
                w, b = w.detach(), b.detach()
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = self.act(h)
        return h.squeeze(-1)

    def extra_repr(self) -> str:
        return (
            f"obs_dim={self.obs_dim}, act_dim={self.act_dim}, num_critics={self.num_critics}, "
            f"hidden={self.hidden}, num_layers={self.num_layers}, "
            f"activation={self.activation_name!r}"
        )
