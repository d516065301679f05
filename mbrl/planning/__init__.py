"""Planners over learned or analytic dynamics models.

Every planner implements :class:`Planner.plan(obs, init_actions=None, generator=None)
<mbrl.planning.base.Planner.plan>` and returns a :class:`PlanResult`. Each planner has its own
config beside it (:class:`CEMConfig`, :class:`ICEMConfig`, :class:`MPPIConfig`,
:class:`RandomShootingConfig`, :class:`MCTSConfig`, :class:`ILQRConfig`,
:class:`PredictiveSamplingConfig`); build the planner with
:func:`make_planner`, or pick a config by name with :func:`planner_config`.
"""

from mbrl.planning.base import Planner, PlanResult, SamplingPlanner
from mbrl.planning.cem import CEMConfig, CEMPlanner
from mbrl.planning.config import (
    PLANNERS,
    PlannerConfig,
    SamplingPlannerConfig,
    make_planner,
    planner_config,
)
from mbrl.planning.icem import ICEMConfig, ICEMPlanner, colored_noise
from mbrl.planning.ilqr_planner import ILQRConfig, ILQRPlanner
from mbrl.planning.mcts import MCTSConfig, MCTSPlanner
from mbrl.planning.mppi import MPPIConfig, MPPIPlanner
from mbrl.planning.objective import OBJECTIVES, SequenceObjective
from mbrl.planning.predictive_sampling import (
    PredictiveSamplingConfig,
    PredictiveSamplingPlanner,
)
from mbrl.planning.random_shooting import RandomShootingConfig, RandomShootingPlanner

__all__ = [
    "OBJECTIVES",
    "PLANNERS",
    "CEMConfig",
    "CEMPlanner",
    "ICEMConfig",
    "ICEMPlanner",
    "ILQRConfig",
    "ILQRPlanner",
    "MCTSConfig",
    "MCTSPlanner",
    "MPPIConfig",
    "MPPIPlanner",
    "PlanResult",
    "Planner",
    "PlannerConfig",
    "PredictiveSamplingConfig",
    "PredictiveSamplingPlanner",
    "RandomShootingConfig",
    "RandomShootingPlanner",
    "SamplingPlanner",
    "SamplingPlannerConfig",
    "SequenceObjective",
    "colored_noise",
    "make_planner",
    "planner_config",
]
