"""The steps of one epoch, in the chain's order, on a prepared batch (no Python loop over subnets or uids).

``_epoch_core`` calls one function per step of subtensor's ``epoch_mechanism``
(``pallets/subtensor/src/epoch/run_epoch.rs``): activity, stake, permits, active stake, weights,
consensus and clipping, incentive, bond weights, bonds and dividends, emission, stored bonds.
Each is written once for both arithmetics (``arith._Exact`` / ``arith._Float``); the step list
and the sparse/dense differences are in ``docs/design/yuma-epoch.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..._constants import U16_MAX
from ..._cpu.threads import blocks_in_caller
from .arith import Ops, apportion_payout, payout_weights
from .inputs import _Inputs
from .types import Payout, YumaParams

__all__: list[str] = []


@dataclass
class _Core:
    """Internal results of one epoch, flattened (b, ...), as torch tensors."""

    server: Tensor
    validator: Tensor
    chain_emission: Tensor  # the Emission item: the chain's floors, or server + validator (payout="exact")
    dust: Tensor
    stake_weight: Tensor
    active_stake: Tensor
    consensus: Tensor
    incentive: Tensor
    dividends: Tensor
    validator_trust: Tensor
    bonds_u16: Tensor
    new_permit: Tensor
    active: Tensor
    ops: Any = field(repr=False)


@dataclass
class _Epoch:
    """What every step reads: the batch, the parameters, the arithmetic and the owner mask."""

    x: _Inputs
    p: YumaParams
    ops: Ops
    sparse: bool  # the production path (``epoch_mechanism``), not the dense test path
    is_owner: Tensor  # (b, n); owner -1 matches nobody
    #: (b, r): the uid of each row of the (b, r, n) matrices the epoch computes on, or None when
    #: they are all n rows (see ``_live_rows``).
    rows: Tensor | None = None

    def row_values(self, v: Tensor) -> Tensor:
        """A per-uid vector ``(b, n)`` read at the computed rows: ``(b, r)``."""
        return v if self.rows is None else v.gather(-1, self.rows)

    def row_matrix(self, m: Tensor) -> Tensor:
        """The computed rows ``(b, r, n)`` of a ``(b, n, n)`` matrix (whole rows copied at once)."""
        if self.rows is None:
            return m
        b, r = self.rows.shape
        return m.reshape(b * m.shape[-2], m.shape[-1]).index_select(0, self.flat_rows()).view(b, r, m.shape[-1])

    def flat_rows(self) -> Tensor:
        """The computed rows as indices into the ``(b * n, n)`` view of a ``(b, n, n)`` matrix."""
        assert self.rows is not None
        offsets = torch.arange(0, self.rows.shape[0] * self.x.n, self.x.n, device=self.rows.device)
        return (self.rows + offsets.unsqueeze(-1)).reshape(-1)

    def uid_values(self, v: Tensor) -> Tensor:
        """A per-row vector ``(b, r)`` back in uid order ``(b, n)``; the rows not computed are 0."""
        if self.rows is None:
            return v
        return v.new_zeros((v.shape[0], self.x.n)).scatter_(-1, self.rows, v)


def _reset_bonds(x: _Inputs, p: YumaParams) -> _Inputs:
    """Before step 1: the bonds columns of the uids in ``bonds_reset`` removed (``do_reset_bonds``).

    The chain removes ``(uid, value)`` from every stored bonds row when the uid's hotkey publishes
    a metadata commitment and ``BondsResetOn`` holds; an absent stored bond reads as 0.
    """
    if not p.bonds_reset_enabled or x.bonds_reset is None:
        return x
    return dataclasses.replace(x, bonds=x.bonds.masked_fill(x.bonds_reset.unsqueeze(-2), 0))


def _block_ranks(rows: Tensor, columns: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Ranks of the int64 blocks ``rows (b, r)`` and ``columns (b, n)`` among both, in ``dtype``.

    The rank is the count of strictly smaller values, so ``rows_i > columns_j`` exactly when
    ``rank_i > rank_j``: a block comparison of every cell becomes ``(rank_i - rank_j).clamp(0, 1)``,
    a 0/1 mask in the arithmetic's own dtype (ranks are below ``r + n``: exact in float32). On
    the CPU that is several times cheaper than an int64 comparison into a bool tensor and the
    bool mask's later use.
    """
    ordered = torch.cat((rows, columns), dim=-1).sort(dim=-1).values
    return (torch.searchsorted(ordered, rows.contiguous()).to(dtype),
            torch.searchsorted(ordered, columns.contiguous()).to(dtype))


def _commit_reveal_mask(c: _Epoch, keep: Tensor) -> None:
    """Step 7, commit-reveal: drop W_ij when validator i's earliest active commit predates j's registration.

    Only the sparse path has this mask (the chain's dense test path does not); ``keep`` is the
    ``(b, r, n)`` 0/1 mask, updated in place. A commit block of -1 is "no active commit".
    """
    x = c.x
    if not (c.sparse and c.p.commit_reveal_weights_enabled) or x.commit_block is None:
        return
    commit_block = c.row_values(x.commit_block)
    commit_rank, registered_rank = _block_ranks(commit_block, x.block_at_registration, keep.dtype)
    commit_rank.masked_fill_(commit_block < 0, x.n + commit_block.shape[-1])  # above every rank: drops nothing
    committed_before = (registered_rank.unsqueeze(-2) - commit_rank.unsqueeze(-1)).clamp_(0, 1)
    keep.sub_(committed_before).clamp_(min=0)


def _cell(value: Any) -> Any:
    """A per-subnet parameter ``(b, 1)`` as ``(b, 1, 1)``, to meet ``(b, n, n)`` cells; a number as is."""
    return value.unsqueeze(-1) if isinstance(value, Tensor) else value


def _is(value: Any, constant: Any) -> bool:
    """Whether a parameter is the number ``constant`` for the whole batch (not a per-subnet tensor)."""
    return not isinstance(value, Tensor) and value == constant


def _activity(c: _Epoch) -> Tensor:
    """Steps 1-2: uids whose last update is within the activity cutoff (the outdated mask comes with the weights)."""
    x = c.x
    return (x.last_update >= x.block - c.p.activity_cutoff) & x.valid  # no int64 overflow near 2**63


def _stake(c: _Epoch) -> Tensor:
    """Steps 3-4: the stake threshold (owner exempt on the sparse path), then the stake proportions."""
    raw = c.x.stake.masked_fill(~c.x.valid, 0)
    below = raw < c.p.stake_threshold
    if c.sparse:
        below = below & ~c.is_owner
    return c.ops.stake_proportions(raw.masked_fill(below, 0), c.x.valid)


def _permits(c: _Epoch, stake: Tensor) -> tuple[Tensor, Tensor]:
    """Step 5: the new top-k permits and the stored ones (the owner forced on the sparse path)."""
    valid = c.x.valid
    n = stake.shape[-1]
    order = c.ops.descending_order(stake)  # is_topk_nonzero: higher uid first among equal stakes
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(n, device=stake.device).expand_as(order))
    new_permit = (rank < c.p.max_allowed_validators) & (stake > 0) & valid
    old_permit = c.x.validator_permit if c.x.validator_permit is not None else new_permit
    old_permit = old_permit & valid
    if c.sparse:
        new_permit = new_permit | (c.is_owner & valid)
        old_permit = old_permit | (c.is_owner & valid)
    return new_permit, old_permit


def _active_stake(c: _Epoch, stake: Tensor, active: Tensor, old_permit: Tensor) -> Tensor:
    """Step 6: the stake of active permitted validators, normalised."""
    zero = torch.zeros((), dtype=c.ops.dtype, device=stake.device)
    return c.ops.normalize(torch.where(active & old_permit, stake, zero))


def _nonzero_rows(matrix: Tensor) -> Tensor:
    """The rows ``(b, n)`` of a u16 matrix ``(b, n, n)`` that hold a non-zero value (``amax`` is the fast "any")."""
    return matrix.amax(-1) > 0


def _live_rows(x: _Inputs, old_permit: Tensor) -> Tensor | None:
    """The rows of W and B that can hold anything: ``(b, r)`` uids, or None when all n can.

    A row of W is kept only for an old permit, so only permitted validators that set weights
    and uids with stored bonds have rows that are not all zero. Every other row of W, B and
    the clipped weights is 0, adds nothing to a sum over validators and stores empty bonds;
    its stake only votes 0 in the consensus (``arith._rows_median`` adds it there as one mass).
    The epoch therefore runs on the ``r`` rows that can be non-zero: live rows first in uid
    order, then the first dead ones of a subnet with fewer (they compute as the zeros they
    are). Validators that set weights are a small part of a subnet (at most the permits,
    64 of 256 uids or more on the chain), so this saves the bulk of the epoch's work.
    Reads ``r`` back (one sync on a GPU).
    """
    live = (old_permit & _nonzero_rows(x.weights)) | _nonzero_rows(x.bonds)
    count = max(1, int(live.sum(-1).max()))
    if count == x.n:
        return None
    return torch.sort((~live).to(torch.uint8), dim=-1, stable=True).indices[:, :count]


def _weights(c: _Epoch, old_permit: Tensor) -> tuple[Tensor, Tensor]:
    """Step 7: permit rows, the diagonal (except the owner's on the sparse path), outdated cells; rows normalised.

    Returns the normalised weights and the 0/1 mask of the cells kept (the arithmetic's dtype).
    """
    x = c.x
    # A cell is outdated unless its validator's last update came after the uid's registration.
    updated_rank, registered_rank = _block_ranks(c.row_values(x.last_update), x.block_at_registration, c.ops.dtype)
    updated_rank.masked_fill_(~c.row_values(old_permit), -1)  # below every rank: the row is dropped
    if x.padded:
        registered_rank.masked_fill_(~x.valid, x.n + updated_rank.shape[-1])  # above every rank
    keep = (updated_rank.unsqueeze(-1) - registered_rank.unsqueeze(-2)).clamp_(0, 1)
    _commit_reveal_mask(c, keep)
    _drop_self_weights(c, keep)
    if x.weights_present is not None:
        keep.mul_(c.ops.mask(c.row_matrix(x.weights_present)))
    return c.ops.normalize_u16(c.row_matrix(x.weights), keep, dim=-1), keep


def _drop_self_weights(c: _Epoch, keep: Tensor) -> None:
    """The cells of a validator's weight on itself zeroed in ``keep (b, r, n)``, the owner's kept on the sparse path."""
    if c.rows is None:
        diagonal = keep.diagonal(dim1=-2, dim2=-1)  # a view: the rule is applied in place
        if c.sparse:
            diagonal.mul_(c.ops.mask(c.is_owner))
        else:
            diagonal.zero_()
        return
    self_cells = c.rows.unsqueeze(-1)  # (b, r, 1): the column of each row's own uid
    if c.sparse:
        kept = keep.gather(-1, self_cells).mul_(c.ops.mask(c.row_values(c.is_owner)).unsqueeze(-1))
        keep.scatter_(-1, self_cells, kept)
    else:
        keep.scatter_(-1, self_cells, 0)


def _consensus(c: _Epoch, weights: Tensor, active_stake: Tensor, in_place: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Steps 8-10: the stake-weighted median consensus, the clipped weights and validator trust.

    ``weights``: the computed rows; ``active_stake``: every uid's ``(b, n)``; the trust is per row.

    ``in_place``: the clipped weights may overwrite ``weights`` (never read again).
    """
    kappa: Any = c.ops.const_ratio(c.p.kappa, U16_MAX)  # int bits (exact) or float; or (b, 1)
    if isinstance(kappa, Tensor):
        kappa = kappa.squeeze(-1)  # the median's batch shape (b,)
    consensus = c.ops.weighted_median(weights, active_stake, kappa, c.rows)
    if in_place:
        clipped = torch.minimum(weights, consensus.unsqueeze(-2), out=weights)
    else:
        clipped = torch.minimum(weights, consensus.unsqueeze(-2))
    return consensus, clipped, clipped.sum(-1)


def _bond_weights(c: _Epoch, weights: Tensor, clipped: Tensor, beta: Any) -> Tensor:
    """Step 12: the weights the bonds see, ``W + beta * (clipped - W)`` (``beta``: a number or ``(b, 1)``)."""
    if _is(beta, 0):
        return weights
    if _is(beta, c.ops.one):
        return clipped
    return weights + c.ops.mul_const(clipped - weights, _cell(beta))


def _bond_cells(
    c: _Epoch, beta: Any, keep: Tensor, weights: Tensor, consensus: Tensor, bond_weights: Tensor
) -> Tensor:
    """The cells the sparse path keeps in the bond weights (only the liquid-alpha EMA can tell).

    ``keep``: the 0/1 mask of the weights' cells (``_weights``).
    """
    present = keep > 0
    if not c.sparse:
        return torch.ones_like(present)
    if _is(beta, 0):
        return present
    clip_cells = present & ~((weights > consensus.unsqueeze(-2)) & (consensus.unsqueeze(-2) <= 0))
    if _is(beta, c.ops.one):  # col_clip_sparse drops W > C where C <= 0
        return clip_cells
    if not isinstance(beta, Tensor):
        return bond_weights > 0  # interpolate_sparse keeps positive cells only
    beta = _cell(beta)
    return torch.where(beta == 0, present, torch.where(beta == c.ops.one, clip_cells, bond_weights > 0))


def _original_bonds(
    c: _Epoch, bond_weights: Tensor, bonds_kept: Tensor, active_stake: Tensor, incentive: Tensor, in_place: bool
) -> tuple[Tensor, Tensor]:
    """Step 13, original Yuma: the bonds EMA of stake-weighted bond weights; dividends and stored bonds.

    ``bonds_kept``: the 0/1 mask of the stored bonds that count (``_bonds_kept``);
    ``active_stake``: at the computed rows ``(b, r)``; ``in_place``: ``bond_weights`` may be
    overwritten (the float path, when nothing reads it again).
    """
    ops = c.ops
    bonds = ops.normalize_u16(c.row_matrix(c.x.bonds), bonds_kept, dim=-2)
    weighed = bond_weights.mul_(active_stake.unsqueeze(-1)) if in_place else ops.mul(active_stake.unsqueeze(-1), bond_weights)
    delta = ops.normalize_(weighed, dim=-2)
    alpha: Any = _cell(ops.bonds_ema_alpha(c.p.bonds_moving_average))
    ema = ops.normalize_(ops.ema(delta, bonds, alpha, consume=True), dim=-2)
    dividends = ops.normalize(ops.mat_vec(ema, incentive))
    return dividends, ops.col_max_upscale_(ema)  # the EMA is not read again


def _yuma3_bonds(
    c: _Epoch, bond_weights: Tensor, cells: Callable[[], Tensor], bonds_kept: Tensor, consensus: Tensor,
    active_stake: Tensor, incentive: Tensor,
) -> tuple[Tensor, Tensor]:
    """Step 13, Yuma 3: the bonds EMA (``compute_bonds_sparse``); dividends and stored bonds.

    ``bonds_kept``: as in ``_original_bonds``; ``active_stake``: at the computed rows ``(b, r)``.
    """
    ops = c.ops
    bonds = ops.u16_proportion(c.row_matrix(c.x.bonds)).mul_(bonds_kept)
    ema = _yuma3_ema(c, bond_weights, cells, bonds, consensus)
    ema_norm = ops.normalize(ema, dim=-2)
    per_validator = ops.mul(incentive.unsqueeze(-2), ema_norm).sum(-1)
    return ops.normalize(ops.mul(per_validator, active_stake)), ema


def _yuma3_ema(c: _Epoch, weights: Tensor, cells: Callable[[], Tensor], bonds: Tensor, consensus: Tensor) -> Tensor:
    """Yuma 3 bonds EMA: scalar alpha, or liquid alpha per cell (``alpha_sigmoid``)."""
    ops, p, x = c.ops, c.p, c.x
    ema_alpha: Any = _cell(ops.bonds_ema_alpha(p.bonds_moving_average))
    # both terms >= 0; without liquid alpha nothing reads the bond weights or the bonds again
    plain = ops.ema(weights, bonds, ema_alpha, consume=not p.liquid_alpha)
    if not p.liquid_alpha:
        return plain
    reference = _liquid_reference(c, consensus).masked_fill(~x.valid, 0)
    low: Any = _cell(ops.const_ratio(p.alpha_low, U16_MAX))  # int bits (exact) or float; or (b, 1, 1)
    high: Any = _cell(ops.const_ratio(p.alpha_high, U16_MAX))
    one = ops.one
    buy = (weights - reference.unsqueeze(-2)).clamp(0, one)
    sell = (bonds - weights).clamp(0, one)
    diff = torch.where(weights >= bonds, buy, sell)
    steepness: Any = _cell(ops.steepness(p.alpha_sigmoid_steepness))
    alpha = ops.sigmoid_alpha(diff, steepness, low, high)
    decayed = ops.mul(one - alpha, bonds)
    liquid = (decayed + ops.mul(alpha, weights).clamp(min=0)).clamp(max=one)
    liquid = torch.where(cells(), liquid, 0).clamp(min=0)
    use_liquid = (reference != 0).any(-1).view(-1, 1, 1)
    return torch.where(use_liquid, liquid, plain)


def _liquid_reference(c: _Epoch, consensus: Tensor) -> Tensor:
    """The consensus the liquid alpha compares against: this epoch's or the stored previous one."""
    mode, previous = c.p.liquid_alpha_consensus_mode, c.x.previous_consensus
    if previous is None or mode == "current":
        return consensus
    if mode == "previous" or _is(c.p.bonds_penalty, U16_MAX):
        return c.ops.u16_proportion(previous)
    if not isinstance(c.p.bonds_penalty, Tensor):
        return consensus
    return torch.where(c.p.bonds_penalty == U16_MAX, c.ops.u16_proportion(previous), consensus)  # auto, per subnet


def _emission(
    c: _Epoch, incentive: Tensor, dividends: Tensor, active_stake: Tensor, stake: Tensor, emission: Tensor, payout: Payout
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Step 14: shares of ``I + D`` (or of the stake when nothing is weighted), floored or apportioned.

    Returns server and validator wei, the ``Emission`` item (the chain's own floors of the
    combined shares, or with ``payout="exact"`` server + validator) and the dust.
    """
    combined = incentive + dividends
    total = combined.sum(-1, keepdim=True)
    nothing = total <= 0
    fallback = torch.where(active_stake.sum(-1, keepdim=True) > 0, active_stake, stake)
    totals = emission.squeeze(-1)  # (b,)
    if payout == "chain":
        server, validator, chain_emission = c.ops.chain_payout(
            incentive, dividends, combined, total, nothing, fallback, emission
        )
    else:
        server_w, validator_w = payout_weights(incentive, dividends, nothing, fallback)
        server, validator = apportion_payout(totals, server_w, validator_w)
        chain_emission = server + validator
    dust = totals - (server + validator).sum(-1)
    return server, validator, chain_emission, dust


def _bonds_kept(c: _Epoch) -> Tensor:
    """The 0/1 mask of the stored bonds the epoch reads: ``(b, 1, n)``, ``(b, r, n)`` with padding.

    The bonds of uids registered since the last tempo are dropped (``last_tempo <= registration``),
    and with padding every cell of a padded row or column.
    """
    x, ops = c.x, c.ops
    last_tempo = (x.block - c.p.tempo).clamp(min=0)
    kept = ops.mask(last_tempo > x.block_at_registration).unsqueeze(-2)
    if x.padded:
        kept = kept * ops.mask(c.row_values(x.valid)).unsqueeze(-1) * ops.mask(x.valid).unsqueeze(-2)
    return kept


def _stored_bonds(c: _Epoch, stored: Tensor, new_permit: Tensor, old_permit: Tensor, out: Tensor | None) -> Tensor:
    """Step 16: the new bonds as u16 ``(b, n, n)``, rows kept for new permits and emptied otherwise.

    The dense path leaves the rows of uids that never had a permit untouched. ``stored``
    (the computed rows) is consumed; ``out``: where to write the result (an integer tensor of
    zeros: only the computed rows are written) instead of a fresh int64 one.
    """
    x = c.x
    stored.mul_(c.ops.mask(c.row_values(new_permit)).unsqueeze(-1))
    bonds_u16 = c.ops.to_u16_(stored, torch.int64 if out is None else out.dtype)
    if not c.sparse:
        untouched = c.row_values(~new_permit & ~old_permit).unsqueeze(-1)
        torch.where(untouched, c.row_matrix(x.bonds).to(bonds_u16.dtype), bonds_u16, out=bonds_u16)
    if x.padded:
        bonds_u16.masked_fill_(~(c.row_values(x.valid).unsqueeze(-1) & x.valid.unsqueeze(-2)), 0)
    if c.rows is None:
        return bonds_u16 if out is None else out.copy_(bonds_u16)
    b = bonds_u16.shape[0]
    full = torch.zeros((b, x.n, x.n), dtype=torch.int64, device=bonds_u16.device) if out is None else out
    full.view(b * x.n, x.n).index_copy_(0, c.flat_rows(), bonds_u16.view(-1, x.n))
    return full  # the rows not computed stay empty


def _epoch_core(
    x: _Inputs, p: YumaParams, emission: Tensor, ops: Ops, payout: Payout, bonds_out: Tensor | None = None
) -> _Core:
    """Every step of the epoch on a prepared batch, the CPU kernels' blocks in this thread
    (``threads.blocks_in_caller``: the pool gains nothing between the epoch's torch steps).

    ``bonds_out``: zeros where the new u16 bonds ``(b, n, n)`` are written (the runner's stacked
    result), instead of a fresh tensor.
    """
    with blocks_in_caller():
        return _epoch_steps(x, p, emission, ops, payout, bonds_out)


def _epoch_steps(
    x: _Inputs, p: YumaParams, emission: Tensor, ops: Ops, payout: Payout, bonds_out: Tensor | None
) -> _Core:
    x = _reset_bonds(x, p)
    c = _Epoch(x, p, ops, sparse=p.path == "sparse", is_owner=torch.arange(x.n, device=x.weights.device) == x.owner_uid)
    active = _activity(c)
    stake = _stake(c)
    new_permit, old_permit = _permits(c, stake)
    active_stake = _active_stake(c, stake, active, old_permit)
    c = dataclasses.replace(c, rows=_live_rows(x, old_permit))
    row_stake = c.row_values(active_stake)
    weights, keep = _weights(c, old_permit)
    beta: Any = ops.const_ratio(p.bonds_penalty, U16_MAX)  # int bits (exact) or float
    # With beta = 1 the float path never reads W after clipping (but Yuma 3's liquid alpha does),
    # nor the original bonds' W-bar after weighing it by stake: those steps then run in place on
    # the weights' own tensor.
    in_place = ops.in_place and _is(beta, ops.one) and not (p.yuma3 and p.liquid_alpha)
    consensus, clipped, validator_trust = _consensus(c, weights, active_stake, in_place)
    incentive = ops.normalize(ops.vec_mat(row_stake, clipped))  # step 11: ranks, incentive
    bond_weights = _bond_weights(c, weights, clipped, beta)
    bonds_kept = _bonds_kept(c)
    if p.yuma3:
        cells = lambda: _bond_cells(c, beta, keep, weights, consensus, bond_weights)  # noqa: E731
        dividends, stored = _yuma3_bonds(c, bond_weights, cells, bonds_kept, consensus, row_stake, incentive)
    else:
        dividends, stored = _original_bonds(c, bond_weights, bonds_kept, row_stake, incentive, in_place)
    dividends, validator_trust = c.uid_values(dividends), c.uid_values(validator_trust)
    server, validator, chain_emission, dust = _emission(c, incentive, dividends, active_stake, stake, emission, payout)
    return _Core(
        server=server,
        validator=validator,
        chain_emission=chain_emission,
        dust=dust,
        stake_weight=stake,
        active_stake=active_stake,
        consensus=consensus,
        incentive=incentive,
        dividends=dividends,
        validator_trust=validator_trust,
        bonds_u16=_stored_bonds(c, stored, new_permit, old_permit, bonds_out),
        new_permit=new_permit,
        active=active,
        ops=ops,
    )
