"""The what-if studio: parameter sweeps, scenarios and the questions validators ask, each one call.

``sweep`` runs a base subnet (a state, a snapshot, a replay series or a scenario) under every
parameter set of a grid; ``scenarios`` is a library of synthetic cases as data; ``burn_share``
and ``predict_validator_trust`` answer two questions validators ask of the exact epoch;
``retention_map`` is the consensus-guarantee study as one batched call. Modules: ``grid``,
``batch`` (how cases are batched), ``sweep``, ``scenarios``, ``questions``, ``retention``, ``plot``.
"""

from __future__ import annotations

from . import scenarios
from .batch import Trajectory
from .grid import GridPoint, expand_grid
from .plot import plot_retention, plot_sweep
from .questions import BurnShare, TrustPrediction, burn_share, predict_validator_trust
from .retention import RetentionMap, retention_map
from .scenarios import SCENARIOS, Scenario, run_scenarios
from .sweep import SweepResult, sweep, trajectory_of

__all__ = [
    "sweep", "SweepResult", "trajectory_of", "expand_grid", "GridPoint", "Trajectory",
    "scenarios", "Scenario", "SCENARIOS", "run_scenarios",
    "burn_share", "BurnShare", "predict_validator_trust", "TrustPrediction",
    "retention_map", "RetentionMap", "plot_sweep", "plot_retention",
]
