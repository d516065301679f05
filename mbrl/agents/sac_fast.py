"""Hand-written gradients of SAC's losses for ReLU networks: the fast path of ``SAC.update``.

Same losses, same random draws and (up to float rounding) the same gradients as the autograd
reference path (``SAC.update(..., reference=True)``; the tests compare the two), but without
the autograd graph: every large intermediate lives in a :class:`Workspace` buffer reused across
updates, ReLU masks are applied in place in one pass (``threshold_backward``), gradients are
written straight into the parameters' ``.grad`` buffers, the online critics run forward once
on the critic-loss rows and the actor-loss rows together (one ``baddbmm`` per layer), and only
the gradients that are used are computed: the actor's loss never forms critic weight
gradients, and each of its rows is backpropagated through the critic attaining the minimum
only (the others get zero gradient from ``min``).

Shapes: ``N`` rows, ``K`` critics, ``O``/``A`` observation/action sizes. Conventions of the
networks: :class:`~mbrl.agents.networks.GaussianPolicy` is ``nn.Sequential`` of ``Linear``
(weight ``(out, in)``) and ReLU; :class:`~mbrl.agents.networks.BatchedCritics` has weights
``(K, in, out)`` and biases ``(K, 1, out)``.
"""

from __future__ import annotations

import torch
from torch import nn

from mbrl.agents.networks import HALF_LOG_2PI, BatchedCritics, GaussianPolicy, squash_log_det

Tensor = torch.Tensor

__all__ = [
    "Workspace",
    "critic_forward",
    "policy_forward",
    "sac_gradients",
    "supports",
]


def supports(policy: GaussianPolicy, critics: BatchedCritics) -> bool:
    """True when both networks use ReLU (the activation whose backward is written here)."""
    return policy.activation_name == "relu" and critics.activation_name == "relu"


class Workspace:
    """Named scratch tensors reused from one update to the next.

    Writing a large result into freshly allocated memory can cost more than the arithmetic
    on it (see docs/sac.md), so every large intermediate goes into a buffer kept here. A
    buffer is reallocated only when its shape, dtype or device changes. Not thread-safe: one
    workspace per agent.
    """

    def __init__(self) -> None:
        self._bufs: dict[str, Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """The buffer ``name`` with ``shape`` and ``like``'s dtype and device (contents
        undefined)."""
        buf = self._bufs.get(name)
        if (
            buf is None
            or buf.shape != shape
            or buf.dtype != like.dtype
            or buf.device != like.device
        ):
            buf = torch.empty(shape, dtype=like.dtype, device=like.device)
            self._bufs[name] = buf
        return buf


def _grad_buffer(p: nn.Parameter) -> Tensor:
    if p.grad is None or p.grad.shape != p.shape:
        p.grad = torch.empty_like(p)
    return p.grad


def _relu_back_(grad: Tensor, out: Tensor) -> Tensor:
    """``grad *= (out > 0)`` in one pass, in place (``out`` is a ReLU output)."""
    return torch.ops.aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)


# ---------------------------------------------------------------------- critics
def critic_forward(
    critics: BatchedCritics, x: Tensor, ws: Workspace, tag: str
) -> tuple[Tensor, list[Tensor]]:
    """``q (K, N, 1)`` and the inputs of every layer (``[x expanded, h1, h2, ...]``).

    The hidden activations live in ``ws`` under ``tag``: they stay valid until the next call
    with the same tag.
    """
    k = critics.num_critics
    h = x.unsqueeze(0).expand(k, -1, -1)
    inputs = [h]
    last = len(critics.weights) - 1
    for i, (w, b) in enumerate(zip(critics.weights, critics.biases, strict=True)):
        out = ws.get(f"{tag}{i}", (k, x.shape[0], w.shape[2]), x)
        h = torch.baddbmm(b, h, w, out=out)
        if i < last:
            h = torch.relu_(h)
            inputs.append(h)
    return h, inputs


def _critic_backward(
    critics: BatchedCritics, inputs: list[Tensor], g: Tensor, n: int, ws: Workspace
) -> None:
    """Weight and bias gradients of the critic loss, ``dL/dq = g (K, N, 1)`` on the first
    ``N`` rows of ``inputs`` (the critic-loss rows), written into ``.grad``."""
    for i in range(len(critics.weights) - 1, -1, -1):
        w, b, h = critics.weights[i], critics.biases[i], inputs[i][:, :n]
        torch.bmm(h.transpose(1, 2), g, out=_grad_buffer(w))
        torch.sum(g, dim=1, keepdim=True, out=_grad_buffer(b))
        if i > 0:
            g = _relu_back_(_backprop(g, w, ws.get(f"cg{i}", h.shape, h)), h)


def _actor_input_grad(
    critics: BatchedCritics,
    inputs: list[Tensor],
    idx: Tensor,
    n: int,
    first_col: int,
    scale: float,
) -> Tensor:
    """``d/dx[first_col:]`` of ``scale * sum_i min_k Q_k(x_i)`` on the ``N`` actor-loss rows
    (rows ``N:`` of ``inputs``), ``(N, in - first_col)``.

    The gradient of the minimum reaches only the critic that attains it (``idx (N,)``, as
    autograd's ``min`` backward does), so each row is backpropagated through that critic
    alone: the rows of critic ``k`` are gathered and go through ``k``'s weights, one ``mm``
    per layer, instead of every critic on every row with zero gradients on the others. (On
    CUDA the row selection, ``nonzero``, synchronises once per critic.)
    """
    ws_, last = critics.weights, len(critics.weights) - 1
    first = inputs[0]
    g_x = first.new_empty((n, first.shape[2] - first_col))
    for k in range(critics.num_critics):
        rows = (idx == k).nonzero().squeeze(1)
        if rows.numel() == 0:
            continue
        c = ws_[last][k, :, 0] * scale  # dQ/d(input of the output layer), the same every row
        if last == 0:
            g_x[rows] = c[first_col:]
            continue
        g = torch.sign(inputs[last][k, n:].index_select(0, rows)).mul_(c)  # ReLU output >= 0
        for i in range(last - 1, 0, -1):
            g = _relu_back_(torch.mm(g, ws_[i][k].t()), inputs[i][k, n:].index_select(0, rows))
        g_x.index_copy_(0, rows, torch.mm(g, ws_[0][k, first_col:].t()))
    return g_x


def _backprop(g: Tensor, w: Tensor, out: Tensor) -> Tensor:
    """``g @ w^T`` into ``out`` for ``g (K, N, m)``, ``w (K, n, m)``; for ``m == 1`` (the
    critics' scalar output) an outer product by broadcasting, much faster than a ``bmm``."""
    if g.shape[-1] == 1:
        return torch.mul(g, w.transpose(1, 2), out=out)
    return torch.bmm(g, w.transpose(1, 2), out=out)


# ---------------------------------------------------------------------- policy
def _linears(policy: GaussianPolicy) -> list[nn.Linear]:
    return [m for m in policy.net if isinstance(m, nn.Linear)]


def policy_forward(
    layers: list[nn.Linear], obs: Tensor, ws: Workspace, tag: str
) -> tuple[Tensor, list[Tensor]]:
    """Raw policy output ``(N, 2A)`` and every layer's input; activations in ``ws[tag...]``."""
    h, inputs = obs, [obs]
    for i, lin in enumerate(layers):
        out = ws.get(f"{tag}{i}", (obs.shape[0], lin.weight.shape[0]), obs)
        h = torch.addmm(lin.bias, h, lin.weight.t(), out=out)
        if i < len(layers) - 1:
            h = torch.relu_(h)
            inputs.append(h)
    return h, inputs


def _policy_backward(
    layers: list[nn.Linear], inputs: list[Tensor], g: Tensor, ws: Workspace
) -> None:
    for i in range(len(layers) - 1, -1, -1):
        lin, h = layers[i], inputs[i]
        torch.mm(g.t(), h, out=_grad_buffer(lin.weight))
        torch.sum(g, dim=0, out=_grad_buffer(lin.bias))
        if i > 0:
            buf = ws.get(f"pg{i}", h.shape, h)
            g = _relu_back_(torch.mm(g, lin.weight, out=buf), h)


def _squashed_draw(policy: GaussianPolicy, out: Tensor, eps: Tensor) -> tuple[Tensor, ...]:
    """``(y, log_prob, std, raw_log_std)`` from the raw output ``(N, 2A)`` and the noise
    ``eps (N, A)``: the draw of :meth:`GaussianPolicy.sample_squashed` with that noise."""
    mean, raw_log_std = out.chunk(2, dim=-1)
    log_std = raw_log_std.clamp(policy.log_std_min, policy.log_std_max)
    std = log_std.exp()
    u = torch.addcmul(mean, std, eps)
    logp = -(0.5 * eps.square() + log_std + HALF_LOG_2PI).sum(-1) - squash_log_det(u)
    return torch.tanh(u), logp, std, raw_log_std


# ---------------------------------------------------------------------- all losses
@torch.no_grad()
def sac_gradients(
    policy: GaussianPolicy,
    critics: BatchedCritics,
    critics_target: BatchedCritics,
    log_alpha: Tensor,
    batch: tuple[Tensor, Tensor, Tensor, Tensor, Tensor],
    eps: Tensor,
    gamma: float,
    target_entropy: float,
    ws: Workspace,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Critic, actor and temperature losses and their gradients (written into ``.grad``).

    Args:
        policy: the policy network (ReLU).
        critics: the twin critics (ReLU).
        critics_target: the target critics (ReLU).
        log_alpha: ``()`` log temperature (its ``.grad`` is written if it requires grad).
        batch: ``obs (N, O)``, ``act (N, A)`` normalised to ``[-1, 1]``, ``next_obs (N, O)``,
            ``reward (N,)``, ``not_done (N,)`` (1.0 where the TD target bootstraps).
        eps: ``(2N, A)`` standard normal noise: rows ``:N`` for the draws at ``next_obs``,
            rows ``N:`` for the reparameterised draws at ``obs``.
        gamma: discount; target_entropy: the temperature's entropy target.
        ws: scratch buffers.

    Returns:
        ``(critic_loss, actor_loss, alpha_loss, log_prob (N,), q (K, N))`` (detached).
    """
    obs, act, next_obs, reward, not_done = batch
    n = obs.shape[0]
    alpha = log_alpha.detach().exp()
    # the policy once on 2N rows: next_obs (for the TD target), then obs
    layers = _linears(policy)
    obs2 = ws.get("obs2", (2 * n, obs.shape[1]), obs)
    obs2[:n], obs2[n:] = next_obs, obs
    out, p_inputs = policy_forward(layers, obs2, ws, "p")
    y_all, logp_all, std, raw_log_std = _squashed_draw(policy, out, eps)
    q_t, _ = critic_forward(critics_target, torch.cat([next_obs, y_all[:n]], -1), ws, "t")
    soft_v = q_t.squeeze(-1).min(0).values - alpha * logp_all[:n]
    target = torch.addcmul(reward, not_done, soft_v, value=gamma)
    y, logp = y_all[n:], logp_all[n:]
    # the critics once on 2N rows: (obs, act) for the critic loss, (obs, y) for the actor loss
    o = obs.shape[1]
    x = ws.get("x", (2 * n, o + act.shape[1]), obs)
    x[:n, :o], x[n:, :o], x[:n, o:], x[n:, o:] = obs, obs, act, y
    q_all, c_inputs = critic_forward(critics, x, ws, "c")
    q, q_pi = q_all[:, :n, 0], q_all[:, n:, 0]
    # critic loss: 0.5 * mean squared error per critic, summed over critics; actor loss: the
    # gradient of min_k Q_k reaches the critic that attains the minimum
    diff = q - target
    critic_loss = 0.5 * diff.square().mean(1).sum()
    q_min, idx = q_pi.min(0)
    actor_loss = (alpha * logp - q_min).mean()
    _critic_backward(critics, c_inputs, diff.unsqueeze(-1) / n, n, ws)
    g_y = _actor_input_grad(critics, c_inputs, idx, n, o, -1.0 / n)
    q = q.clone()  # a view of a reused buffer
    # through y = tanh(u) and log pi: d log pi / du = 2 tanh(u); d log pi / d log_std = -1
    a_n = alpha / n
    g_u = torch.addcmul(g_y * (1.0 - y.square()), y, a_n * 2.0)
    g_log_std = torch.addcmul(-a_n, g_u, std[n:] * eps[n:])
    raw = raw_log_std[n:]
    in_range = (raw >= policy.log_std_min) & (raw <= policy.log_std_max)
    g_out = torch.cat([g_u, g_log_std * in_range], -1)
    _policy_backward(layers, [h[n:] for h in p_inputs], g_out, ws)
    # temperature
    alpha_loss = -(log_alpha.detach() * (logp + target_entropy)).mean()
    if log_alpha.requires_grad:
        log_alpha.grad = -(logp + target_entropy).mean().reshape(log_alpha.shape)
    return critic_loss, actor_loss, alpha_loss, logp, q
