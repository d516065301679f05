"""Model-based RL algorithms, one module each: :mod:`mbrl.algorithms.pets` (MBRL v1.5 with an
ensemble and MPC), :mod:`mbrl.algorithms.offpolicy` (SAC, MBPO), :mod:`mbrl.algorithms.gps`
(guided policy search and the imitation baselines). Nothing is imported here; ``mbrl.cli``
loads an algorithm when its command runs."""
