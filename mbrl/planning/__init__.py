"""Planners over learned or analytic dynamics models.

Every planner implements :class:`Planner.plan(obs, init_actions=None, generator=None)
<mbrl.planning.base.Planner.plan>` and returns a :class:`PlanResult`. Build one from a flat
:class:`PlannerConfig` with :func:`make_planner`.
"""

from mbrl.planning.base import Planner, PlanResult, SamplingPlanner
from mbrl.planning.cem import CEMPlanner
from mbrl.planning.config import PLANNERS, PlannerConfig, make_planner
from mbrl.planning.icem import ICEMPlanner, colored_noise
from mbrl.planning.ilqr_planner import ILQRPlanner
from mbrl.planning.mcts import MCTSPlanner
from mbrl.planning.mppi import MPPIPlanner
from mbrl.planning.objective import OBJECTIVES, SequenceObjective
from mbrl.planning.random_shooting import RandomShootingPlanner

__all__ = [
    "OBJECTIVES",
    "PLANNERS",
    "CEMPlanner",
    "ICEMPlanner",
    "ILQRPlanner",
    "MCTSPlanner",
    "MPPIPlanner",
    "PlanResult",
    "Planner",
    "PlannerConfig",
    "RandomShootingPlanner",
    "SamplingPlanner",
    "SequenceObjective",
    "colored_noise",
    "make_planner",
]
