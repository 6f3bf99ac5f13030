"""One very large subnet, its neuron columns sharded over the ranks: consensus to dividends.

Rank r holds the columns ``W[:, cols_r]`` (and those of the bonds); the O(n) per-uid vectors
are whole on every rank. Four collectives carry what crosses columns: column widths, the int64
weight row sums, validator trust and the rank total, the dividends' row sums. Exact mode sums
integers (associative), so every output is bit for bit the single-process epoch's; fast mode
agrees to float rounding. Emissions are not computed here. Details: ``docs/design/distributed.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .. import fixed, weighted_median, weighted_median_fixed, yuma
from .._constants import U16_MAX
from .._validation import check_finite, check_non_negative, first_index
from ..errors import ShapeError, ValueRangeError
from .comm import Guard, shard_range

__all__ = ["ColumnShardResult", "column_sharded_epoch", "shard_columns"]

_ONE = 1 << 32



@dataclass
class ColumnShardResult:
    """The epoch outputs of a column-sharded subnet, on one rank.

    The per-uid vectors ``(n,)`` are whole and equal on every rank; ``bonds`` holds this rank's
    columns only. u16 fields are ``floor(x * 65535)`` as the chain stores them (int64); the
    ``*_float`` fields are the same quantities as floats (exact mode: the I32F32 value).

    Attributes:
        columns: the global columns this rank holds.
        consensus, incentive, dividends, validator_trust, stake_weight: ``(n,)`` u16.
        consensus_float, incentive_float, dividends_float, validator_trust_float,
            stake_weight_float, active_stake_float: ``(n,)`` floats.
        bonds: ``(n, len(columns))`` u16 bonds stored for the next epoch, this rank's columns.
        validator_permit: ``(n,)`` bool, the new permits.
        active: ``(n,)`` bool.
        comm_seconds: time this rank spent in collectives (transfers and waiting for the others).
    """

    columns: range
    consensus: Tensor
    incentive: Tensor
    dividends: Tensor
    validator_trust: Tensor
    stake_weight: Tensor
    consensus_float: Tensor
    incentive_float: Tensor
    dividends_float: Tensor
    validator_trust_float: Tensor
    stake_weight_float: Tensor
    active_stake_float: Tensor
    bonds: Tensor
    validator_permit: Tensor
    active: Tensor
    comm_seconds: float = 0.0


def shard_columns(state: yuma.SubnetState, rank: int, world_size: int) -> yuma.SubnetState:
    """This rank's share of one subnet: columns ``shard_range(n, rank, world_size)`` of the
    weights, bonds and ``weights_present``; the per-uid fields whole.

    Example:
        >>> s = yuma.SubnetState(weights=torch.arange(9).reshape(3, 3), stake=[1, 2, 3])
        >>> shard_columns(s, 1, 2).weights.tolist()
        [[2], [5], [8]]
    """
    cols = shard_range(int(torch.as_tensor(state.weights).shape[-1]), rank, world_size)

    def take(x: Any) -> Any:
        return None if x is None else torch.as_tensor(x)[..., cols.start:cols.stop]

    return yuma.SubnetState(**{
        **vars(state), "weights": take(state.weights), "bonds": take(state.bonds),
        "weights_present": take(state.weights_present),
    })


@dataclass
class _Uids:
    """The per-uid quantities every rank computes alike (spec B.3 steps 1-6)."""

    n: int
    active: Tensor
    stake: Tensor  # normalised stake (bits or floats)
    active_stake: Tensor
    old_permit: Tensor
    new_permit: Tensor
    is_owner: Tensor
    last_update: Tensor
    registration: Tensor
    block: int


def _vector(x: Any, name: str, n: int, device: torch.device, default: Any = None) -> Tensor:
    t = torch.as_tensor(default if x is None else x, device=device)
    if t.ndim == 0:
        t = t.expand(n)
    if tuple(t.shape) != (n,):
        raise ShapeError(f"Expected `{name}` of shape ({n},) (one per uid), but got shape {tuple(t.shape)}.")
    return t


def _quantize_float(stake: Tensor, top_bits: int) -> Tensor:
    """``floor(S * 2**shift)`` with the power of two from the largest stake's exponent (as the epoch)."""
    s = stake.to(torch.float64)
    largest = s.amax(-1, keepdim=True).contiguous()
    exponent = ((largest.view(torch.int64) >> 52) & 0x7FF) - 1023
    shift = (top_bits - 1 - exponent).clamp(-1000, 1000)
    return torch.floor(s * ((shift + 1023) << 52).view(torch.float64)).to(torch.int64)


def _topk(stake: Tensor, k: int, exact: bool) -> Tensor:
    """``is_topk_nonzero``: the k largest stakes, the higher uid first among equals, never zero."""
    n = stake.shape[-1]
    if exact:
        order = torch.argsort(stake * n + torch.arange(n, device=stake.device), descending=True)
    else:
        order = (n - 1) - torch.sort(stake.flip(-1), descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(n, device=stake.device))
    return (rank < k) & (stake > 0)


def _normalize(x: Tensor, exact: bool, total: Tensor | None = None, dim: int = -1) -> Tensor:
    """The chain's ``inplace_normalize`` (by ``total`` when given: a sum over all ranks)."""
    if total is None:
        total = x.sum(dim, keepdim=True)
    if exact:
        return fixed.fx_div(x, total)  # safe_div: 0 where the sum (hence x) is 0
    return x / torch.where(total > 0, total, torch.ones_like(total))


def _uids(state: yuma.SubnetState, p: yuma.YumaParams, exact: bool, dtype: torch.dtype, device: torch.device,
          validate: bool) -> _Uids:
    stake_raw = torch.as_tensor(state.stake, device=device)
    n = stake_raw.shape[-1] if stake_raw.ndim == 1 else -1
    if n < 1:
        raise ShapeError(f"Expected `stake` of shape (n,) for one subnet, but got shape {tuple(stake_raw.shape)}.")
    stake_raw = stake_raw.to(torch.float64) if stake_raw.is_floating_point() else stake_raw.to(torch.int64)
    if validate:
        check_finite(stake_raw, "stake")
        check_non_negative(stake_raw, "stake")
    block_default = 1 if state.last_update is None else int(torch.as_tensor(state.last_update).max().clamp(min=1))
    block = int(block_default if state.block is None else state.block)  # type: ignore[arg-type]
    last_update = _vector(state.last_update, "last_update", n, device, block).to(torch.int64)
    registration = _vector(state.block_at_registration, "block_at_registration", n, device, 0).to(torch.int64)
    owner = int(state.owner_uid)  # type: ignore[arg-type]
    uids = torch.arange(n, device=device)
    is_owner = uids == owner
    sparse = p.path == "sparse"
    active = last_update + p.activity_cutoff >= block
    below = stake_raw < p.stake_threshold
    if sparse:
        below &= ~is_owner
    raw = stake_raw.masked_fill(below, 0)
    if exact:
        quantized = raw if not raw.is_floating_point() else _quantize_float(raw, 60 - max(n - 1, 1).bit_length())
        stake = fixed.normalize_i64f64_to_i32f32(quantized, validate=False)
    else:
        stake = _normalize(raw.to(dtype), exact)
    new_permit = _topk(stake, int(p.max_allowed_validators), exact)
    if state.validator_permit is None:
        old_permit = new_permit
    else:
        old_permit = _vector(state.validator_permit, "validator_permit", n, device).to(torch.bool)
    if sparse:
        new_permit, old_permit = new_permit | is_owner, old_permit | is_owner
    active_stake = _normalize(torch.where(active & old_permit, stake, torch.zeros_like(stake)), exact)
    return _Uids(n, active, stake, active_stake, old_permit, new_permit, is_owner, last_update, registration, block)


@dataclass
class _Local:
    """This rank's validated column block."""

    uids: _Uids
    weights: Tensor  # (n, c) int64 u16
    bonds: Tensor  # (n, c) int64 u16
    present: Tensor | None  # (n, c) bool


def _matrix(x: Any, name: str, n: int, device: torch.device, validate: bool) -> Tensor:
    t = torch.as_tensor(x, device=device)
    if t.ndim != 2 or t.shape[0] != n:
        raise ShapeError(f"Expected `{name}` of shape ({n}, columns) (this rank's columns), but got {tuple(t.shape)}.")
    if t.dtype == torch.bool or t.is_floating_point():
        raise ShapeError(f"Expected `{name}` to hold u16 integers, but got dtype {t.dtype}.")
    t = t.to(torch.int64)
    if validate:
        bad = first_index((t < 0) | (t > U16_MAX))
        if bad is not None:
            raise ValueRangeError(f"Expected `{name}` in [0, 65535], but found {int(t[bad])} at index {bad}.")
    return t


def _read(state: yuma.SubnetState, p: yuma.YumaParams, exact: bool, dtype: torch.dtype, device: torch.device,
          validate: bool) -> _Local:
    if state.n_valid is not None:
        raise ValueRangeError("The column-sharded epoch runs one unpadded subnet: pass `n_valid=None`.")
    uids = _uids(state, p, exact, dtype, device, validate)
    weights = _matrix(state.weights, "weights", uids.n, device, validate)
    bonds = (torch.zeros_like(weights) if state.bonds is None
             else _matrix(state.bonds, "bonds", uids.n, device, validate))
    if bonds.shape != weights.shape:
        raise ShapeError(f"Expected `bonds` of the shape of `weights` {tuple(weights.shape)}, but got {tuple(bonds.shape)}.")
    present = None if state.weights_present is None else torch.as_tensor(state.weights_present, device=device).to(torch.bool)
    if present is not None and present.shape != weights.shape:
        raise ShapeError(f"Expected `weights_present` of shape {tuple(weights.shape)}, but got {tuple(present.shape)}.")
    return _Local(uids, weights, bonds, present)


def _masked_weights(local: _Local, cols: range, sparse: bool) -> Tensor:
    """Step 7's masks on this block: permit rows, outdated cells, the diagonal (the owner's kept if sparse)."""
    u = local.uids
    keep = u.old_permit.unsqueeze(-1) & (u.last_update.unsqueeze(-1) > u.registration[cols.start:cols.stop])
    rows = torch.arange(cols.start, cols.stop, device=keep.device)
    diagonal = keep[rows, rows - cols.start]
    keep[rows, rows - cols.start] = diagonal & u.is_owner[rows] if sparse else False
    if local.present is not None:
        keep &= local.present
    return local.weights.masked_fill(~keep, 0)


def _to_u16(x: Tensor, exact: bool) -> Tensor:
    if exact:
        return fixed.fx_to_u16(x)
    return torch.floor(x.to(torch.float64) * U16_MAX).clamp_(0, U16_MAX).to(torch.int64)


def _mul(a: Tensor, b: Tensor | int | float, exact: bool) -> Tensor:
    """I32F32 ``a * b`` (floor) or the float product; a scalar ``b`` stays a Python number in float
    mode (a 0-d tensor would round it to float32 first)."""
    if not exact:
        return a * b
    return fixed.fx_mul(a, b if isinstance(b, Tensor) else torch.tensor(b, dtype=torch.int64, device=a.device))


@dataclass
class _Consensus:
    weights: Tensor  # row-normalised
    consensus: Tensor  # (c,)
    clipped: Tensor
    ranks: Tensor  # (c,)


def _consensus(w_int: Tensor, row_sums: Tensor, local: _Local, p: yuma.YumaParams, exact: bool,
               dtype: torch.dtype) -> _Consensus:
    """Steps 7 (row normalisation) to 11 (ranks) on this block, given the global row sums."""
    stake = local.uids.active_stake
    if exact:
        weights = (w_int << 32).div_(row_sums.clamp(min=1).unsqueeze(-1), rounding_mode="floor")
        consensus = weighted_median_fixed(weights, stake, (p.kappa << 32) // U16_MAX, validate=False)
    else:
        weights = w_int.to(dtype) / torch.where(row_sums > 0, row_sums, 1).to(dtype).unsqueeze(-1)
        consensus = weighted_median(weights, stake, p.kappa / U16_MAX, validate=False)
    clipped = torch.minimum(weights, consensus.unsqueeze(-2))
    ranks = fixed.fx_mul(stake.unsqueeze(-1), clipped).sum(-2) if exact else (stake.unsqueeze(-2) @ clipped)[0]
    return _Consensus(weights, consensus, clipped, ranks)


def _bonds(c: _Consensus, incentive: Tensor, local: _Local, cols: range, p: yuma.YumaParams, exact: bool,
           dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Step 12-13 on this block: ``(partial dividend row sums (n,), new u16 bonds (n, c))``."""
    u = local.uids
    one: Any = _ONE if exact else 1.0
    beta: Any = (p.bonds_penalty << 32) // U16_MAX if exact else p.bonds_penalty / U16_MAX
    if beta == 0:
        bond_weights = c.weights
    elif beta == one:
        bond_weights = c.clipped
    else:
        bond_weights = c.weights + _mul(c.clipped - c.weights, beta, exact)
    fresh = max(u.block - p.tempo, 0) <= u.registration[cols.start:cols.stop]
    old = local.bonds.masked_fill(fresh.unsqueeze(-2), 0)
    alpha: Any = fixed.fx_bonds_ema_alpha(p.bonds_moving_average) if exact else 1.0 - p.bonds_moving_average / 1_000_000
    rest = one - alpha
    if p.yuma3:
        bonds = fixed.fx_from_u16_proportion(old, validate=False) if exact else old.to(dtype) / U16_MAX
        ema = _mul(bond_weights, alpha, exact) + _mul(bonds, rest, exact)
        partial = _mul(incentive.unsqueeze(-2), _normalize(ema, exact, dim=-2), exact).sum(-1)
        stored = ema
    else:
        if exact:
            bonds = (old << 32).div_(old.sum(-2, keepdim=True).clamp(min=1), rounding_mode="floor")
        else:
            bonds = _normalize(old.to(dtype), exact, dim=-2)
        delta = _normalize(_mul(u.active_stake.unsqueeze(-1), bond_weights, exact), exact, dim=-2)
        ema = _normalize(_mul(delta, alpha, exact) + _mul(bonds, rest, exact), exact, dim=-2)
        if exact:
            partial = fixed.fx_mul(incentive.unsqueeze(-2), ema).sum(-1)
            stored = fixed.fx_col_max_upscale(ema)
        else:
            partial = (ema @ incentive.unsqueeze(-1))[:, 0]
            stored = ema / ema.amax(-2, keepdim=True).clamp(min=1e-300)
    new_bonds = _to_u16(stored, exact).masked_fill_(~u.new_permit.unsqueeze(-1), 0)
    if p.path == "dense":
        untouched = (~u.new_permit & ~u.old_permit).unsqueeze(-1)
        new_bonds = torch.where(untouched, local.bonds, new_bonds)
    return partial, new_bonds


def column_sharded_epoch(
    state: yuma.SubnetState,
    params: yuma.YumaParams = yuma.YumaParams(),
    *,
    exact: bool = True,
    dtype: torch.dtype | None = None,
    group: Any = None,
    device: str | torch.device | None = None,
    validate: bool = True,
) -> ColumnShardResult:
    """The epoch of one subnet whose weight columns are spread over the ranks (spec B.3-B.5, steps 1-13).

    Every rank calls this with its own block of columns; the ranks' blocks, in rank order, must
    tile ``0..n-1`` (:func:`shard_columns` cuts them). Gives consensus, incentive, validator
    trust, dividends, the stake weights, permits and this rank's columns of the new bonds, equal to
    ``mt.yuma.epoch`` of the whole subnet: bit for bit in exact mode, to float rounding in fast
    mode. Original Yuma and Yuma 3 with a scalar alpha, sparse and dense paths; not liquid alpha
    and not padded subnets (``n_valid``). Emissions are left to the caller (from the full
    incentive and dividends).

    Args:
        state: ``weights`` ``(n, c)`` this rank's columns of the u16 weights; ``bonds`` and
            ``weights_present`` the same columns (optional); the per-uid fields ``(n,)`` whole;
            ``block`` and ``owner_uid`` ints.
        params: hyperparameters (``liquid_alpha`` must be off).
        exact, dtype, validate: as in ``mt.yuma.epoch``.
        group: the process group (default: the world).
        device: where this rank computes (default: the current CUDA device under NCCL, else CPU).

    Returns:
        :class:`ColumnShardResult`.

    Raises:
        DistributedJobError: on every rank, when any rank's part raised (each named);
            CollectiveError when a rank died or the group's timeout passed.
    """
    if params.liquid_alpha:
        raise ValueRangeError("The column-sharded epoch does not implement liquid alpha (YumaParams.liquid_alpha).")
    if params.per_element:
        raise ValueRangeError("The column-sharded epoch runs one subnet: per-element YumaParams do not apply.")
    guard = Guard(group, "mdt_tensor.distributed.column_sharded_epoch")
    where = torch.device(device) if device is not None else guard.device
    fdtype = torch.float64 if dtype is None else dtype
    value_dtype = torch.int64 if exact else fdtype
    rank, world = guard.rank, guard.world_size
    # Each step runs under the guard; a rank whose step raised joins the next collective with a
    # placeholder and the failure flag, and every rank raises there.

    read = guard.run(lambda: _read(state, params, exact, fdtype, where, validate), lambda: None)
    shape = torch.zeros(2 * world, dtype=torch.int64)
    if read is not None:
        shape[rank], shape[world + rank] = read.weights.shape[1], read.uids.n
    shape = guard.all_reduce_sum("column widths", shape)  # raises here if a rank could not read its block
    assert read is not None  # from here on, every rank holds its block (a failure raised above)
    local = read
    widths, sizes = shape[:world].tolist(), shape[world:].tolist()
    n = max(sizes)
    if len(set(sizes)) != 1 or sum(widths) != n:
        raise ShapeError(f"Expected the ranks' column blocks to tile one subnet, but got widths {widths} for n = {sizes}.")
    cols = range(sum(widths[:rank]), sum(widths[: rank + 1]))

    w_int = guard.run(lambda: _masked_weights(local, cols, params.path == "sparse"),
                      lambda: torch.zeros((n, len(cols)), dtype=torch.int64))
    row_sums = guard.all_reduce_sum("weight row sums", w_int.sum(-1))

    found = guard.run(lambda: _consensus(w_int, row_sums, local, params, exact, fdtype), lambda: None)
    sums = torch.zeros(n + 1, dtype=value_dtype, device=where)
    if found is not None:
        sums = torch.cat([found.clipped.sum(-1), found.ranks.sum().reshape(1)]).to(value_dtype)
    sums = guard.all_reduce_sum("trust and rank sums", sums)
    assert found is not None  # as above
    block = found
    validator_trust, rank_total = sums[:n], sums[n:]

    def bonds_step() -> tuple[Tensor, Tensor]:
        incentive = _normalize(block.ranks, exact, total=rank_total)
        partial, bonds = _bonds(block, incentive, local, cols, params, exact, fdtype)
        columns = torch.zeros((3, n), dtype=value_dtype, device=where)
        columns[0] = partial
        columns[1, cols.start:cols.stop] = block.consensus
        columns[2, cols.start:cols.stop] = incentive
        return columns, bonds

    columns, new_bonds = guard.run(bonds_step, lambda: (torch.zeros((3, n), dtype=value_dtype), torch.zeros(0)))
    columns = guard.all_reduce_sum("dividends, consensus and incentive", columns)
    u = local.uids
    if params.yuma3:
        dividends = _normalize(_mul(columns[0], u.active_stake, exact), exact)
    else:
        dividends = _normalize(columns[0], exact)
    consensus, incentive = columns[1], columns[2]

    def floats(x: Tensor) -> Tensor:
        return fixed.fx_to_float(x) if exact else x

    return ColumnShardResult(
        columns=cols,
        consensus=_to_u16(consensus, exact),
        incentive=_to_u16(incentive, exact),
        dividends=_to_u16(dividends, exact),
        validator_trust=_to_u16(validator_trust, exact),
        stake_weight=_to_u16(u.stake, exact),
        consensus_float=floats(consensus),
        incentive_float=floats(incentive),
        dividends_float=floats(dividends),
        validator_trust_float=floats(validator_trust),
        stake_weight_float=floats(u.stake),
        active_stake_float=floats(u.active_stake),
        bonds=new_bonds,
        validator_permit=u.new_permit,
        active=u.active,
        comm_seconds=guard.comm_seconds,
    )
