"""Soft actor-critic with automatic entropy tuning (Haarnoja et al., 2018, "SAC: algorithms and
applications").

Losses for a batch ``(s, a, r, s', d)`` (actions normalised to ``[-1, 1]``, ``alpha =
exp(log_alpha)``, ``(a~, log pi)`` a reparameterised draw from the policy at ``s``)::

    y           = r + gamma (1 - d) (min_k Qtarget_k(s', a') - alpha log pi(a' | s')),  a' ~ pi(s')
    critic_loss = sum_k 0.5 mean (Q_k(s, a) - y)^2
    actor_loss  = mean (alpha log pi(a~ | s) - min_k Q_k(s, a~))
    alpha_loss  = -mean log_alpha (log pi(a~ | s) + target_entropy)

All three losses are computed from the same parameters (as in the authors' implementation) and
minimised with ONE Adam step: each loss reaches only its own parameters (the actor loss sees
the critics' weights as constants, the alpha loss a detached log-probability, the target no
gradient at all). The gradients come from the hand-written ReLU fast path
(:mod:`mbrl.agents.sac_fast`, the default for ReLU networks) or from one autograd ``backward``
(``update(batch, reference=True)``, and for other activations); the two agree up to float
rounding. Then the target critics move by Polyak averaging, ``target <- target + tau (online -
target)``, in place over all tensors at once. ``d`` is ``terminated`` only: a time-limit
truncation still bootstraps. All the policy noise of an update is one ``(2N, act_dim)`` draw
from :attr:`SAC.update_generator`: rows ``:N`` for ``a'`` at ``s'``, rows ``N:`` for ``a~``.

Entropy is measured on the normalised action ``y = tanh(u)`` in ``(-1, 1)`` (the convention of
the paper and of common implementations), so ``target_entropy = -act_dim`` means the same on
every task whatever its action bounds; actions handed to and from the environment are in the
task's ``[low, high]``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mbrl.agents import sac_fast
from mbrl.agents.networks import BatchedCritics, GaussianPolicy, action_bounds
from mbrl.data.replay_buffer import Batch
from mbrl.models.ensemble import activation_name
from mbrl.util.io import atomic_torch_save, torch_load

Tensor = torch.Tensor

__all__ = ["SAC", "SACConfig", "fused_adam_step"]

_FORMAT_VERSION = 1
_METRICS = ("critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy", "q_mean")


@dataclass(frozen=True)
class SACConfig:
    """Hyper-parameters of :class:`SAC`; the agent reads every default from here.

    Attributes:
        hidden: width of the hidden layers of the actor and the critics.
        num_layers: hidden layers of the actor and the critics.
        activation: activation name (see :data:`mbrl.models.ensemble.ACTIVATIONS`).
        num_critics: number of Q critics (the target uses their minimum).
        actor_lr: Adam learning rate of the actor.
        critic_lr: Adam learning rate of the critics.
        alpha_lr: Adam learning rate of ``log_alpha``.
        batch_size: transitions per update (for callers that sample batches).
        gamma: discount factor in ``[0, 1]``.
        tau: Polyak coefficient in ``(0, 1]`` (``1``: hard copy every update).
        init_alpha: initial entropy temperature (``> 0``).
        learn_alpha: learn the temperature; if False it stays at ``init_alpha``.
        target_entropy: entropy target in nats of the normalised action; ``None``: ``-act_dim``.
        log_std_min: lower clamp of the policy's log-std.
        log_std_max: upper clamp of the policy's log-std.
        seed: seeds the initial weights and the agent's sampling generators.
    """

    hidden: int = 256
    num_layers: int = 2
    activation: str = "relu"
    num_critics: int = 2
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005
    init_alpha: float = 1.0
    learn_alpha: bool = True
    target_entropy: float | None = None
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden", "num_critics", "batch_size"):
            _check_int(getattr(self, name), name, 1)
        _check_int(self.num_layers, "num_layers", 0)
        _check_int(self.seed, "seed", 0)
        activation_name(self.activation)
        for name in ("actor_lr", "critic_lr", "alpha_lr", "init_alpha"):
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
        if not _is_real(self.gamma) or not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma: expected a number in [0, 1], got {self.gamma!r}")
        if not _is_real(self.tau) or not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau: expected a number in (0, 1], got {self.tau!r}")
        if self.target_entropy is not None and (
            not _is_real(self.target_entropy) or not math.isfinite(self.target_entropy)
        ):
            raise ValueError(
                f"target_entropy: expected a finite number or None, got {self.target_entropy!r}"
            )
        if not isinstance(self.learn_alpha, bool):
            raise ValueError(f"learn_alpha: expected a bool, got {self.learn_alpha!r}")


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool)


def _check_int(value: Any, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")


def _make_adam(parts: list[tuple[list[Tensor], float]]) -> torch.optim.Adam:
    """One Adam over ``(params, lr)`` parts: parts with equal learning rates share a parameter
    group (one fused kernel call per group); fused kernels where this torch build has them,
    else foreach."""
    by_lr: dict[float, list[Tensor]] = {}
    for params, lr in parts:
        by_lr.setdefault(lr, []).extend(params)
    groups = [{"params": params, "lr": lr} for lr, params in by_lr.items()]
    try:
        return torch.optim.Adam(groups, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(groups, foreach=True)


def fused_adam_step(optimizer: torch.optim.Adam) -> None:
    """``optimizer.step()`` for a fused Adam, with less Python per call.

    The same kernel calls as :meth:`torch.optim.Adam.step` with ``fused=True`` (per parameter
    group: ``_foreach_add_`` of 1 to the step counts, then ``torch._fused_adam_``), on the
    optimizer's own state, so the result is identical and ``optimizer.state_dict()`` keeps its
    format; the per-call bookkeeping of the generic step (grouping tensors by device and
    dtype, option dispatch) is skipped. Falls back to ``optimizer.step()`` on the first step
    (no state yet), for options this shortcut does not cover (not fused, AMSGrad, maximize,
    decoupled weight decay, a tensor learning rate) and for a parameter without gradient.
    """
    if not optimizer.defaults.get("fused") or not hasattr(torch, "_fused_adam_"):
        optimizer.step()
        return
    calls = []
    for group in optimizer.param_groups:
        params = group["params"]
        states = [optimizer.state.get(p) for p in params]
        options = ("amsgrad", "maximize", "decoupled_weight_decay", "capturable")
        if (
            any(group.get(name, False) for name in options)
            or any(isinstance(v, Tensor) for v in (group["lr"], *group["betas"]))
            or any(not st for st in states)
            or any(p.grad is None for p in params)
        ):
            optimizer.step()
            return
        calls.append((group, params, states))
    with torch.no_grad():
        for group, params, states in calls:
            steps = [st["step"] for st in states]
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            torch._fused_adam_(
                params,
                [p.grad for p in params],
                [st["exp_avg"] for st in states],
                [st["exp_avg_sq"] for st in states],
                [],
                steps,
                amsgrad=False,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
            )


class SAC:
    """Soft actor-critic agent (see module docs for the losses).

    Args:
        obs_dim: observation size.
        act_dim: action size.
        action_low: ``(act_dim,)`` lower action bounds (default ``-1``).
        action_high: ``(act_dim,)`` upper action bounds (default ``1``).
        config: hyper-parameters (:class:`SACConfig`).
        device: where the networks live.

    Attributes:
        policy: the :class:`GaussianPolicy` (actor).
        critics: the online :class:`BatchedCritics`.
        critics_target: their Polyak-averaged copy (no gradients).
        log_alpha: ``()`` log of the entropy temperature.
        num_updates: number of :meth:`update` calls so far.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        *,
        action_low: Any = None,
        action_high: Any = None,
        config: SACConfig | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        cfg = SACConfig() if config is None else config
        if not isinstance(cfg, SACConfig):
            raise TypeError(f"config: expected a SACConfig, got {type(cfg).__name__}")
        self.config = cfg
        self.device = torch.device(device)
        init_gen = torch.Generator().manual_seed(cfg.seed)
        self.action_low, self.action_high = (
            t.numpy() for t in action_bounds(int(act_dim), action_low, action_high, "act_dim")
        )
        net = {"hidden": cfg.hidden, "num_layers": cfg.num_layers, "activation": cfg.activation}
        self.policy = GaussianPolicy(
            obs_dim,
            act_dim,
            action_low=self.action_low,
            action_high=self.action_high,
            log_std_min=cfg.log_std_min,
            log_std_max=cfg.log_std_max,
            generator=init_gen,
            **net,
        ).to(self.device)
        self.critics = BatchedCritics(
            obs_dim, act_dim, num_critics=cfg.num_critics, generator=init_gen, **net
        ).to(self.device)
        self.critics_target = BatchedCritics(
            obs_dim, act_dim, num_critics=cfg.num_critics, **net
        ).to(self.device)
        self.critics_target.load_state_dict(self.critics.state_dict())
        self.critics_target.requires_grad_(False)
        self.obs_dim, self.act_dim = self.policy.obs_dim, self.policy.act_dim
        self.target_entropy = (
            -float(self.act_dim) if cfg.target_entropy is None else float(cfg.target_entropy)
        )
        self.log_alpha = torch.tensor(
            math.log(cfg.init_alpha), device=self.device, requires_grad=cfg.learn_alpha
        )
        parts = [
            (list(self.policy.parameters()), cfg.actor_lr),
            (list(self.critics.parameters()), cfg.critic_lr),
        ]
        if cfg.learn_alpha:
            parts.append(([self.log_alpha], cfg.alpha_lr))
        self.optimizer = _make_adam(parts)
        self._online = list(self.critics.parameters())
        self._target = list(self.critics_target.parameters())
        # sampling noise: one generator for act(), one for update(); seeds derived from cfg.seed
        gen_device = self.device if self.device.type != "cpu" else "cpu"
        self.act_generator = torch.Generator(gen_device).manual_seed(cfg.seed + 1)
        self.update_generator = torch.Generator(gen_device).manual_seed(cfg.seed + 2)
        self.num_updates = 0
        self._fast_path = sac_fast.supports(self.policy, self.critics)
        self._workspace = sac_fast.Workspace()

    @classmethod
    def for_task(cls, task: Any, config: SACConfig | None = None, **kwargs: Any) -> SAC:
        """An agent sized for ``task`` (an :class:`envs.Task`), using its action bounds."""
        if getattr(task, "is_discrete", False):
            raise ValueError(
                f"task: SAC needs a continuous action space, {task.name!r} is discrete"
            )
        return cls(
            task.obs_dim,
            task.act_dim,
            action_low=task.action_low,
            action_high=task.action_high,
            config=config,
            **kwargs,
        )

    @property
    def alpha(self) -> float:
        """Current entropy temperature ``exp(log_alpha)``."""
        return float(self.log_alpha.detach().exp())

    # ------------------------------------------------------------------ acting
    def act(
        self,
        obs: Any,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> np.ndarray:
        """Action(s) for ``obs (obs_dim,)`` or ``(N, obs_dim)`` (numpy), in ``[low, high]``.

        Returns a float32 array ``(act_dim,)`` or ``(N, act_dim)``. Stochastic draws use
        ``generator`` (default: :attr:`act_generator`, seeded from ``config.seed``).
        """
        x = np.asarray(obs, dtype=np.float32)
        single = x.ndim == 1
        if x.ndim not in (1, 2) or x.shape[-1] != self.obs_dim:
            raise ValueError(
                f"obs: expected shape ({self.obs_dim},) or (N, {self.obs_dim}), got {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError("obs: contains NaN or inf")
        t = torch.as_tensor(x, device=self.device).reshape(-1, self.obs_dim)
        with torch.no_grad():
            a, _ = self.policy(t, deterministic, generator or self.act_generator)
        out = a.cpu().numpy().astype(np.float32, copy=False)
        return out[0] if single else out

    def sample_actions(self, obs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Stochastic actions ``(N, act_dim)`` in ``[low, high]`` for ``obs (N, obs_dim)``
        (a tensor; no gradients), e.g. for model rollouts."""
        with torch.no_grad():
            return self.policy(obs, False, generator or self.act_generator)[0]

    # ------------------------------------------------------------------ learning
    def _batch_tensors(self, batch: Any) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        if not isinstance(batch, Batch):
            if isinstance(batch, tuple | list) and len(batch) in (5, 6):
                batch = Batch(*batch, *(() if len(batch) == 6 else (None,)))
            else:
                raise TypeError(
                    "batch: expected a mbrl.data.Batch or a tuple (obs, act, next_obs, reward, "
                    f"terminated[, truncated]), got {type(batch).__name__}"
                )
        dev = self.device

        def conv(x: Any, dtype: torch.dtype) -> Tensor:
            return torch.as_tensor(x).to(device=dev, dtype=dtype)

        obs = conv(batch.obs, torch.float32)
        act = conv(batch.act, torch.float32)
        next_obs = conv(batch.next_obs, torch.float32)
        reward = conv(batch.reward, torch.float32)
        not_done = conv(batch.terminated, torch.bool).logical_not().to(torch.float32)
        n = reward.shape[0] if reward.ndim == 1 else -1
        for name, x, shape in (
            ("obs", obs, (n, self.obs_dim)),
            ("act", act, (n, self.act_dim)),
            ("next_obs", next_obs, (n, self.obs_dim)),
            ("reward", reward, (n,)),
            ("terminated", not_done, (n,)),
        ):
            if n < 1 or tuple(x.shape) != shape:
                raise ValueError(f"batch.{name}: expected shape {shape}, got {tuple(x.shape)}")
        return obs, self.policy.unscale(act), next_obs, reward, not_done

    def update(self, batch: Any, *, reference: bool = False) -> dict[str, float]:
        """One gradient step of actor, critics and temperature, then the Polyak target update.

        Args:
            batch: a :class:`mbrl.data.Batch` (numpy arrays or tensors) or a tuple
                ``(obs, act, next_obs, reward, terminated[, truncated])``; actions in
                ``[low, high]``, ``B`` rows.
            reference: compute the gradients with autograd (the reference path) instead of
                the hand-written ReLU fast path (:mod:`mbrl.agents.sac_fast`; used by default
                when both networks use ReLU). Both give the same step up to float rounding.

        Returns:
            ``critic_loss``, ``actor_loss``, ``alpha_loss``, ``alpha`` (before the step),
            ``entropy`` (``-mean log pi`` of the normalised action) and ``q_mean``.

        Raises ``FloatingPointError`` (before any parameter changes) if a loss is not finite,
        e.g. because the batch holds NaN or inf.
        """
        obs, act, next_obs, reward, not_done = self._batch_tensors(batch)
        cfg, n = self.config, obs.shape[0]
        alpha = self.log_alpha.detach().exp()
        # all policy noise of this update: rows :n at next_obs (TD target), rows n: at obs
        eps = torch.randn(
            (2 * n, self.act_dim), generator=self.update_generator, device=self.device
        )
        if reference or not self._fast_path:
            with torch.no_grad():
                next_y, next_logp = self.policy.sample_squashed(next_obs, eps=eps[:n])
                q_next = self.critics_target(next_obs, next_y).min(0).values
                soft_v = q_next - alpha * next_logp
                target = torch.addcmul(reward, not_done, soft_v, value=cfg.gamma)
            losses = self._autograd_gradients(obs, act, target, eps[n:])
        else:
            tensors = (obs, act, next_obs, reward, not_done)
            losses = sac_fast.sac_gradients(
                self.policy,
                self.critics,
                self.critics_target,
                self.log_alpha,
                tensors,
                eps,
                cfg.gamma,
                self.target_entropy,
                self._workspace,
            )
        critic_loss, actor_loss, alpha_loss, logp, q = losses
        values = torch.stack(
            [critic_loss, actor_loss, alpha_loss, alpha, -logp.mean(), q.mean()]
        ).tolist()
        metrics = dict(zip(_METRICS, values, strict=True))
        if not all(math.isfinite(v) for v in values):
            raise FloatingPointError(f"update: non-finite loss {metrics}; check the batch")
        self._optimizer_step()
        self._polyak()
        self.num_updates += 1
        return metrics

    def _autograd_gradients(
        self, obs: Tensor, act: Tensor, target: Tensor, eps: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Reference path: the three losses and one ``backward`` (gradients into ``.grad``).

        Returns ``(critic_loss, actor_loss, alpha_loss, log_prob (N,), q (K, N))``, detached.
        """
        alpha = self.log_alpha.detach().exp()
        q = self.critics(obs, act)
        critic_loss = 0.5 * (q - target).square().mean(1).sum()
        y, logp = self.policy.sample_squashed(obs, eps=eps)
        q_pi = self.critics(obs, y, detach_weights=True).min(0).values
        actor_loss = (alpha * logp - q_pi).mean()
        logp_d = logp.detach()
        alpha_loss = -(self.log_alpha * (logp_d + self.target_entropy)).mean()
        loss = critic_loss + actor_loss + (alpha_loss if self.config.learn_alpha else 0.0)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        detached = (critic_loss, actor_loss, alpha_loss, logp_d, q)
        return tuple(t.detach() for t in detached)  # type: ignore[return-value]

    def _optimizer_step(self) -> None:
        """One Adam step on the gradients in ``.grad`` (:func:`fused_adam_step`)."""
        fused_adam_step(self.optimizer)

    @torch.no_grad()
    def _polyak(self) -> None:
        """``target <- target + tau (online - target)`` for every critic tensor, in place."""
        tau = self.config.tau
        if hasattr(torch, "_foreach_lerp_"):
            torch._foreach_lerp_(self._target, self._online, tau)
        else:  # pragma: no cover - older torch
            torch._foreach_mul_(self._target, 1.0 - tau)
            torch._foreach_add_(self._target, self._online, alpha=tau)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: networks, targets, optimiser, ``log_alpha``,
        generator states, update count, config and sizes (plain data and CPU tensors)."""

        def cpu(sd: dict[str, Tensor]) -> dict[str, Tensor]:
            return {k: v.detach().cpu() for k, v in sd.items()}

        return {
            "format_version": _FORMAT_VERSION,
            "config": dataclasses.asdict(self.config),
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "action_low": torch.from_numpy(self.action_low.copy()),
            "action_high": torch.from_numpy(self.action_high.copy()),
            "policy": cpu(self.policy.state_dict()),
            "critics": cpu(self.critics.state_dict()),
            "critics_target": cpu(self.critics_target.state_dict()),
            "log_alpha": self.log_alpha.detach().cpu().clone(),
            "optimizer": self.optimizer.state_dict(),
            "act_generator": self.act_generator.get_state(),
            "update_generator": self.update_generator.get_state(),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from an agent of the same sizes and config."""
        if not isinstance(state, dict) or state.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"state: expected a SAC state_dict with format_version {_FORMAT_VERSION}, "
                f"got {state.get('format_version') if isinstance(state, dict) else type(state)}"
            )
        if (state["obs_dim"], state["act_dim"]) != (self.obs_dim, self.act_dim):
            raise ValueError(
                f"state: saved for obs_dim={state['obs_dim']}, act_dim={state['act_dim']}; "
                f"this agent has obs_dim={self.obs_dim}, act_dim={self.act_dim}"
            )
        saved_cfg = SACConfig(**state["config"])
        if saved_cfg != self.config:
            raise ValueError(f"state: saved with config {saved_cfg}, this agent has {self.config}")
        self.policy.load_state_dict(state["policy"])
        self.critics.load_state_dict(state["critics"])
        self.critics_target.load_state_dict(state["critics_target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.act_generator.set_state(state["act_generator"])
        self.update_generator.set_state(state["update_generator"])
        self.num_updates = int(state["num_updates"])

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` to ``path`` atomically (temporary file, then rename)."""
        atomic_torch_save(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> SAC:
        """Rebuild an agent written by :meth:`save` (``torch.load`` with ``weights_only=True``)."""
        state = torch_load(path, map_location="cpu")
        if not isinstance(state, dict) or "config" not in state or "policy" not in state:
            raise ValueError(f"path: {os.fspath(path)!r} is not a SAC checkpoint")
        agent = cls(
            int(state["obs_dim"]),
            int(state["act_dim"]),
            action_low=state["action_low"].numpy(),
            action_high=state["action_high"].numpy(),
            config=SACConfig(**state["config"]),
            device=device,
        )
        agent.load_state_dict(state)
        return agent
