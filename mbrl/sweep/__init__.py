"""Sweeps: run one algorithm over a grid of settings and seeds (``mbrl sweep``).

``mbrl sweep pets --task cartpole-swingup seed=0,1,2 planner=cem,icem,mppi`` runs the 9 points
as Ray Tune trials (``--backend local``: one child process after another, no Ray needed), each
writing its usual run directory under ``runs/<sweep-name>/``, then writes ``summary.csv`` (one
row per trial), ``settings.csv`` (mean ± std over seeds) and ``returns.png``. See docs/sweeps.md.

Modules: :mod:`~mbrl.sweep.grid` (parsing and expansion), :mod:`~mbrl.sweep.state` (the sweep
folder), :mod:`~mbrl.sweep.trial` (one trial), :mod:`~mbrl.sweep.backends` (Ray, local),
:mod:`~mbrl.sweep.summary` (results), :mod:`~mbrl.sweep.driver` (plan and run).
"""

from mbrl.sweep.driver import SweepError, SweepOptions, plan_sweep, run_sweep
from mbrl.sweep.grid import Grid, SweepSyntaxError, expand_grid, parse_grid
from mbrl.sweep.state import AlgorithmRef, SweepPlan, TrialSpec, read_plan
from mbrl.sweep.summary import SweepSummary, summarize

__all__ = [
    "AlgorithmRef",
    "Grid",
    "SweepError",
    "SweepOptions",
    "SweepPlan",
    "SweepSummary",
    "SweepSyntaxError",
    "TrialSpec",
    "expand_grid",
    "parse_grid",
    "plan_sweep",
    "read_plan",
    "run_sweep",
    "summarize",
]
