"""Guided policy search on a MuJoCo task (InvertedDoublePendulum-v5) through the true simulator:
the problem's finite-difference Jacobians in the augmented trajectory step (against plain
iLQR through the simulator), start states and returns (against a plain Gymnasium loop), and a
short ``mbrl gps --task inverted-double-pendulum`` run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from control import ilqr
from envs import get_task
from mbrl.algorithms.gps_config import GPSConfig
from mbrl.algorithms.gps_mujoco import (
    env_returns,
    mpc_controller,
    mujoco_problem,
    mujoco_start_states,
)
from mbrl.algorithms.gps_policy import DistilledPolicy
from mbrl.algorithms.gps_problem import TeacherSettings, mpc_rollouts
from mbrl.algorithms.gps_trajectory import task_gains, trajectory_step

D = torch.float64
IDP = "inverted-double-pendulum"


def test_start_states_are_the_simulator_state_after_reset():
    task = get_task(IDP)
    x0 = mujoco_start_states(task, [3, 4])
    env = task.make_env()
    for row, seed in zip(x0, (3, 4), strict=True):
        env.reset(seed=seed)
        d = env.unwrapped.data
        np.testing.assert_array_equal(row.numpy(), np.concatenate([d.qpos, d.qvel]))
    env.close()
    assert x0.shape == (2, 6) and x0.dtype == D


def test_env_returns_equal_a_plain_gymnasium_loop_and_stop_at_termination():
    task = get_task(IDP)
    gain = torch.tensor([[0.3, -2.0, 1.0, 0.1, -0.2, 0.1]], dtype=D)

    def controller(x, rows):
        return (x @ gain.T).clamp(-1.0, 1.0)

    got = env_returns(task, [7, 8], controller, horizon=60)
    for seed, ret in zip((7, 8), got, strict=True):
        env = task.make_env()
        env.reset(seed=seed)
        total, steps = 0.0, 0
        for _ in range(60):
            d = env.unwrapped.data
            u = controller(torch.as_tensor(np.concatenate([d.qpos, d.qvel]))[None], None)[0]
            _, r, term, trunc, _ = env.step(u.numpy().astype(np.float32))
            total, steps = total + float(r), steps + 1
            if term or trunc:
                break
        env.close()
        assert ret == pytest.approx(total, rel=1e-12, abs=1e-12)
        assert steps < 60  # this controller lets the poles fall: termination is exercised


def test_al_step_through_the_simulator_with_zero_multipliers_is_plain_ilqr():
    task = get_task(IDP)
    problem = mujoco_problem(task, horizon=6)
    x0 = mujoco_start_states(task, [1, 2])
    g = torch.Generator().manual_seed(0)
    policy = DistilledPolicy(6, 1, task.action_low, task.action_high, generator=g)
    u0 = 0.2 * torch.randn(2, 6, 1, generator=g, dtype=D)
    lam = torch.zeros(2, 6, 1, dtype=D)
    tr = trajectory_step(problem, policy, x0, u0, lam, 1e-12, max_iter=8)
    model = problem.dynamics
    ref = ilqr(
        model, problem.cost, x0, u0, terminal_cost=problem.terminal_cost, u_min=problem.u_min,
        u_max=problem.u_max, max_iter=8, derivatives="analytic", jacobians=model.jacobians,
        alphas=problem.alphas,
    )  # fmt: skip
    torch.testing.assert_close(tr.u, ref.u, atol=1e-6, rtol=0)
    torch.testing.assert_close(tr.x, ref.x, atol=1e-6, rtol=0)
    torch.testing.assert_close(tr.K, ref.K, atol=1e-4, rtol=0)
    # the task's gains around the plain optimum are iLQR's own gains there
    torch.testing.assert_close(task_gains(problem, tr.x, tr.u), tr.K, atol=1e-3, rtol=0)


def test_teacher_controller_in_the_env_matches_its_simulator_rollouts():
    """The env-stepping teacher and the simulator rollouts plan the same controls (the
    environment's step is the same physics, up to MuJoCo's solver warm start)."""
    task = get_task(IDP)
    problem = mujoco_problem(task, horizon=5)
    teacher = TeacherSettings(horizon=5, iters=1, first_iters=3)
    x0 = mujoco_start_states(task, [11, 12])
    ro = mpc_rollouts(problem, teacher, x0)
    act = mpc_controller(problem, teacher, 2)
    u_first = act(x0, torch.arange(2))
    torch.testing.assert_close(u_first, ro.u[:, 0], atol=1e-9, rtol=0)
    got = env_returns(task, [11, 12], mpc_controller(problem, teacher, 2), horizon=5)
    assert all(r > 9.0 * 5 for r in got)  # balanced: ~9.35 per step while upright


def test_short_gps_run_on_the_double_pendulum_balances_where_doing_nothing_falls(tmp_path):
    from mbrl.algorithms.gps import run_gps

    cfg = GPSConfig(
        task=IDP, method="gps", num_conditions=2, iterations=2, horizon=20, eval_episodes=2,
        teacher_horizon=10, teacher_first_iters=5, teacher_iters=1, traj_iters=3, epochs=20,
        run_root=str(tmp_path), progress=False, timing_steps=2,
    )  # fmt: skip
    res = run_gps(cfg)
    assert res.teacher_labels == [40, 40] and len(res.final_returns) == 2
    assert min(res.teacher_returns) > 9.0 * 20
    balanced = 9.0 * 20  # ~9.35 per step while the tip is up
    assert min(res.final_returns) > balanced
    task = get_task(IDP)
    seeds = [10_000_000, 10_000_001]
    idle = env_returns(task, seeds, lambda x, rows: torch.zeros(x.shape[0], 1, dtype=D), 20)
    assert max(idle) < balanced  # with no force the poles fall within the 20 steps
    assert (res.run_dir / "iteration.csv").is_file()


def test_a_mujoco_task_without_a_planning_cost_is_refused_before_the_run_starts(tmp_path):
    from mbrl.algorithms.gps import run_gps
    from mbrl.util.lifecycle import SetupError

    with pytest.raises(SetupError, match="inverted-double-pendulum"):
        run_gps(GPSConfig(task="reacher", run_root=str(tmp_path), progress=False))
    assert not any(tmp_path.iterdir())
