"""``normalize_max_weight``: each row normalised to sum 1 with no entry above a cap, batched.

Two algorithms: the Bittensor SDK's (``opentensor/bittensor bittensor/utils/weight_utils.py``,
epsilon and uniform fallback included), and exact water-filling (``strict=True``), which the
validator pipeline (:mod:`.scores`) uses. Both order only the few largest entries of a row
(``topk``, not a sort); why, and how the SDK's loop becomes tensor operations, is in
``docs/design/compat.md``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._array import Array
from .._scaling import scale_down_rows
from .._validation import check_finite_non_negative, check_number
from ._rows import float_rows

__all__ = ["normalize_max_weight"]

#: The reference's ``epsilon`` in ``normalize_max_weight``.
_REFERENCE_EPS = 1e-7


def _candidates(limit: float, width: int) -> int:
    """How many of the largest entries can be capped under ``limit``, plus a safety margin.

    Capped entries each hold about ``limit`` of the row, so fewer than ``1/limit`` are capped;
    the entry of descending rank ``r`` has a share of at most ``1/(r+1)`` even if every larger
    entry were cut down to it, so ranks ``>= floor(1/limit) + 2`` are never capped (with room for
    rounding). Only this many largest entries need ordering (``topk``, not a full sort).
    """
    bound = 1 / limit
    return width if bound >= width else min(width, math.floor(bound) + 3)


def reference_max_weight_rows(x: Tensor, limit: float, valid: Tensor | None = None) -> Tensor:
    """The reference algorithm on every row of ``x`` ``(*, N)`` (float), over ``valid`` entries.

    Invalid entries take no part (as if the row held only the valid ones) and come out 0.
    The reference sorts the row ascending and counts the uncapped entries from the bottom; the
    same count is ``n`` minus the capped entries at the top, which :func:`_candidates` bounds, so
    only the largest few entries are ordered. The cumulative sums the reference forms from the
    bottom are taken as the row total minus the larger entries, in float64 (no cancellation
    worse than the reference's own float32 sums).
    """
    dtype, device, width = x.dtype, x.device, x.shape[-1]
    if width == 0:
        return x.clone()  # rows without entries: nothing to normalise (process_weights' empty rows)
    if valid is None:
        n = torch.full((*x.shape[:-1], 1), width, dtype=torch.int64, device=device)
    else:
        x = x.masked_fill(~valid, 0)
        n = valid.sum(-1, keepdim=True)
    if x.numel():
        # Rows scaled by a power of two to max < 1: exact, and every step below is a share of the
        # row (the cutoff scales with it), so the result is the same, without overflowing sums.
        x, _ = scale_down_rows(x)
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


def water_fill_rows(x: Tensor, limit: Tensor | float, min_limit: float | None = None) -> Tensor:
    """Exact water-filling of every row of ``x`` ``(*, N)`` (float, >= 0) under ``limit``.

    ``limit`` is a float or a ``(*, 1)`` tensor whose smallest value is ``min_limit``. Capped
    entries get exactly ``limit``, the others keep their proportions; zeros stay 0. Rows with
    ``nnz * limit <= 1`` cannot meet the cap and get ``1/nnz`` on their nonzero entries;
    all-zero rows stay all zero. Only the :func:`_candidates` largest entries are ordered.
    """
    dtype, width = x.dtype, x.shape[-1]
    if width == 0:
        return x.clone()
    if x.numel():
        x, _ = scale_down_rows(x)  # exact; the result is a share of the row: no float64 overflow
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
    negative and the row comes out uniform, zeros included (``docs/design/compat.md``),
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
    limit = check_number(limit, "limit", low=0, low_open=True)
    rows, origin, dim = float_rows(x, "x", dim)
    if validate:
        check_finite_non_negative(rows, "x")
    if rows.shape[-1] == 0:
        out = rows
    else:
        out = water_fill_rows(rows, limit) if strict else reference_max_weight_rows(rows, limit)
    return origin.wrap(origin.restore_float(out.movedim(-1, dim)))

