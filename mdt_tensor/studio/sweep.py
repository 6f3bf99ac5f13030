"""Parameter sweeps: one base (a state, a snapshot, a replay series or a scenario) against a grid.

``sweep`` expands the grid (``grid.expand_grid``), runs every point over the same epochs
(``batch._run_grid``) and returns a :class:`SweepResult`: a tidy table (one row per grid point,
epoch and uid, wei as Python ints) and one summary per grid point (dividends share of a named
group of validators, incentive concentration, the bonds of a named validator).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..chain.yuma.types import EpochResult, Payout, SubnetState, YumaParams
from ..errors import DTypeError, ShapeError
from .batch import Trajectory, _run_grid
from .grid import GridPoint, expand_grid

__all__ = ["SweepResult", "sweep", "trajectory_of"]

_U16_COLUMNS = ("incentive", "dividends", "validator_trust", "consensus")
_WEI_COLUMNS = (("server_emission_wei", "server_emission"), ("validator_emission_wei", "validator_emission"),
                ("emission_wei", "emission"))


def trajectory_of(base: Any, epochs: int | None = None) -> Trajectory:
    """The epochs a sweep runs on ``base``.

    ``base``: a single-subnet :class:`SubnetState` (its weights repeated for ``epochs`` epochs,
    default 10); a snapshot file or a folder of snapshots (``mdt_tensor.io``); a list of
    :class:`~mdt_tensor.io.Snapshot` or of ``SubnetState`` (one epoch each; ``epochs`` keeps the
    first ones); or a :class:`~mdt_tensor.studio.scenarios.Scenario`.
    """
    from ..io.series import read_series  # io builds on the epoch; imported on use
    from ..io.snapshot import Snapshot
    from .scenarios import Scenario

    if isinstance(base, SubnetState):
        return Trajectory.repeated(base, 10 if epochs is None else epochs)
    if isinstance(base, Scenario):
        base = base.states
    elif isinstance(base, (str, Path)):
        base = read_series(base)
    if isinstance(base, Sequence) and base:
        states = [item.state if isinstance(item, Snapshot) else item for item in base]
        if not all(isinstance(s, SubnetState) for s in states):
            raise DTypeError("Expected a list of mt.io.Snapshot or mt.yuma.SubnetState as the sweep's base.")
        if len(states) == 1:
            return Trajectory.repeated(states[0], 10 if epochs is None else epochs)
        return Trajectory.of_states(states[:epochs] if epochs is not None else states)
    raise DTypeError(
        f"Expected the sweep's base to be a SubnetState, a snapshot path, a list of snapshots or a Scenario, "
        f"but got {type(base).__name__}."
    )


@dataclass
class SweepResult:
    """What :func:`sweep` returns.

    Attributes:
        points: the grid points, in order (``points[k].values``: the grid values; ``.params``).
        results: one :class:`EpochResult` per point, fields ``(T, n)`` (bonds ``(T, n, n)``).
        stake: ``(T, n)`` raw stake per epoch (the same for every point).
        group: the uids whose dividends share is summarised (default: every uid).
        validator: the uid whose bonds are summarised, or None.
        shape: the grid's shape (one length per grid name).
    """

    points: list[GridPoint]
    results: list[EpochResult]
    stake: Tensor
    group: list[int]
    validator: int | None
    shape: tuple[int, ...]
    names: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """The tidy table: one row per grid point, epoch and uid (u16 outputs and wei as ints)."""
        rows: list[dict[str, Any]] = []
        epochs, n = self.stake.shape
        stake = self.stake.tolist()
        for point, result in zip(self.points, self.results):
            columns = {name: torch.as_tensor(getattr(result, name)).tolist() for name in _U16_COLUMNS}
            wei = {column: torch.as_tensor(getattr(result, name)).tolist() for column, name in _WEI_COLUMNS}
            for t in range(epochs):
                for uid in range(n):
                    row: dict[str, Any] = {"point": point.index, **_plain(point.values), "epoch": t, "uid": uid,
                                           "stake": stake[t][uid]}
                    row.update({name: columns[name][t][uid] for name in _U16_COLUMNS})
                    row.update({column: wei[column][t][uid] for column in wei})
                    rows.append(row)
        return rows

    def summaries(self) -> list[dict[str, Any]]:
        """One row per grid point: its values, the group's dividends share, incentive concentration, bonds."""
        out = []
        for point, result in zip(self.points, self.results):
            validator_wei = torch.as_tensor(result.validator_emission).sum(0)
            server_wei = torch.as_tensor(result.server_emission).sum(0)
            total_validator = int(validator_wei.sum())
            total_server = int(server_wei.sum())
            row: dict[str, Any] = {"point": point.index, **_plain(point.values)}
            row["group_dividends_share"] = int(validator_wei[self.group].sum()) / total_validator if total_validator else 0.0
            share = server_wei.to(torch.float64) / total_server if total_server else server_wei.to(torch.float64)
            row["incentive_hhi"] = float((share * share).sum())
            row["top_miner_share"] = float(share.max())
            row["paid_wei"] = int(validator_wei.sum() + server_wei.sum())
            row["dust_wei"] = int(torch.as_tensor(result.dust).sum())
            if self.validator is not None:
                bonds = torch.as_tensor(result.bonds)[-1, self.validator]
                row["validator_bonds_u16"] = int(bonds.sum())
                row["validator_top_bond_uid"] = int(bonds.argmax())
            out.append(row)
        return out

    def metric(self, name: str) -> Tensor:
        """A summary column as a float tensor of the grid's shape (for plots)."""
        values = [float(row[name]) for row in self.summaries()]
        return torch.tensor(values, dtype=torch.float64).reshape(self.shape)


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Grid values as table cells (a (low, high) pair as text)."""
    return {k: (f"{v[0]}-{v[1]}" if isinstance(v, (tuple, list)) else v) for k, v in values.items()}


def sweep(
    base: Any,
    grid: Mapping[str, Sequence[Any]],
    *,
    epochs: int | None = None,
    exact: bool = True,
    params: YumaParams = YumaParams(),
    emission: int = 1_000_000_000,
    payout: Payout = "chain",
    group: Sequence[int] | None = None,
    validator: int | None = None,
) -> SweepResult:
    """Run the same epochs under every parameter set of a grid.

    Args:
        base: a ``SubnetState``, a snapshot path or folder, a list of snapshots / states, or a
            :class:`~mdt_tensor.studio.scenarios.Scenario` (see :func:`trajectory_of`).
        grid: name -> values, e.g. ``{"kappa": [0.4, 0.5], "bonds_moving_avg": [0.9, 0.975],
            "liquid_alpha": [False, (0.7, 0.9)]}`` (:func:`~mdt_tensor.studio.grid.expand_grid`).
        epochs: how many epochs (a state: default 10; a series: default all of it).
        exact: the chain's fixed point (True) or the float path.
        params: the parameters the grid changes.
        emission: wei per epoch.
        payout: ``"chain"`` (floor, dust lost) or ``"exact"`` (every wei paid).
        group: uids whose dividends share is summarised (default: all).
        validator: uid whose final bonds are summarised.

    Returns:
        :class:`SweepResult`.

    Example:
        >>> W = [[0, 65535, 0], [0, 0, 65535], [0, 65535, 0]]
        >>> result = sweep(SubnetState(W, [100, 0, 200]), {"kappa": [0.3, 0.6]}, epochs=2)
        >>> len(result.rows()), [s["top_miner_share"] for s in result.summaries()]
        (12, [1.0, 1.0])
    """
    trajectory = trajectory_of(base, epochs)
    points = expand_grid(grid, params)
    results = _run_grid([(trajectory, p.params) for p in points], emission, exact=exact, payout=payout)
    n = trajectory.n
    if trajectory.states is not None:
        stake = torch.stack([torch.as_tensor(s.stake) for s in trajectory.states])
    else:
        stake = torch.as_tensor(trajectory.start.stake).expand(trajectory.epochs, n)
    members = list(range(n)) if group is None else [int(u) for u in group]
    for uid in members + ([validator] if validator is not None else []):
        if not 0 <= uid < n:
            raise ShapeError(f"Expected uids in [0, {n}) for `group` / `validator`, but got {uid}.")
    shape = tuple(len(v) for v in grid.values())
    return SweepResult(points, results, stake, members, validator, shape, list(grid))
