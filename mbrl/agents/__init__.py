"""Agents that act in an environment: the MPC agent (plan, execute, replan)."""

from mbrl.agents.mpc_agent import MPCAgent, shift_plan

__all__ = ["MPCAgent", "shift_plan"]
