"""Guided policy search: the augmented-Lagrangian trajectory step, the dual and policy steps,
noisy training data, DAgger's aggregation, and short distillations against references (LQR,
plain iLQR, the teacher's own closed-loop actions, a random policy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from control import dlqr, ilqr
from envs import get_task
from mbrl.algorithms.gps_config import GPSConfig
from mbrl.algorithms.gps_methods import Context, LoopState, run_iteration
from mbrl.algorithms.gps_policy import (
    DistilledPolicy,
    FitSettings,
    PolicyData,
    _epoch_data,
    fit_policy,
    noisy_pairs,
)
from mbrl.algorithms.gps_problem import (
    ControlProblem,
    TeacherSettings,
    label_states,
    policy_rollouts,
    problem_from_task,
    shifted_windows,
    start_states,
)
from mbrl.algorithms.gps_trajectory import (
    dual_step,
    policy_violation,
    task_gains,
    trajectory_step,
)

D = torch.float64


def _lq_problem(T: int, terminal: bool = True) -> tuple[ControlProblem, np.ndarray]:
    """The ``linear`` task (double integrator, Q = I, R = 0.1 I) without bounds; terminal cost
    x'Sx with the DARE solution S (then the finite-horizon optimum is u = -K x at every step)."""
    info = get_task("linear").info
    A, B, Q, R = (np.array(info[k]) for k in ("A", "B", "Q", "R"))
    K, S, _ = dlqr(A, B, Q, R)
    At, Bt, Qt, Rt, St = (torch.tensor(np.asarray(v), dtype=D) for v in (A, B, Q, R, S))

    def dyn(x, u):
        return x @ At.T + u @ Bt.T

    def cost(x, u):
        return ((x @ Qt) * x).sum(-1) + ((u @ Rt) * u).sum(-1)

    def term(x):
        return ((x @ St) * x).sum(-1)

    inf = torch.full((1,), float("inf"), dtype=D)
    problem = ControlProblem(dyn, cost, -inf, inf, T, term if terminal else None)
    return problem, np.asarray(K)


def test_lq_fixed_point_is_the_lqr_controller():
    problem, K = _lq_problem(T=40)
    g = torch.Generator().manual_seed(0)
    x0 = (torch.rand(6, 2, generator=g, dtype=D) - 0.5) * 4.0
    policy = nn.Linear(2, 1, bias=False).to(D)
    with torch.no_grad():
        policy.weight.uniform_(-1.0, 1.0, generator=g)
    # full-batch SGD: a linear least-squares fit converges to its minimiser (Adam would hover);
    # the policy loss is scaled by ρ, so the step is 0.1 / ρ
    rho = 0.01
    opt = torch.optim.SGD(policy.parameters(), lr=0.1 / rho)
    u = torch.zeros(6, 40, 1, dtype=D)
    lam = torch.zeros_like(u)
    fit = FitSettings(epochs=400, batch_size=240)
    for _ in range(6):
        tr = trajectory_step(problem, policy, x0, u, lam, rho, max_iter=20)
        data = PolicyData(
            tr.x[:, :40].reshape(-1, 2), tr.u.reshape(-1, 1), lam.reshape(-1, 1),
            torch.full((240,), rho, dtype=D),
        )  # fmt: skip
        fit_policy(policy, opt, data, fit, g, problem.u_min, problem.u_max)
        viol = policy_violation(policy, tr.x, tr.u)
        lam, u = dual_step(lam, viol, rho, 2.0), tr.u  # α = 2: the method of multipliers
    # the policy u = W x recovers the LQR gain u = -K x; the trajectories follow it
    np.testing.assert_allclose(policy.weight.detach().numpy(), -K, atol=2e-3)
    assert float(viol.abs().max()) < 1e-2
    ref = -(tr.x[:, :40] @ torch.as_tensor(K, dtype=D).T)
    torch.testing.assert_close(tr.u, ref, atol=1e-2, rtol=0)


@pytest.mark.parametrize("hessian", ["gauss_newton", "exact"])
def test_al_step_with_zero_multipliers_and_vanishing_penalty_is_plain_ilqr(hessian):
    task = get_task("pendulum-swingup")
    problem = problem_from_task(task, horizon=30)
    x0 = start_states(task, [1, 2, 3])
    g = torch.Generator().manual_seed(1)
    policy = DistilledPolicy(2, 1, task.action_low, task.action_high, generator=g)
    u0 = 0.5 * torch.randn(3, 30, 1, generator=g, dtype=D)
    lam = torch.zeros(3, 30, 1, dtype=D)
    tr = trajectory_step(problem, policy, x0, u0, lam, 1e-12, max_iter=40, hessian=hessian)
    ref = ilqr(
        problem.dynamics, problem.cost, x0, u0, u_min=problem.u_min, u_max=problem.u_max,
        max_iter=40,
    )  # fmt: skip
    torch.testing.assert_close(tr.u, ref.u, atol=1e-6, rtol=0)
    torch.testing.assert_close(tr.x, ref.x, atol=1e-6, rtol=0)
    torch.testing.assert_close(tr.cost, ref.cost, atol=1e-6, rtol=1e-9)
    torch.testing.assert_close(tr.K, ref.K, atol=1e-5, rtol=0)


def test_penalty_pulls_the_trajectories_towards_the_policy():
    task = get_task("pendulum-swingup")
    problem = problem_from_task(task, horizon=30)
    x0 = start_states(task, [4, 5])
    g = torch.Generator().manual_seed(2)
    policy = DistilledPolicy(2, 1, task.action_low, task.action_high, generator=g)
    u0 = torch.zeros(2, 30, 1, dtype=D)
    lam = torch.zeros_like(u0)
    rms = []
    for rho in (0.0, 1.0, 100.0):
        tr = trajectory_step(problem, policy, x0, u0, lam, rho, max_iter=40)
        rms.append(float(policy_violation(policy, tr.x, tr.u).square().mean().sqrt()))
    assert rms[0] > rms[1] > rms[2]
    assert rms[2] < 0.05 * rms[0]
    # the task's gains around a trajectory do not see the policy; the Lagrangian's do (iLQR's
    # gains are those of its last backward pass, around the trajectory up to the last step)
    tr0 = trajectory_step(problem, policy, x0, u0, lam, 0.0, max_iter=40)
    torch.testing.assert_close(task_gains(problem, tr0.x, tr0.u), tr0.K, atol=1e-3, rtol=0)
    assert float((task_gains(problem, tr.x, tr.u) - tr.K).abs().max()) > 0.1


def test_dual_step_moves_lambda_along_the_violation_and_reduces_it():
    lam = torch.zeros(2, 5, 1, dtype=D)
    v = torch.linspace(-1, 1, 10, dtype=D).view(2, 5, 1)
    new = dual_step(lam, v, 0.5, 2.0)
    torch.testing.assert_close(new - lam, 2.0 * 0.5 * v)
    rho_t = torch.arange(5, dtype=D)
    torch.testing.assert_close(dual_step(lam, v, rho_t, 1.0), rho_t.view(1, 5, 1) * v)
    with pytest.raises(ValueError, match="alpha"):
        dual_step(lam, v, 1.0, 0.0)
    # re-solving with the updated multipliers brings the trajectories closer to the policy
    task = get_task("pendulum-swingup")
    problem = problem_from_task(task, horizon=30)
    x0 = start_states(task, [6, 7])
    g = torch.Generator().manual_seed(3)
    policy = DistilledPolicy(2, 1, task.action_low, task.action_high, generator=g)
    u0, lam = torch.zeros(2, 30, 1, dtype=D), torch.zeros(2, 30, 1, dtype=D)
    rho = 0.5
    tr = trajectory_step(problem, policy, x0, u0, lam, rho, max_iter=40)
    v0 = policy_violation(policy, tr.x, tr.u)
    lam = dual_step(lam, v0, rho, 1.0)
    assert float((lam * v0).sum()) > 0  # λ moved in the direction of the violation
    tr2 = trajectory_step(problem, policy, x0, tr.u, lam, rho, max_iter=40)
    v1 = policy_violation(policy, tr2.x, tr2.u)
    assert float(v1.square().sum()) < float(v0.square().sum())


def test_noisy_targets_are_the_teachers_closed_loop_actions_on_a_linear_system():
    problem, _ = _lq_problem(T=20, terminal=False)
    x0 = torch.tensor([[1.0, -0.5], [-2.0, 0.3]], dtype=D)
    dummy = nn.Linear(2, 1).to(D)
    u0 = torch.zeros(2, 20, 1, dtype=D)
    tr = trajectory_step(problem, dummy, x0, u0, torch.zeros_like(u0), 0.0, max_iter=5)
    # with ρ = 0 the trajectory step's gains are the task's own
    torch.testing.assert_close(task_gains(problem, tr.x, tr.u), tr.K, atol=1e-9, rtol=0)
    g = torch.Generator().manual_seed(4)
    for t in (0, 7, 15):
        eps = 0.3 * torch.randn(2, 2, generator=g, dtype=D)
        xn, target = noisy_pairs(tr.x[:, t], tr.u[:, t], tr.K[:, t], eps)
        torch.testing.assert_close(xn, tr.x[:, t] + eps)
        # the teacher re-planned from x_t + ε over the rest of the horizon
        tail = ilqr(problem.dynamics, problem.cost, xn, torch.zeros(2, 20 - t, 1, dtype=D))
        torch.testing.assert_close(target, tail.u[:, 0], atol=1e-8, rtol=0)
    with pytest.raises(ValueError, match="eps, K"):
        noisy_pairs(tr.x[:, 0], tr.u[:, 0], tr.K[:, 0], torch.zeros(2, 3, dtype=D))


def test_capped_noise_keeps_the_target_perturbation_within_the_fraction_of_the_box():
    """``noise_du_frac = c``: the empirical RMS of ``Kε`` over the noisy copies is ``σ‖K‖_F``
    for soft gains and ``c h`` for stiff ones (``h`` the box's half-width); ``None``: ``σ‖K‖_F``
    for all."""
    P, n, copies = 4, 3, 4000
    g = torch.Generator().manual_seed(5)
    K = torch.randn(P, 1, n, generator=g, dtype=D)
    norms = torch.tensor([0.5, 2.0, 40.0, 400.0], dtype=D)
    K = K / torch.linalg.matrix_norm(K).view(P, 1, 1) * norms.view(P, 1, 1)
    x, u = torch.randn(P, n, generator=g, dtype=D), torch.zeros(P, 1, dtype=D)
    data = PolicyData(x, u, torch.zeros(P, 1, dtype=D), torch.ones(P, dtype=D), K)
    lo, hi = torch.tensor([-10.0], dtype=D), torch.tensor([10.0], dtype=D)  # h = 10
    for frac, expected in ((0.25, [0.05, 0.2, 2.5, 2.5]), (None, [0.05, 0.2, 4.0, 40.0])):
        fit = FitSettings(noise_std=0.1, noise_copies=copies, noise_du_frac=frac)
        xs, _, _, _ = _epoch_data(data, fit, g, lo, hi)
        eps = (xs[P:] - x.repeat(copies, 1)).view(copies, P, n, 1)
        du = (K.unsqueeze(0) @ eps).squeeze(-1).squeeze(-1)  # (copies, P)
        rms = du.square().mean(0).sqrt()
        torch.testing.assert_close(rms, torch.tensor(expected, dtype=D), rtol=0.06, atol=0)
    with pytest.raises(ValueError, match="noise_du_frac"):
        GPSConfig(noise_du_frac=0.0)


def test_policy_sample_labels_are_the_teachers_replanned_actions_on_a_linear_system():
    """``policy_samples``: the policy's own states, labelled ``u_t + K_t (x^π_t − x_t)``; on a
    linear system with quadratic cost that is the teacher re-planning from ``x^π_t``."""
    from mbrl.algorithms.gps_methods import _policy_sample_pairs

    problem, _ = _lq_problem(T=20, terminal=False)
    x0 = torch.tensor([[1.0, -0.5], [-2.0, 0.3]], dtype=D)
    policy = nn.Linear(2, 1, bias=False).to(D)
    with torch.no_grad():
        policy.weight.copy_(torch.tensor([[-0.3, -0.8]], dtype=D))
    u0 = torch.zeros(2, 20, 1, dtype=D)
    tr = trajectory_step(problem, policy, x0, u0, torch.zeros_like(u0), 0.0, max_iter=5)
    K = task_gains(problem, tr.x, tr.u)
    pairs, rest = _policy_sample_pairs(problem, policy, x0, tr.x, tr.u, K, 0.5)
    assert len(pairs) == 40 and rest.shape == (0, 2)  # an unbounded box keeps every step
    xpi = policy_rollouts(problem, policy, x0).x
    torch.testing.assert_close(pairs.x, xpi[:, :20].reshape(40, 2))
    assert float((pairs.x - tr.x[:, :20].reshape(40, 2)).abs().max()) > 0.1  # off the trajectory
    for t in (0, 6, 13):
        tail = ilqr(problem.dynamics, problem.cost, xpi[:, t], torch.zeros(2, 20 - t, 1, dtype=D))
        got = pairs.u.view(2, 20, 1)[:, t]
        torch.testing.assert_close(got, tail.u[:, 0], atol=1e-8, rtol=0)
    assert bool((pairs.rho == 0.5).all()) and bool((pairs.lam == 0).all())


def test_controller_samples_follow_the_local_controllers_and_carry_their_noise_free_labels():
    """``controller_samples``: the local controllers' rollouts retrace the trajectories without
    noise; with noise, from other starts, on a linear system with quadratic cost the labels
    ``u_t + K_t (x'_t − x_t)`` are the teacher re-planning from ``x'_t`` (the noise is not in
    them)."""
    from mbrl.algorithms.gps_methods import _local_pairs, controller_rollouts

    problem, _ = _lq_problem(T=20, terminal=False)
    x0 = torch.tensor([[1.0, -0.5], [-2.0, 0.3]], dtype=D)
    u0 = torch.zeros(2, 20, 1, dtype=D)
    policy = nn.Linear(2, 1, bias=False).to(D)
    tr = trajectory_step(problem, policy, x0, u0, torch.zeros_like(u0), 0.0, max_iter=5)
    K = task_gains(problem, tr.x, tr.u)
    g = torch.Generator().manual_seed(3)
    torch.testing.assert_close(controller_rollouts(problem, x0, tr.x, tr.u, K, 0.0, g), tr.x)
    starts = x0 + torch.tensor([[0.3, 0.2], [-0.4, 0.1]], dtype=D)
    xs = controller_rollouts(problem, starts, tr.x, tr.u, K, 0.5, g)
    pairs, rest = _local_pairs(problem, xs, tr.x, tr.u, K, 0.5)
    assert len(pairs) == 40 and rest.shape == (0, 2)
    noise_free = controller_rollouts(problem, starts, tr.x, tr.u, K, 0.0, g)
    assert float((xs - noise_free).abs().max()) > 0.1  # the noise was applied
    got = pairs.u.view(2, 20, 1)
    for t in (0, 7, 15):
        tail = ilqr(problem.dynamics, problem.cost, xs[:, t], torch.zeros(2, 20 - t, 1, dtype=D))
        torch.testing.assert_close(got[:, t], tail.u[:, 0], atol=1e-8, rtol=0)


def test_gps_controller_samples_in_an_iteration_and_their_start_budget():
    ctx = _context("gps", horizon=10, controller_samples=3)
    out = run_iteration(ctx, LoopState(), 0)
    assert 0.0 < out.controller_samples <= 1.0 and np.isfinite(out.fit_loss)
    with pytest.raises(ValueError, match="controller_samples: num_conditions"):
        GPSConfig(num_conditions=10, iterations=50, controller_samples=2)
    with pytest.raises(ValueError, match="controller_noise"):
        GPSConfig(controller_noise=-0.1)


def _context(method: str, horizon: int = 20, **kw) -> Context:
    cfg = GPSConfig(method=method, num_conditions=2, horizon=horizon, epochs=2, **kw)
    task = get_task("pendulum-swingup")
    problem = problem_from_task(task, horizon)
    g = torch.Generator().manual_seed(0)
    policy = DistilledPolicy(
        2, 1, task.action_low, task.action_high, features=task.obs_preprocess_fn, generator=g
    )
    teacher = TeacherSettings(horizon=8, iters=2, first_iters=5)

    def conditions(k: int) -> torch.Tensor:
        return start_states(task, [10 * k, 10 * k + 1])

    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    return Context(cfg, problem, teacher, policy, opt, g, conditions)


def test_dagger_dataset_grows_by_the_visited_states_and_their_teacher_labels():
    ctx = _context("dagger")
    loop = LoopState()
    run_iteration(ctx, loop, 0)
    assert len(loop.data) == 2 * 20 and loop.labels == 40
    first = loop.data
    # what iteration 1 must add: the learner's visited states, labelled by the teacher
    ro = policy_rollouts(ctx.problem, ctx.policy, ctx.conditions(1))
    warm = shifted_windows(ro.u, 8).reshape(40, 8, 1)
    states = ro.x[:, :20].reshape(40, 2)
    labels, _ = label_states(ctx.problem, ctx.teacher, states, warm)
    run_iteration(ctx, loop, 1)
    assert len(loop.data) == 80 and loop.labels == 80
    torch.testing.assert_close(loop.data.x[:40], first.x)  # aggregated, not replaced
    torch.testing.assert_close(loop.data.x[40:], states)
    torch.testing.assert_close(loop.data.u[40:], labels)


def test_shifted_windows_are_the_next_controls():
    u = torch.arange(5, dtype=D).view(1, 5, 1)
    w = shifted_windows(u, 3)
    assert w.shape == (1, 5, 3, 1)
    assert w[0, 1, :, 0].tolist() == [1, 2, 3]
    assert w[0, 4, :, 0].tolist() == [4, 4, 4]


def test_plato_and_bc_noise_iterations_run_and_count_labels():
    for method in ("plato", "bc_noise"):
        ctx = _context(method, horizon=10)
        loop = LoopState()
        for k in range(2):
            out = run_iteration(ctx, loop, k)
        assert loop.labels == 40 and len(loop.data) == 40
        assert np.isfinite(out.violation) and np.isfinite(out.fit_loss)


def test_short_distillation_on_pendulum_beats_a_random_policy(tmp_path, pendulum_random_return):
    from mbrl.algorithms.gps import run_gps

    cfg = GPSConfig(
        method="gps", num_conditions=2, iterations=2, horizon=60, eval_episodes=3,
        teacher_horizon=20, epochs=20, run_root=str(tmp_path), progress=False, timing_steps=3,
    )  # fmt: skip
    res = run_gps(cfg)
    random_return = pendulum_random_return
    final = float(np.mean(res.final_returns))
    assert final > random_return + 0.1 * abs(random_return), (final, random_return)
    assert len(res.policy_returns) == 2 and res.teacher_labels == [120, 120]
    assert (res.run_dir / "iteration.csv").is_file()
    assert all(p.is_file() for p in res.plot_paths)


def test_mean_action_is_the_deterministic_action_of_sacs_actor():
    from mbrl.agents.networks import GaussianPolicy

    g = torch.Generator().manual_seed(5)
    actor = GaussianPolicy(3, 2, hidden=16, action_low=[-2, 0], action_high=[2, 1], generator=g)
    obs = torch.randn(7, 3, generator=g)
    torch.testing.assert_close(actor.mean_action(obs), actor(obs, deterministic=True)[0])
    policy = DistilledPolicy(
        2, 1, [-2.0], [2.0], features=get_task("pendulum-swingup").obs_preprocess_fn
    )
    u = policy(torch.randn(5, 2, generator=g, dtype=D))
    assert u.dtype == D and u.shape == (5, 1) and bool((u.abs() <= 2).all())
    with pytest.raises(ValueError, match="x: expected shape"):
        policy(torch.zeros(5, 3, dtype=D))


def test_gps_with_teacher_labels_past_the_local_region_counts_them():
    ctx = _context("gps", horizon=10, policy_samples=True, sample_labels="teacher")
    loop = LoopState()
    out = run_iteration(ctx, loop, 0)
    # the 20 teacher-rollout labels that seed the trajectories, plus one per rejected state
    rejected = round((1.0 - out.policy_samples) * 20)
    assert loop.labels == 20 + rejected
    assert 0.0 <= out.policy_samples <= 1.0 and np.isfinite(out.fit_loss)


def test_gps_aggregate_samples_keeps_every_iterations_off_trajectory_pairs():
    ctx = _context("gps", horizon=10, controller_samples=1, aggregate_samples=True)
    loop = LoopState()
    run_iteration(ctx, loop, 0)
    first = loop.data
    assert first is not None and len(first) > 0
    run_iteration(ctx, loop, 1)
    assert len(loop.data) > len(first)
    torch.testing.assert_close(loop.data.x[: len(first)], first.x, rtol=0, atol=0)
    plain = _context("gps", horizon=10, controller_samples=1)
    loop2 = LoopState()
    run_iteration(plain, loop2, 0)
    assert loop2.data is None  # without it nothing is carried
