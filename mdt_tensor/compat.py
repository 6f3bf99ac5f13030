"""Bittensor-compatible weight helpers, batched over rows, plus the validator's one-call pipeline.

The reference is ``bittensor/utils/weight_utils.py`` (``spec/bittensor-compat.md`` A.1) and the
chain's ``vec_u16_max_upscale_to_u16`` (``spec/yuma.md`` B.2). Every function here gives, row by
row, the reference's result for a 1-D input, but takes rows ``(*, N)`` (reduced along the last
dimension or ``dim``), runs on any device and returns the caller's array type.

Why hand-written: the reference is 1-D only, keeps two backends (numpy and a torch branch that
breaks, e.g. ``torch.ones(n).to(n)`` in ``process_weights``), and loops in Python (the ``t_i``
list comprehension of ``normalize_max_weight``, the per-entry rounding of the emit helper). No
tensor library offers these exact semantics, so they are rebuilt here from partial top-k,
cumulative sums, counts, gathers and scatters, with no loop over rows or entries. The reference
sorts every row to find the capped entries; fewer than ``1/limit`` entries can be capped, so only
that many largest entries are ordered here (``topk``), and compaction uses a cumulative count
instead of a sort.

Where the reference has a bug or drops data silently, its behaviour stays reachable under a flag
and the default is the correct one:

* ``convert_weights_and_uids_for_emit(..., drop_rounded_zeros=True)``: the reference drops a
  positive weight that rounds to u16 0; by default such a weight is kept with value 1.
* ``process_weights(..., index_by_position=True)``: the reference's step 4 adds the weights by
  array position, assuming ``uids == arange(n)``; by default they are added at their uid.
* ``normalize_max_weight(..., strict=True)``: exact water-filling that keeps zeros at zero and
  has no epsilon undershoot (the default reproduces the reference, eps and uniform fallback).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ._array import Array, ArrayOrigin, as_tensor, check_same_device, float_compute_dtype
from ._validation import (
    check_finite,
    check_float_or_int,
    check_in_range,
    check_ndim,
    check_non_negative,
    first_index,
    normalize_dim,
)
from .errors import DTypeError, ShapeError, ValueRangeError

__all__ = [
    "U16_MAX",
    "UidRangeError",
    "EmitRows",
    "ProcessedWeights",
    "ValidatorWeights",
    "normalize_max_weight",
    "convert_weights_and_uids_for_emit",
    "u16_max_upscale",
    "process_weights",
    "convert_maybe_split_to_u16",
    "convert_weight_uids_and_vals_to_tensor",
    "convert_bond_uids_and_vals_to_tensor",
    "scores_to_weights",
]

#: The u16 scale on which the chain stores weights.
U16_MAX = 65535

#: The reference's ``epsilon`` in ``normalize_max_weight``.
_REFERENCE_EPS = 1e-7


class UidRangeError(ValueRangeError, IndexError):
    """A uid is outside ``[0, n)``; also an ``IndexError``, which the reference raises."""


class EmitRows(NamedTuple):
    """Batched result of :func:`convert_weights_and_uids_for_emit` (inputs with 2+ dimensions).

    Attributes:
        uids: ``(*, N)`` int64, the kept uids of each row in input order, padded with -1.
        values: ``(*, N)`` int64 u16 values, max-upscaled so that each row's maximum is 65535,
            padded with 0.
        count: ``(*)`` int64, how many entries of each row are real.
    """

    uids: Array
    values: Array
    count: Array


class ProcessedWeights(NamedTuple):
    """Batched result of :func:`process_weights` (inputs with 2+ dimensions).

    Attributes:
        uids: ``(*, K)`` int64, ``K = max(N, num_neurons)``: the uids the reference returns for
            each row, padded with -1.
        weights: ``(*, K)`` float, the reference's weights for those uids, padded with 0.
        count: ``(*)`` int64, how many entries of each row are real.
        dense: ``(*, num_neurons)`` float, the same weights scattered to their uids (0 elsewhere).
    """

    uids: Array
    weights: Array
    count: Array
    dense: Array


class ValidatorWeights(NamedTuple):
    """What :func:`scores_to_weights` returns: one ``set_weights`` call per row.

    Attributes:
        uids: ``(*, K)`` int64, ascending uids to submit, padded with -1.
        values: ``(*, K)`` int64 u16 values to submit (row maximum 65535), padded with 0.
        count: ``(*)`` int64, how many entries of each row are real (0: nothing to submit).
        ema: ``(*, N)`` the smoothed scores to pass as ``previous`` next time, or None when
            ``ema_alpha`` was not given.
    """

    uids: Array
    values: Array
    count: Array
    ema: Array | None


# ----------------------------------------------------------------------------------------------
# argument helpers


def _check_limit(limit: float, name: str) -> float:
    if isinstance(limit, bool) or not isinstance(limit, (int, float, np.integer, np.floating)):
        raise DTypeError(f"Expected `{name}` to be a float, but got {type(limit).__name__}.")
    value = float(limit)
    if not math.isfinite(value) or value <= 0:
        raise ValueRangeError(f"Expected `{name}` to be a finite number > 0, but got {value}.")
    return value


def _check_finite_non_negative(t: Tensor, name: str) -> None:
    """Raise for NaN, inf or negative entries; one mask and no index search when all are fine."""
    if not t.is_floating_point():
        check_non_negative(t, name)
        return
    if bool((~(t >= 0) | (t == math.inf)).any()):
        check_finite(t, name)
        check_non_negative(t, name)


def _check_count_arg(value: int, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DTypeError(f"Expected `{name}` to be an int, but got {type(value).__name__}.")
    if int(value) < low:
        raise ValueRangeError(f"Expected `{name}` >= {low}, but got {int(value)}.")
    return int(value)


def _check_integer_dtype(t: Tensor, name: str) -> None:
    if t.is_floating_point() or t.dtype == torch.bool:
        raise DTypeError(f"Expected `{name}` to hold integers, but got dtype {t.dtype}.")


def _float_rows(x: Array, name: str, dim: int) -> tuple[Tensor, ArrayOrigin, int]:
    """``x`` as a float tensor with the reduced axis last; returns the normalised ``dim`` too."""
    t, origin = as_tensor(x, name)
    check_float_or_int(t, name)
    check_ndim(t, name, 1, "(*, N)")
    dim = normalize_dim(dim, t.ndim)
    return t.to(float_compute_dtype(t.dtype)).movedim(dim, -1), origin, dim


def _match_uids(uids: Tensor, weights: Tensor) -> Tensor:
    """``uids`` expanded to ``weights``' shape: it must be ``(N,)`` or the same ``(*, N)``."""
    if uids.shape == weights.shape:
        return uids
    if uids.ndim == 1 and uids.shape[0] == weights.shape[-1]:
        return uids.expand(weights.shape)
    raise ShapeError(
        f"Expected `uids` and `weights` to have the same length: `uids` of shape ({weights.shape[-1]},) "
        f"or {tuple(weights.shape)}, but got {tuple(uids.shape)} for `weights` of shape {tuple(weights.shape)}."
    )


def _arange_like(t: Tensor) -> Tensor:
    """Positions 0..N-1 of the last axis of ``t``, shaped to broadcast against it."""
    return torch.arange(t.shape[-1], device=t.device)


def _compact(keep: Tensor, *rows: Tensor, fills: tuple[float, ...], width: int | None = None) -> tuple[Tensor, ...]:
    """Move the kept entries of each row to the front, in their order; fill the rest.

    A cumulative count gives each kept entry its slot (no sort). Rows with more than ``width``
    kept entries would lose the excess: callers size ``width`` to the largest possible count.

    Args:
        keep: ``(*, N)`` bool.
        rows: ``(*, N)`` tensors to compact alike.
        fills: one fill value per row tensor.
        width: the output width (default ``N``).
    """
    width = keep.shape[-1] if width is None else width
    slot = torch.where(keep, keep.cumsum(-1) - 1, width)  # slot `width` is a discarded column
    out = []
    for row, fill in zip(rows, fills):
        target = torch.full((*row.shape[:-1], width + 1), fill, dtype=row.dtype, device=row.device)
        out.append(target.scatter(-1, slot, row)[..., :width])
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# normalize_max_weight


def _candidates(limit: float, width: int) -> int:
    """How many of the largest entries can be capped under ``limit``, plus a safety margin.

    Capped entries each hold about ``limit`` of the row, so fewer than ``1/limit`` are capped;
    the entry of descending rank ``r`` has a share of at most ``1/(r+1)`` even if every larger
    entry were cut down to it, so ranks ``>= floor(1/limit) + 2`` are never capped (with room for
    rounding). Only this many largest entries need ordering (``topk``, not a full sort).
    """
    bound = 1 / limit
    return width if bound >= width else min(width, math.floor(bound) + 3)


def _reference_max_weight_rows(x: Tensor, limit: float, valid: Tensor | None = None) -> Tensor:
    """The reference algorithm on every row of ``x`` ``(*, N)`` (float), over ``valid`` entries.

    Invalid entries take no part (as if the row held only the valid ones) and come out 0.
    The reference sorts the row ascending and counts the uncapped entries from the bottom; the
    same count is ``n`` minus the capped entries at the top, which :func:`_candidates` bounds, so
    only the largest few entries are ordered. The cumulative sums the reference forms from the
    bottom are taken as the row total minus the larger entries, in float64 (no cancellation
    worse than the reference's own float32 sums).
    """
    dtype, device, width = x.dtype, x.device, x.shape[-1]
    if valid is None:
        n = torch.full((*x.shape[:-1], 1), width, dtype=torch.int64, device=device)
    else:
        x = x.masked_fill(~valid, 0)
        n = valid.sum(-1, keepdim=True)
    total = x.sum(-1, keepdim=True)  # the reference's x.sum(), weights.sum() and values.sum()
    # Step 1, with n*limit in double precision as the reference computes it in Python.
    fallback = (total == 0) | (n.to(torch.float64) * limit <= 1)
    # Step 2.
    proportional = x.amax(-1, keepdim=True) / total <= limit
    # Step 3 on the largest entries, descending rank r = n - 1 - i of ascending position i:
    # e_i / ((n-i-1) e_i + c_i + eps) < limit, with c_i = 1 - (share of the r larger entries).
    count = _candidates(limit, width)
    top = x.topk(count, dim=-1).values.to(torch.float64)
    total64 = x.sum(-1, keepdim=True, dtype=torch.float64)
    rank = torch.arange(count, device=device, dtype=torch.float64)
    estimation = top / total64
    cumsum = (total64 - (top.cumsum(-1) - top)) / total64
    ratio = (estimation / (rank * estimation + cumsum + _REFERENCE_EPS)).to(dtype)
    capped_count = (~(ratio < limit) & (rank < n)).sum(-1, keepdim=True)
    k = n - capped_count
    # Step 4: cumsum[k - 1] is the cumulative share at descending rank n - k.
    cumsum_k = cumsum.gather(-1, capped_count.clamp(max=count - 1)).to(dtype)
    denominator = (1 - limit * (n - k).to(torch.float64)).to(dtype)
    cutoff = (limit * cumsum_k - _REFERENCE_EPS) / denominator * total
    # One clip-and-divide serves all three outcomes: no cutoff (+inf) gives x / x.sum(), and a
    # cutoff of -1 sets every entry to -1, so the row divides to exactly 1/n.
    cutoff = torch.where(proportional, math.inf, cutoff)
    cutoff = torch.where(fallback, -1.0, cutoff)
    clipped = torch.where(x > cutoff, cutoff, x)
    if valid is not None:
        clipped = clipped.masked_fill(~valid, 0)
    return clipped / clipped.sum(-1, keepdim=True)


def _water_fill_rows(x: Tensor, limit: Tensor | float, min_limit: float | None = None) -> Tensor:
    """Exact water-filling of every row of ``x`` ``(*, N)`` (float, >= 0) under ``limit``.

    ``limit`` is a float or a ``(*, 1)`` tensor whose smallest value is ``min_limit``. Capped
    entries get exactly ``limit``, the others keep their proportions; zeros stay 0. Rows with
    ``nnz * limit <= 1`` cannot meet the cap and get ``1/nnz`` on their nonzero entries;
    all-zero rows stay all zero. Only the :func:`_candidates` largest entries are ordered.
    """
    dtype, width = x.dtype, x.shape[-1]
    min_limit = float(limit) if min_limit is None else min_limit
    limit64 = torch.as_tensor(limit, dtype=torch.float64, device=x.device)
    count = _candidates(min_limit, width)
    top = x.topk(count, dim=-1).values.to(torch.float64)
    total = x.sum(-1, keepdim=True, dtype=torch.float64)
    rank = torch.arange(count, device=x.device, dtype=torch.float64)
    # Share of the rank-r entry if every larger entry were cut down to it; nondecreasing in
    # value, so the capped entries are the largest ones.
    below = total - (top.cumsum(-1) - top)
    share = torch.where(top > 0, top / (below + rank * top).clamp(min=torch.finfo(torch.float64).tiny), 0)
    capped_count = (share > limit64).sum(-1, keepdim=True)
    # The largest uncapped value; every entry above it is capped (equal values share a fate).
    threshold = top.gather(-1, capped_count.clamp(max=count - 1))
    uncapped = x <= threshold.to(dtype)
    kept_sum = x.masked_fill(~uncapped, 0).sum(-1, keepdim=True, dtype=torch.float64)
    scale = (1 - capped_count * limit64) / kept_sum
    cap = limit64.expand_as(scale)
    # nnz <= 1/limit < count exactly when fewer than `count` of the top entries are positive, so
    # the top entries tell which rows cannot meet the cap, and their nnz. Those rows take
    # 1/nnz on their positive entries: only zeros count as uncapped (threshold 0, scale 0).
    nnz = (top > 0).sum(-1, keepdim=True).to(torch.float64)
    infeasible = nnz * limit64 <= 1
    threshold = threshold.masked_fill(infeasible, 0).to(dtype)
    scale = scale.masked_fill(infeasible, 0).to(dtype)
    cap = torch.where(infeasible, 1 / nnz.clamp(min=1), cap).to(dtype)
    return torch.where(x <= threshold, torch.minimum(x * scale, cap), cap)


def normalize_max_weight(
    x: Array, limit: float = 0.1, *, dim: int = -1, strict: bool = False, validate: bool = True
) -> Array:
    """Normalise each row to sum 1 with no entry above ``limit`` (Bittensor's helper, batched).

    By default this is the reference ``bittensor.utils.weight_utils.normalize_max_weight`` row by
    row, including its quirks: ``eps = 1e-7`` leaves the capped entries slightly *below*
    ``limit``, and a row that sums to 0 or has ``N * limit <= 1`` comes out uniform ``1/N``. When
    fewer than ``1/limit`` entries are nonzero the cap cannot be met: the cutoff usually goes
    negative and the row comes out uniform, zeros included (``spec/bittensor-compat.md`` A.1),
    but it can also give the nonzero entries equal weights above ``limit`` (``[0, 0, 0, 80]``
    followed by seven ``6.1e-5`` with limit 0.123 gives ``0.125`` on the eight nonzero entries).

    ``strict=True`` is exact water-filling instead: the largest entries are capped at exactly
    ``limit``, the rest keep their proportions, zeros stay zero. When the cap cannot be met
    (fewer than ``1/limit`` nonzero entries, i.e. ``nnz * limit <= 1``) the row gets ``1/nnz`` on
    its nonzero entries (the smallest maximum possible with zeros kept at zero, and the limit of
    the water-filling as ``limit`` falls to ``1/nnz``); an all-zero row stays all zero.

    Args:
        x: ``(*, N)`` non-negative weights (float or int; ints compute in float32).
        limit: the cap, a number > 0.
        dim: the axis to normalise along.
        strict: exact water-filling instead of the reference's algorithm.
        validate: check that ``x`` is finite and non-negative (forces a GPU sync).

    Returns:
        ``(*, N)`` float, the caller's array type, on ``x``'s device.

    Raises:
        ShapeError: ``x`` is 0-d or ``dim`` is out of range.
        DTypeError: ``x`` is bool, or ``limit`` is not a number.
        ValueRangeError: NaN, inf or negative entries; ``limit`` not a finite number > 0.

    Example:
        >>> x = torch.tensor([[1., 2., 3., 4., 100.], [1., 0., 0., 0., 0.]])
        >>> normalize_max_weight(x, 0.3)
        tensor([[0.0700, 0.1400, 0.2100, 0.2800, 0.3000],
                [0.2000, 0.2000, 0.2000, 0.2000, 0.2000]])
        >>> normalize_max_weight(x, 0.3, strict=True)
        tensor([[0.0700, 0.1400, 0.2100, 0.2800, 0.3000],
                [1.0000, 0.0000, 0.0000, 0.0000, 0.0000]])
    """
    limit = _check_limit(limit, "limit")
    rows, origin, dim = _float_rows(x, "x", dim)
    if validate:
        _check_finite_non_negative(rows, "x")
    if rows.shape[-1] == 0:
        out = rows
    else:
        out = _water_fill_rows(rows, limit) if strict else _reference_max_weight_rows(rows, limit)
    return origin.wrap(origin.restore_float(out.movedim(-1, dim)))


# ----------------------------------------------------------------------------------------------
# u16 codecs


def _max_upscale_float_to_u16(weights: Tensor, submit: Tensor | None, drop_rounded_zeros: bool) -> tuple[Tensor, Tensor]:
    """The emit helper's quantisation of non-negative float64 rows: ``round(w / max(w) * 65535)``.

    Returns ``(values, kept)``: int64 values (0 outside ``kept``) and which entries are
    submitted: those that round to nonzero (``drop_rounded_zeros``), else the positive weights,
    or ``submit`` when given (entries of ``submit`` with weight 0 get value 1).
    """
    row_max = weights.amax(-1, keepdim=True)
    # Same float64 operations as the reference's Python floats: (w / max) * 65535, then
    # round-half-to-even, which is both Python's round() and torch.round().
    scaled = weights / torch.where(row_max > 0, row_max, 1) * float(U16_MAX)
    values = torch.round(scaled).to(torch.int64)
    if drop_rounded_zeros:
        return values, values != 0
    kept = weights > 0 if submit is None else submit
    return torch.maximum(values, kept.to(torch.int64)), kept


def _read_uids_and_weights(uids: Array, weights: Array) -> tuple[Tensor, ArrayOrigin, Tensor, ArrayOrigin]:
    """Read a ``(uids, weights)`` pair: numeric weights, integer uids, each ``(*, N)``, one device."""
    w, origin = as_tensor(weights, "weights")
    u, uids_origin = as_tensor(uids, "uids")
    check_float_or_int(w, "weights")
    _check_integer_dtype(u, "uids")
    check_ndim(w, "weights", 1, "(*, N)")
    check_ndim(u, "uids", 1, "(*, N)")
    check_same_device(weights=w, uids=u)
    return w, origin, u, uids_origin


def convert_weights_and_uids_for_emit(
    uids: Array, weights: Array, *, drop_rounded_zeros: bool = False, validate: bool = True
) -> tuple[list[int], list[int]] | EmitRows:
    """Quantise weights to the u16 values a ``set_weights`` call submits (Bittensor's helper).

    Each row is max-upscaled: ``value = round(w / max(w) * 65535)`` with Python's rounding (ties
    to even, as ``torch.round``), so the row maximum becomes 65535. A row that sums to 0 submits
    nothing. Entries with weight exactly 0 are dropped. A positive weight that rounds to 0 is
    kept with value 1 by default; ``drop_rounded_zeros=True`` drops it silently, as the reference
    does.

    Args:
        uids: ``(N,)`` or ``(*, N)`` integer uids in [0, 65535], broadcastable to ``weights``.
        weights: ``(N,)`` or ``(*, N)`` non-negative weights.
        drop_rounded_zeros: reproduce the reference's silent drop of entries that round to 0.
        validate: check values (non-negative finite weights, uids in the u16 range).

    Returns:
        For 1-D inputs, ``(uids, values)`` as two Python lists of ints, like the reference.
        For inputs with 2+ dimensions, :class:`EmitRows` (padded ``uids``, ``values`` and a
        ``count`` per row) in the caller's array type.

    Raises:
        ShapeError: empty rows, or ``uids`` and ``weights`` lengths that differ.
        DTypeError: non-integer uids, bool weights.
        ValueRangeError: negative, NaN or infinite weights; uids outside [0, 65535].

    Example:
        >>> convert_weights_and_uids_for_emit(torch.arange(4), torch.tensor([.1, .2, .3, .4]))
        ([0, 1, 2, 3], [16384, 32768, 49151, 65535])
        >>> convert_weights_and_uids_for_emit(torch.arange(3), torch.tensor([1e-6, .5, 1.]))
        ([0, 1, 2], [1, 32768, 65535])
        >>> convert_weights_and_uids_for_emit(
        ...     torch.arange(3), torch.tensor([1e-6, .5, 1.]), drop_rounded_zeros=True)
        ([1, 2], [32768, 65535])
    """
    w, origin, u, _ = _read_uids_and_weights(uids, weights)
    if w.shape[-1] == 0:
        raise ShapeError("Expected at least one weight per row, but got an empty last dimension.")
    expanded = _match_uids(u, w)
    if validate:
        _check_finite_non_negative(w, "weights")
        check_in_range(u, "uids", 0, U16_MAX)  # before expanding: one check per distinct row
    u = expanded
    values, kept = _max_upscale_float_to_u16(w.to(torch.float64), None, drop_rounded_zeros)
    uids_out, values_out = _compact(kept, u.to(torch.int64), values, fills=(-1, 0))
    count = kept.sum(-1)
    if w.ndim == 1:
        n = int(count)
        return uids_out[:n].tolist(), values_out[:n].tolist()
    return EmitRows(origin.wrap(uids_out), origin.wrap(values_out), origin.wrap(count))


def u16_max_upscale(values: Array, *, dim: int = -1, validate: bool = True) -> Array:
    """The chain's ``vec_u16_max_upscale_to_u16``: rescale u16 rows so their maximum is 65535.

    Bit-exact emulation of the I32F32 steps (``spec/yuma.md`` B.2) on int64: for a row maximum
    ``m <= 32768`` each value is ``round((v * 65535) / m)``; for ``m > 32768`` the chain computes
    ``round(v * (65535 / m))`` instead (the ratio truncated to I32F32 first). ``round`` breaks ties
    away from zero; an all-zero row stays zero.

    Args:
        values: ``(*, N)`` integers in [0, 65535].
        dim: the axis to upscale along.
        validate: check the u16 range.

    Returns:
        ``(*, N)`` int64, the caller's array type.

    Example:
        >>> u16_max_upscale(torch.tensor([[1, 2, 3], [0, 0, 0], [16384, 32767, 32769]]))
        tensor([[21845, 43690, 65535],
                [    0,     0,     0],
                [32767, 65531, 65535]])
    """
    v, origin = as_tensor(values, "values")
    _check_integer_dtype(v, "values")
    check_ndim(v, "values", 1, "(*, N)")
    dim = normalize_dim(dim, v.ndim)
    if validate:
        check_in_range(v, "values", 0, U16_MAX)
    v = v.to(torch.int64).movedim(dim, -1)
    if v.shape[-1] == 0:
        return origin.wrap(v.movedim(-1, dim))
    row_max = v.amax(-1, keepdim=True)
    divisor = row_max.clamp(min=1)
    # m <= 32768: q = floor(v*65535 * 2^32 / m) (the I32F32 division), then round(q / 2^32)
    # = floor(q/2^32 + 1/2) = floor(v*65535/m + 1/2) = floor((2*65535*v + m) / (2m)). The
    # numerator is below 2^33, so the float64 quotient is exact enough for floor: a quotient
    # just under an integer N is at least 1/(2m) >= 2^-17 below it, far above float64 rounding.
    near = torch.floor((v * (2 * U16_MAX) + divisor).to(torch.float64) / (2 * divisor).to(torch.float64))
    # m > 32768: v * trunc(65535/m as I32F32) has bits v * ratio exactly (< 2^49); round().
    ratio = (U16_MAX << 32) // divisor
    far = (v * ratio + (1 << 31)) >> 32
    out = torch.where(row_max > 32768, far, near.to(torch.int64)).clamp(max=U16_MAX)
    out = out.masked_fill(row_max == 0, 0)
    return origin.wrap(out.movedim(-1, dim))


def convert_maybe_split_to_u16(split: Array, *, dim: int = -1, validate: bool = True) -> Array | list[int]:
    """Turn proportions into u16 values that sum to exactly 65535 (Bittensor's split helper).

    Each row is normalised, ``round(x * 65535)`` (ties to even, as Python), and the rounding
    difference goes to the row's largest rounded value (the first one on ties), as the reference
    does for the mechanism emission split.

    Args:
        split: ``(*, N)`` non-negative numbers, each row with a positive sum.
        dim: the axis of the split.
        validate: check values (non-negative, finite, positive row sums).

    Returns:
        ``(*, N)`` int64 in the caller's array type; a Python list (of lists) for list input,
        like the reference.

    Example:
        >>> convert_maybe_split_to_u16([1, 1, 1])
        [21845, 21845, 21845]
        >>> convert_maybe_split_to_u16(torch.tensor([[1., 2.], [1., 0.]]))
        tensor([[21845, 43690],
                [65535,     0]])
    """
    t, origin = as_tensor(split, "split")
    check_float_or_int(t, "split")
    check_ndim(t, "split", 1, "(*, N)")
    dim = normalize_dim(dim, t.ndim)
    x = t.to(torch.float64).movedim(dim, -1)
    if x.shape[-1] == 0:
        raise ShapeError("Expected `split` to be non-empty along `dim`, but got an empty row.")
    # A sequential sum on the CPU (cumsum), as Python's sum() adds left to right.
    total = x.cumsum(-1)[..., -1:]
    if validate:
        _check_finite_non_negative(x, "split")
        bad = first_index(total[..., 0] <= 0)
        if bad is not None:
            raise ValueRangeError(f"Expected every row of `split` to have a positive sum, but row {bad} sums to 0.")
    values = torch.round(x / total * float(U16_MAX)).to(torch.int64)
    excess = values.sum(-1, keepdim=True) - U16_MAX
    largest = values.argmax(-1, keepdim=True)
    values = values.scatter_add(-1, largest, -excess)
    out = values.movedim(-1, dim)
    if origin.kind == "python":
        return out.tolist()
    return origin.wrap(out)


# ----------------------------------------------------------------------------------------------
# chain representation -> dense rows


def _scatter_last_write(n: int, uids: Array, vals: Array, count: Array | None, name: str) -> tuple[Tensor, Tensor, ArrayOrigin]:
    """Dense ``(*, n)`` rows from ``uids``/``vals`` ``(*, K)``: ``row[uid] = val``, last write wins.

    Returns ``(dense values, written mask, origin of vals)``; unwritten entries are 0.
    """
    n = _check_count_arg(n, "n")
    u, _ = as_tensor(uids, "uids")
    v, origin = as_tensor(vals, name)
    _check_integer_dtype(u, "uids")
    check_float_or_int(v, name)
    check_ndim(v, name, 1, "(*, K)")
    check_same_device(uids=u, **{name: v})
    if u.shape != v.shape:
        raise ShapeError(f"Expected `uids` and `{name}` to have the same shape, but got {tuple(u.shape)} and {tuple(v.shape)}.")
    u = u.to(torch.int64)
    real = torch.ones_like(u, dtype=torch.bool)
    if count is not None:
        c, _ = as_tensor(count, "count")
        _check_integer_dtype(c, "count")
        if c.shape != u.shape[:-1]:
            raise ShapeError(f"Expected `count` of shape {tuple(u.shape[:-1])}, but got {tuple(c.shape)}.")
        check_same_device(uids=u, count=c)
        real = _arange_like(u) < c.to(u.device).unsqueeze(-1)
    bad = first_index(real & ((u < 0) | (u >= n)))
    if bad is not None:
        raise UidRangeError(f"Expected `uids` in [0, {n}), but found {int(u[bad])} at index {bad}.")
    index = u.masked_fill(~real, 0)
    positions = _arange_like(u).expand_as(u).masked_fill(~real, -1)
    # The last position that writes each uid (the reference assigns in order); -1 if none.
    last = torch.full((*u.shape[:-1], n), -1, dtype=torch.int64, device=u.device)
    last = last.scatter_reduce(-1, index, positions, reduce="amax", include_self=True)
    written = last >= 0
    dense = v.gather(-1, last.clamp(min=0)) if u.shape[-1] else torch.zeros_like(last, dtype=v.dtype)
    return dense.masked_fill(~written, 0), written, origin


def convert_weight_uids_and_vals_to_tensor(n: int, uids: Array, weights: Array, *, count: Array | None = None) -> Array:
    """Dense, row-normalised weight rows from the chain's ``(uid, value)`` pairs (Bittensor's helper).

    ``row[uid] = float(value)``; rows with a positive sum are divided by it, others stay zero.
    A repeated uid takes its last value, as in the reference.

    Args:
        n: the number of neurons (row length), >= 0.
        uids: ``(*, K)`` integer uids in [0, n).
        weights: ``(*, K)`` values (u16 as stored on chain).
        count: optional ``(*)`` number of real entries per row; later entries are padding.

    Returns:
        ``(*, n)`` float32 in the caller's array type.

    Raises:
        UidRangeError: a uid outside [0, n) (an ``IndexError`` as in the reference, and a
            ``ValueError``).
        ValueRangeError: ``n < 0``.

    Example:
        >>> convert_weight_uids_and_vals_to_tensor(4, torch.tensor([1, 3]), torch.tensor([50, 50]))
        tensor([0.0000, 0.5000, 0.0000, 0.5000])
    """
    dense, _, origin = _scatter_last_write(n, uids, weights, count, "weights")
    dense = dense.to(torch.float32)
    total = dense.sum(-1, keepdim=True)
    out = torch.where(total > 0, dense / torch.where(total > 0, total, 1), dense)
    return origin.wrap(out)


def convert_bond_uids_and_vals_to_tensor(n: int, uids: Array, bonds: Array, *, count: Array | None = None) -> Array:
    """Dense int64 bond rows from the chain's ``(uid, value)`` pairs, without normalisation.

    Args:
        n: the number of neurons (row length), >= 0.
        uids: ``(*, K)`` integer uids in [0, n).
        bonds: ``(*, K)`` values; floats are truncated toward zero, as ``int()`` does.
        count: optional ``(*)`` number of real entries per row; later entries are padding.

    Returns:
        ``(*, n)`` int64 in the caller's array type.

    Example:
        >>> convert_bond_uids_and_vals_to_tensor(5, torch.tensor([1, 3, 4]), torch.tensor([10, 20, 30]))
        tensor([ 0, 10,  0, 20, 30])
    """
    dense, _, origin = _scatter_last_write(n, uids, bonds, count, "bonds")
    if dense.is_floating_point():
        check_finite(dense, "bonds")
        dense = torch.trunc(dense)
    return origin.wrap(dense.to(torch.int64))


# ----------------------------------------------------------------------------------------------
# process_weights


def _quantile_threshold(weights: Tensor, nonzero: Tensor, quantile: Tensor) -> Tensor:
    """``quantile(w[nz], q)`` per row with linear interpolation (numpy's and torch's default)."""
    count = nonzero.sum(-1, keepdim=True)
    ordered = weights.masked_fill(~nonzero, math.inf).sort(dim=-1).values.to(torch.float64)
    rank = quantile * (count - 1).clamp(min=0).to(torch.float64)
    below = rank.floor()
    fraction = rank - below
    low = below.to(torch.int64)
    high = torch.minimum(low + 1, (count - 1).clamp(min=0))
    a, b = ordered.gather(-1, low), ordered.gather(-1, high)
    # lerp's two-sided formula (numpy's _lerp and torch.lerp): exact at both ends.
    return torch.where(fraction < 0.5, a + (b - a) * fraction, b - (b - a) * (1 - fraction))


def process_weights(
    uids: Array,
    weights: Array,
    num_neurons: int,
    min_allowed_weights: int,
    max_weight_limit: float,
    exclude_quantile: int = 0,
    *,
    index_by_position: bool = False,
    validate: bool = True,
) -> tuple[Array, Array] | ProcessedWeights:
    """Bittensor's ``process_weights``, batched over rows: what a validator sends to the emit step.

    Per row (``spec/bittensor-compat.md`` A.1), with ``nz`` the entries with ``w > 0``:

    1. no nonzero weight, or ``num_neurons < min_allowed_weights``: uids ``arange(num_neurons)``,
       weights uniform ``1/num_neurons``;
    2. ``0 < |nz| < min_allowed_weights``: every neuron gets ``1e-5`` plus its weight, then
       :func:`normalize_max_weight` (uids ``arange(num_neurons)``). The reference adds the
       weights by array *position* (it assumes ``uids == arange(N)``); here they are added at
       their uid, unless ``index_by_position=True``;
    3. otherwise the weights below the ``q* = min(exclude_quantile/65535, max(0, |nz| - min)/|nz|)``
       quantile of the nonzero weights (linear interpolation) are dropped and the rest go through
       :func:`normalize_max_weight`.

    The reference's torch branch (``torch.ones(n).to(n)``, a device ordinal) is not reproduced.
    Weights compute in float32 like the reference (float64 inputs stay float64).

    Args:
        uids: ``(N,)`` or ``(*, N)`` distinct non-negative integer uids, broadcastable to
            ``weights``. A uid ``>= num_neurons`` (which the chain refuses) passes through the
            quantile path as in the reference but is left out of ``dense``, and raises
            :class:`UidRangeError` where its weight must be spread over the neurons (step 2).
        weights: ``(N,)`` or ``(*, N)`` non-negative weights, rows along the last dimension.
        num_neurons: the subnet size, >= 1.
        min_allowed_weights: the subnet's ``MinAllowedWeights``.
        max_weight_limit: the cap passed to :func:`normalize_max_weight` (a float > 0).
        exclude_quantile: an integer on the u16 scale, in [0, 65535].
        index_by_position: reproduce the reference's step-2 indexing by array position.
        validate: check values (weights non-negative and finite; uids distinct and in range).

    Returns:
        For 1-D inputs, ``(uids, weights)`` like the reference (arrays of the caller's kind).
        For 2+ dimensions, :class:`ProcessedWeights`: the same per row, padded, with a count,
        plus the dense ``(*, num_neurons)`` weights.

    Example:
        >>> uids, w = process_weights(torch.arange(1, 6), torch.tensor([.1, .2, .3, 0, 0]), 5, 2, .5)
        >>> uids, w
        (tensor([1, 2, 3]), tensor([0.1667, 0.3333, 0.5000]))
    """
    num_neurons = _check_count_arg(num_neurons, "num_neurons", 1)
    min_allowed_weights = _check_count_arg(min_allowed_weights, "min_allowed_weights")
    exclude_quantile = _check_count_arg(exclude_quantile, "exclude_quantile")
    if exclude_quantile > U16_MAX:
        raise ValueRangeError(f"Expected `exclude_quantile` on the u16 scale [0, 65535], but got {exclude_quantile}.")
    limit = _check_limit(max_weight_limit, "max_weight_limit")
    w, origin, u, uids_origin = _read_uids_and_weights(uids, weights)
    u = _match_uids(u, w).to(torch.int64)
    width = w.shape[-1]
    if index_by_position and width > num_neurons:
        raise ShapeError(
            f"With `index_by_position`, rows must have at most num_neurons={num_neurons} entries, but got {width}."
        )
    w = w.to(float_compute_dtype(w.dtype))
    if validate:
        _check_finite_non_negative(w, "weights")
        check_in_range(u, "uids", 0, torch.iinfo(torch.int64).max)
        ordered = u.sort(dim=-1).values
        duplicate = first_index(ordered[..., 1:] == ordered[..., :-1])
        if duplicate is not None:
            raise ValueRangeError(f"Expected distinct `uids` in each row, but uid {int(ordered[duplicate])} repeats.")
    dtype, device = w.dtype, w.device
    batch = w.shape[:-1]
    nonzero = w > 0
    nnz = nonzero.sum(-1, keepdim=True)
    uniform_rows = (nnz == 0) | (num_neurons < min_allowed_weights)
    floor_rows = ~uniform_rows & (nnz < min_allowed_weights)
    placeable = u < num_neurons
    if validate and not index_by_position:
        bad = first_index(floor_rows & nonzero & ~placeable)
        if bad is not None:
            raise UidRangeError(
                f"Expected `uids` below num_neurons={num_neurons} where the weights are spread over all "
                f"neurons (fewer than min_allowed_weights nonzero), but found {int(u[bad])} at index {bad}."
            )

    # Case 2: a floor of 1e-5 everywhere plus the weights (the reference computes in float64).
    target = _arange_like(w).expand_as(u) if index_by_position else u.masked_fill(~placeable, 0)
    spread_in = nonzero if index_by_position else nonzero & placeable
    floored = torch.full((*batch, num_neurons), 1e-5, dtype=torch.float64, device=device)
    floored = floored.scatter_add(-1, target, w.masked_fill(~spread_in, 0).to(torch.float64))
    floored = _reference_max_weight_rows(floored, limit).to(dtype)

    # Case 3: drop the weights under the exclusion quantile, cap the rest.
    count_f = nnz.to(torch.float64)
    max_exclude = (count_f - min_allowed_weights).clamp(min=0) / count_f.clamp(min=1)
    quantile = torch.clamp(max_exclude, max=exclude_quantile / U16_MAX)
    if exclude_quantile == 0:
        kept = nonzero  # q* = 0: the threshold is the smallest nonzero weight
    else:
        threshold = _quantile_threshold(w, nonzero, quantile)
        kept = nonzero & (w.to(torch.float64) >= threshold)
    capped = _reference_max_weight_rows(w, limit, valid=kept)

    all_uids = torch.arange(num_neurons, device=device).expand(*batch, num_neurons)
    width_out = max(width, num_neurons)
    kept_uids, kept_weights = _compact(kept, u, capped, fills=(-1, 0))
    pad = width_out - width
    kept_uids = torch.nn.functional.pad(kept_uids, (0, pad), value=-1)
    kept_weights = torch.nn.functional.pad(kept_weights, (0, pad))
    pad_all = width_out - num_neurons
    all_uids_padded = torch.nn.functional.pad(all_uids, (0, pad_all), value=-1)
    spread = torch.where(uniform_rows, 1.0 / num_neurons, floored)
    spread_padded = torch.nn.functional.pad(spread, (0, pad_all))
    whole_row = uniform_rows | floor_rows
    out_uids = torch.where(whole_row, all_uids_padded, kept_uids)
    out_weights = torch.where(whole_row, spread_padded, kept_weights)
    count = torch.where(whole_row, num_neurons, kept.sum(-1, keepdim=True)).squeeze(-1)
    if w.ndim == 1:
        n = int(count)
        return uids_origin.wrap(out_uids[:n]), origin.wrap(out_weights[:n])
    sparse_dense = torch.zeros((*batch, num_neurons), dtype=dtype, device=device)
    in_dense = kept & placeable
    sparse_dense = sparse_dense.scatter_add(-1, u.masked_fill(~in_dense, 0), capped.masked_fill(~in_dense, 0))
    dense = torch.where(whole_row, spread, sparse_dense)
    return ProcessedWeights(
        uids_origin.wrap(out_uids), origin.wrap(out_weights), origin.wrap(count), origin.wrap(dense)
    )


# ----------------------------------------------------------------------------------------------
# the validator's pipeline


def _top_k_mask(scores: Tensor, k: int) -> Tensor | None:
    """The ``k`` largest entries of each row, ties broken toward the lower index.

    ``topk`` gives the k-th largest value (its values, unlike its indices, do not depend on
    how ties are ordered); everything above it is in, and the first entries equal to it in
    index order fill the remaining places. None when every entry is in.
    """
    if k >= scores.shape[-1]:
        return None
    kth = scores.topk(k, dim=-1).values[..., -1:]
    above = scores > kth
    tied = scores == kth
    places = k - above.sum(-1, keepdim=True)
    return above | (tied & (tied.cumsum(-1) <= places))


def _chain_safe_limit(limit: float, entries: Tensor) -> Tensor:
    """A cap below ``limit`` that survives the u16 quantisation and the chain's check.

    After max-upscaling, each of the ``K`` entries is rounded by at most 1/2, so the row's
    normalised maximum is at most ``1 / (1/cap - K/131070)``; choosing
    ``1/cap = 1/limit + (K + 2)/131070`` keeps it below ``limit`` with room for the chain's
    I32F32 truncation (2**-32) and float64 rounding.
    """
    return 1 / (1 / limit + (entries.to(torch.float64) + 2) / (2 * U16_MAX))


def scores_to_weights(
    scores: Array,
    *,
    k: int | None = None,
    max_weight_limit: float = 1.0,
    min_allowed_weights: int = 0,
    ema_alpha: float | None = None,
    previous: Array | None = None,
    validate: bool = True,
) -> ValidatorWeights:
    """From per-uid scores to the ``set_weights`` call a validator submits, for many rows at once.

    Per row ``(*, N)`` (uid = position):

    1. optional smoothing: ``ema = ema_alpha * scores + (1 - ema_alpha) * previous`` (``previous``
       defaults to zeros, the usual validator's fresh state; the scale does not change the
       weights, only the next step's mix);
    2. top-``k`` uids by score (ties: lower uid first), keeping those with a positive score;
    3. exact water-filling (:func:`normalize_max_weight` with ``strict=True``) under
       ``max_weight_limit``, tightened by ``(K+2)/131070`` in ``1/limit`` so that the chain's
       ``max_weight_limited`` check still passes after u16 rounding (not applied when the limit
       is 1, which the chain does not check);
    4. when fewer than ``min(min_allowed_weights, N)`` uids have a positive score, the next uids
       in score order (lowest uid first) are added with the smallest value, 1, so the chain's
       length check passes (the reference adds ``1e-5`` to every uid for the same reason);
    5. u16 quantisation by max-upscaling (``round(w / max * 65535)``, ties to even; positive
       weights keep at least 1), which the chain's own max-upscale leaves unchanged.

    A row whose scores are all zero submits nothing (``count == 0``). A row with fewer than
    ``1/max_weight_limit`` positive scores cannot meet the cap; it gets equal values on its
    positive entries, which the chain's check refuses (as it refuses the reference's result).

    Args:
        scores: ``(*, N)`` non-negative, finite scores.
        k: how many uids to weight at most (default: all N).
        max_weight_limit: the subnet's max weight as a fraction (``MaxWeightsLimit / 65535``).
        min_allowed_weights: the subnet's ``MinAllowedWeights``; must not exceed ``k``.
        ema_alpha: smoothing factor in (0, 1], or None for no smoothing.
        previous: ``(*, N)`` the ``ema`` of the last call (requires ``ema_alpha``).
        validate: check values (NaN, inf, negative scores) and raise on the first bad one.

    Returns:
        :class:`ValidatorWeights` in the caller's array type: ``uids``, ``values`` ``(*, K)``
        with ``K = min(k, N)``, ``count`` ``(*)``, and ``ema``.

    Example:
        >>> out = scores_to_weights(torch.tensor([[0.1, 0.7, 0.0, 0.2], [0.0, 0.0, 0.0, 0.0]]), k=3)
        >>> out.uids, out.values, out.count
        (tensor([[ 0,  1,  3],
                [-1, -1, -1]]), tensor([[ 9362, 65535, 18724],
                [    0,     0,     0]]), tensor([3, 0]))
    """
    s, origin = as_tensor(scores, "scores")
    check_float_or_int(s, "scores")
    check_ndim(s, "scores", 1, "(*, N)")
    s = s.to(torch.float64)
    width = s.shape[-1]
    if width == 0:
        raise ShapeError("Expected at least one score per row, but got an empty last dimension.")
    limit = _check_limit(max_weight_limit, "max_weight_limit")
    min_allowed = _check_count_arg(min_allowed_weights, "min_allowed_weights")
    size = width if k is None else min(_check_count_arg(k, "k", 1), width)
    required = min(min_allowed, width)
    if size < required:
        raise ValueRangeError(
            f"Expected `k` >= min(min_allowed_weights, N) = {required}, but got k={k}: the chain "
            "would refuse the submission."
        )
    if validate:
        _check_finite_non_negative(s, "scores")
    ema: Tensor | None = None
    if ema_alpha is not None:
        alpha = float(_check_limit(ema_alpha, "ema_alpha"))
        if alpha > 1:
            raise ValueRangeError(f"Expected `ema_alpha` in (0, 1], but got {alpha}.")
        if previous is None:
            s = alpha * s
        else:
            p, _ = as_tensor(previous, "previous")
            check_float_or_int(p, "previous")
            check_same_device(scores=s, previous=p)
            if p.shape != s.shape:
                raise ShapeError(f"Expected `previous` of shape {tuple(s.shape)}, but got {tuple(p.shape)}.")
            p = p.to(torch.float64)
            if validate:
                _check_finite_non_negative(p, "previous")
            s = alpha * s + (1 - alpha) * p
        ema = s
    elif previous is not None:
        raise ValueRangeError("`previous` was given without `ema_alpha`: pass the smoothing factor too.")

    selected = _top_k_mask(s, size)
    positive = s > 0 if selected is None else selected & (s > 0)
    n_positive = positive.sum(-1, keepdim=True)
    # Zero scores tie; the lowest uids among them fill up to `required` (rows with no positive
    # score submit nothing).
    if required > 0:
        zero = ~positive if selected is None else selected & ~positive
        missing = torch.where(n_positive > 0, (required - n_positive).clamp(min=0), 0)
        submit = positive | (zero & (zero.cumsum(-1) <= missing))
        n_submit = submit.sum(-1, keepdim=True)
    else:
        submit, n_submit = positive, n_positive
    chosen = s if selected is None else s.masked_fill(~positive, 0)  # scores are >= 0
    if limit < 1:
        cap = _chain_safe_limit(limit, n_submit)
        weights = _water_fill_rows(chosen, cap, _chain_safe_limit(limit, torch.tensor(size)).item())
    else:
        weights = chosen / chosen.sum(-1, keepdim=True).clamp(min=torch.finfo(s.dtype).tiny)
    values, _ = _max_upscale_float_to_u16(weights, submit, drop_rounded_zeros=False)
    uids = torch.arange(width, device=s.device).expand_as(submit)
    uids_out, values_out = _compact(submit, uids, values, fills=(-1, 0), width=size)
    result_ema = None
    if ema is not None:
        result_ema = origin.wrap(ema.to(float_compute_dtype(origin.dtype)))
    return ValidatorWeights(origin.wrap(uids_out), origin.wrap(values_out), origin.wrap(n_submit.squeeze(-1)), result_ema)
