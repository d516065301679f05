"""Robust vs nominal open-loop plans on InvertedPendulum-v5 under mass mismatch.

The lecture notes' "movement with model uncertainty": plan ONE control sequence over several
perturbed models (cart and pole masses scaled), execute it open loop on test systems whose masses
differ from the planning model's, and count how often the pole falls (the environment
terminates at ``|θ| > 0.2`` rad).  Task: move the cart to ``x = 0.4`` m in ``T`` steps and end
balanced, cost ``Σ_t c(x_t, u_t) + c_T(x_T)`` (:func:`stage_cost`, :func:`terminal_cost`).

Planners, each nominal (the unperturbed model) and robust (``K = 5`` models: masses × 0.6 and
× 1.7 for cart and pole, and the nominal):

* ``ilqr()`` on the true MuJoCo dynamics (:class:`control.MuJoCoDynamics`; a list of ``K`` models
  for the robust plans, ``robust="mean"`` or ``"worst"``);
* CEM through the true simulator (:class:`SimulatorModel`; a :class:`MultiModel` of ``K``
  perturbed simulators scored by the mean or worst return for the robust plans).

Test systems: the nominal one and ``--tests`` whose cart and pole mass factors are drawn
log-uniformly from ``[0.5, 2]`` (seeded).

    python examples/robust_open_loop.py                  # table of docs/planning.md
    python examples/robust_open_loop.py --no-cem         # iLQR only (~20 s)
    python examples/robust_open_loop.py --quick          # smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from control import MuJoCoDynamics, ilqr, scale_model
from envs import get_task
from mbrl.models import MultiModel
from mbrl.models.simulator_model import PhysicsStateObservation, SimulatorModel
from mbrl.planning import CEMConfig, make_planner

ENV_ID = "InvertedPendulum-v5"
TARGET_X = 0.4
"""Cart position goal (m)."""
PLANNING_SCALES = ((1.0, 1.0), (0.6, 0.6), (0.6, 1.7), (1.7, 0.6), (1.7, 1.7))
"""(cart, pole) mass factors of the robust plans' ``K = 5`` models."""


def stage_cost(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``(N,)`` cost of state ``x = [cart x, pole θ, ẋ, θ̇] (N, 4)`` and force ``u (N, 1)``."""
    return (
        (x[:, 0] - TARGET_X) ** 2
        + 5.0 * x[:, 1] ** 2
        + 0.1 * x[:, 2] ** 2
        + 0.1 * x[:, 3] ** 2
        + 0.01 * u[:, 0] ** 2
    )


def terminal_cost(x: torch.Tensor) -> torch.Tensor:
    """``(N,)`` end-state cost: 10 × the state part of :func:`stage_cost`."""
    return 10.0 * stage_cost(x, torch.zeros(x.shape[0], 1, dtype=x.dtype))


def masses(cart: float, pole: float) -> np.ndarray:
    """Body mass factors ``(nbody,)`` of InvertedPendulum: world, cart, pole."""
    return np.array([1.0, cart, pole])


def perturbed_env(cart: float, pole: float) -> gym.Env:
    """The environment with scaled cart and pole masses (the "true" system)."""
    env = gym.make(ENV_ID)
    scale_model(env.unwrapped.model, body_mass=masses(cart, pole))
    return env


def dynamics(cart: float, pole: float) -> MuJoCoDynamics:
    """True MuJoCo dynamics with scaled masses (its own copy of the model)."""
    return MuJoCoDynamics.from_env(perturbed_env(cart, pole))


@dataclass(frozen=True)
class Outcome:
    """An open-loop run: steps before the pole fell (``T`` if it did not) and its cost."""

    steps: int
    fell: bool
    cost: float


def execute(u: torch.Tensor, cart: float, pole: float, seed: int) -> Outcome:
    """Apply ``u (T, 1)`` open loop on the perturbed environment from ``reset(seed)``."""
    env = perturbed_env(cart, pole)
    dyn = MuJoCoDynamics.from_env(env)
    env.reset(seed=seed)
    x = torch.as_tensor(dyn.get_state(env.unwrapped.data)).view(1, -1)
    J = 0.0
    for t in range(u.shape[0]):
        J += float(stage_cost(x, u[t].view(1, 1)))
        _, _, terminated, _, _ = env.step(u[t].numpy().astype(np.float32))
        x = torch.as_tensor(dyn.get_state(env.unwrapped.data)).view(1, -1)
        if terminated:
            env.close()
            return Outcome(t + 1, True, float("nan"))
    env.close()
    return Outcome(u.shape[0], False, J + float(terminal_cost(x)))


def ilqr_plans(x0: torch.Tensor, T: int, max_iter: int) -> dict[str, torch.Tensor]:
    """Nominal, robust-mean and robust-worst iLQR control sequences ``(T, 1)``."""
    nominal = dynamics(1.0, 1.0)
    lo, hi = -3.0, 3.0
    kw = dict(terminal_cost=terminal_cost, u_min=lo, u_max=hi, derivatives="analytic")
    kw["max_iter"] = max_iter
    u0 = torch.zeros(T, 1, dtype=torch.float64)
    plans = {}
    t0 = time.perf_counter()
    res = ilqr(nominal, stage_cost, x0, u0, jacobians=nominal.jacobians, **kw)
    print(f"iLQR nominal: cost {float(res.cost[0]):.3f}, {time.perf_counter() - t0:.1f} s")
    plans["iLQR nominal"] = res.u[0]
    models = [dynamics(c, p) for c, p in PLANNING_SCALES]
    for robust in ("mean", "worst"):
        t0 = time.perf_counter()
        r = ilqr(
            models, stage_cost, x0, res.u[0], jacobians=[m.jacobians for m in models],
            robust=robust, robust_temperature=1.0, **kw,
        )  # fmt: skip
        per_model = ", ".join(f"{float(j):.2f}" for j in r.model_cost[0])
        print(
            f"iLQR robust {robust}: objective {float(r.cost[0]):.3f} (per model {per_model}), "
            f"{time.perf_counter() - t0:.1f} s"
        )
        plans[f"iLQR {robust}"] = r.u[0]
    return plans


def cem_plans(seed: int, T: int, population: int, iterations: int) -> dict[str, torch.Tensor]:
    """Nominal, robust-mean and robust-worst CEM sequences ``(T, 1)`` through the simulator.

    The planner maximises ``Σ_t (1 − c(x_{t+1}, u_t))``: the alive bonus 1 keeps a falling
    (terminating) rollout from looking cheap."""
    base = get_task("inverted-pendulum")

    def reward_fn(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return 1.0 - stage_cost(next_obs, act)

    task = dataclasses.replace(base, reward_fn=reward_fn)
    env = PhysicsStateObservation(task.make_env())
    z, _ = env.reset(seed=seed)
    env.close()

    def sim(cart: float, pole: float) -> SimulatorModel:
        return SimulatorModel(task, body_mass_scale=masses(cart, pole))

    cfg = dict(horizon=T, population=population, num_elites=max(2, population // 10))
    cfg["iterations"] = iterations
    multi = MultiModel([sim(c, p) for c, p in PLANNING_SCALES])
    runs = (
        ("CEM nominal", sim(1.0, 1.0), 1, "mean"),
        ("CEM mean", multi, multi.num_members, "mean"),
        ("CEM worst", multi, multi.num_members, "worst_member"),
    )
    plans = {}
    for name, model, particles, objective in runs:
        planner = make_planner(
            CEMConfig(num_particles=particles, objective=objective, **cfg), model, task
        )
        t0 = time.perf_counter()
        res = planner.plan(torch.as_tensor(z), generator=torch.Generator().manual_seed(seed))
        print(f"{name}: value {res.value:.3f}, {time.perf_counter() - t0:.1f} s")
        plans[name] = res.actions
    return plans


def cell(o: Outcome) -> str:
    return f"fell at {o.steps}" if o.fell else f"{o.cost:.2f}"


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: prints the table (markdown) and a summary per plan."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tests", type=int, default=12, help="perturbed test systems")
    p.add_argument("--seed", type=int, default=0, help="env reset seed (initial state)")
    p.add_argument("--test-seed", type=int, default=1, help="seed of the test mass factors")
    p.add_argument("--horizon", type=int, default=25, help="T, steps of 0.04 s")
    p.add_argument("--max-iter", type=int, default=100, help="iLQR iterations")
    p.add_argument("--population", type=int, default=300)
    p.add_argument("--iterations", type=int, default=6, help="CEM iterations")
    p.add_argument("--no-cem", action="store_true", help="iLQR plans only")
    p.add_argument("--quick", action="store_true", help="smoke test: 3 tests, small budgets")
    args = p.parse_args(argv)
    if args.quick:
        args.tests, args.horizon, args.max_iter = 3, 10, 5
        args.population, args.iterations = 20, 1
    torch.set_num_threads(1)
    env = perturbed_env(1.0, 1.0)
    env.reset(seed=args.seed)
    x0 = torch.as_tensor(MuJoCoDynamics.from_env(env).get_state(env.unwrapped.data))
    env.close()
    plans = ilqr_plans(x0, args.horizon, args.max_iter)
    if not args.no_cem:
        plans.update(cem_plans(args.seed, args.horizon, args.population, args.iterations))
    rng = np.random.default_rng(args.test_seed)
    tests = [(1.0, 1.0)] + [
        tuple(f) for f in np.exp(rng.uniform(np.log(0.5), np.log(2.0), (args.tests, 2)))
    ]
    outcomes = {name: [execute(u, c, q, args.seed) for c, q in tests] for name, u in plans.items()}
    print("\n| cart × | pole × | " + " | ".join(plans) + " |")
    print("|---|---|" + "---|" * len(plans))
    for i, (c, q) in enumerate(tests):
        cells = " | ".join(cell(outcomes[name][i]) for name in plans)
        print(f"| {c:.2f} | {q:.2f} | {cells} |")
    print("\nover the perturbed test systems (the nominal one excluded):")
    for name, outs in outcomes.items():
        perturbed = outs[1:]
        fell = sum(o.fell for o in perturbed)
        costs = [o.cost for o in perturbed if not o.fell]
        summary = f"mean cost {np.mean(costs):.2f}, worst {np.max(costs):.2f}" if costs else ""
        print(f"  {name}: fell {fell}/{len(perturbed)}; of the rest {summary}")


if __name__ == "__main__":
    main()
