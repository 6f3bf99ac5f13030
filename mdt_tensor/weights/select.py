"""``top_k_weights``: keep the k largest weights of every row, ties to the lower index.

``torch.topk`` (and ``np.argpartition``, which the CPU uses: ``_cpu/select.py``) does not say
which of several equal values it returns, so the k + 1 largest are found (two-stage on long
rows), everything above the smallest of them is kept, and copies of that value fill the
remaining places from the lowest index up. See ``docs/design/weights.md``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._array import Array
from .._cpu.engine import use_numpy_kernel
from .._cpu.select import largest_indices_numpy
from .._validation import check_fits_dtype, check_int, check_not_nan, check_number, normalize_dim
from ._common import empty_like, read_weights, rows_back, rows_last

__all__ = ["top_k_weights"]

#: Group width of the two-stage top-k selection (see _top_k_plus_one).
_TOPK_GROUP = 8


def top_k_weights(
    weights: Array,
    k: int,
    *,
    dim: int = -1,
    other_value: float = 0.0,
    validate: bool = True,
) -> Array:
    """Keep the ``k`` largest weights of every row along ``dim``; set the others to ``other_value``.

    Ties are broken deterministically: among equal values the **lower index** is kept (on every
    device). ``k = 0`` keeps nothing, ``k = N`` keeps everything. ``±inf`` are ordinary values.

    Args:
        weights: ``(*, N)`` weights.
        k: how many to keep per row, ``0 <= k <= N``.
        dim: the axis to select along.
        other_value: the value written where a weight is not kept.
        validate: check ``weights`` for NaN (NaN has no rank). Without it NaN rows are unspecified.

    Returns:
        ``(*, N)`` weights with all but the top ``k`` per row replaced (float32 for integers).

    Raises:
        ValueRangeError: ``k`` outside ``0..N``; NaN in ``weights``.
        ShapeError / DTypeError: bad ``dim``, 0-d input, bool/string input, non-int ``k``.

    Example:
        >>> top_k_weights(torch.tensor([[0.5, 1.0, 0.5, 0.5, 0.2]]), 2)
        tensor([[0.5000, 1.0000, 0.0000, 0.0000, 0.0000]])
    """
    w, origin = read_weights(weights, "weights")
    dim = normalize_dim(dim, w.ndim)
    size = w.shape[dim]
    k = check_int(k, "k", low=0, high=size)
    fill = check_number(other_value, "other_value", finite=False)
    check_fits_dtype(fill, "other_value", origin.dtype if origin.dtype in (torch.float16, torch.bfloat16) else w.dtype)
    if validate and w.is_floating_point() and w.numel() and bool(torch.isnan(w.sum())):
        check_not_nan(w, "weights")
    if k == size or w.numel() == 0:
        return origin.wrap(origin.restore_float(w.clone()))
    rows, moved_shape = rows_last(w, dim)
    result = empty_like(rows).fill_(fill)
    if k > 0:
        # The k + 1 largest (any order) hold every element above t = their minimum. Scatter them
        # with the copies of t replaced by `fill`: rows where t occurs once are then done (k kept);
        # rows with a tie at the boundary still need `free` copies of t, at the lowest indices.
        values, indices = _top_k_plus_one(rows, k)
        threshold = values.amin(1, keepdim=True)
        at_threshold = values == threshold
        result.scatter_(1, indices, values.masked_fill(at_threshold, fill))
        free = at_threshold.sum(1) - 1  # k minus the number above t
        if bool((free > 0).any()):
            _place_ties(rows, result, free, threshold)
    return origin.wrap(origin.restore_float(rows_back(result, moved_shape, dim)))


def _top_k_plus_one(rows: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k + 1`` largest values of every row of ``(R, N)`` (in any order) and their indices.

    For long rows a two-stage selection replaces one ``torch.topk`` over N (slow on CPU): split
    each row into G contiguous groups of ``_TOPK_GROUP`` elements, keep the ``k + 1`` groups with
    the largest maxima (L is the smallest of those maxima), run topk over their members plus
    the few leftover tail elements. Every element outside the kept groups is at most L, and the
    kept groups hold at least ``k + 1`` elements >= L, so the ``k + 1`` largest *values* are
    found exactly, and every element strictly above the (k+1)-th value is a candidate, so the
    indices of those are exact too (copies of the (k+1)-th value are placed by the caller).
    The kept groups are copied whole (``index_select``) and only the chosen candidates' indices
    are computed.
    """
    num_rows, size = rows.shape
    keep = k + 1
    width = _TOPK_GROUP
    groups = size // width
    if groups < 4 * keep:
        return _largest(rows, keep)
    body = rows[:, : width * groups].reshape(num_rows * groups, width)  # group g of row r: body[r * G + g]
    # The groups' maxima by max-pooling (a reduction over a contiguous innermost 8 is slower on the CPU).
    maxima = torch.nn.functional.max_pool1d(rows[:, : width * groups].unsqueeze(1), width).view(num_rows, groups)
    best = _largest(maxima, keep)[1]
    first_group = torch.arange(0, num_rows * groups, groups, device=rows.device).unsqueeze(1)
    candidates = body.index_select(0, (best + first_group).reshape(-1)).view(num_rows, keep * width)
    tail = size - width * groups
    if tail:
        candidates = torch.cat([candidates, rows[:, width * groups :]], 1)
    values, chosen = _largest(candidates, keep)
    in_groups = chosen < keep * width
    slot = torch.where(in_groups, chosen, 0)
    positions = best.gather(1, slot // width) * width + slot % width
    return values, torch.where(in_groups, positions, chosen - keep * width + width * groups)


def _largest(rows: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """The ``count`` largest values of every row of ``(R, N)`` and their indices, in any order:
    ``np.argpartition`` on CPU float32/float64 (``_cpu/select.py``), else ``torch.topk``."""
    if rows.dtype in (torch.float32, torch.float64) and use_numpy_kernel(rows):
        indices = largest_indices_numpy(rows, count)
        return rows.gather(1, indices), indices
    values, indices = torch.topk(rows, count, dim=1, largest=True, sorted=False)
    return values, indices


def _place_ties(rows: Tensor, result: Tensor, free: Tensor, threshold: Tensor) -> None:
    """Write ``t`` (``threshold``) at the first ``free`` positions holding ``t`` of every row with ``free > 0``.

    The copies are ranked by a running count along the row over the shortest column prefix,
    widened 4x at a time, that holds enough copies in every such row; all those rows are handled
    by one set of batched calls (per-block loops and ``nonzero`` bookkeeping were several times
    slower).
    """
    tied = free > 0
    every_row = bool(tied.all())
    which = torch.arange(rows.shape[0], device=rows.device) if every_row else tied.nonzero().squeeze(1)
    threshold, free = threshold[which], free[which]  # (A, 1), (A,)

    def prefix_equal(width: int) -> Tensor:
        prefix = rows[:, :width] if every_row else rows[which, :width]
        return prefix == threshold

    width = min(rows.shape[1], 4 * int(free.max()))
    equal = prefix_equal(width)
    while width < rows.shape[1] and bool((equal.sum(1) < free).any()):
        width = min(rows.shape[1], 4 * width)
        equal = prefix_equal(width)
    keep = equal & (torch.cumsum(equal, 1, dtype=torch.int32) <= free.unsqueeze(1))
    if every_row:
        result[:, :width] = torch.where(keep, threshold, result[:, :width])
    else:
        result[which, :width] = torch.where(keep, threshold, result[which, :width])
