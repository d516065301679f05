"""Inference forward of a :class:`~mbrl.models.ensemble.GaussianEnsemble` through oneDNN layers
with the bias and the activation fused into the matmul.

The reference forward is one ``baddbmm`` per layer for all members, then the activation as a
separate pass. On CPU in bfloat16 that layout pays for more than the matmuls: the activation
reads and writes every hidden value once more, and autocast casts the weights on every call.
This path instead

* casts and lays out each member's weights once per dtype (``(fan_out, fan_in)``, contiguous,
  as oneDNN's linear takes them) and keeps them until a parameter changes (in-place updates by
  an optimiser included: the key holds each parameter's version counter);
* runs each member's layer as one ``torch.ops.mkldnn._linear_pointwise`` call with the bias and
  the activation applied in the matmul's epilogue (oneDNN post-op; SiLU is oneDNN's ``swish``);
* keeps the activations in the compute dtype (bfloat16 or float32) from the first layer to the
  last; only the ``(M, N, 2 * out_dim)`` output comes back in the compute dtype for the caller
  to cast.

Values equal the reference forward up to float rounding (tested: 1e-5 in float32, a stated
tolerance in bfloat16). Only for inference on CPU: no autograd, no other device.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

Tensor = torch.Tensor

FUSED_ACTIVATIONS: dict[str, tuple[str, list[float], str]] = {
    # activation name -> (oneDNN post-op name, scalars, algorithm)
    "silu": ("swish", [], ""),
    "relu": ("relu", [], ""),
    "tanh": ("tanh", [], ""),
    "gelu": ("gelu", [], "none"),  # exact (erf) GELU, as torch.nn.GELU()
    "leakyrelu": ("leaky_relu", [0.01], ""),  # torch.nn.LeakyReLU()'s default slope
}
"""Activations oneDNN applies in the matmul epilogue; others run as a separate pass."""


@functools.cache
def fused_available(dtype: torch.dtype) -> bool:
    """Whether this torch build and CPU can run the fused path in ``dtype``.

    float32 needs oneDNN (``torch.backends.mkldnn``); bfloat16 also needs a CPU with bfloat16
    instructions (AVX512-BF16 or AMX), where oneDNN runs bfloat16 matmuls natively.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    if not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return False
    if dtype == torch.float32:
        return True
    if dtype == torch.bfloat16:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


@dataclass(frozen=True)
class PackedLayers:
    """An ensemble's layers laid out for the fused path, in one dtype.

    Attributes:
        key: what the layout was made from (dtype, member selection, each parameter's storage
            and version): a different key means the layout is stale.
        weights: ``weights[layer][m]`` of shape ``(fan_out, fan_in)``, contiguous.
        biases: ``biases[layer][m]`` of shape ``(fan_out,)``.
    """

    key: tuple
    weights: tuple[tuple[Tensor, ...], ...]
    biases: tuple[tuple[Tensor, ...], ...]


def packing_key(
    weights: list[Tensor], biases: list[Tensor], members: Tensor | None, dtype: torch.dtype
) -> tuple:
    """Key of a layout: changes when a parameter is replaced or updated in place."""
    sel = None if members is None else tuple(members.tolist())
    params = tuple((p.data_ptr(), p._version) for p in (*weights, *biases))
    return (dtype, sel, params)


@torch.no_grad()
def pack_layers(
    weights: list[Tensor], biases: list[Tensor], members: Tensor | None, dtype: torch.dtype
) -> PackedLayers:
    """Cast and transpose every member's layers once: weights ``(E, fan_in, fan_out)`` and
    biases ``(E, 1, fan_out)`` (all members; ``members`` selects, in order, those to keep)."""
    key = packing_key(weights, biases, members, dtype)
    if members is not None:
        weights = [w[members] for w in weights]
        biases = [b[members] for b in biases]
    with torch.inference_mode(False):  # usable both inside and outside inference mode
        ws = tuple(
            tuple(w[m].t().to(dtype).contiguous() for m in range(w.shape[0])) for w in weights
        )
        bs = tuple(tuple(b[m, 0].to(dtype).contiguous() for m in range(b.shape[0])) for b in biases)
    return PackedLayers(key, ws, bs)


@torch.no_grad()
def fused_forward(
    packed: PackedLayers,
    x: Tensor,
    activation: str,
    act_module: torch.nn.Module,
    block_rows: int | None,
) -> Tensor:
    """Raw ensemble outputs ``(M, N, 2 * out_dim)`` in the layout's dtype.

    Args:
        packed: the layers (:func:`pack_layers`), ``M`` members.
        x: ``(M, N, in_dim)`` inputs (any floating dtype; cast once to the layout's dtype).
        activation: the ensemble's activation name (fused if in :data:`FUSED_ACTIVATIONS`).
        act_module: the activation as a module (used when it cannot be fused).
        block_rows: each member's rows go through all layers in blocks of at most this many
            (``None``: all rows at once).
    """
    dtype = packed.key[0]
    m, n, _ = x.shape
    x = x.to(dtype)
    post, scalars, algorithm = FUSED_ACTIVATIONS.get(activation, ("none", [], ""))
    linear = torch.ops.mkldnn._linear_pointwise
    last = len(packed.weights) - 1
    out_dim = packed.weights[last][0].shape[0]
    out = torch.empty(m, n, out_dim, dtype=dtype)
    step = n if not block_rows else min(n, int(block_rows))
    for j in range(m):
        for start in range(0, n, step):
            h = x[j, start : start + step]
            for i in range(last):
                h = linear(h, packed.weights[i][j], packed.biases[i][j], post, scalars, algorithm)
                if post == "none":
                    h = act_module(h)
            w, b = packed.weights[last][j], packed.biases[last][j]
            out[j, start : start + step] = linear(h, w, b, "none", [], "")
    return out
