"""Model-based RL toolkit: dynamics ensembles, planners, MPC agents, PETS/MBPO/GPS."""

__version__ = "0.1.0"
