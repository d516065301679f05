"""Probabilistic ensemble of MLPs (PETS): every layer is one batched matmul over the members.

Each of the ``E`` members maps ``x (in_dim)`` to a diagonal Gaussian over ``y (out_dim)``: a
mean and a log-variance. The log-variance is kept between learned soft bounds (Chua et al., 2018)::

    logvar = max_logvar - softplus(max_logvar - raw)
    logvar = min_logvar + softplus(logvar - min_logvar)

and the loss adds ``0.01 * (sum(max_logvar) - sum(min_logvar))`` so the bounds tighten onto the
data. Weights are stored as ``(E, fan_in, fan_out)`` tensors, biases as ``(E, 1, fan_out)``; a
layer is ``torch.baddbmm(bias, h, weight)`` for all members at once (no Python loop over
members). Every parameter has the member as its leading dimension, so one member's weights are
``{name: p[e]}`` (used by the trainer to keep each member's best weights).

Initialisation: weights from a normal truncated at two standard deviations with std
``1 / (2 sqrt(fan_in))`` (as in the PETS code), biases zero, ``max_logvar = 0.5``,
``min_logvar = -10``. Weight decay is applied by the optimiser (see
:class:`mbrl.models.trainer.ModelTrainer`), to the weight matrices only.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn
from torch.nn import functional as F

from mbrl.models.fused_forward import (
    PackedLayers,
    fused_available,
    fused_forward,
    pack_layers,
    packing_key,
)

Tensor = torch.Tensor
INFERENCE_PATHS: tuple[str, ...] = ("auto", "fused", "blocks", "rows")
"""Values of :attr:`GaussianEnsemble.inference_path`."""

SMALL_BATCH_ROWS = 128
"""``"auto"`` takes the reference ``"rows"`` path for at most this many rows per member: a few
rows (an iLQR line search, one MPC state) cost less in three ``baddbmm`` calls than in the block
path's buffer set-up (``benchmarks/bench_small_batch.py``; figures in docs/planning.md)."""

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "leakyrelu": nn.LeakyReLU,
}
"""Activation names accepted by :class:`GaussianEnsemble` (saved by name in checkpoints)."""

LOG_2PI = math.log(2.0 * math.pi)


def activation_name(activation: str | type[nn.Module]) -> str:
    """Canonical name (a key of :data:`ACTIVATIONS`) of an activation given by name or class."""
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", "")
    key = name.lower()
    if key not in ACTIVATIONS:
        raise ValueError(
            f"activation: expected one of {sorted(ACTIVATIONS)} (name or nn class), "
            f"got {activation!r}"
        )
    return key


class GaussianEnsemble(nn.Module):
    """``E`` Gaussian MLPs evaluated together.

    Args:
        in_dim: input features.
        out_dim: output dimensions (each member outputs a mean and a log-variance for each).
        num_members: ensemble size ``E``.
        hidden: width of every hidden layer.
        num_layers: number of hidden layers (each ``Linear`` + activation); the output layer
            ``hidden -> 2 * out_dim`` comes on top, so there are ``num_layers + 1`` matmuls.
        activation: activation name or ``nn.Module`` class (see :data:`ACTIVATIONS`).
        init_max_logvar: initial upper log-variance bound (PETS: 0.5).
        init_min_logvar: initial lower log-variance bound (PETS: -10).
        generator: source of the initial weights (``None``: torch's global generator).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_members: int = 7,
        hidden: int = 200,
        num_layers: int = 4,
        activation: str | type[nn.Module] = nn.SiLU,
        *,
        init_max_logvar: float = 0.5,
        init_min_logvar: float = -10.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("in_dim", in_dim, 1),
            ("out_dim", out_dim, 1),
            ("num_members", num_members, 1),
            ("hidden", hidden, 1),
            ("num_layers", num_layers, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        if not init_min_logvar < init_max_logvar:
            raise ValueError(
                f"init_min_logvar: expected < init_max_logvar ({init_max_logvar}), "
                f"got {init_min_logvar}"
            )
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.num_members = num_members
        self.hidden = hidden
        self.num_layers = num_layers
        self.activation_name = activation_name(activation)
        act_cls = ACTIVATIONS[self.activation_name]
        self.act = act_cls()
        # Without autograd the activation may overwrite its input (saves a large allocation).
        inplace_ok = "inplace" in inspect.signature(act_cls.__init__).parameters
        self._act_is_inplace = inplace_ok
        self._act_inplace = act_cls(inplace=True) if inplace_ok else act_cls()
        self._block_buffers: dict[
            tuple[int, int, int, torch.dtype], tuple[Tensor, Tensor, Tensor]
        ] = {}
        sizes = [in_dim] + [hidden] * num_layers + [2 * out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            w = torch.empty(num_members, fan_in, fan_out)
            std = 1.0 / (2.0 * math.sqrt(fan_in))
            nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std, generator=generator)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(num_members, 1, fan_out)))
        self.max_logvar = nn.Parameter(torch.full((num_members, 1, out_dim), init_max_logvar))
        self.min_logvar = nn.Parameter(torch.full((num_members, 1, out_dim), init_min_logvar))
        self.inference_chunk_rows: int | None = 2048
        """On CPU without autograd, rows per member are processed in equal blocks of at most this
        many rows through reused buffers (``None``: the plain path, all rows at once)."""
        self.inference_path = "auto"
        """CPU forward without autograd: ``"fused"`` (oneDNN layers with the bias and activation
        fused, weights cast once: :mod:`mbrl.models.fused_forward`), ``"blocks"`` (batched
        ``bmm`` over reused buffers, :attr:`inference_chunk_rows` rows at a time), ``"rows"``
        (the reference: the same code as with autograd) or ``"auto"``: rows for at most
        :data:`SMALL_BATCH_ROWS` rows per member, else fused in bfloat16 where the CPU runs it
        natively, blocks otherwise."""
        self._packed: PackedLayers | None = None

    # ------------------------------------------------------------------ forward
    def layer_sizes(self) -> list[tuple[int, int]]:
        """``(fan_in, fan_out)`` of every matmul, input layer first."""
        return [(w.shape[1], w.shape[2]) for w in self.weights]

    def flops_per_sample(self) -> int:
        """Forward FLOPs per input row per member: ``2 * sum(fan_in * fan_out)``."""
        return 2 * sum(i * o for i, o in self.layer_sizes())

    def forward(self, x: Tensor, members: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Gaussian parameters of every (selected) member.

        Args:
            x: ``(N, in_dim)`` (every member sees the same rows) or ``(M, N, in_dim)`` (member
                ``m`` sees row ``m``), where ``M`` is ``E`` or ``len(members)``.
            members: optional ``(M,)`` long tensor of member indices to evaluate (e.g. elites).

        Returns:
            ``mean (M, N, out_dim)`` and ``logvar (M, N, out_dim)`` (soft-bounded).

        On CPU with autograd disabled (``torch.no_grad``/``inference_mode``), the forward takes
        :attr:`inference_path` (same values up to float rounding). Under CPU autocast the
        matmuls run in the autocast dtype; the outputs are in the parameters' dtype.
        """
        weights: list[Tensor] = list(self.weights)
        biases: list[Tensor] = list(self.biases)
        max_lv, min_lv = self.max_logvar, self.min_logvar
        if members is not None:
            weights = [w[members] for w in weights]
            biases = [b[members] for b in biases]
            max_lv, min_lv = max_lv[members], min_lv[members]
        m = weights[0].shape[0]
        if x.ndim == 2:
            x = x.unsqueeze(0).expand(m, -1, -1)
        elif x.ndim != 3 or x.shape[0] != m:
            raise ValueError(f"x: expected shape (N, in) or ({m}, N, in), got {tuple(x.shape)}")
        path = self._inference_path(x)
        if path == "rows":
            return self._forward_rows(x, weights, biases, max_lv, min_lv)
        if path == "blocks":
            return self._forward_blocks(x, weights, biases, max_lv, min_lv)
        return self._forward_fused(x, members, max_lv, min_lv)

    def _compute_dtype(self, x: Tensor) -> torch.dtype:
        """The matmuls' dtype: CPU autocast's for float32 inputs under autocast, else x's."""
        if torch.is_autocast_enabled("cpu") and x.dtype == torch.float32:
            return torch.get_autocast_dtype("cpu")
        return x.dtype

    def _inference_path(self, x: Tensor) -> str:
        """``"rows"``, ``"blocks"`` or ``"fused"``: which forward serves this call."""
        if self.inference_path not in INFERENCE_PATHS:
            raise ValueError(
                f"inference_path: expected one of {INFERENCE_PATHS}, got {self.inference_path!r}"
            )
        if torch.is_grad_enabled() or x.device.type != "cpu" or self.inference_path == "rows":
            return "rows"
        if self.inference_path == "auto" and x.shape[1] <= SMALL_BATCH_ROWS:
            return "rows"
        dtype = self._compute_dtype(x)
        if self.inference_path == "fused":
            if any(p.is_inference() for p in self.parameters()):
                raise ValueError(
                    "inference_path: 'fused' keeps a cast copy of the weights and needs their "
                    "version counters; parameters created under torch.inference_mode have none"
                )
            if not fused_available(dtype):
                raise ValueError(
                    f"inference_path: 'fused' needs oneDNN with {dtype} support on this CPU "
                    "(see mbrl.models.fused_forward.fused_available)"
                )
            return "fused"
        if (
            self.inference_path == "auto"
            and dtype == torch.bfloat16
            and fused_available(dtype)
            and not any(p.is_inference() for p in self.parameters())
        ):
            # (parameters made under inference_mode have no version counter, so a kept cast
            # of them could not tell an in-place update: those take the block path)
            return "fused"
        return "blocks" if self.inference_chunk_rows else "rows"

    @torch.no_grad()
    def _forward_fused(
        self, x: Tensor, members: Tensor | None, max_lv: Tensor, min_lv: Tensor
    ) -> tuple[Tensor, Tensor]:
        """CPU inference through :func:`~mbrl.models.fused_forward.fused_forward`; the layers
        are cast and laid out once per dtype and member selection, and again after any
        parameter changes."""
        dtype = self._compute_dtype(x)
        with torch.autocast("cpu", enabled=False):
            weights, biases = list(self.weights), list(self.biases)
            packed = self._packed
            if packed is None or packed.key != packing_key(weights, biases, members, dtype):
                packed = self._packed = pack_layers(weights, biases, members, dtype)
            out = fused_forward(
                packed, x, self.activation_name, self.act, self.inference_chunk_rows
            )
        # the bounds in the parameters' dtype: cheap (2 x out_dim wide) and more precise
        return self._bound(out.to(max_lv.dtype), max_lv, min_lv)

    def _forward_rows(
        self,
        h: Tensor,
        weights: list[Tensor],
        biases: list[Tensor],
        max_lv: Tensor,
        min_lv: Tensor,
    ) -> tuple[Tensor, Tensor]:
        last = len(weights) - 1
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = self.act(h)
        return self._bound(h, max_lv, min_lv)

    def _bound(self, h: Tensor, max_lv: Tensor, min_lv: Tensor) -> tuple[Tensor, Tensor]:
        mean, raw = h.split(self.out_dim, dim=-1)
        logvar = max_lv - F.softplus(max_lv - raw)
        logvar = min_lv + F.softplus(logvar - min_lv)
        return mean, logvar

    @torch.no_grad()
    def _forward_blocks(
        self,
        x: Tensor,
        weights: list[Tensor],
        biases: list[Tensor],
        max_lv: Tensor,
        min_lv: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """CPU inference: equal blocks of rows through all layers in reused buffers.

        Fresh multi-megabyte tensors per layer cost page faults that can exceed the matmul
        time; reusing buffers and in-place activations avoids them. Each buffer row holds the
        activations, a constant 1 and padding to a 64-byte multiple, and each layer's bias is
        appended to its weight as a last row, so a layer is one aligned ``bmm``
        (``[h, 1] @ [[W], [b]]``) with no broadcast copy of the bias.
        Under CPU autocast the layers run in the autocast dtype (as autocast would run them);
        the outputs are returned in the parameters' dtype.
        The buffers belong to the module: do not query one module from several threads at once.
        """
        dtype = self._compute_dtype(x)
        with torch.autocast("cpu", enabled=False):
            # (M, fan_in + 1, fan_out): the weight's rows, then the bias row
            pairs = zip(weights, biases, strict=True)
            layers = [torch.cat([w, b], dim=1).to(dtype) for w, b in pairs]
            m, n, d = x.shape
            # equal blocks of at most inference_chunk_rows (no small, inefficient last block)
            c = -(-n // -(-n // int(self.inference_chunk_rows or n)))
            in_buf, a_buf, b_buf = self._get_block_buffers(m, c, d, dtype)
            hid = self.hidden
            out = torch.empty(m, n, 2 * self.out_dim, dtype=dtype)
            last = len(layers) - 1
            for start in range(0, n, c):
                rows = min(c, n - start)
                in_buf[:, :rows, :d] = x[:, start : start + rows]
                h = in_buf[:, :rows, : d + 1]
                for i in range(last):
                    buf = (a_buf if i % 2 == 0 else b_buf)[:, :rows]
                    torch.bmm(h, layers[i], out=buf[..., :hid])
                    # the activation runs over whole rows (contiguous; padding stays 0), then
                    # the ones column is restored: faster than a strided activation
                    if self._act_is_inplace:
                        self._act_inplace(buf)
                    else:
                        buf.copy_(self.act(buf))
                    buf[..., hid] = 1.0
                    h = buf[..., : hid + 1]
                torch.bmm(h, layers[last], out=out[:, start : start + rows])
        # The bounds in the parameters' dtype: cheap (2 x out_dim wide) and more precise than bf16.
        out = out.to(max_lv.dtype)
        return self._bound(out, max_lv, min_lv)

    def _get_block_buffers(
        self, m: int, c: int, in_dim: int, dtype: torch.dtype
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Input ``(M, c, >= in_dim + 1)`` and two ``(M, c, >= hidden + 1)`` buffers.

        Column ``in_dim`` (resp. ``hidden``) holds ones; rows are zero-padded to a multiple
        of 64 bytes so every row starts aligned.
        """
        key = (m, c, in_dim, dtype)
        bufs = self._block_buffers.get(key)
        if bufs is None:
            self._block_buffers.clear()  # keep one set: the shapes of the latest query
            per_line = max(1, 64 // torch.empty((), dtype=dtype).element_size())
            made = []
            with torch.inference_mode(False):  # usable both inside and outside inference mode
                for width in (in_dim, self.hidden, self.hidden):
                    stride = -(-(width + 1) // per_line) * per_line
                    buf = torch.zeros(m, c, stride, dtype=dtype)
                    buf[..., width] = 1.0
                    made.append(buf)
            bufs = (made[0], made[1], made[2])
            self._block_buffers[key] = bufs
        return bufs

    # ------------------------------------------------------------------ losses
    @staticmethod
    def gaussian_nll(mean: Tensor, logvar: Tensor, target: Tensor) -> Tensor:
        """Per-member Gaussian NLL ``(M,)``, averaged over rows and dimensions (nats per dim).

        ``mean``/``logvar`` are ``(M, N, d)``; ``target`` is ``(M, N, d)`` or ``(N, d)``.
        """
        nll = 0.5 * ((mean - target).square() * torch.exp(-logvar) + logvar + LOG_2PI)
        return nll.mean(dim=(1, 2))

    def logvar_bound_penalty(self) -> Tensor:
        """The bounds' regulariser ``0.01 * (sum(max_logvar) - sum(min_logvar))`` (scalar)."""
        return 0.01 * (self.max_logvar.sum() - self.min_logvar.sum())

    def loss(self, x: Tensor, target: Tensor) -> Tensor:
        """Training loss (scalar): sum over members of their mean NLL, plus the bounds' penalty.

        ``x (E, B, in_dim)`` / ``target (E, B, out_dim)``: every member its own minibatch.
        Summing (not averaging) over members keeps each member's gradient independent of ``E``.
        """
        mean, logvar = self(x)
        return self.gaussian_nll(mean, logvar, target).sum() + self.logvar_bound_penalty()

    def decay_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """``(weight matrices, other parameters)``: only the former get weight decay."""
        decayed = list(self.weights)
        other = list(self.biases) + [self.max_logvar, self.min_logvar]
        return decayed, other

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, out_dim={self.out_dim}, num_members={self.num_members}, "
            f"hidden={self.hidden}, num_layers={self.num_layers}, "
            f"activation={self.activation_name!r}"
        )
