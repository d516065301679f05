"""Guided policy search: iLQR trajectories distilled into a neural policy, and the imitation
baselines it is compared with (behaviour cloning, with noise, DAgger, PLATO).

GPS (the lecture notes' "train policies", dual gradient descent on the augmented Lagrangian)
solves ``min_{τ, θ} c(τ)  s.t.  u_t = π_θ(x_t)`` by alternating

1. the trajectory step: ``τ ← argmin_τ c(τ) + Σ λ_tᵀ(π_θ(x_t) − u_t) + Σ ρ_t‖π_θ(x_t) − u_t‖²``
   for ``N`` conditions in one batched iLQR call (:mod:`mbrl.algorithms.gps_trajectory`);
2. the policy step: ``θ ← argmin_θ`` of the same, by SGD, optionally with noisy copies
   ``x + ε → u + Kε`` (:mod:`mbrl.algorithms.gps_policy`);
3. the dual step ``λ ← λ + α ρ (π_θ(x) − u)``, and ``ρ`` grows;

until ``‖π_θ(x_t) − u_t‖`` is below ``tol``. The baselines (``method=``) are in
:mod:`mbrl.algorithms.gps_methods`. After every iteration the policy acts alone from the
held-out start states; the iLQR-MPC teacher is evaluated once on the same starts, and at the end
both are timed one state at a time.

With ``dynamics=model`` the teacher and the trajectory step plan through the mean of an
ensemble the run trains on data it collects itself in the true environment, in rounds
(:mod:`mbrl.algorithms.gps_model`); the evaluation is unchanged: the policy alone, and the
teacher through the TRUE dynamics, on the held-out starts.

A run writes its run directory (config, CSV metrics per iteration, checkpoints, plots of the
policy's return and of the violation); ``run_gps(cfg, resume=run_dir)`` continues a stopped run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from control import RecedingHorizonILQR
from mbrl.algorithms.gps_config import (
    EVAL_SEED_BASE,
    VALIDATION_SEED_BASE,
    GPSConfig,
    GPSResult,
    load_gps_config,
)
from mbrl.algorithms.gps_methods import Context, LoopState, Outcome, run_iteration
from mbrl.algorithms.gps_model import (
    RoundMetrics,
    build_learned,
    collect_policy_data,
    collect_random_data,
    model_problem,
    reinitialise,
    rewarm,
    train_model,
)
from mbrl.algorithms.gps_mujoco import (
    env_returns,
    mpc_controller,
    mujoco_problem,
    mujoco_start_states,
)
from mbrl.algorithms.gps_policy import DistilledPolicy
from mbrl.algorithms.gps_problem import (
    DTYPE,
    ControlProblem,
    TeacherSettings,
    mpc_rollouts,
    policy_rollouts,
    problem_from_task,
    start_states,
)
from mbrl.data import ReplayBuffer
from mbrl.util.checkpoint import Checkpointer
from mbrl.util.lifecycle import (
    Restored,
    check_device,
    check_run_root,
    get_task,
    open_run,
    setup_errors,
    write_checkpoint,
)
from mbrl.util.logger import GroupLogger
from mbrl.util.plotting import plot_curves
from mbrl.util.progress import progress
from mbrl.util.run_dir import RunDir
from mbrl.util.seeding import capture_rng_state, restore_rng_state, seed_everything

__all__ = ["GPSConfig", "GPSResult", "load_gps_config", "load_policy", "run_gps"]


@dataclass
class _Progress:
    """Counters and metrics so far (checkpointed)."""

    wall_time: float = 0.0
    policy_returns: list[float] = field(default_factory=list)
    violations: list[float] = field(default_factory=list)
    teacher_labels: list[int] = field(default_factory=list)
    teacher_returns: list[float] = field(default_factory=list)
    final_returns: list[float] = field(default_factory=list)
    converged: bool = False
    env_steps: int = 0  # dynamics=model: true-environment transitions collected
    data_sizes: list[int] = field(default_factory=list)  # per training round
    holdout_losses: list[float] = field(default_factory=list)  # per training round
    # validation_starts: the best iterate so far (its iteration, validation return, policy
    # weights and held-out returns)
    best_iteration: int = 0
    best_validation: float = -math.inf
    best_policy: dict | None = None
    best_returns: list[float] = field(default_factory=list)


def run_gps(cfg: GPSConfig, *, resume: str | Path | None = None) -> GPSResult:
    """Run ``cfg.method`` as configured in a new run directory, or continue the stopped run in
    ``resume``. Raises :class:`~mbrl.util.lifecycle.SetupError` (before any folder is made)
    when a setting, the task, the device or the run root is unusable."""
    if not isinstance(cfg, GPSConfig):
        raise TypeError(f"cfg: expected a GPSConfig, got {type(cfg).__name__}")
    ctx, evaluation = _build(cfg)
    name = cfg.run_name or f"gps-{cfg.method}-{cfg.task}"
    try:
        run, restored = open_run(cfg, "gps", name, resume)
    except BaseException:
        _close(ctx)
        raise
    try:
        prog, loop = _Progress(), LoopState()
        if restored is not None:
            prog, loop = _restore(ctx, restored)
        return _loop(cfg, ctx, run, prog, loop, evaluation)
    finally:
        _close(ctx)
        run.close()


def _close(ctx: Context) -> None:
    if ctx.learned is not None:
        ctx.learned.env.close()


def load_policy(run_dir: str | Path) -> torch.nn.Module:
    """The policy of run directory ``run_dir`` at its latest checkpoint (with
    ``validation_starts``: the iterate selected so far; a
    :class:`~mbrl.algorithms.gps_policy.DistilledPolicy`, ``x (N, n) -> u (N, m)``)."""
    from mbrl.util.checkpoint import load_state
    from mbrl.util.config import load_config

    run_dir = Path(run_dir)
    cfg = load_config(GPSConfig, run_dir / "config.yaml")
    ctx, _ = _build(cfg)
    _close(ctx)
    latest = Checkpointer(run_dir / "checkpoints", kind="gps").load_latest()
    if latest is None:
        raise FileNotFoundError(f"run_dir: {str(run_dir)!r} has no checkpoint yet")
    state = load_state(latest[0] / "state.pt")
    best = state["progress"].get("best_policy")
    ctx.policy.load_state_dict(state["policy"] if best is None else best)
    return ctx.policy.eval()


@dataclass(frozen=True)
class _Evaluation:
    """The held-out evaluation in the TRUE system: start states ``x0 (E, n)`` and the returns
    on them of a policy acting alone and of the iLQR-MPC teacher through the true dynamics
    ``problem`` (for a MuJoCo task, the environment's own returns,
    :func:`~mbrl.algorithms.gps_mujoco.env_returns`)."""

    x0: torch.Tensor
    validation_x0: torch.Tensor | None
    policy_returns: Callable[[torch.nn.Module], list[float]]
    teacher_returns: Callable[[], list[float]]
    problem: ControlProblem


def _evaluation(
    task, problem: ControlProblem, teacher: TeacherSettings, E: int, xv: torch.Tensor | None
) -> _Evaluation:
    seeds = [EVAL_SEED_BASE + i for i in range(E)]
    if task.is_analytic:
        x0 = start_states(task, seeds)
        return _Evaluation(
            x0,
            xv,
            lambda pi: (-policy_rollouts(problem, pi, x0).cost).tolist(),
            lambda: (-mpc_rollouts(problem, teacher, x0).cost).tolist(),
            problem,
        )

    def policy_returns(pi: torch.nn.Module) -> list[float]:
        with torch.no_grad():
            return env_returns(task, seeds, lambda x, rows: pi(x), problem.horizon)

    def teacher_returns() -> list[float]:
        return env_returns(task, seeds, mpc_controller(problem, teacher, E), problem.horizon)

    x0 = mujoco_start_states(task, seeds)
    return _Evaluation(x0, xv, policy_returns, teacher_returns, problem)


def _build(cfg: GPSConfig) -> tuple[Context, _Evaluation]:
    """Everything a run needs, checked before its run directory exists."""
    with setup_errors():
        cfg.__post_init__()
        if cfg.method != "gps" and cfg.num_conditions * cfg.iterations > 1000:
            raise ValueError(
                "num_conditions, iterations: the baselines draw num_conditions new starts per "
                f"iteration, at most 1000 in all; got {cfg.num_conditions} x {cfg.iterations}"
            )
        device = check_device(cfg.device)
        if device.type != "cpu":
            raise ValueError(f"device: guided policy search runs on the CPU, got {cfg.device!r}")
        task = get_task(cfg.task)
        check_run_root(cfg.run_root)
        if cfg.dynamics == "model" and not task.is_analytic:
            raise ValueError(
                f"dynamics: 'model' needs an analytic task (its observation is its state); "
                f"{task.name!r} is not one"
            )
        if task.is_analytic:
            problem, states = problem_from_task(task, cfg.horizon), start_states
            n, features = task.obs_dim, task.obs_preprocess_fn
        else:
            problem = mujoco_problem(task, cfg.horizon, nthread=cfg.sim_threads)
            states, n, features = mujoco_start_states, int(problem.dynamics.nx), None
        np_rng, gen = seed_everything(cfg.seed)
        policy = DistilledPolicy(
            n, task.act_dim, task.action_low, task.action_high,
            features=features, hidden=cfg.hidden, num_layers=cfg.num_layers,
            activation=cfg.activation, generator=gen,
        )  # fmt: skip
        learned, plan_problem = None, problem
        if cfg.dynamics == "model":
            most = cfg.data.initial_random_episodes * problem.horizon
            cfg.model.check_first_round(most, "data.initial_random_episodes")
            learned = build_learned(cfg.model, task, cfg.buffer_capacity, gen, np_rng)
            plan_problem = model_problem(task, learned.mean, problem.horizon)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    teacher = TeacherSettings(cfg.teacher_horizon, cfg.teacher_iters, cfg.teacher_first_iters)

    def conditions(k: int) -> torch.Tensor:
        return states(task, _condition_seeds(cfg, k))

    ctx = Context(cfg, plan_problem, teacher, policy, optimizer, gen, conditions, learned)
    V = cfg.validation_starts
    xv = states(task, [VALIDATION_SEED_BASE + 1000 * cfg.seed + i for i in range(V)]) if V else None
    return ctx, _evaluation(task, problem, teacher, cfg.eval_episodes, xv)


def _condition_seeds(cfg: GPSConfig, k: int) -> list[int]:
    """``env.reset`` seeds of the ``N`` training conditions of iteration ``k``."""
    N = cfg.num_conditions
    return [1000 * cfg.seed + k * N + i for i in range(N)]


def _loop(
    cfg: GPSConfig,
    ctx: Context,
    run: RunDir,
    prog: _Progress,
    loop: LoopState,
    evaluation: _Evaluation,
) -> GPSResult:
    start = time.perf_counter() - prog.wall_time
    ckpt = Checkpointer(run.checkpoint_dir, kind="gps", keep=cfg.keep_checkpoints)
    if not prog.teacher_returns:
        prog.teacher_returns = evaluation.teacher_returns()
        run.logger.log({"teacher_return": float(np.mean(prog.teacher_returns))}, 0, "teacher")
    if ctx.learned is not None:
        ctx.learned.trainer.logger = GroupLogger(run.logger, "model_epochs")
        if not prog.data_sizes:  # a fresh model-based run: random data, the first model
            _first_round(cfg, ctx, run, prog)
    done = len(prog.policy_returns)
    name = f"{cfg.method} {cfg.task}"
    with progress(None, name, total=cfg.iterations, initial=done, disable=not cfg.progress) as bar:
        for k in range(done, cfg.iterations):
            if prog.converged:
                break
            if _round_starts(cfg, ctx, prog, k):
                _next_round(cfg, ctx, run, prog, loop)
            out = run_iteration(ctx, loop, k)
            _record(cfg, ctx, run, prog, loop, out, evaluation)
            bar.update(1)
            data = ""
            if ctx.learned is not None:
                data = f", {prog.env_steps} env steps, holdout MSE {prog.holdout_losses[-1]:.4g}"
            bar.write(
                f"iteration {k + 1}/{cfg.iterations}: policy return {prog.policy_returns[-1]:.2f} "
                f"(teacher {np.mean(prog.teacher_returns):.2f}), violation {out.violation:.4f}"
                + data
            )
            prog.wall_time = time.perf_counter() - start
            if (k + 1) % cfg.checkpoint_every == 0 or k + 1 == cfg.iterations or prog.converged:
                _checkpoint(ctx, run, ckpt, prog, loop)
    return _finish(cfg, ctx, run, prog, evaluation)


def _round_starts(cfg: GPSConfig, ctx: Context, prog: _Progress, k: int) -> bool:
    """Whether iteration ``k`` of a model-based run begins a new round (collect, retrain)
    that has not happened yet."""
    if ctx.learned is None or k == 0 or k % cfg.data.iterations_per_round:
        return False
    return len(prog.data_sizes) == k // cfg.data.iterations_per_round


def _first_round(cfg: GPSConfig, ctx: Context, run: RunDir, prog: _Progress) -> None:
    """Random episodes in the true environment, then the first training of the ensemble."""
    seeds = [1000 * cfg.seed + i for i in range(cfg.data.initial_random_episodes)]
    returns, added = collect_random_data(ctx.learned, seeds, ctx.problem.horizon)
    prog.env_steps += added
    metrics = train_model(cfg.model, ctx.learned, prog.env_steps)
    _log_round(run, prog, metrics, returns, torch.zeros(0, dtype=torch.int64))


def _next_round(
    cfg: GPSConfig, ctx: Context, run: RunDir, prog: _Progress, loop: LoopState
) -> None:
    """The policy acts alone in the true environment from the training conditions; its
    transitions join the buffer; the ensemble is retrained (warm-started, or from new weights
    with ``data.retrain=fresh``); the trajectories' controls are re-warmed through the new
    model (:func:`~mbrl.algorithms.gps_model.rewarm`)."""
    seeds = _condition_seeds(cfg, 0)
    returns, added = collect_policy_data(
        ctx.learned, ctx.policy, seeds, ctx.problem.horizon, cfg.data.action_noise
    )
    prog.env_steps += added
    if cfg.data.retrain == "fresh":
        reinitialise(cfg.model, ctx.learned, ctx.generator)
    metrics = train_model(cfg.model, ctx.learned, prog.env_steps)
    source = torch.zeros(0, dtype=torch.int64)
    if loop.u is not None:
        teacher = ctx.teacher if cfg.data.rewarm == "teacher" else None
        loop.u, source = rewarm(ctx.problem, ctx.policy, ctx.conditions(0), loop.u, teacher)
        if teacher is not None:
            loop.labels += loop.u.shape[0] * loop.u.shape[1]
    _log_round(run, prog, metrics, returns, source)


def _log_round(
    run: RunDir, prog: _Progress, m: RoundMetrics, returns: list[float], source: torch.Tensor
) -> None:
    """Log a round; ``source (N,)``: where each trajectory's re-warmed controls came from
    (0 previous, 1 policy, 2 teacher; empty for the first round)."""
    prog.data_sizes.append(m.data_size)
    prog.holdout_losses.append(m.holdout_mse)
    last = prog.policy_returns[-1] if prog.policy_returns else float("nan")
    metrics = {
        "round": len(prog.data_sizes) - 1,
        "env_steps": m.env_steps,
        "data_size": m.data_size,
        "train_mse": m.train_mse,
        "holdout_mse": m.holdout_mse,
        "collect_return": float(np.mean(returns)),
        "policy_return": last,
        "violation": prog.violations[-1] if prog.violations else float("nan"),
        "rewarmed_from_policy": int((source == 1).sum()),
        "rewarmed_from_teacher": int((source == 2).sum()),
    }
    run.logger.log(metrics, step=len(prog.data_sizes) - 1, group="round")


def _record(
    cfg: GPSConfig,
    ctx: Context,
    run: RunDir,
    prog: _Progress,
    loop: LoopState,
    out: Outcome,
    evaluation: _Evaluation,
) -> None:
    """Evaluate the policy alone on the held-out starts and log the iteration."""
    returns = evaluation.policy_returns(ctx.policy)
    prog.policy_returns.append(float(np.mean(returns)))
    prog.final_returns = returns
    prog.violations.append(out.violation)
    prog.teacher_labels.append(loop.labels)
    prog.converged = cfg.method == "gps" and out.violation < cfg.tol
    metrics = {
        "iteration": len(prog.policy_returns),
        "policy_return": prog.policy_returns[-1],
        "policy_return_min": float(np.min(returns)),
        "policy_return_median": float(np.median(returns)),
        "teacher_return": float(np.mean(prog.teacher_returns)),
        "violation": out.violation,
        "violation_before": out.violation_before,
        "fit_loss": out.fit_loss,
        "traj_cost": out.traj_cost,
        "lam_rms": out.lam_rms,
        "noise_du_rms": out.noise_du_rms,
        "noise_clipped": out.noise_clipped,
        "policy_samples": out.policy_samples,
        "controller_samples": out.controller_samples,
        "teacher_labels": loop.labels,
        "rho": loop.rho,
    }
    if ctx.learned is not None:
        metrics |= {"env_steps": prog.env_steps, "data_size": prog.data_sizes[-1]}
        metrics["holdout_mse"] = prog.holdout_losses[-1]
    if evaluation.validation_x0 is not None:
        metrics["validation_return"] = _select(ctx, prog, evaluation.validation_x0, returns)
    run.logger.log(metrics, step=len(prog.policy_returns), group="iteration")


def _select(ctx: Context, prog: _Progress, xv: torch.Tensor, returns: list[float]) -> float:
    """The policy's mean return from the validation starts ``xv (V, n)`` through the dynamics
    the run plans with; keeps it as the best iterate if it is the highest so far."""
    value = float(-policy_rollouts(ctx.problem, ctx.policy, xv).cost.mean())
    if value > prog.best_validation or prog.best_policy is None:
        prog.best_iteration = len(prog.policy_returns)
        prog.best_validation = value
        prog.best_policy = {k: v.clone() for k, v in ctx.policy.state_dict().items()}
        prog.best_returns = list(returns)
    return value


def _checkpoint(
    ctx: Context, run: RunDir, ckpt: Checkpointer, prog: _Progress, loop: LoopState
) -> None:
    state = {
        "progress": dict(vars(prog)),
        "policy": ctx.policy.state_dict(),
        "optimizer": ctx.optimizer.state_dict(),
        "loop": loop.state(),
        "rng": capture_rng_state(*_generators(ctx)),
    }
    files = None
    if ctx.learned is not None:
        state["learned"] = ctx.learned.state()
        files = {"buffer.npz": ctx.learned.buffer.save, "model.pt": ctx.learned.model.save}
    write_checkpoint(run, ckpt, len(prog.policy_returns), state, files)


def _generators(ctx: Context) -> tuple[dict | None, dict]:
    np_rngs = None if ctx.learned is None else {"data": ctx.learned.np_rng}
    return np_rngs, {"run": ctx.generator}


def _restore(ctx: Context, restored: Restored) -> tuple[_Progress, LoopState]:
    s = restored.state
    ctx.policy.load_state_dict(s["policy"])
    ctx.optimizer.load_state_dict(s["optimizer"])
    restore_rng_state(s["rng"], *_generators(ctx))
    if ctx.learned is not None:
        ctx.learned.load_state(s["learned"], ReplayBuffer.load(restored.path / "buffer.npz"))
    return _Progress(**s["progress"]), LoopState.from_state(s["loop"])


@torch.no_grad()
def _time_per_action(
    cfg: GPSConfig, ctx: Context, p: ControlProblem, x0: torch.Tensor
) -> tuple[float, float]:
    """Seconds per action of the teacher (receding-horizon iLQR through the true dynamics
    ``p``, warm-started) and of the policy, one state at a time, along ``cfg.timing_steps``
    steps of each from ``x0 (n,)``
    (after one untimed first action: the teacher's cold first solve is left out). Only the
    actions are timed, not the steps of the dynamics between them (a MuJoCo step costs more
    than the policy's forward pass)."""
    t = ctx.teacher
    mpc = RecedingHorizonILQR(
        p.dynamics, p.cost, t.horizon, p.m, terminal_cost=p.terminal_cost, u_min=p.u_min,
        u_max=p.u_max, iters_per_step=t.iters, first_iters=t.first_iters, **p.solver_options(),
    )  # fmt: skip
    times = []
    for who in ("teacher", "policy"):
        x, total = x0.to(DTYPE), 0.0
        for step in range(cfg.timing_steps + 1):
            tic = time.perf_counter()
            u = mpc.act(x) if who == "teacher" else ctx.policy(x.view(1, -1))[0]
            if step:
                total += time.perf_counter() - tic
            x = p.dynamics(x.view(1, -1), p.clip(u).view(1, -1))[0]
        times.append(total / cfg.timing_steps)
    return times[0], times[1]


def _finish(
    cfg: GPSConfig, ctx: Context, run: RunDir, prog: _Progress, evaluation: _Evaluation
) -> GPSResult:
    selected = len(prog.policy_returns)
    final_returns = list(prog.final_returns)
    if prog.best_policy is not None:  # validation_starts: the selected iterate
        ctx.policy.load_state_dict(prog.best_policy)
        selected, final_returns = prog.best_iteration, list(prog.best_returns)
    t_teacher, t_policy = _time_per_action(cfg, ctx, evaluation.problem, evaluation.x0[0])
    teacher = float(np.mean(prog.teacher_returns))
    csv = run.logger.csv_path("iteration")
    plots = (
        plot_curves(
            csv, "iteration", ["policy_return"], run.plot_path("policy_return.png"),
            title=f"{cfg.method} on {cfg.task}: the policy alone, held-out starts",
            hlines={"iLQR-MPC teacher": teacher}, integer_x=True,
        ),
        plot_curves(
            csv, "iteration", ["violation"], run.plot_path("violation.png"),
            title=f"{cfg.method} on {cfg.task}: RMS of pi(x) - u", integer_x=True,
        ),
    )  # fmt: skip
    run.logger.log(
        {"teacher_s_per_action": t_teacher, "policy_s_per_action": t_policy,
         "wall_time_s": prog.wall_time, "env_steps": prog.env_steps,
         "selected_iteration": selected},
        step=len(prog.policy_returns), group="summary",
    )  # fmt: skip
    return GPSResult(
        method=cfg.method,
        policy_returns=list(prog.policy_returns),
        violations=list(prog.violations),
        teacher_labels=list(prog.teacher_labels),
        teacher_return=teacher,
        final_returns=final_returns,
        teacher_returns=list(prog.teacher_returns),
        teacher_s_per_action=t_teacher,
        policy_s_per_action=t_policy,
        wall_time=prog.wall_time,
        run_dir=Path(run.path),
        plot_paths=plots,
        env_steps=prog.env_steps,
        data_sizes=list(prog.data_sizes),
        holdout_losses=list(prog.holdout_losses),
        selected_iteration=selected,
    )
