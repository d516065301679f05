"""What a guided-policy-search run is configured by (:class:`GPSConfig`) and what it returns
(:class:`GPSResult`); the algorithm is :mod:`mbrl.algorithms.gps`."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mbrl.models import ModelConfig
from mbrl.util.config import load_config, require_ints, task_preset
from mbrl.util.lifecycle import RunSettings

__all__ = [
    "DYNAMICS",
    "EVAL_SEED_BASE",
    "VALIDATION_SEED_BASE",
    "METHODS",
    "DataSettings",
    "GPSConfig",
    "GPSResult",
    "load_gps_config",
]

METHODS = ("gps", "bc", "bc_noise", "dagger", "plato")
DYNAMICS = ("task", "model")
EVAL_SEED_BASE = 10_000_000
"""Held-out start states are ``env.reset(seed=EVAL_SEED_BASE + i)``; training conditions use
seeds ``1000 · seed + k`` (``k < 1000``), so the two never meet."""

VALIDATION_SEED_BASE = 20_000_000
"""Validation start states (``validation_starts``) are ``env.reset(seed=VALIDATION_SEED_BASE +
1000 · seed + i)``: never a training condition nor a held-out start."""


@dataclass
class DataSettings:
    """What a ``dynamics=model`` run collects in the true environment
    (:mod:`mbrl.algorithms.gps_model`).

    Attributes:
        initial_random_episodes: episodes of uniform random actions before the first training
            (``horizon`` steps each, from starts drawn like the training conditions').
        iterations_per_round: GPS iterations between two collections: before every later
            round the policy acts alone from the ``N`` training conditions in the true
            environment, its transitions join the buffer and the ensemble is retrained
            (warm-started).
        action_noise: Gaussian noise on the policy's actions while it collects, as a fraction
            of the control box's half-width (``0``: none).
        rewarm: after each retraining every trajectory restarts from the cheapest, under the
            new model, of its previous controls and the policy's rollout (``policy``), or of
            those and the iLQR-MPC teacher's rollout through the new model (``teacher``;
            ``N · T`` teacher labels per round) (:func:`~mbrl.algorithms.gps_model.rewarm`).
        retrain: each later round's training starts from the previous round's weights
            (``warm``) or from new weights drawn from the run's generator with a new optimizer
            (``fresh``; :func:`~mbrl.algorithms.gps_model.reinitialise`). The first training
            always starts from the initial weights.
    """

    initial_random_episodes: int = 2
    iterations_per_round: int = 2
    action_noise: float = 0.0
    rewarm: Literal["policy", "teacher"] = "policy"
    retrain: Literal["warm", "fresh"] = "warm"

    def __post_init__(self) -> None:
        require_ints(self, dict(initial_random_episodes=1, iterations_per_round=1))
        if self.rewarm not in ("policy", "teacher"):
            raise ValueError(f"rewarm: expected policy or teacher, got {self.rewarm!r}")
        if self.retrain not in ("warm", "fresh"):
            raise ValueError(f"retrain: expected warm or fresh, got {self.retrain!r}")
        v = self.action_noise
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ValueError(f"action_noise: expected a finite number >= 0, got {v!r}")


@dataclass
class GPSConfig(RunSettings):
    """One run of guided policy search or of an imitation baseline (the run's own settings are
    those of :class:`mbrl.util.lifecycle.RunSettings`; ``buffer_capacity`` is unused).

    Attributes:
        method: ``gps`` (augmented Lagrangian), ``bc`` (behaviour cloning of teacher
            rollouts), ``bc_noise`` (with ``x + ε → u + Kε`` copies), ``dagger``, ``plato``.
        num_conditions: start states per iteration ``N`` (gps: the same ``N`` throughout; the
            baselines: ``N`` new ones per iteration, ``N · T`` teacher labels each).
        iterations: iterations (policy steps) of the run.
        horizon: trajectory and episode length ``T`` (``None``: the task's episode length).
        eval_episodes: held-out start states the policy and the teacher are evaluated on.
        teacher_horizon: the iLQR-MPC teacher's planning horizon ``H``.
        teacher_iters: its iLQR iterations per step (warm-started).
        teacher_first_iters: iterations of its first, cold solve, and of each labelling solve.
        traj_iters: iLQR iterations of each GPS trajectory step.
        hessian: ``gauss_newton`` or ``exact`` derivatives of the policy term (gps).
        rho_init, rho_growth, rho_max: the penalty schedule ``ρ_k = min(ρ_max, ρ_0 g^k)``.
        dual_rate: ``α`` of the dual step ``λ ← λ + α ρ (π(x) − u)``.
        tol: stop when the RMS of ``π(x_t) − u_t`` over the trajectories is below this (gps).
        hidden, num_layers, activation: the policy MLP. lr: Adam's step size.
        epochs, batch_size: SGD of each policy step.
        noise_std, noise_copies: noisy ``x + ε → u + Kε`` copies (gps and bc_noise only).
        noise_du_frac: ``None`` (a fixed ``noise_std``), or ``c``: each pair's noise is
            ``min(noise_std, c h / ‖K‖_F)`` (``h``: the control box's mean half-width), so the
            RMS target change ``‖Kε‖`` stays within ``c h`` (see
            :class:`~mbrl.algorithms.gps_policy.FitSettings`).
        policy_samples: gps: also fit the states the policy itself visits from the
            conditions, labelled with the trajectories' local controllers ``u_t + K_t (x^π_t −
            x_t)`` (``K``: as ``noise_gains``), up to the first step where the correction
            exceeds the box's half-width.
        sample_labels: with ``policy_samples``: ``local`` (only those pairs) or ``teacher``:
            the policy's states past that step are labelled by the iLQR-MPC teacher (as
            DAgger's, counted as teacher labels).
        controller_samples: gps: ``S``, rollouts per condition per iteration of the
            trajectories' local controllers ``u_t + K_t (x − x_t)`` (``K``: as ``noise_gains``)
            from fresh start states (each follows the trajectory whose start is nearest), with
            action noise, labelled by the controllers without it, up to the first step where
            the correction exceeds the box's half-width (the noisy copies' idea with the
            perturbations the closed loop itself makes). ``0``: off.
        controller_noise: their action noise's standard deviation, as a fraction of the
            control box's mean half-width.
        aggregate_samples: gps: fit each policy step on every iteration's pairs off the
            trajectories so far (``controller_samples``, ``policy_samples`` and their teacher
            labels), as DAgger aggregates, instead of the current iteration's only.
        validation_starts: ``V`` start states of their own (neither conditions nor held-out
            starts, :data:`VALIDATION_SEED_BASE`); after every iteration the policy alone is
            rolled out from them through the dynamics the run plans with, and the run
            keeps the iterate with the highest mean return there: the result's final returns,
            ``load_policy`` and the timing are that iterate's (the held-out returns of every
            iteration are logged as before). ``0``: the last iterate.
        noise_gains: gps's ``K``: ``task`` (the task cost's iLQR gains around the trajectories,
            without the policy term) or ``lagrangian`` (the trajectory step's own gains, which
            tend to the policy's Jacobian as ``ρ`` grows).
        plato_weight: PLATO's ``λ`` of ``λ ‖u − π(x)‖²`` in the acting teacher's cost.
        sim_threads: threads of the MuJoCo simulator's batched steps (MuJoCo tasks only).
        timing_steps: steps of the single-state timing of teacher and policy at the end.
        checkpoint_every: checkpoint every ``N`` iterations (and after the last).
        dynamics: what the teacher and the trajectory step plan through: ``task`` (the task's
            own, true dynamics) or ``model`` (the mean of an ensemble trained on data the run
            collects in the true environment, :mod:`mbrl.algorithms.gps_model`; method gps
            and analytic tasks only). The evaluation is always in the true system.
        data: what a ``dynamics=model`` run collects (:class:`DataSettings`); the replay
            buffer holds ``buffer_capacity`` transitions.
        model: the ensemble and its training (:class:`mbrl.models.ModelConfig`;
            ``dynamics=model`` only).
    """

    task: str = "pendulum-swingup"
    method: Literal["gps", "bc", "bc_noise", "dagger", "plato"] = "gps"
    num_conditions: int = 8
    iterations: int = 10
    horizon: int | None = None
    eval_episodes: int = 20
    teacher_horizon: int = 30
    teacher_iters: int = 3
    teacher_first_iters: int = 30
    traj_iters: int = 30
    hessian: Literal["gauss_newton", "exact"] = "gauss_newton"
    rho_init: float = 0.01
    rho_growth: float = 2.0
    rho_max: float = 10.0
    dual_rate: float = 1.0
    tol: float = 0.01
    hidden: int = 64
    num_layers: int = 2
    activation: str = "tanh"
    lr: float = 1e-3
    epochs: int = 30
    batch_size: int = 256
    noise_std: float = 0.1
    noise_copies: int = 2
    noise_du_frac: float | None = None
    policy_samples: bool = False
    sample_labels: Literal["local", "teacher"] = "local"
    controller_samples: int = 0
    controller_noise: float = 0.1
    aggregate_samples: bool = False
    validation_starts: int = 0
    noise_gains: Literal["task", "lagrangian"] = "task"
    plato_weight: float = 1.0
    sim_threads: int = 1
    timing_steps: int = 50
    checkpoint_every: int = 1
    dynamics: Literal["task", "model"] = "task"
    data: DataSettings = field(default_factory=DataSettings)
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        for section, kind in (("data", DataSettings), ("model", ModelConfig)):
            value = getattr(self, section)
            if not isinstance(value, kind):
                raise ValueError(f"{section}: expected a {kind.__name__}, got {value!r}")
            try:  # the section may have been edited after construction
                value.__post_init__()
            except ValueError as exc:
                raise ValueError(f"{section}.{exc}") from None
        low = dict(num_conditions=1, iterations=1, horizon=1, eval_episodes=1)
        low |= dict(teacher_horizon=1, teacher_iters=1, teacher_first_iters=1, traj_iters=1)
        low |= dict(hidden=1, num_layers=0, epochs=1, batch_size=1, noise_copies=0)
        low |= dict(controller_samples=0, validation_starts=0)
        low |= dict(sim_threads=1, timing_steps=1, checkpoint_every=1)
        require_ints(self, low, optional=("horizon",))
        if self.num_conditions > 1000:
            raise ValueError(f"num_conditions: expected <= 1000, got {self.num_conditions}")
        if self.validation_starts > 1000:
            raise ValueError(f"validation_starts: expected <= 1000, got {self.validation_starts}")
        if self.seed >= 10_000:
            raise ValueError(
                f"seed: expected < 10000 (training seeds are 1000·seed + k), got {self.seed}"
            )
        positive = ("rho_init", "rho_max", "dual_rate", "tol", "lr")
        nonneg = ("noise_std", "plato_weight", "controller_noise")
        for name in (*positive, *nonneg, "rho_growth"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"{name}: expected a finite number, got {v!r}")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)}")
        for name in nonneg:
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)}")
        du = self.noise_du_frac
        if du is not None and (
            isinstance(du, bool)
            or not isinstance(du, int | float)
            or not math.isfinite(du)
            or du <= 0
        ):
            raise ValueError(f"noise_du_frac: expected None or a finite number > 0, got {du!r}")
        if not isinstance(self.aggregate_samples, bool):
            raise ValueError(
                f"aggregate_samples: expected true or false, got {self.aggregate_samples!r}"
            )
        if not isinstance(self.policy_samples, bool):
            raise ValueError(f"policy_samples: expected true or false, got {self.policy_samples!r}")
        if self.sample_labels not in ("local", "teacher"):
            raise ValueError(
                f"sample_labels: expected local or teacher, got {self.sample_labels!r}"
            )
        if self.rho_growth < 1:
            raise ValueError(f"rho_growth: expected >= 1, got {self.rho_growth}")
        if self.method not in METHODS:
            raise ValueError(f"method: expected one of {METHODS}, got {self.method!r}")
        if self.dynamics not in DYNAMICS:
            hint = " (the true dynamics are 'task')" if self.dynamics in (True, "true") else ""
            raise ValueError(f"dynamics: expected one of {DYNAMICS}, got {self.dynamics!r}{hint}")
        starts = self.num_conditions * (1 + self.iterations * self.controller_samples)
        if self.controller_samples > 0 and starts > 1000:
            raise ValueError(
                "controller_samples: num_conditions x (1 + iterations x controller_samples) "
                f"fresh starts, at most 1000 in all; got {starts}"
            )
        if self.dynamics == "model" and self.method != "gps":
            raise ValueError(
                f"method: dynamics=model runs method=gps only, got method={self.method!r}"
            )


@dataclass(frozen=True)
class GPSResult:
    """What a run returns (everything is also in its run directory).

    Attributes:
        method: the method run.
        policy_returns: mean return of the policy alone on the held-out starts, per iteration.
        violations: RMS of ``π(x) − u`` on the pairs of each iteration (before its policy step
            for gps: the constraint violation; after it for the baselines: the fit error).
        teacher_labels: teacher (MPC) labels used so far, per iteration.
        teacher_return: the iLQR-MPC teacher's mean return on the same held-out starts.
        final_returns: the final policy's return on every held-out start (with
            ``validation_starts``: the selected iterate's).
        teacher_returns: the teacher's return on every held-out start.
        teacher_s_per_action, policy_s_per_action: seconds per action, one state at a time.
        wall_time: seconds the run took (over every resumed part).
        run_dir: the run directory. plot_paths: the PNGs written.
        env_steps: ``dynamics=model``: transitions collected in the true environment (0
            otherwise). data_sizes, holdout_losses: the buffer's size and the ensemble's
            holdout MSE (normalised targets) after each training round.
        selected_iteration: the iterate the final policy is (1-based; the last one unless
            ``validation_starts`` selected another).
    """

    method: str
    policy_returns: list[float]
    violations: list[float]
    teacher_labels: list[int]
    teacher_return: float
    final_returns: list[float]
    teacher_returns: list[float]
    teacher_s_per_action: float
    policy_s_per_action: float
    wall_time: float
    run_dir: Path
    plot_paths: tuple[Path, ...] = ()
    env_steps: int = 0
    data_sizes: list[int] = field(default_factory=list)
    holdout_losses: list[float] = field(default_factory=list)
    selected_iteration: int = 0

    @property
    def gap(self) -> float:
        """``(teacher − policy) / |teacher|`` of the final mean returns (0.05 = 5% worse)."""
        final = sum(self.final_returns) / len(self.final_returns)
        return (self.teacher_return - final) / abs(self.teacher_return)

    @property
    def speedup(self) -> float:
        """Teacher seconds per action over the policy's."""
        return self.teacher_s_per_action / self.policy_s_per_action

    def summary(self) -> str:
        """One line per iteration, then the comparison with the teacher."""
        lines = ["iteration  policy return  violation  teacher labels"]
        rows = zip(self.policy_returns, self.violations, self.teacher_labels, strict=True)
        for i, (r, v, n) in enumerate(rows, 1):
            lines.append(f"{i:9d}  {r:13.2f}  {v:9.4f}  {n:14d}")
        final = sum(self.final_returns) / len(self.final_returns)
        k = len(self.final_returns)
        median = statistics.median(self.final_returns)
        lines.append(
            f"{self.method} policy: mean return {final:.2f} (median {median:.2f}) on {k} "
            f"held-out starts; teacher (iLQR-MPC) {self.teacher_return:.2f}; gap "
            f"{100 * self.gap:.1f}%"
            + (
                f" (the iterate of iteration {self.selected_iteration}, selected on validation "
                "starts)"
                if 0 < self.selected_iteration != len(self.policy_returns)
                else ""
            )
        )
        lines.append(
            f"time per action: teacher {1e3 * self.teacher_s_per_action:.2f} ms, policy "
            f"{1e3 * self.policy_s_per_action:.3f} ms ({self.speedup:.0f}x faster)"
        )
        if self.data_sizes:
            mse = ", ".join(f"{v:.3g}" for v in self.holdout_losses)
            lines.append(
                f"learned model: {self.env_steps} true-environment transitions in "
                f"{len(self.data_sizes)} training rounds; holdout MSE per round: {mse}"
            )
        lines.append(f"wall time: {self.wall_time:.1f} s; run directory: {self.run_dir}")
        lines += [f"plot: {p}" for p in self.plot_paths]
        return "\n".join(lines)


def load_gps_config(
    task: str | None = None, preset: str | Path | None = None, overrides: Sequence[str] = ()
) -> GPSConfig:
    """The :class:`GPSConfig` that ``mbrl gps --task TASK [--preset P] OVERRIDES`` runs: the
    preset ``P``, else the task's ``gps_<task>`` preset if any, else the defaults; then
    ``task``, then the dotted ``overrides``."""
    if preset is None and task is not None:
        preset = task_preset("gps", task)
    extra = [f"task={task}"] if task is not None else []
    return load_config(GPSConfig, preset, [*extra, *overrides])
