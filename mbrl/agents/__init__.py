"""Agents that act in an environment: the MPC agent (plan, execute, replan) and soft
actor-critic (SAC) with its reusable policy and critic networks."""

from mbrl.agents.mpc_agent import MPCAgent, shift_plan
from mbrl.agents.networks import BatchedCritics, GaussianPolicy
from mbrl.agents.sac import SAC, SACConfig

__all__ = ["SAC", "BatchedCritics", "GaussianPolicy", "MPCAgent", "SACConfig", "shift_plan"]
