"""Simulator steps per second through :class:`control.mujoco_rollout.MuJoCoSimulator`.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mujoco_sim.py [--env HalfCheetah-v5]
          [--batch 200] [--horizon 30] [--threads 1 2] [--repeats 5]

One planning-sized call: ``batch`` rollouts of ``horizon`` actions from the env's reset state,
each action held ``frame_skip`` MuJoCo steps (HalfCheetah: 5, so 200 x 30 x 5 = 30 000 steps).
For each thread count, in one run, side by side (best of ``repeats``):

Timings alternate between the paths within each repeat.  On a loaded machine the ratio of two
~0.5 s timings swings both ways; ``wrapper`` times what the simulator does besides the C++ call
(with that call replaced by a copy of its output), which bounds the ratio from below.

* ``simulator``  -- ``MuJoCoSimulator.rollout(state0, actions)`` (the planning model's path:
  input checks, one ``mujoco.rollout`` call of ``H * frame_skip + 1`` sub-steps, strided output);
* ``raw``        -- ``mujoco.rollout.Rollout.rollout`` alone on the same thread count, controls
  already repeated ``frame_skip`` times, output preallocated (the ceiling);
* ``mj_step``    -- a Python loop over rows and actions of ``mj_step(nstep=frame_skip)`` on one
  ``MjData`` (:meth:`MuJoCoSimulator.rollout_sequential`, the reference).

Through the planner (``--planner-batch``, one thread): the same ``B x H`` sequences scored as a
sampling planner scores them, ``ModelEnv(SimulatorModel).rollout_returns`` (one
``mujoco.rollout`` of single substeps, the task's observation of every step, its reward and
termination), and a whole ``CEMPlanner.plan`` of one iteration over ``B`` sequences (sampling,
scoring, elite refit), against ``raw`` on the same work.

Also the Jacobians of :class:`control.mujoco_model.MuJoCoDynamics` (``mjd_transitionFD`` chained
over ``frame_skip``) for ``--jac-batch`` rows: sequential loop vs the thread-parallel path.
Prints simulator steps per second and the ratio to ``raw``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import gymnasium as gym
import mujoco
import mujoco.rollout
import numpy as np
import torch

from control.mujoco_model import MuJoCoDynamics
from control.mujoco_rollout import MuJoCoSimulator, read_physics_state
from envs import get_task
from mbrl.models.model_env import ModelEnv
from mbrl.models.simulator_model import PhysicsStateObservation, SimulatorModel
from mbrl.planning import CEMConfig, make_planner


def interleaved_best(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best seconds per call of each function, timed in turn within every repeat (so that a
    burst of load from other processes hits all of them alike)."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


class _ReplayRollout:
    """Stands in for the ``mujoco.rollout`` pool: copies saved states into the output."""

    def __init__(self, saved: np.ndarray) -> None:
        self.saved = saved

    def rollout(self, *args: object, state: np.ndarray, **kwargs: object) -> None:
        np.copyto(state, self.saved)


def wrapper_overhead(
    sim: MuJoCoSimulator, state0: np.ndarray, actions: np.ndarray, repeats: int
) -> float:
    """Seconds per ``sim.rollout`` call spent outside ``mujoco.rollout`` (checks, control
    repeat, time check, strided output), with the C++ call replaced by a copy of its saved output
    (an upper bound: the copy is extra).  Little affected by other processes' load."""
    saved = []
    real = sim._pool

    class _Record:
        def rollout(self, *args: object, state: np.ndarray, **kwargs: object) -> None:
            real.rollout(*args, state=state, **kwargs)
            saved.append(state.copy())

    sim._pool = _Record()
    sim.rollout(state0, actions)
    sim._pool = _ReplayRollout(saved[0])
    try:
        return interleaved_best({"wrapper": lambda: sim.rollout(state0, actions)}, repeats)[
            "wrapper"
        ]
    finally:
        sim._pool = real


def bench_rollouts(env: gym.Env, B: int, H: int, nthread: int, repeats: int) -> dict[str, float]:
    """Seconds per call of the three rollout paths (best of ``repeats``)."""
    raw_env = env.unwrapped
    model, fs = raw_env.model, raw_env.frame_skip
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    state0 = np.tile(read_physics_state(env), (B, 1))
    lo, hi = raw_env.action_space.low, raw_env.action_space.high
    actions = rng.uniform(lo, hi, size=(B, H, model.nu))
    sim = MuJoCoSimulator(model, fs, nthread=nthread)
    control = np.ascontiguousarray(np.repeat(actions, fs, axis=1))
    out = np.empty((B, H * fs, sim.nstate))
    datas = [mujoco.MjData(model) for _ in range(nthread)]
    pool = mujoco.rollout.Rollout(nthread=nthread if nthread > 1 else 0)
    np.testing.assert_array_equal(  # same work: identical states
        sim.rollout(state0, actions)[:, 1:],
        pool.rollout(model, datas, state0, control, state=out)[0][:, fs - 1 :: fs],
    )
    fns = {
        "simulator": lambda: sim.rollout(state0, actions),
        "raw": lambda: pool.rollout(model, datas, state0, control, state=out),
    }
    if nthread == 1:
        fns["mj_step"] = lambda: sim.rollout_sequential(state0, actions)
    times = interleaved_best(fns, repeats)
    times["wrapper"] = wrapper_overhead(sim, state0, actions, repeats)
    pool.close()
    sim.close()
    return times


def bench_planner(env_id: str, B: int, H: int, repeats: int) -> dict[str, float]:
    """Seconds per call: ``raw`` mujoco.rollout, planner ``scoring`` and one CEM ``plan``."""
    task = get_task(env_id)
    model = SimulatorModel(task)
    view = model.planning_task(task)
    env = PhysicsStateObservation(task.make_env())
    z, _ = env.reset(seed=0)
    z0 = torch.as_tensor(z).repeat(B, 1)
    rng = np.random.default_rng(0)
    actions = rng.uniform(task.action_low, task.action_high, size=(B, H, task.act_dim))
    acts = torch.as_tensor(actions)
    fs = model.frame_skip
    m = model.sim.model
    control = np.ascontiguousarray(np.repeat(actions, fs, axis=1))
    out = np.empty((B, H * fs, model.nstate))
    pool = mujoco.rollout.Rollout(nthread=0)
    datas = [mujoco.MjData(m)]
    state0 = np.ascontiguousarray(z0[:, : model.nstate].numpy())
    menv = ModelEnv(model, view)
    cfg = CEMConfig(horizon=H, population=B, num_elites=max(1, B // 10), iterations=1)
    planner = make_planner(cfg, model, task)
    gen = torch.Generator().manual_seed(0)
    times = interleaved_best(
        {
            "raw": lambda: pool.rollout(m, datas, state0, control, state=out),
            "scoring": lambda: menv.rollout_returns(z0, acts),
            "cem_plan": lambda: planner.plan(z0[0], generator=gen),
        },
        repeats,
    )
    pool.close()
    model.close()
    env.close()
    return times


def bench_jacobians(env: gym.Env, B: int, nthread: int, repeats: int) -> dict[str, float]:
    """Seconds per call of the sequential and the threaded transitionFD Jacobians."""
    md = MuJoCoDynamics.from_env(env, nthread=nthread)
    rng = np.random.default_rng(1)
    x = np.concatenate([0.1 * rng.normal(size=(B, md.nq)), rng.normal(size=(B, md.nv))], axis=1)
    u = rng.uniform(-1, 1, size=(B, md.nu))
    A, Bm = md.jacobians_numpy(x, u)
    A_ref, B_ref = md.jacobians_numpy_sequential(x, u)
    assert np.array_equal(A, A_ref) and np.array_equal(Bm, B_ref)
    times = interleaved_best(
        {
            "jac_parallel": lambda: md.jacobians_numpy(x, u),
            "jac_sequential": lambda: md.jacobians_numpy_sequential(x, u),
        },
        repeats,
    )
    md.simulator.close()
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--horizon", type=int, default=30)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--jac-batch", type=int, default=50, help="0: skip the Jacobians")
    p.add_argument("--planner-batch", type=int, default=200, help="0: skip the planner path")
    a = p.parse_args()
    env = gym.make(a.env)
    fs = env.unwrapped.frame_skip
    nsteps = a.batch * a.horizon * fs
    print(
        f"{a.env}: frame_skip={fs}, B={a.batch}, H={a.horizon} -> {nsteps} MuJoCo steps per "
        f"call; mujoco {mujoco.__version__}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    for nthread in a.threads:
        t = bench_rollouts(env, a.batch, a.horizon, nthread, a.repeats)
        wrapper = t.pop("wrapper")
        for name, sec in t.items():
            print(
                f"  threads={nthread} {name:<10} {1e3 * sec:9.2f} ms  {nsteps / sec / 1e3:9.1f} k "
                f"steps/s  ({t['raw'] / sec:6.1%} of raw)"
            )
        print(
            f"  threads={nthread} wrapper work outside mujoco.rollout {1e3 * wrapper:.2f} ms -> "
            f"simulator >= {t['raw'] / (t['raw'] + wrapper):.1%} of raw at this raw time"
        )
    if a.planner_batch > 0:
        n = a.planner_batch * a.horizon * fs
        print(f"Through the planner (threads=1): B={a.planner_batch}, H={a.horizon} -> {n} steps")
        t = bench_planner(a.env, a.planner_batch, a.horizon, a.repeats)
        for name, sec in t.items():
            print(
                f"  {name:<10} {1e3 * sec:9.2f} ms  {n / sec / 1e3:9.1f} k steps/s  "
                f"({t['raw'] / sec:6.1%} of raw)"
            )
    rk4 = env.unwrapped.model.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4
    if a.jac_batch > 0 and not rk4:
        nfd = a.jac_batch * fs
        print(f"Jacobians: B={a.jac_batch} rows x {fs} chained mjd_transitionFD = {nfd} calls")
        for nthread in a.threads:
            t = bench_jacobians(env, a.jac_batch, nthread, a.repeats)
            for name, sec in t.items():
                print(f"  threads={nthread} {name:<14} {1e3 * sec:9.2f} ms")
    env.close()


if __name__ == "__main__":
    main()
