"""``process_weights``: the Bittensor SDK's last step before emit, batched over rows.

The reference (``opentensor/bittensor bittensor/utils/weight_utils.py``) handles one row with
three cases (spread uniformly, spread with a floor, drop a quantile and cap); here every row of a
``(*, N)`` batch takes its case from masks, and the three results are combined per row. The
reference's indexing of the floor case by array position stays reachable under a flag.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .._array import Array, ArrayOrigin, float_compute_dtype
from .._constants import U16_MAX
from .._intmath import INT64_MAX
from .._validation import check_alloc, check_finite_non_negative, check_in_range, check_int, check_number, first_index
from ..errors import ShapeError, ValueRangeError
from ._rows import arange_like, compact, match_uids, read_uids_and_weights
from .max_weight import reference_max_weight_rows
from .uids import UidRangeError

__all__ = ["ProcessedWeights", "process_weights"]


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


class _Cases(NamedTuple):
    """Which of the reference's cases each row takes, and the masks the cases share."""

    nonzero: Tensor  # (*, N) the entries with w > 0
    nnz: Tensor  # (*, 1) how many
    uniform: Tensor  # (*, 1) case 1: every neuron gets 1/num_neurons
    floor: Tensor  # (*, 1) case 2: every neuron gets 1e-5 plus its weight, then the cap
    placeable: Tensor  # (*, N) uids below num_neurons

    @property
    def whole_row(self) -> Tensor:
        """Rows answered with every neuron's uid (cases 1 and 2)."""
        return self.uniform | self.floor


# ----------------------------------------------------------------------------------------------
# reading the inputs


def _read_settings(
    num_neurons: int, min_allowed_weights: int, exclude_quantile: int, max_weight_limit: float
) -> tuple[int, int, int, float]:
    """The scalar arguments, checked: ``(num_neurons, min_allowed_weights, exclude_quantile, limit)``."""
    return (
        check_int(num_neurons, "num_neurons", low=1, high=INT64_MAX),
        check_int(min_allowed_weights, "min_allowed_weights", low=0, high=INT64_MAX),
        check_int(exclude_quantile, "exclude_quantile", low=0, high=U16_MAX),
        check_number(max_weight_limit, "max_weight_limit", low=0, low_open=True),
    )


def _read_rows(
    uids: Array, weights: Array, num_neurons: int, index_by_position: bool
) -> tuple[Tensor, ArrayOrigin, Tensor, ArrayOrigin]:
    """Float weights ``(*, N)`` and int64 uids of the same shape, with their origins."""
    w, origin, u, uids_origin = read_uids_and_weights(uids, weights)
    u = match_uids(u, w).to(torch.int64)
    if index_by_position and w.shape[-1] > num_neurons:
        raise ShapeError(
            f"With `index_by_position`, rows must have at most num_neurons={num_neurons} entries, but got {w.shape[-1]}."
        )
    return w.to(float_compute_dtype(w.dtype)), origin, u, uids_origin


def _check_values(w: Tensor, u: Tensor) -> None:
    """Weights finite and non-negative; uids non-negative and distinct in each row."""
    check_finite_non_negative(w, "weights")
    check_in_range(u, "uids", 0, torch.iinfo(torch.int64).max)
    ordered = u.sort(dim=-1).values
    duplicate = first_index(ordered[..., 1:] == ordered[..., :-1])
    if duplicate is not None:
        raise ValueRangeError(f"Expected distinct `uids` in each row, but uid {int(ordered[duplicate])} repeats.")


def _classify(w: Tensor, u: Tensor, num_neurons: int, min_allowed_weights: int) -> _Cases:
    """The masks that pick each row's case."""
    nonzero = w > 0
    nnz = nonzero.sum(-1, keepdim=True)
    uniform = (nnz == 0) | (num_neurons < min_allowed_weights)
    floor = ~uniform & (nnz < min_allowed_weights)
    return _Cases(nonzero, nnz, uniform, floor, u < num_neurons)


def _check_spreadable(cases: _Cases, u: Tensor, num_neurons: int) -> None:
    """A weight spread over the neurons (case 2) needs a uid below ``num_neurons``."""
    bad = first_index(cases.floor & cases.nonzero & ~cases.placeable)
    if bad is not None:
        raise UidRangeError(
            f"Expected `uids` below num_neurons={num_neurons} where the weights are spread over all "
            f"neurons (fewer than min_allowed_weights nonzero), but found {int(u[bad])} at index {bad}."
        )


# ----------------------------------------------------------------------------------------------
# the cases


def _floor_rows(
    w: Tensor, u: Tensor, cases: _Cases, num_neurons: int, limit: float, index_by_position: bool
) -> Tensor:
    """Case 2: a floor of 1e-5 everywhere plus the weights, then the cap (``(*, num_neurons)``).

    The reference computes the floor in float64; it adds the weights by position, here at
    their uid unless ``index_by_position``.
    """
    target = arange_like(w).expand_as(u) if index_by_position else u.masked_fill(~cases.placeable, 0)
    spread_in = cases.nonzero if index_by_position else cases.nonzero & cases.placeable
    floored = torch.full((*w.shape[:-1], num_neurons), 1e-5, dtype=torch.float64, device=w.device)
    floored = floored.scatter_add(-1, target, w.masked_fill(~spread_in, 0).to(torch.float64))
    return reference_max_weight_rows(floored, limit).to(w.dtype)


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


def _kept_by_quantile(w: Tensor, cases: _Cases, min_allowed_weights: int, exclude_quantile: int) -> Tensor:
    """Case 3: the nonzero weights at or above the ``q*`` quantile of each row's nonzero weights."""
    count_f = cases.nnz.to(torch.float64)
    max_exclude = (count_f - min_allowed_weights).clamp(min=0) / count_f.clamp(min=1)
    quantile = torch.clamp(max_exclude, max=exclude_quantile / U16_MAX)
    if exclude_quantile == 0 or w.shape[-1] == 0:
        return cases.nonzero  # q* = 0: the threshold is the smallest nonzero weight (or no entries)
    threshold = _quantile_threshold(w, cases.nonzero, quantile)
    return cases.nonzero & (w.to(torch.float64) >= threshold)


# ----------------------------------------------------------------------------------------------
# the answer


def _padded_rows(
    u: Tensor, kept: Tensor, capped: Tensor, spread: Tensor, cases: _Cases, num_neurons: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Per row the uids, weights ``(*, max(N, num_neurons))`` and count the reference returns."""
    width = u.shape[-1]
    width_out = max(width, num_neurons)
    all_uids = torch.arange(num_neurons, device=u.device).expand(*u.shape[:-1], num_neurons)
    kept_uids, kept_weights = compact(kept, u, capped, fills=(-1, 0))
    pad = width_out - width
    kept_uids = torch.nn.functional.pad(kept_uids, (0, pad), value=-1)
    kept_weights = torch.nn.functional.pad(kept_weights, (0, pad))
    pad_all = width_out - num_neurons
    all_uids_padded = torch.nn.functional.pad(all_uids, (0, pad_all), value=-1)
    spread_padded = torch.nn.functional.pad(spread, (0, pad_all))
    whole_row = cases.whole_row
    out_uids = torch.where(whole_row, all_uids_padded, kept_uids)
    out_weights = torch.where(whole_row, spread_padded, kept_weights)
    count = torch.where(whole_row, num_neurons, kept.sum(-1, keepdim=True)).squeeze(-1)
    return out_uids, out_weights, count


def _dense_rows(u: Tensor, kept: Tensor, capped: Tensor, spread: Tensor, cases: _Cases) -> Tensor:
    """The same weights scattered to their uids, ``(*, num_neurons)``; uids out of range left out."""
    in_dense = kept & cases.placeable
    sparse = torch.zeros_like(spread).scatter_add(-1, u.masked_fill(~in_dense, 0), capped.masked_fill(~in_dense, 0))
    return torch.where(cases.whole_row, spread, sparse)


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

    Per row, as the SDK's ``process_weights``, with ``nz`` the entries with ``w > 0``:

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
    num_neurons, min_allowed_weights, exclude_quantile, limit = _read_settings(
        num_neurons, min_allowed_weights, exclude_quantile, max_weight_limit
    )
    w, origin, u, uids_origin = _read_rows(uids, weights, num_neurons, index_by_position)
    check_alloc((*w.shape[:-1], max(num_neurons, w.shape[-1])), torch.float64, w.device, "num_neurons")
    if validate:
        _check_values(w, u)
    cases = _classify(w, u, num_neurons, min_allowed_weights)
    if validate and not index_by_position:
        _check_spreadable(cases, u, num_neurons)
    floored = _floor_rows(w, u, cases, num_neurons, limit, index_by_position)
    kept = _kept_by_quantile(w, cases, min_allowed_weights, exclude_quantile)
    capped = reference_max_weight_rows(w, limit, valid=kept)
    spread = torch.where(cases.uniform, 1.0 / num_neurons, floored)  # cases 1 and 2
    out_uids, out_weights, count = _padded_rows(u, kept, capped, spread, cases, num_neurons)
    if w.ndim == 1:
        n = int(count)
        return uids_origin.wrap(out_uids[:n]), origin.wrap(out_weights[:n])
    dense = _dense_rows(u, kept, capped, spread, cases)
    return ProcessedWeights(
        uids_origin.wrap(out_uids), origin.wrap(out_weights), origin.wrap(count), origin.wrap(dense)
    )
