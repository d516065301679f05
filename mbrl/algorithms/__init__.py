"""Model-based RL algorithms, one module each: :mod:`mbrl.algorithms.pets` (MBRL v1.5 with an
ensemble and MPC). Nothing is imported here; ``mbrl.cli`` loads an algorithm when its command
runs."""
