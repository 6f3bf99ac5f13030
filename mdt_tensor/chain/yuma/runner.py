"""The public epoch functions: one epoch, the next state, and many epochs in a row.

``epoch`` and ``run_epochs`` read the state (``inputs``), pick the arithmetic (``arith``), run the
steps (``steps``) and hand the results back in the caller's array type; ``run_epochs`` carries
bonds, permits and consensus from one epoch to the next and can show a progress bar.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from ..._array import Array, is_array
from ..._validation import check_choice
from ...errors import DTypeError, ShapeError
from .arith import MAX_EXACT_N, ops_for
from .inputs import (
    _emission_tensor,
    _inputs_cat,
    _inputs_rows,
    _Inputs,
    _iter_updates,
    _params_for,
    _params_rows,
    _per_subnet,
    _prepare,
    _state_from_inputs,
    _updates_array,
)
from .steps import _Core, _epoch_core, _nonzero_rows
from .types import EpochResult, Payout, SubnetState, YumaParams

__all__ = ["epoch", "next_state", "run_epochs"]


def _check_args(params: YumaParams, payout: str, n: int, exact: bool) -> None:
    if not isinstance(params, YumaParams):
        raise DTypeError(f"Expected `params` to be a mt.yuma.YumaParams, but got {type(params).__name__}.")
    check_choice(payout, "payout", ("chain", "exact"))
    if exact and n > MAX_EXACT_N:
        raise ShapeError(f"The exact epoch supports subnets of up to {MAX_EXACT_N} uids, but got n = {n}.")


def _check_non_empty(x: _Inputs) -> None:
    if x.weights.shape[0] == 0 or x.n == 0:
        shape = (*x.batch_shape, x.n, x.n)
        raise ShapeError(f"Expected a non-empty batch of subnets with n >= 1, but got weights of shape {shape}.")


def _wrap_result(core: _Core, x: _Inputs) -> EpochResult:
    ops, origin = core.ops, x.origin
    batch, n = x.batch_shape, x.n

    def out(t: Tensor, matrix: bool = False) -> Any:
        return origin.wrap(t.reshape(*batch, n, n) if matrix else t.reshape(*batch, n))

    def u16(t: Tensor) -> Any:
        return out(ops.to_u16(t))

    def flt(t: Tensor) -> Any:
        return out(ops.to_float(t))

    return EpochResult(
        server_emission=out(core.server),
        validator_emission=out(core.validator),
        emission=out(core.chain_emission),
        dust=origin.wrap(core.dust.reshape(batch)),
        consensus=u16(core.consensus),
        incentive=u16(core.incentive),
        dividends=u16(core.dividends),
        validator_trust=u16(core.validator_trust),
        stake_weight=u16(core.stake_weight),
        consensus_float=flt(core.consensus),
        incentive_float=flt(core.incentive),
        dividends_float=flt(core.dividends),
        validator_trust_float=flt(core.validator_trust),
        stake_weight_float=flt(core.stake_weight),
        active_stake_float=flt(core.active_stake),
        bonds=out(core.bonds_u16, matrix=True),
        validator_permit=out(core.new_permit),
        active=out(core.active),
    )


def epoch(
    state: SubnetState,
    params: YumaParams = YumaParams(),
    emission: Array | int = 1_000_000_000,
    *,
    exact: bool = True,
    payout: Payout = "chain",
    dtype: torch.dtype | None = None,
    validate: bool = True,
) -> EpochResult:
    """Run one Yuma epoch for a subnet or a batch of subnets (``docs/design/yuma-epoch.md``).

    Args:
        state: the subnet(s): weights ``(*, n, n)``, stake ``(*, n)`` and the optional fields of
            :class:`SubnetState`.
        params: hyperparameters: numbers shared by the batch, or integer fields with one value
            per subnet (arrays of the batch shape ``(*)``; see :class:`YumaParams`).
        emission: wei to distribute this epoch, an int or ``(*)`` ints in ``[0, 2**63)``.
        exact: True: the chain's fixed point on int64, bit for bit. False: float (``dtype``).
            Exact mode reads integer stake exactly; float stake is read with ``60 - ceil(log2 n)``
            bits below each subnet's largest stake (then normalised exactly).
        payout: ``"chain"``: ``floor`` of each share like the chain, the rest is ``dust``;
            ``"exact"``: the same shares apportioned so that every subnet's emissions sum to
            ``emission`` exactly (largest remainder; ties to the lower uid, server before
            validator). The fast path apportions its float shares exactly in both modes.
            A subnet with no stake at all has no share to follow: it pays nothing and reports
            the whole emission as dust.
        dtype: float dtype of the fast path (default float64).
        validate: run the value checks (ranges, NaN, signs; they sync a GPU).

    Returns:
        :class:`EpochResult`, in the array type of ``state.weights``. The exact path gives the same
        bits on every device; the fast path's float sums may differ in the last bits between
        devices (its payouts are still whole wei that sum as stated).

    Raises:
        ShapeError, DTypeError, ValueRangeError: bad shapes, dtypes or values (first offender named).

    Example:
        >>> W = [[0, 65535, 0], [0, 0, 65535], [0, 65535, 0]]
        >>> state = SubnetState(weights=W, stake=[100, 0, 200])
        >>> result = epoch(state, emission=1000)
        >>> result.incentive.tolist(), result.emission.tolist(), int(result.dust)
        ([0, 65535, 0], [166, 500, 333], 1)
        >>> epoch(state, emission=1000, payout="exact").emission.tolist()
        [167, 500, 333]
    """
    x = _prepare(state, validate)
    ops = ops_for(exact, dtype, x.weights.device)
    _check_args(params, payout, x.n, exact)
    e = _emission_tensor(emission, x.batch_shape, x.weights.device, validate)
    _check_non_empty(x)
    p = _params_for(params, x.batch_shape, x.weights.device)
    return _wrap_result(_epoch_core(x, p, e, ops, payout), x)


def next_state(
    state: SubnetState,
    result: EpochResult,
    weights: Array | None = None,
    block: Array | int | None = None,
    *,
    blocks_per_epoch: int = 360,
    stake: Array | None = None,
    last_update: Array | None = None,
) -> SubnetState:
    """The state of the next epoch: the new bonds, permits and consensus carried over.

    Args:
        state: the state the epoch ran on.
        result: what :func:`epoch` returned for it.
        weights: the next epoch's weights ``(*, n, n)``; default: unchanged.
        block: the next epoch's block; default: ``state.block + blocks_per_epoch``.
        blocks_per_epoch: the block step when ``block`` is not given (the chain's tempo).
        stake: the next epoch's stake; default: unchanged.
        last_update: the next epoch's ``last_update``; default: the old one moved forward by
            the same number of blocks (every validator keeps its update rhythm, so activity
            does not decay over a long run).

    Returns:
        A new :class:`SubnetState` (the input is not modified).

    Example:
        >>> s = SubnetState(weights=[[0, 65535], [65535, 0]], stake=[1, 3], block=1000)
        >>> s2 = next_state(s, epoch(s))
        >>> int(s2.block), s2.validator_permit.tolist()
        (1360, [True, True])
    """
    x = _prepare(state, validate=False)
    if block is None:
        new_block = x.block + blocks_per_epoch
    else:
        new_block = _per_subnet(block, "block", x.batch_shape, x.weights.device, True)
    if last_update is None:
        last_update = x.origin.wrap((x.last_update + (new_block - x.block)).reshape(*x.batch_shape, x.n))
    wrapped_block: Any = x.origin.wrap(new_block.reshape(x.batch_shape)) if x.batch_shape else int(new_block.reshape(()))
    return dataclasses.replace(
        state,
        weights=state.weights if weights is None else weights,
        stake=state.stake if stake is None else stake,
        last_update=last_update,
        block=wrapped_block,
        validator_permit=result.validator_permit,
        bonds=result.bonds,
        previous_consensus=result.consensus,
        bonds_reset=None,  # an event, already applied to the bonds
    )


def _progress(total: int | None, enabled: bool) -> Any:
    """A tqdm bar when tqdm is installed (the ``progress`` extra), else a plain stderr counter."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _StderrProgress(total)
    return tqdm(total=total, desc="epochs", unit="epoch")


class _StderrProgress:
    def __init__(self, total: int | None) -> None:
        self.total, self.count = total, 0

    def update(self, steps: int = 1) -> None:
        self.count += steps
        if self.total is None or self.count == self.total or self.count % max(1, (self.total or 1) // 20) == 0:
            sys.stderr.write(f"\repochs: {self.count}/{self.total if self.total is not None else '?'}")
            sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


#: Bytes of one (b, r, n) working matrix per block of subnets on the CPU: the passes of one epoch
#: then run over memory that stays in the caches instead of streaming the whole batch.
_CPU_BLOCK_BYTES = 4 << 20


def _block_rows(x: _Inputs, first: Tensor, itemsize: int) -> int:
    """Subnets per block: the whole batch on an accelerator, cache-sized blocks on the CPU.

    The epoch's matrices hold the rows that can be non-zero (``steps._live_rows``); their count
    is estimated from the first epoch's weights ``first (b, n, n)`` and the starting bonds.
    """
    b, n = first.shape[0], x.n
    if first.device.type != "cpu":
        return b
    rows = _nonzero_rows(first) | _nonzero_rows(x.bonds)
    live = max(1, int(rows.sum(-1).max())) if b else 1
    # 8-byte matrices (the exact path's int64) get half the bytes: it keeps more temporaries
    # alive at once, and its speed does not depend on the block size here.
    budget = _CPU_BLOCK_BYTES if itemsize <= 4 else _CPU_BLOCK_BYTES // 2
    return max(1, min(b, budget // (live * n * itemsize)))


def _stack_results(blocks: list[list[_Core]], x: _Inputs, bonds: Tensor) -> EpochResult:
    """Per-block, per-epoch results as one :class:`EpochResult` with a leading epoch dimension.

    ``blocks[k][t]``: block k's epoch t; ``bonds``: ``(T, b, n, n)``, written by the epochs.
    """
    t = len(blocks[0])
    names = [f.name for f in dataclasses.fields(_Core) if f.name not in ("ops", "bonds_u16")]
    fields = {
        name: torch.cat([torch.stack([getattr(c, name) for c in cores]) for cores in blocks], dim=1).flatten(0, 1)
        for name in names
    }
    fields["bonds_u16"] = bonds.flatten(0, 1)
    stacked = _Core(**fields, ops=blocks[0][0].ops)
    return _wrap_result(stacked, dataclasses.replace(x, batch_shape=(t, *x.batch_shape)))


def run_epochs(
    state: SubnetState,
    weight_updates: Array | Iterable[Array],
    params: YumaParams = YumaParams(),
    emission: Array | int = 1_000_000_000,
    *,
    exact: bool = True,
    payout: Payout = "chain",
    dtype: torch.dtype | None = None,
    progress: bool = False,
    validate: bool = True,
) -> tuple[EpochResult, SubnetState]:
    """Run consecutive epochs, carrying bonds, permits and consensus from one to the next.

    Epoch t runs on ``weight_updates[t]``; between epochs the block advances by ``params.tempo``
    and everything else follows :func:`next_state`. The loop over epochs is inherent (each needs
    the previous bonds); subnets are batched: on the CPU in cache-sized blocks of subnets, each
    block running all its epochs before the next (the same bits as the whole batch at once), on
    an accelerator all at once. The consensus and the apportionment read a few values back to
    size their integer arithmetic, so each epoch syncs a GPU a few times.

    Args:
        state: the starting state (its ``weights`` are replaced by ``weight_updates[0]``).
        weight_updates: ``(T, *, n, n)`` u16 weights (any integer dtype; int16 / int32 / uint16
            are read without a widened copy), or an iterable of ``(*, n, n)`` arrays.
        params, emission, exact, payout, dtype, validate: as in :func:`epoch` (per-subnet
            parameters included).
        progress: show a progress bar (tqdm when installed, the ``progress`` extra; otherwise a
            one-line counter on stderr), counting epochs of each block of subnets.

    Returns:
        ``(results, final_state)``: results stacked with a leading epoch dimension ``T`` (the
        stacked ``bonds`` as int32), and the state after the last epoch (ready for the next one).

    Example:
        >>> W = torch.tensor([[[0, 65535, 0], [0, 0, 65535], [0, 65535, 0]]] * 3)  # (T, n, n)
        >>> results, final = run_epochs(SubnetState(W[0], [100, 0, 200]), W, emission=1000)
        >>> results.emission.shape, results.dust.tolist(), final.validator_permit.tolist()
        (torch.Size([3, 3]), [1, 1, 1], [True, False, True])
    """
    x = _prepare(state, validate)
    ops = ops_for(exact, dtype, x.weights.device)
    _check_args(params, payout, x.n, exact)
    _check_non_empty(x)
    p = _params_for(params, x.batch_shape, x.weights.device)
    e = _emission_tensor(emission, x.batch_shape, x.weights.device, validate)
    if is_array(weight_updates):
        stack = _updates_array(weight_updates, x, validate)
    else:  # an iterable: gathered first (the blocks need every epoch of their subnets)
        epochs = [w.to(torch.int32) for w in _iter_updates(weight_updates, x, validate)[0]]
        stack = torch.stack(epochs) if epochs else x.weights.new_empty((0, *x.weights.shape), dtype=torch.int32)
    total, b = stack.shape[0], stack.shape[1]
    if total == 0:
        raise ShapeError("Expected at least one weight update, but got none.")
    rows = _block_rows(x, stack[0], 4 if ops.dtype == torch.float32 else 8)
    starts = range(0, b, rows)
    bar = _progress(total * len(starts), progress)
    # Each epoch writes its u16 bonds straight into the stacked result (int32: half of int64).
    # Zeroed in one pass: writing rows into lazily zeroed pages costs far more; not numpy's huge
    # pages either (a request for them can stall for a compaction of the machine's memory).
    bonds = torch.zeros((total, b, x.n, x.n), dtype=torch.int32, device=x.weights.device)
    blocks, finals = [], []
    try:
        for start in starts:
            part = slice(start, min(b, start + rows))
            xb, pb, eb = _inputs_rows(x, part), _params_rows(p, part), e[part]
            cores = []
            for t in range(total):
                xb = dataclasses.replace(xb, weights=stack[t, part])
                core = _epoch_core(xb, pb, eb, ops, payout, bonds[t, part])
                cores.append(core)
                xb = _advance(xb, core, pb.tempo)
                if bar is not None:
                    bar.update(1)
            blocks.append(cores)
            finals.append(xb)
    finally:
        if bar is not None:
            bar.close()
    # The last epoch's weights and bonds, whole (the bonds copied: the final state does not share
    # the results' memory).
    x = _inputs_cat(finals, x.batch_shape, weights=stack[-1], bonds=bonds[-1].clone(),
                    weights_present=x.weights_present)
    return _stack_results(blocks, x, bonds), _state_from_inputs(x)


def _advance(x: _Inputs, core: _Core, blocks: int | Tensor) -> _Inputs:
    return dataclasses.replace(
        x,
        block=x.block + blocks,
        last_update=x.last_update + blocks,
        validator_permit=core.new_permit,
        bonds=core.bonds_u16,
        previous_consensus=core.ops.to_u16(core.consensus),
        bonds_reset=None,  # an event, already applied to the bonds
    )


