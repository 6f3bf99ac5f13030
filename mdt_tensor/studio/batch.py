"""Running many (trajectory, parameters) cases: one batch per shared parameter set.

A trajectory is what a sweep or a scenario feeds the epoch: either a start state plus the
weights of each epoch (``run_epochs`` applies), or a full state per epoch (stake, registrations,
commits or resets change too); bonds, permits and the previous consensus are always carried from
one epoch's result to the next. ``_run_grid`` is the one place that decides how cases are
batched: today cases that share a ``YumaParams`` run as one batch and the groups run one after
another; once ``YumaParams`` takes a value per batch element, it becomes one batch for all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..chain.yuma.inputs import _as_int_tensor, _prepare, _state_from_inputs
from ..chain.yuma.runner import epoch, run_epochs
from ..chain.yuma.types import _INT_FIELDS, EpochResult, Payout, SubnetState, YumaParams
from ..errors import ShapeError, ValueRangeError

__all__ = ["Trajectory"]

#: What a missing optional field means, for batching states where only some give it.
_NEUTRAL = {"commit_block": -1, "bonds_reset": False, "weights_present": True}


@dataclass
class Trajectory:
    """The inputs of consecutive epochs of one subnet.

    Attributes:
        start: the first epoch's state (no batch dimension).
        weights: ``(T, n, n)`` u16 weights per epoch, when only the weights change (the block
            advances by ``tempo`` each epoch, as in ``run_epochs``); else None.
        states: one state per epoch (``T`` of them), when more than the weights change; else
            None. Their ``bonds``, ``validator_permit`` and ``previous_consensus`` after the first
            are replaced by what the previous epoch stored.
    """

    start: SubnetState
    weights: Tensor | None = None
    states: list[SubnetState] | None = None

    @property
    def epochs(self) -> int:
        return len(self.states) if self.states is not None else int(self.weights.shape[0])  # type: ignore[union-attr]

    @property
    def n(self) -> int:
        return int(torch.as_tensor(self.start.weights).shape[-1])

    @classmethod
    def repeated(cls, state: SubnetState, epochs: int) -> Trajectory:
        """``epochs`` epochs of ``state`` with its weights unchanged."""
        if epochs < 1:
            raise ValueRangeError(f"Expected `epochs` >= 1, but got {epochs}.")
        w = torch.as_tensor(state.weights)
        if w.ndim != 2:
            raise ShapeError(f"Expected a single subnet's weights of shape (n, n), but got {tuple(w.shape)}.")
        return cls(start=state, weights=w.expand(epochs, *w.shape))

    @classmethod
    def of_states(cls, states: Sequence[SubnetState]) -> Trajectory:
        """One state per epoch (all of the same size)."""
        if not states:
            raise ValueRangeError("Expected at least one state, but got none.")
        sizes = {int(torch.as_tensor(s.weights).shape[-1]) for s in states}
        if len(sizes) != 1:
            raise ShapeError(f"Expected states of one size, but got sizes {sorted(sizes)}.")
        return cls(start=states[0], states=list(states))


def _canonical(state: SubnetState) -> SubnetState:
    """``state`` with every default filled, as torch tensors."""
    return _state_from_inputs(dataclasses.replace(_prepare(state, validate=False), origin=_TORCH))


class _TorchOrigin:
    """Wraps results as torch tensors (whatever the caller's array type was)."""

    @staticmethod
    def wrap(t: Tensor) -> Tensor:
        return t


_TORCH: Any = _TorchOrigin()


def _stack_states(states: Sequence[SubnetState]) -> SubnetState:
    """The states as one batch along a new leading dimension (fields filled with their defaults)."""
    filled = [_canonical(s) for s in states]
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(SubnetState):
        values = [getattr(s, f.name) for s in filled]
        if all(v is None for v in values):
            fields[f.name] = None
        elif any(v is None for v in values) and f.name in _NEUTRAL:
            like = torch.as_tensor(next(v for v in values if v is not None))
            fields[f.name] = torch.stack([torch.full_like(like, _NEUTRAL[f.name]) if v is None else torch.as_tensor(v)
                                          for v in values])
        elif any(v is None for v in values):
            raise ValueRangeError(f"Cannot batch states where only some give `{f.name}`; give it in all of them.")
        else:
            fields[f.name] = torch.stack([torch.as_tensor(v) for v in values])
    return SubnetState(**fields)


def _stack_results(results: Sequence[EpochResult]) -> EpochResult:
    """Per-epoch results ``(b, ...)`` as one result ``(T, b, ...)``."""
    return EpochResult(**{f.name: torch.stack([torch.as_tensor(getattr(r, f.name)) for r in results])
                          for f in dataclasses.fields(EpochResult)})


def _member(result: EpochResult, k: int) -> EpochResult:
    """Batch element ``k`` of a ``(T, b, ...)`` result."""
    return EpochResult(**{f.name: torch.as_tensor(getattr(result, f.name))[:, k] for f in dataclasses.fields(EpochResult)})


def _run_states(trajectories: Sequence[Trajectory], params: YumaParams, emission: int, exact: bool,
                payout: Payout) -> EpochResult:
    """Trajectories with a state per epoch, batched: ``(T, b, ...)``."""
    results: list[EpochResult] = []
    carried: dict[str, Any] = {}
    for t in range(trajectories[0].epochs):
        state = _stack_states([traj.states[t] for traj in trajectories])  # type: ignore[index]
        if carried:
            state = dataclasses.replace(state, **carried)
        result = epoch(state, params, emission, exact=exact, payout=payout)
        results.append(result)
        carried = {"bonds": result.bonds, "validator_permit": result.validator_permit,
                   "previous_consensus": result.consensus}
    return _stack_results(results)


def _run_weights(trajectories: Sequence[Trajectory], params: YumaParams, emission: int, exact: bool,
                 payout: Payout) -> EpochResult:
    """Trajectories where only the weights change, batched through ``run_epochs``: ``(T, b, ...)``."""
    start = _stack_states([traj.start for traj in trajectories])
    # u16 weights narrowed before stacking (run_epochs reads int16 / int32 without a copy)
    narrow = [_as_int_tensor(traj.weights, "weight_updates", start.weights.device, True, narrow=True)
              for traj in trajectories]
    updates = torch.stack(narrow, dim=1)
    results, _ = run_epochs(start, updates, params, emission, exact=exact, payout=payout)
    return results


#: The integer parameters a batch may carry per element.
_INT_FIELD_NAMES = tuple(name for name, _, _ in _INT_FIELDS)


def _shared_params(params: YumaParams) -> YumaParams:
    """``params`` with every per-element-capable integer field set to 0: what cases of one batch must share."""
    zeros: dict[str, Any] = dict.fromkeys(_INT_FIELD_NAMES, 0)
    return dataclasses.replace(params, **zeros)


def _group_key(trajectory: Trajectory, params: YumaParams) -> tuple[Any, ...]:
    return (_shared_params(params), trajectory.n, trajectory.epochs, trajectory.states is None)


def _batch_params(members: Sequence[YumaParams]) -> YumaParams:
    """One ``YumaParams`` for a batch: a field the members agree on stays a number, others become ``(b,)`` tensors."""
    values: dict[str, Any] = {}
    for name in _INT_FIELD_NAMES:
        column = [int(getattr(p, name)) for p in members]
        values[name] = column[0] if len(set(column)) == 1 else torch.tensor(column, dtype=torch.int64)
    return dataclasses.replace(members[0], **values)


def _run_grid(cases: Sequence[tuple[Trajectory, YumaParams]], emission: int = 1_000_000_000, *, exact: bool = True,
              payout: Payout = "chain") -> list[EpochResult]:
    """Run every (trajectory, parameters) case; returns one ``(T, n)`` result per case, in order.

    Cases of one size, length and kind whose parameters differ only in integer fields (kappa,
    bonds moving average, alpha bounds, ...) run as ONE batch, those fields given per element;
    the flags (Yuma 3, liquid alpha, path, ...) split batches.
    """
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, (trajectory, params) in enumerate(cases):
        groups.setdefault(_group_key(trajectory, params), []).append(index)
    out: list[EpochResult | None] = [None] * len(cases)
    for (_, _, _, weights_only), members in groups.items():
        trajectories = [cases[i][0] for i in members]
        params = _batch_params([cases[i][1] for i in members])
        run = _run_weights if weights_only else _run_states
        batch = run(trajectories, params, emission, exact, payout)
        for k, index in enumerate(members):
            out[index] = _member(batch, k)
    return [r for r in out if r is not None]
