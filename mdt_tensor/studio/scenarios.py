"""A library of synthetic subnets, as data: each scenario is the list of states of its epochs.

Every scenario has ``V`` validators (uids ``0..V-1``) and ``M`` miners (uids ``V..V+M-1``);
validators set their weights ``lag`` blocks before each epoch and score miners from a shared
"true quality" plus a little noise of their own (seeded, so every run is the same). Each
function returns a :class:`Scenario` whose ``states`` feed :func:`mdt_tensor.studio.sweep`
(bonds, permits and consensus are carried between epochs) and whose ``groups`` name the uids
the scenario is about. ``SCENARIOS`` lists them by name; :func:`run_scenarios` runs them all
against a grid.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..chain.yuma.types import Payout, SubnetState, YumaParams
from ..compat.u16 import max_upscale_float_to_u16
from ..errors import ValueRangeError

__all__ = ["Scenario", "SCENARIOS", "copier", "late_validator", "switch_all_at_once", "large_validator_first",
           "stake_moves", "miner_reregistered", "winner_takes_all", "run_scenarios"]

_START_BLOCK = 10_000
_TEMPO = 360
_LAG = 10
_STAKE = 10**12  # one validator's stake in rao when stakes are equal


@dataclass
class Scenario:
    """A named synthetic case.

    Attributes:
        name: the library's name for it.
        description: one sentence: what happens.
        states: one :class:`SubnetState` per epoch.
        groups: named uids, e.g. ``{"honest": [0, 1, 2], "copier": [3], "miners": [4, ...]}``.
    """

    name: str
    description: str
    states: list[SubnetState]
    groups: dict[str, list[int]]


def _quality(epochs: int, miners: int, seed: int, drift: float = 0.15) -> Tensor:
    """``(T, M)`` positive miner qualities: a seeded random walk, so the leader changes over time."""
    g = torch.Generator().manual_seed(seed)
    steps = torch.randn(epochs, miners, generator=g, dtype=torch.float64) * drift
    base = torch.rand(miners, generator=g, dtype=torch.float64)
    return (base + steps.cumsum(0)).clamp(min=0.01)


def _scores(quality: Tensor, validators: int, seed: int, noise: float = 0.02) -> Tensor:
    """``(T, V, M)`` what each validator measures: the quality plus its own small noise."""
    g = torch.Generator().manual_seed(seed + 1)
    jitter = torch.randn(quality.shape[0], validators, quality.shape[1], generator=g, dtype=torch.float64) * noise
    return (quality.unsqueeze(1) + jitter).clamp(min=0.0)


def _to_u16(scores: Tensor) -> Tensor:
    """Float rows as the u16 values ``set_weights`` stores (max-upscaled)."""
    values, _ = max_upscale_float_to_u16(scores, None, drop_rounded_zeros=True)
    return values


def _states(rows: Tensor, stake: Tensor, *, registered: Tensor | None = None, commit_lag: int | None = None,
            reset: Tensor | None = None, late: Sequence[int] = ()) -> list[SubnetState]:
    """States from ``(T, V, M)`` u16 validator rows and ``(T, V)`` stakes (miners hold no stake).

    ``registered``: ``(T, n)`` block at registration per epoch (default 0). ``commit_lag``: each
    validator's active commit is that many blocks before its weight update (``commit_block``);
    ``reset``: ``(T, n)`` bond resets per epoch; ``late``: validators whose update lands a tempo later.
    """
    epochs, validators, miners = rows.shape
    n = validators + miners
    states = []
    for t in range(epochs):
        block = _START_BLOCK + t * _TEMPO
        weights = torch.zeros(n, n, dtype=torch.int64)
        weights[:validators, validators:] = rows[t]
        stakes = torch.zeros(n, dtype=torch.int64)
        stakes[:validators] = stake[t]
        last_update = torch.zeros(n, dtype=torch.int64)
        last_update[:validators] = block - _LAG
        for v in late:
            last_update[v] = block - _LAG - _TEMPO if t else block - _LAG
        states.append(SubnetState(
            weights=weights, stake=stakes, last_update=last_update,
            block_at_registration=registered[t] if registered is not None else torch.zeros(n, dtype=torch.int64),
            validator_permit=torch.arange(n) < validators, block=block,
            commit_block=None if commit_lag is None else torch.where(
                torch.arange(n) < validators, last_update - commit_lag, torch.tensor(-1)),
            bonds_reset=None if reset is None else reset[t],
        ))
    return states


def _groups(validators: int, miners: int, **named: list[int]) -> dict[str, list[int]]:
    return {**named, "validators": list(range(validators)), "miners": list(range(validators, validators + miners))}


def _equal_stake(epochs: int, validators: int) -> Tensor:
    return torch.full((epochs, validators), _STAKE, dtype=torch.int64)


def _check(epochs: int, validators: int, miners: int, least_validators: int = 2) -> None:
    if epochs < 2 or validators < least_validators or miners < 2:
        raise ValueRangeError(
            f"Expected epochs >= 2, validators >= {least_validators} and miners >= 2, but got {epochs}, {validators}, {miners}.")


def copier(epochs: int = 20, validators: int = 4, miners: int = 8, seed: int = 0) -> Scenario:
    """The last validator sets, each epoch, the consensus (stake-weighted median) of the previous epoch's honest weights."""
    _check(epochs, validators, miners)
    honest = _to_u16(_scores(_quality(epochs, miners, seed), validators - 1, seed))
    median = honest.to(torch.float64).median(dim=1).values  # equal stakes: the stake-weighted median
    copied = torch.cat([median[:1], median[:-1]])
    rows = torch.cat([honest, _to_u16(copied).unsqueeze(1)], dim=1)
    return Scenario("copier", copier.__doc__ or "", _states(rows, _equal_stake(epochs, validators)),
                    _groups(validators, miners, honest=list(range(validators - 1)), copier=[validators - 1]))


def late_validator(epochs: int = 20, validators: int = 4, miners: int = 8, seed: int = 0) -> Scenario:
    """The last validator scores honestly but its weights reach the chain one epoch late (commit-reveal delay)."""
    _check(epochs, validators, miners)
    scores = _to_u16(_scores(_quality(epochs, miners, seed), validators, seed))
    late = validators - 1
    scores[1:, late] = scores[:-1, late].clone()
    return Scenario("late_validator", late_validator.__doc__ or "",
                    _states(scores, _equal_stake(epochs, validators), late=[late]),
                    _groups(validators, miners, honest=list(range(late)), late=[late]))


def _switch_rows(epochs: int, validators: int, miners: int, switch_at: Sequence[int]) -> Tensor:
    """All weight on miner 0 until validator v's ``switch_at[v]``, then all on miner 1 (u16 rows)."""
    rows = torch.zeros(epochs, validators, miners, dtype=torch.int64)
    for v, at in enumerate(switch_at):
        rows[:at, v, 0] = 65535
        rows[at:, v, 1] = 65535
    return rows


def switch_all_at_once(epochs: int = 12, validators: int = 4, miners: int = 4, switch: int = 6) -> Scenario:
    """Every validator moves all its weight from the old best miner to a new one in the same epoch."""
    _check(epochs, validators, miners)
    rows = _switch_rows(epochs, validators, miners, [switch] * validators)
    return Scenario("switch_all_at_once", switch_all_at_once.__doc__ or "", _states(rows, _equal_stake(epochs, validators)),
                    _groups(validators, miners, old_best=[validators], new_best=[validators + 1]))


def large_validator_first(epochs: int = 16, validators: int = 4, miners: int = 4, switch: int = 4,
                          delay: int = 4, large_share: float = 0.6) -> Scenario:
    """A validator holding most of the stake moves to the new best miner ``delay`` epochs before the others."""
    _check(epochs, validators, miners)
    rows = _switch_rows(epochs, validators, miners, [switch] + [switch + delay] * (validators - 1))
    small = round(_STAKE * (1 - large_share) / (validators - 1))
    stake = torch.full((epochs, validators), small, dtype=torch.int64)
    stake[:, 0] = round(_STAKE * large_share)
    return Scenario("large_validator_first", large_validator_first.__doc__ or "", _states(rows, stake),
                    _groups(validators, miners, large=[0], small=list(range(1, validators))))


def stake_moves(epochs: int = 16, validators: int = 4, miners: int = 8, seed: int = 0) -> Scenario:
    """Validator 0's stake moves to validator 1 in equal steps over the run; everyone scores honestly."""
    _check(epochs, validators, miners)
    rows = _to_u16(_scores(_quality(epochs, miners, seed, drift=0.0), validators, seed))
    stake = _equal_stake(epochs, validators)
    moved = torch.linspace(0, _STAKE * 0.9, epochs, dtype=torch.float64).round().to(torch.int64)
    stake[:, 0] -= moved
    stake[:, 1] += moved
    return Scenario("stake_moves", stake_moves.__doc__ or "", _states(rows, stake),
                    _groups(validators, miners, source=[0], destination=[1]))


def miner_reregistered(epochs: int = 12, validators: int = 4, miners: int = 6, at: int = 6, seed: int = 0) -> Scenario:
    """The best miner is deregistered and its uid reused by a weak newcomer who publishes a metadata commitment.

    The newcomer registers between the validators' weight updates and the epoch, so the epoch of
    ``at`` drops the old weights on it (and, under commit-reveal, weights committed before it came);
    its bonds column is reset (bond reset on) and masked as recently registered.
    """
    _check(epochs, validators, miners)
    quality = _quality(epochs, miners, seed, drift=0.0)
    best = int(quality[0].argmax())
    quality[at:, best] = 0.05
    rows = _to_u16(_scores(quality, validators, seed))
    n = validators + miners
    uid = validators + best
    registered = torch.zeros(epochs, n, dtype=torch.int64)
    registered[at:, uid] = _START_BLOCK + at * _TEMPO - _LAG // 2
    reset = torch.zeros(epochs, n, dtype=torch.bool)
    reset[at, uid] = True
    return Scenario("miner_reregistered", miner_reregistered.__doc__ or "",
                    _states(rows, _equal_stake(epochs, validators), registered=registered, commit_lag=_TEMPO, reset=reset),
                    _groups(validators, miners, reused=[uid]))


def winner_takes_all(epochs: int = 8, validators: int = 5, miners: int = 4, majority: int = 3) -> Scenario:
    """Each validator puts all its weight on its favourite miner: ``majority`` validators on one, the rest on another."""
    _check(epochs, validators, miners, least_validators=3)
    rows = torch.zeros(epochs, validators, miners, dtype=torch.int64)
    rows[:, :majority, 0] = 65535
    rows[:, majority:, 1] = 65535
    return Scenario("winner_takes_all", winner_takes_all.__doc__ or "", _states(rows, _equal_stake(epochs, validators)),
                    _groups(validators, miners, majority=list(range(majority)), minority=list(range(majority, validators)),
                            majority_pick=[validators], minority_pick=[validators + 1]))


#: The library: name -> function returning the scenario (keyword arguments change its size and timing).
SCENARIOS: dict[str, Callable[..., Scenario]] = {
    "copier": copier,
    "late_validator": late_validator,
    "switch_all_at_once": switch_all_at_once,
    "large_validator_first": large_validator_first,
    "stake_moves": stake_moves,
    "miner_reregistered": miner_reregistered,
    "winner_takes_all": winner_takes_all,
}


def run_scenarios(
    grid: Mapping[str, Sequence[object]],
    names: Sequence[str] | None = None,
    *,
    exact: bool = True,
    params: YumaParams = YumaParams(),
    emission: int = 1_000_000_000,
    payout: Payout = "chain",
) -> dict[str, object]:
    """Run scenarios of the library (default: all) against a grid, in one call.

    Returns:
        name -> :class:`~mdt_tensor.studio.sweep.SweepResult` (its ``group`` is the scenario's
        first named group). Scenarios of one size and length that share a grid point run as one batch.

    Example:
        >>> out = run_scenarios({"kappa": [0.5]}, ["winner_takes_all"])
        >>> out["winner_takes_all"].summaries()[0]["group_dividends_share"]
        1.0
    """
    from .batch import Trajectory, _run_grid
    from .grid import expand_grid
    from .sweep import SweepResult

    chosen = list(SCENARIOS) if names is None else list(names)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        raise ValueRangeError(f"Unknown scenario(s) {unknown}; the library has {sorted(SCENARIOS)}.")
    scenarios = [SCENARIOS[name]() for name in chosen]
    trajectories = [Trajectory.of_states(s.states) for s in scenarios]
    points = expand_grid(grid, params)
    cases = [(traj, point.params) for traj in trajectories for point in points]
    results = _run_grid(cases, emission, exact=exact, payout=payout)
    shape = tuple(len(v) for v in grid.values())
    out: dict[str, object] = {}
    for k, scenario in enumerate(scenarios):
        stake = torch.stack([torch.as_tensor(s.stake) for s in scenario.states])
        group = next(iter(scenario.groups.values()))
        mine = results[k * len(points):(k + 1) * len(points)]
        out[scenario.name] = SweepResult(points, mine, stake, group, None, shape, list(grid))
    return out
