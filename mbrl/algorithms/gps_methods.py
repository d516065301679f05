"""One iteration of each method: new training pairs, the policy step, the bookkeeping.

Every method makes ``N · T`` new pairs per iteration (``N`` conditions, horizon ``T``) and then
fits the policy (:func:`~mbrl.algorithms.gps_policy.fit_policy`):

* ``gps`` — the augmented-Lagrangian trajectory step from the same ``N`` conditions (warm
  started from the teacher's rollouts at iteration 0), the policy step on its pairs (with
  ``λ``, ``ρ``, optional noisy copies, optional pairs from the local controllers' own noisy
  rollouts from fresh starts, and optional on-policy pairs: the policy's own states labelled
  by the trajectories' local controllers, or past their region by the teacher), the dual step,
  ``ρ`` grows;
* ``bc`` / ``bc_noise`` — iLQR-MPC teacher rollouts from ``N`` new conditions, aggregated
  (``bc_noise`` adds ``x + ε → u + Kε`` copies with the teacher's gains);
* ``dagger`` — iteration 0 as ``bc``; then the learner acts from ``N`` new conditions and the
  teacher labels every visited state (:func:`~mbrl.algorithms.gps_problem.label_states`,
  warm-started from the learner's own next actions); aggregated;
* ``plato`` — iteration 0 as ``bc``; then the teacher acts with the extra cost
  ``w ‖u − π_θ(x)‖²`` (it stays near the learner), and the unconstrained teacher labels the
  visited states; aggregated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mbrl.algorithms.gps_policy import FitSettings, PolicyData, fit_policy, noise_scales
from mbrl.algorithms.gps_problem import (
    DTYPE,
    ControlProblem,
    Rollouts,
    TeacherSettings,
    label_states,
    mpc_rollouts,
    policy_rollouts,
    shifted_windows,
)
from mbrl.algorithms.gps_trajectory import (
    dual_step,
    policy_violation,
    task_gains,
    trajectory_step,
)

Tensor = torch.Tensor

__all__ = ["Context", "LoopState", "Outcome", "run_iteration"]


@dataclass
class Context:
    """What the iterations use and do not checkpoint (rebuilt from the config)."""

    cfg: Any
    problem: ControlProblem
    teacher: TeacherSettings
    policy: torch.nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    conditions: Callable[[int], Tensor]  # iteration k -> (N, n) start states
    learned: Any = None  # dynamics=model: the run's gps_model.LearnedDynamics


@dataclass
class LoopState:
    """What the iterations carry (checkpointed): the aggregated pairs (baselines; gps's sample
    pairs with ``aggregate_samples``), and gps's trajectories' controls ``u (N, T, m)``,
    multipliers ``λ`` and penalty ``ρ``."""

    data: PolicyData | None = None
    u: Tensor | None = None
    lam: Tensor | None = None
    rho: float = 0.0
    labels: int = 0

    def state(self) -> dict[str, Any]:
        data = None if self.data is None else self.data.state()
        return {"data": data, "u": self.u, "lam": self.lam, "rho": self.rho, "labels": self.labels}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> LoopState:
        data = None if s["data"] is None else PolicyData(**s["data"])
        return cls(data, s["u"], s["lam"], float(s["rho"]), int(s["labels"]))


@dataclass(frozen=True)
class Outcome:
    """One iteration: RMS ``‖π(x) − u‖`` on its new pairs before and after the policy step,
    the fit loss, and the mean task cost of its trajectories; for gps also the RMS of the
    multipliers ``λ`` (after the dual step) and, for one draw of the noisy copies' ``ε``, the
    RMS of ``Kε`` and the fraction of targets ``u + Kε`` outside the control box, and the
    on-policy pairs added (``policy_samples``, as a fraction of ``N · T``) and the local
    controllers' pairs kept (``controller_samples``, as a fraction of ``S · N · T``); NaN where
    not applicable."""

    violation_before: float
    violation: float
    fit_loss: float
    traj_cost: float
    lam_rms: float = float("nan")
    noise_du_rms: float = float("nan")
    noise_clipped: float = float("nan")
    policy_samples: float = float("nan")
    controller_samples: float = float("nan")


def _rms(v: Tensor) -> float:
    return float(v.square().sum(-1).mean().sqrt())


def _fit(ctx: Context, data: PolicyData, noisy: bool) -> float:
    c = ctx.cfg
    std = c.noise_std if noisy else 0.0
    fit = FitSettings(c.epochs, c.batch_size, std, c.noise_copies, c.noise_du_frac)
    p = ctx.problem
    return fit_policy(ctx.policy, ctx.optimizer, data, fit, ctx.generator, p.u_min, p.u_max)


def _pairs(x: Tensor, u: Tensor, K: Tensor | None) -> PolicyData:
    """Imitation pairs of rollouts ``x (B, T+1, n)``, ``u (B, T, m)``, ``K (B, T, m, n)``."""
    B, T, m = u.shape
    n = x.shape[-1]
    return PolicyData.imitation(
        x[:, :T].reshape(B * T, n), u.reshape(B * T, m), None if K is None else K.reshape(-1, m, n)
    )


def _noise_stats(
    p: ControlProblem, u: Tensor, K: Tensor, std: float, du_frac: float | None, k: int
) -> tuple[float, float]:
    """RMS of ``Kε`` and the fraction of ``u + Kε`` outside the box, for one draw of the
    noisy copies' ``ε`` (:func:`~mbrl.algorithms.gps_policy.noise_scales`) from a generator of
    its own (seeded by ``k``: the run's stream is untouched). ``u (P, m)``, ``K (P, m, n)``."""
    if std <= 0:
        return float("nan"), float("nan")
    g = torch.Generator().manual_seed(k)
    half = float((p.u_max - p.u_min).mean()) / 2.0
    sigma = noise_scales(K, std, du_frac, half).unsqueeze(-1)
    eps = sigma * torch.randn(K.shape[0], K.shape[2], generator=g, dtype=DTYPE)
    du = (K @ eps.unsqueeze(-1)).squeeze(-1)
    outside = ((u + du > p.u_max) | (u + du < p.u_min)).to(DTYPE).mean()
    return _rms(du), float(outside)


def _gps(ctx: Context, loop: LoopState, k: int) -> Outcome:
    cfg, p = ctx.cfg, ctx.problem
    x0 = ctx.conditions(0)
    if loop.u is None:  # iteration 0: the teacher's rollouts seed the trajectories
        loop.u = mpc_rollouts(p, ctx.teacher, x0).u
        loop.lam = torch.zeros_like(loop.u)
        loop.rho = cfg.rho_init
        loop.labels += loop.u.shape[0] * loop.u.shape[1]
    tr = trajectory_step(
        p, ctx.policy, x0, loop.u, loop.lam, loop.rho, max_iter=cfg.traj_iters, hessian=cfg.hessian
    )
    B, T, m = tr.u.shape
    before = _rms(policy_violation(ctx.policy, tr.x, tr.u))
    rho = torch.full((B * T,), loop.rho, dtype=DTYPE)
    n = tr.x.shape[-1]
    K = task_gains(p, tr.x, tr.u) if cfg.noise_gains == "task" else tr.K
    data = PolicyData(
        tr.x[:, :T].reshape(B * T, n), tr.u.reshape(B * T, m), loop.lam.reshape(B * T, m), rho,
        K.reshape(B * T, m, n),
    )  # fmt: skip
    samples, kept, ctrl_kept = _sample_pairs(ctx, loop, k, x0, tr.x, tr.u, K)
    if samples is not None:
        if cfg.aggregate_samples:  # every iteration's sample pairs so far, as DAgger's
            loop.data = samples if loop.data is None else loop.data.concat(samples)
            samples = loop.data
        data = data.concat(samples)
    loss = _fit(ctx, data, noisy=True)
    viol = policy_violation(ctx.policy, tr.x, tr.u)
    loop.lam = dual_step(loop.lam, viol, loop.rho, cfg.dual_rate)
    loop.u = tr.u
    loop.rho = min(loop.rho * cfg.rho_growth, cfg.rho_max)
    std = cfg.noise_std if cfg.noise_copies > 0 else 0.0
    du, clipped = _noise_stats(p, data.u, data.K, std, cfg.noise_du_frac, k)
    lam_rms = _rms(loop.lam)
    cost = float(tr.cost.mean())
    return Outcome(before, _rms(viol), loss, cost, lam_rms, du, clipped, kept, ctrl_kept)


def _sample_pairs(
    ctx: Context, loop: LoopState, k: int, x0: Tensor, x: Tensor, u: Tensor, K: Tensor
) -> tuple[PolicyData | None, float, float]:
    """gps's pairs off the trajectories at iteration ``k`` (``controller_samples``,
    ``policy_samples`` and the teacher's labels past the local region), or ``None``; and the
    fractions kept of the on-policy and of the local controllers' steps (NaN when off)."""
    cfg, p = ctx.cfg, ctx.problem
    B, T, _ = u.shape
    parts, kept, ctrl_kept = [], float("nan"), float("nan")
    if cfg.controller_samples > 0:
        local = _controller_sample_pairs(ctx, k, x, u, K, loop.rho)
        ctrl_kept = len(local) / (cfg.controller_samples * B * T)
        parts.append(local)
    if cfg.policy_samples:
        on_policy, rest = _policy_sample_pairs(p, ctx.policy, x0, x, u, K, loop.rho)
        kept = len(on_policy) / (B * T)
        parts.append(on_policy)
        if cfg.sample_labels == "teacher" and rest.shape[0] > 0:
            parts.append(_teacher_pairs(ctx, rest, loop.rho))
            loop.labels += rest.shape[0]
    if not parts:
        return None, kept, ctrl_kept
    out = parts[0]
    for more in parts[1:]:
        out = out.concat(more)
    return out, kept, ctrl_kept


def _teacher_pairs(ctx: Context, X: Tensor, rho: float) -> PolicyData:
    """The teacher's labels at states ``X (M, n)`` (one batched horizon-``H`` solve each,
    warm-started with the policy's own actions held), weight ``ρ``, ``λ = 0``, with its gains."""
    t, p = ctx.teacher, ctx.problem
    with torch.no_grad():
        warm = p.clip(ctx.policy(X).to(DTYPE)).unsqueeze(1).expand(-1, t.horizon, -1)
    labels, K = label_states(p, t, X, warm.contiguous())
    labels, K = labels.detach(), K.detach()
    lam = torch.zeros_like(labels)
    return PolicyData(X, labels, lam, torch.full((X.shape[0],), float(rho), dtype=DTYPE), K)


def _local_pairs(
    p: ControlProblem, xs: Tensor, x: Tensor, u: Tensor, K: Tensor, rho: float
) -> tuple[PolicyData, Tensor]:
    """States ``xs (B, T+1, n)`` of rollouts near the trajectories ``x (B, T+1, n)``, ``u (B,
    T, m)``, labelled with their local controllers ``clip(u_t + K_t (xs_t − x_t))`` (``K (B,
    T, m, n)``), weight ``ρ``, ``λ = 0``. A rollout's pairs stop at its first step where
    ``‖K_t (xs_t − x_t)‖`` exceeds the box's mean half-width: farther out the local linear
    model is no label; those states are returned as well, ``(M, n)``."""
    B, T, m = u.shape
    n = x.shape[-1]
    du = (K @ (xs[:, :T] - x[:, :T]).unsqueeze(-1)).squeeze(-1)  # (B, T, m)
    near = du.norm(dim=-1) <= _half_width(p)
    keep = near.to(torch.int64).cumprod(1).bool().reshape(B * T)
    target = p.clip(u + du).reshape(B * T, m)[keep]
    states = xs[:, :T].reshape(B * T, n)
    rho_t = torch.full((int(keep.sum()),), float(rho), dtype=DTYPE)
    gains = K.reshape(B * T, m, n)[keep]
    return PolicyData(states[keep], target, torch.zeros_like(target), rho_t, gains), states[~keep]


def _half_width(p: ControlProblem) -> float:
    return float((p.u_max - p.u_min).mean()) / 2.0


def _policy_sample_pairs(
    p: ControlProblem, policy, x0: Tensor, x: Tensor, u: Tensor, K: Tensor, rho: float
) -> tuple[PolicyData, Tensor]:
    """The states the policy visits from the conditions ``x0 (B, n)``, labelled by the
    trajectories' local controllers (:func:`_local_pairs`)."""
    return _local_pairs(p, policy_rollouts(p, policy, x0).x, x, u, K, rho)


@torch.no_grad()
def controller_rollouts(
    p: ControlProblem, x0: Tensor, x: Tensor, u: Tensor, K: Tensor, std: float, g: torch.Generator
) -> Tensor:
    """``(B, T+1, n)`` states of the local controllers ``clip(u_t + K_t (x'_t − x_t) + η_t)``
    run from ``x0 (B, n)``, ``η_t ~ N(0, std² I)`` (control units), around the trajectories
    ``x (B, T+1, n)``, ``u (B, T, m)`` with gains ``K (B, T, m, n)``."""
    B, T, m = u.shape
    X = x0.to(DTYPE)
    xs = [X]
    for t in range(T):
        eta = std * torch.randn(B, m, generator=g, dtype=DTYPE)
        U = p.clip(u[:, t] + (K[:, t] @ (X - x[:, t]).unsqueeze(-1)).squeeze(-1) + eta)
        X = p.dynamics(X, U)
        xs.append(X)
    return torch.stack(xs, 1)


def _controller_sample_pairs(
    ctx: Context, k: int, x: Tensor, u: Tensor, K: Tensor, rho: float
) -> PolicyData:
    """``controller_samples``: ``S · N`` fresh start states (the conditions the baselines would
    draw at iterations ``1 + kS … kS + S``: never the held-out starts), each run with the local
    controller of the trajectory whose start is nearest, with action noise ``controller_noise``
    × the box's half-width, and labelled by it without the noise (:func:`_local_pairs`)."""
    cfg, p = ctx.cfg, ctx.problem
    S = cfg.controller_samples
    starts = torch.cat([ctx.conditions(1 + k * S + s) for s in range(S)]).to(DTYPE)
    j = torch.cdist(starts, x[:, 0]).argmin(1)
    std = cfg.controller_noise * _half_width(p)
    xs = controller_rollouts(p, starts, x[j], u[j], K[j], std, ctx.generator)
    return _local_pairs(p, xs, x[j], u[j], K[j], rho)[0]


def _new_pairs(ctx: Context, k: int) -> tuple[PolicyData, Rollouts]:
    """The method's ``N · T`` new labelled pairs at iteration ``k`` and the rollouts they are
    on (teacher's for bc/bc_noise and iteration 0; learner's for dagger; PLATO's teacher's)."""
    p, t, method = ctx.problem, ctx.teacher, ctx.cfg.method
    x0 = ctx.conditions(k)
    if method in ("bc", "bc_noise") or k == 0:
        ro = mpc_rollouts(p, t, x0)
        return _pairs(ro.x, ro.u, ro.K), ro
    if method == "dagger":
        ro = policy_rollouts(p, ctx.policy, x0)
    else:  # plato: the teacher acts, kept near the learner

        def near_learner(x: Tensor, u: Tensor) -> Tensor:
            return ctx.cfg.plato_weight * (u - ctx.policy(x)).square().sum(-1)

        ro = mpc_rollouts(p, t, x0, extra_cost=near_learner)
    B, T, m = ro.u.shape
    n = ro.x.shape[-1]
    warm = shifted_windows(ro.u, t.horizon).reshape(B * T, t.horizon, m)
    labels, K = label_states(p, t, ro.x[:, :T].reshape(B * T, n), warm)
    pairs = PolicyData.imitation(ro.x[:, :T].reshape(B * T, n), labels.detach(), K.detach())
    return pairs, ro


def _imitation(ctx: Context, loop: LoopState, k: int) -> Outcome:
    new, ro = _new_pairs(ctx, k)
    loop.labels += len(new)
    loop.data = new if loop.data is None else loop.data.concat(new)
    with torch.no_grad():
        before = _rms(ctx.policy(new.x) - new.u)
    loss = _fit(ctx, loop.data, noisy=ctx.cfg.method == "bc_noise")
    with torch.no_grad():
        after = _rms(ctx.policy(new.x) - new.u)
    return Outcome(before, after, loss, float(ro.cost.mean()))


def run_iteration(ctx: Context, loop: LoopState, k: int) -> Outcome:
    """Iteration ``k`` of ``ctx.cfg.method``; updates ``loop`` and the policy."""
    if ctx.cfg.method == "gps":
        return _gps(ctx, loop, k)
    return _imitation(ctx, loop, k)
