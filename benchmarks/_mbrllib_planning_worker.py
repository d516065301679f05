"""mbrl-lib side of ``bench_planning_vs_mbrllib.py`` (run it through that script, not directly).

mbrl-lib's top-level package is also called ``mbrl``, so this file runs in its own virtual
environment (see ``bench_models_vs_mbrllib.py`` for its setup) with its working directory outside
the repository. It builds PETS the way mbrl-lib's ``algorithms/pets.py`` does: an untrained
``GaussianMLP`` ensemble (``propagation_method="fixed_model"``, i.e. TS-infinity, learned
log-variance bounds, SiLU) in a ``OneDTransitionRewardModel`` (delta targets, double-precision
input normaliser, the environment's observation preprocessor, rewards from the known reward
function), a ``ModelEnv``, and a ``TrajectoryOptimizerAgent`` with a ``CEMOptimizer`` scored by
``ModelEnv.evaluate_action_sequences`` with ``num_particles`` particles. It times
``agent.plan(obs)`` (one CEM planning step) and prints one JSON line (``RESULT {...}``).
The configurations are given by the orchestrator on the command line.
"""

from __future__ import annotations

import argparse
import json
import types

import numpy as np
import torch
from _timing import best_time, matmul_flops


def cartpole_features(obs: torch.Tensor) -> torch.Tensor:
    """``(N, 4) -> (N, 5)``: the pole angle as sine and cosine, then the other states (the same
    features as mbrl-lib's ``pets_cartpole`` preprocessor, whose module needs MuJoCo rendering)."""
    theta = obs[..., 1:2]
    return torch.cat([theta.sin(), theta.cos(), obs[..., :1], obs[..., 2:]], dim=-1)


def halfcheetah_features(obs: torch.Tensor) -> torch.Tensor:
    """``(N, 18) -> (N, 18)``: as mbrl-lib's ``pets_halfcheetah`` preprocessor (the root x
    position dropped, the pitch angle as sine and cosine)."""
    angle = obs[..., 2:3]
    return torch.cat([obs[..., 1:2], angle.sin(), angle.cos(), obs[..., 3:]], dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", choices=["cartpole", "halfcheetah"], required=True)
    parser.add_argument("--population", type=int, required=True)
    parser.add_argument("--elite-ratio", type=float, required=True)
    parser.add_argument("--horizon", type=int, required=True)
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--particles", type=int, required=True)
    parser.add_argument("--members", type=int, required=True)
    parser.add_argument("--layers", type=int, required=True)
    parser.add_argument("--hidden", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--warmup", type=int, required=True)
    parser.add_argument("--flush-denormal", type=int, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(bool(args.flush_denormal))
    torch.manual_seed(0)

    import mbrl.env.reward_fns
    import mbrl.env.termination_fns
    import omegaconf

    import mbrl  # mbrl-lib, from this venv's site-packages
    import mbrl.models
    import mbrl.planning

    if not mbrl.__version__.startswith("0.2") or "site-packages" not in mbrl.__file__:
        raise RuntimeError(f"expected mbrl-lib 0.2.x from site-packages, got {mbrl.__file__}")

    if args.config == "cartpole":  # overrides=pets_cartpole_paper_version
        obs_dim, act_dim = 4, 1
        preprocess = cartpole_features
        reward_fn = mbrl.env.reward_fns.cartpole_pets
    else:  # overrides=pets_halfcheetah
        obs_dim, act_dim = 18, 6
        preprocess = halfcheetah_features
        reward_fn = mbrl.env.reward_fns.halfcheetah
    in_size = preprocess(torch.zeros(2, obs_dim)).shape[1] + act_dim
    gauss = mbrl.models.GaussianMLP(
        in_size,
        obs_dim,
        device="cpu",
        num_layers=args.layers,
        ensemble_size=args.members,
        hid_size=args.hidden,
        propagation_method="fixed_model",
        learn_logvar_bounds=False,
        activation_fn_cfg={"_target_": "torch.nn.SiLU"},
    )
    model = mbrl.models.OneDTransitionRewardModel(
        gauss,
        target_is_delta=True,
        normalize=True,
        normalize_double_precision=True,
        learned_rewards=False,
        obs_process_fn=preprocess,
        num_elites=5,
    )
    model.eval()
    low, high = -np.ones(act_dim, np.float32), np.ones(act_dim, np.float32)
    spaces = types.SimpleNamespace(observation_space=None, action_space=None)
    generator = torch.Generator().manual_seed(0)
    model_env = mbrl.models.ModelEnv(
        spaces, model, mbrl.env.termination_fns.no_termination, reward_fn, generator=generator
    )
    optimizer_cfg = omegaconf.OmegaConf.create(
        {
            "_target_": "mbrl.planning.CEMOptimizer",
            "num_iterations": args.iterations,
            "elite_ratio": args.elite_ratio,
            "population_size": args.population,
            "alpha": 0.1,
            "lower_bound": low.tolist(),
            "upper_bound": high.tolist(),
            "return_mean_elites": True,
            "device": "cpu",
            "clipped_normal": False,
        }
    )
    agent = mbrl.planning.TrajectoryOptimizerAgent(
        optimizer_cfg, low.tolist(), high.tolist(), planning_horizon=args.horizon
    )

    def evaluate(initial_state: np.ndarray, action_sequences: torch.Tensor) -> torch.Tensor:
        return model_env.evaluate_action_sequences(
            action_sequences, initial_state=initial_state, num_particles=args.particles
        )

    agent.set_trajectory_eval_fn(evaluate)
    obs = np.random.default_rng(0).uniform(-0.05, 0.05, obs_dim).astype(np.float32)
    peak_start = matmul_flops(repeats=3, inner=1)
    t_plan = best_time(lambda: agent.plan(obs), args.repeats, warmup=args.warmup)
    result = {
        "lib": f"mbrl-lib {mbrl.__version__}",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "plan_s": t_plan,
        "fp32_peak_start": peak_start,
        "fp32_peak_end": matmul_flops(repeats=3, inner=1),
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
