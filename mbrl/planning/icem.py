"""Improved CEM (iCEM; Pinneri et al., 2020).

Differences from :class:`~mbrl.planning.cem.CEMPlanner`:

* samples use *colored* noise along time, power spectral density ``∝ 1 / f ** noise_beta``
  (``noise_beta = 0`` is white noise; larger values give smoother, more correlated sequences),
  generated with ``torch.fft.irfft`` and scaled to unit variance;
* the population shrinks each iteration: ``N_i = max(N * decay ** -i, 2 * num_elites)``;
* a fraction of the previous iteration's elites is re-scored with the new samples;
* in the last iteration the current mean itself is a candidate;
* the best sequence ever sampled is returned (and executed by MPC).

Planners are stateless, so the paper's carrying of shifted elites to the next *time step* is
left to the caller's warm start (``init_actions``: the shifted previous plan becomes the mean).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from mbrl.planning.base import BestTracker, PlanResult, SamplingPlanner, randn
from mbrl.planning.cem import check_bool, check_cem_settings, mean_result
from mbrl.planning.config import SamplingPlannerConfig
from mbrl.planning.objective import SequenceObjective
from mbrl.util.config import default_of

Tensor = torch.Tensor


def colored_noise(
    shape: tuple[int, ...],
    beta: float,
    generator: torch.Generator | None,
    like: Tensor,
) -> Tensor:
    """Unit-variance Gaussian noise with power spectrum ``∝ f ** -beta`` along dim 1.

    Args:
        shape: ``(P, H, A)``; the noise is colored along ``H`` (independent over ``P`` and ``A``).
        beta: spectral exponent (>= 0).
        generator: randomness.
        like: tensor giving device and dtype.

    Returns:
        ``(P, H, A)`` tensor; each entry has zero mean and unit variance.
    """
    p, h, a = shape
    if beta == 0 or h == 1:
        return randn(shape, generator, like)
    nf = h // 2 + 1
    freqs = torch.fft.rfftfreq(h, dtype=like.dtype, device=like.device)
    freqs[0] = 1.0 / h  # the DC component gets the lowest non-zero frequency's amplitude
    amp = freqs ** (-beta / 2.0)  # (nf,)
    re = randn((p, a, nf), generator, like)
    im = randn((p, a, nf), generator, like)
    im[..., 0] = 0.0  # DC and (even h) Nyquist bins are real for a real signal
    re[..., 0] *= math.sqrt(2.0)
    if h % 2 == 0:
        im[..., -1] = 0.0
        re[..., -1] *= math.sqrt(2.0)
    signal = torch.fft.irfft(torch.complex(re, im) * amp, n=h, dim=-1)  # (P, A, H)
    # Exact per-entry variance of the irfft output: each interior bin contributes 4 amp^2 / h^2,
    # the real DC / Nyquist bins (variance 2 before scaling) contribute 2 amp^2 / h^2.
    weight = torch.full((nf,), 4.0, dtype=like.dtype, device=like.device)
    weight[0] = 2.0
    if h % 2 == 0:
        weight[-1] = 2.0
    std = torch.sqrt((weight * amp**2).sum()) / h
    return (signal / std).transpose(1, 2)


class ICEMPlanner(SamplingPlanner):
    """iCEM over open-loop action sequences.

    Args:
        objective: scores ``(P, H, act_dim)`` sequences.
        horizon: planning horizon ``H`` (see :class:`~mbrl.planning.base.Planner`).
        action_low: ``(act_dim,)`` lower action bounds.
        action_high: ``(act_dim,)`` upper action bounds.
        population: samples in the first iteration.
        num_elites: elites per iteration.
        iterations: iterations per :meth:`plan` call.
        alpha: smoothing, weight of the previous mean/std.
        init_std: initial std as a fraction of the action range.
        noise_beta: colored-noise exponent (>= 0).
        keep_elites_fraction: fraction of elites re-scored in the next iteration, in ``[0, 1]``.
        population_decay: per-iteration population shrink factor (>= 1).
        return_mean_elites: return the final refitted mean instead of the best sample seen.
    """

    def __init__(
        self,
        objective: SequenceObjective,
        horizon: int,
        action_low: Tensor | np.ndarray | float,
        action_high: Tensor | np.ndarray | float,
        *,
        population: int = 500,
        num_elites: int = 50,
        iterations: int = 5,
        alpha: float = 0.1,
        init_std: float = 0.5,
        noise_beta: float = 2.0,
        keep_elites_fraction: float = 0.3,
        population_decay: float = 1.25,
        return_mean_elites: bool = False,
    ) -> None:
        super().__init__(objective, horizon, action_low, action_high)
        check_cem_settings(population, num_elites, iterations, alpha, init_std)
        if not noise_beta >= 0:
            raise ValueError(f"noise_beta: expected >= 0, got {noise_beta}")
        if not 0 <= keep_elites_fraction <= 1:
            raise ValueError(
                f"keep_elites_fraction: expected in [0, 1], got {keep_elites_fraction}"
            )
        if not population_decay >= 1:
            raise ValueError(f"population_decay: expected >= 1, got {population_decay}")
        self.population = population
        self.num_elites = num_elites
        self.iterations = iterations
        self.alpha = float(alpha)
        self.init_std = float(init_std)
        self.noise_beta = float(noise_beta)
        self.keep_elites_fraction = float(keep_elites_fraction)
        self.population_decay = float(population_decay)
        self.return_mean_elites = check_bool("return_mean_elites", return_mean_elites)

    def population_at(self, i: int) -> int:
        """Number of fresh samples in iteration ``i`` (0-based)."""
        n = int(self.population * self.population_decay ** (-i))
        return min(self.population, max(n, 2 * self.num_elites))

    def plan(
        self,
        obs: Tensor,
        init_actions: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PlanResult:
        """Run iCEM from ``obs (obs_dim,)``; see :meth:`Planner.plan`."""
        t0 = time.perf_counter()
        obs, low, high = self.prepare(obs)
        mean = self.initial_mean(obs, init_actions)
        std = (self.init_std * (high - low)).expand_as(mean).clone()
        best = BestTracker()
        kept: Tensor | None = None
        n_keep = int(self.keep_elites_fraction * self.num_elites)
        steps = 0
        for i in range(self.iterations):
            shape = (self.population_at(i), self.horizon, self.act_dim)
            noise = colored_noise(shape, self.noise_beta, generator, mean)
            parts = [torch.clamp(mean + std * noise, low, high)]
            if kept is not None:
                parts.append(kept)
            if i == self.iterations - 1:
                parts.append(mean.unsqueeze(0))
            samples = torch.cat(parts, 0)
            scores, used = self.evaluate(obs, samples, generator)
            steps += used
            best.update(samples, scores)
            n_finite = int(torch.isfinite(scores).sum())
            if n_finite == 0:
                continue
            order = torch.topk(scores, min(self.num_elites, n_finite)).indices
            elites = samples[order]
            kept = elites[:n_keep] if n_keep > 0 else None
            mean = self.alpha * mean + (1 - self.alpha) * elites.mean(0)
            std = self.alpha * std + (1 - self.alpha) * elites.std(0, unbiased=False)
        info = self.plan_info(t0, self.iterations, steps, final_std=float(std.mean()))
        if self.return_mean_elites:
            return mean_result(self, obs, mean, best, generator, info)
        return best.result(info)


@dataclass
class ICEMConfig(SamplingPlannerConfig):
    """:class:`ICEMPlanner` settings (defaults from its signature); shared ones in
    :class:`~mbrl.planning.config.SamplingPlannerConfig`.

    Attributes:
        population: sequences sampled in the first iteration.
        num_elites: elites refitted per iteration.
        iterations: optimisation iterations per plan.
        alpha: smoothing, weight of the previous mean/std.
        init_std: initial sampling std as a fraction of the action range.
        noise_beta: colored-noise exponent (0 white, 2 Brownian-like, larger smoother).
        keep_elites_fraction: fraction of elites carried into the next iteration.
        population_decay: the population shrinks by this factor per iteration (>= 1).
        return_mean_elites: return the final refitted elite mean instead of the best sample.
    """

    name: str = "icem"
    planner_class = ICEMPlanner
    population: int = default_of(ICEMPlanner, "population")
    num_elites: int = default_of(ICEMPlanner, "num_elites")
    iterations: int = default_of(ICEMPlanner, "iterations")
    alpha: float = default_of(ICEMPlanner, "alpha")
    init_std: float = default_of(ICEMPlanner, "init_std")
    noise_beta: float = default_of(ICEMPlanner, "noise_beta")
    keep_elites_fraction: float = default_of(ICEMPlanner, "keep_elites_fraction")
    population_decay: float = default_of(ICEMPlanner, "population_decay")
    return_mean_elites: bool = default_of(ICEMPlanner, "return_mean_elites")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_cem_settings(
            self.population, self.num_elites, self.iterations, self.alpha, self.init_std
        )
