"""``smooth_weights``: a centred moving average or an exponential moving average along a row.

The moving average shrinks at the edges (no padding); the EMA is a blocked weighted cumulative
sum in float64 instead of a loop over positions (torch has no linear-recurrence scan); the
derivation of its block length is in ``_ema_last`` and ``docs/design/weights.md``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .._array import Array
from .._scaling import scale_back, scale_down_rows
from .._validation import check_choice, check_int, normalize_dim
from ._common import BlockChecker, empty, read_weights, rows_back, rows_last, rows_per_block

__all__ = ["smooth_weights"]

SmoothMethod = Literal["moving_average", "exponential"]
_METHODS = ("moving_average", "exponential")
#: Moving averages up to this window width sum directly (avg_pool1d); wider ones use a float64 cumsum.
_DIRECT_WINDOW_MAX = 33
#: EMA blocks are cut so that (1 - alpha) ** block <= 2 ** -_EMA_BLOCK_BITS (see _ema_last).
_EMA_BLOCK_BITS = 200


def smooth_weights(
    weights: Array,
    window_size: int = 3,
    method: SmoothMethod = "moving_average",
    *,
    dim: int = -1,
    validate: bool = True,
) -> Array:
    """Smooth every row of ``weights`` along ``dim`` (e.g. over time or over neurons).

    * ``"moving_average"``: a centred window ``[i - h, i + h]`` with ``h = window_size // 2``,
      **shrinking at the edges**: near an edge the mean is taken over the positions that exist
      (no padding), so ``[0.1, 0.5, 0.2, 0.8, 0.3]`` with window 3 gives
      ``[0.3, 0.2667, 0.5, 0.4333, 0.55]``. An **even** window behaves like the next odd one
      (window 2 averages 3 positions), as in the original.
    * ``"exponential"``: ``s_0 = w_0``, ``s_i = a * w_i + (1 - a) * s_{i-1}`` with
      ``a = 2 / (window_size + 1)``. Computed in float64 as a blocked weighted cumulative sum (no
      loop over positions, stable for any length); the result agrees with the sequential
      recurrence to float64 rounding, except that contributions older than a whole block, below
      ``2**-200`` times the row's largest ``|w|``, are dropped.

    Integer input is promoted to float32 (never truncated). An empty input gives an empty output.

    Args:
        weights: ``(*, N)`` weights.
        window_size: ``>= 1`` (1 returns the input values).
        method: ``"moving_average"`` or ``"exponential"``.
        dim: the axis to smooth along.
        validate: check that ``weights`` is finite.

    Returns:
        ``(*, N)`` smoothed weights, same kind as the input (float32 for integers).

    Raises:
        ValueRangeError: unknown ``method``.
        ValueRangeError: ``window_size < 1``; NaN or inf in ``weights``.
        ShapeError / DTypeError: bad ``dim``, 0-d input, bool/string input.

    Example:
        >>> smooth_weights(torch.tensor([0.1, 0.5, 0.2, 0.8, 0.3], dtype=torch.float64))
        tensor([0.3000, 0.2667, 0.5000, 0.4333, 0.5500], dtype=torch.float64)
        >>> smooth_weights(torch.tensor([0.0, 1.0, 1.0]), method="exponential")
        tensor([0.0000, 0.5000, 0.7500])
    """
    check_choice(method, "method", _METHODS)
    window = check_int(window_size, "window_size", low=1)
    w, origin = read_weights(weights, "weights")
    dim = normalize_dim(dim, w.ndim)
    BlockChecker(w, validate).finite(w)
    if w.numel() == 0 or window == 1:
        return origin.wrap(origin.restore_float(w.clone()))
    rows, moved_shape = rows_last(w, dim)
    if method == "moving_average":
        # (a half-width beyond the row averages the whole row either way; capped, it fits int64)
        smoothed = _moving_average_overflow_free(rows, min(window // 2, rows.shape[-1]))
    else:
        smoothed = _ema_last(rows, 2.0 / (window + 1))
    return origin.wrap(origin.restore_float(rows_back(smoothed, moved_shape, dim)))


def _moving_average_overflow_free(rows: Tensor, half: int) -> Tensor:
    """:func:`_moving_average_last`, on rows scaled by a power of two where a window sum could overflow.

    A window sum is at most (window or row length) times the largest ``|w|``; when that could
    pass the accumulating dtype's largest float, the rows are scaled to ``max |w| < 1`` and the
    (linear) average scaled back, exactly.
    """
    width = 2 * half + 1
    terms, accumulate = (width, rows.dtype) if width <= _DIRECT_WINDOW_MAX else (rows.shape[-1], torch.float64)
    low, high = torch.aminmax(rows)
    largest = float(torch.maximum(high, low.neg()))
    if not largest * terms >= torch.finfo(accumulate).max / 2:  # (NaN / inf: unspecified, as unchecked)
        return _moving_average_last(rows, half)
    scaled, exponent = scale_down_rows(rows)
    return scale_back(_moving_average_last(scaled, half), exponent)


def _moving_average_last(rows: Tensor, half: int) -> Tensor:
    """Centred moving average of width ``2 * half + 1`` along the last axis of ``(R, L)``, shrinking at edges."""
    width = 2 * half + 1
    if width <= _DIRECT_WINDOW_MAX:
        # avg_pool1d with count_include_pad=False divides by the number of real positions.
        return F.avg_pool1d(rows.unsqueeze(1), width, stride=1, padding=half, count_include_pad=False).squeeze(1)
    # Wide windows: O(L) differences of a float64 prefix sum.
    length = rows.shape[-1]
    prefix = torch.zeros(rows.shape[0], length + 1, dtype=torch.float64, device=rows.device)
    torch.cumsum(rows, -1, dtype=torch.float64, out=prefix[:, 1:])
    position = torch.arange(length, device=rows.device)
    upper = (position + half + 1).clamp_(max=length)
    lower = (position - half).clamp_(min=0)
    sums = prefix[:, upper] - prefix[:, lower]
    return sums.div_((upper - lower).to(torch.float64)).to(rows.dtype)


def _ema_last(rows: Tensor, alpha: float) -> Tensor:
    """EMA along the last axis of ``(R, L)``: ``s_0 = x_0``, ``s_i = alpha x_i + beta s_{i-1}``.

    With ``s_{-1} := x_0`` the recurrence holds from ``i = 0``. The row is cut into blocks of
    ``C`` positions with ``beta ** C <= 2**-200``. Inside a block starting at ``p``:

        s_{p+i} = alpha * beta**i * sum_{j<=i} beta**-j x_{p+j}  +  beta**(i+1) * s_{p-1}

    The weights ``beta**-j`` stay below ``2**200 / beta``, so after scaling each row by a power of
    two to ``max |x| <= 1`` nothing overflows in float64. ``s_{p-1}`` is taken as the previous
    block's own (zero-start) sum; what that drops is ``beta**C * s_{p-C-1}``, at most
    ``2**-200`` times the row's largest ``|x|``.
    """
    beta = 1.0 - alpha
    num_rows, length = rows.shape
    device = rows.device
    block = min(length, max(1, math.ceil(_EMA_BLOCK_BITS * math.log(2) / -math.log1p(-alpha))))  # (log1p: alpha may be below float resolution)
    num_blocks = -(-length // block)
    offset = torch.arange(block, dtype=torch.float64, device=device)
    beta_t = torch.tensor(beta, dtype=torch.float64, device=device)
    growth = torch.pow(beta_t, -offset)  # beta ** -j
    coefficient = torch.pow(beta_t, offset).mul_(alpha)  # alpha beta ** i
    carry = beta**block
    result = empty((num_rows, length), rows.dtype, rows)
    step = max(1, rows_per_block(rows) // 2)  # the float64 buffer is twice as wide
    buffer = torch.empty(min(step, num_rows), num_blocks * block, dtype=torch.float64, device=device)
    buffer[:, length:].zero_()  # causal: padding at the end changes nothing before it
    for first in range(0, num_rows, step):
        count = min(step, num_rows - first)
        work = buffer[:count]
        x = work[:, :length].copy_(rows[first : first + count])
        scale = None
        if rows.dtype == torch.float64:
            # Exact power-of-two scaling per row to max |x| <= 1, so beta**-j * x cannot overflow
            # (float32 and promoted inputs are below 2**128: no scaling needed).
            largest = torch.maximum(x.amax(-1, keepdim=True), x.amin(-1, keepdim=True).neg_())
            scale = torch.ldexp(torch.ones_like(largest), -torch.frexp(largest).exponent)
            x.mul_(scale)
        blocks = work.view(count, num_blocks, block).mul_(growth)
        # c_i = (beta / alpha) s_start + sum_{j<=i} beta**-j x_j, then s_i = alpha beta**i c_i.
        # s_start: x_0 for the first block (so its first element becomes x_0 / alpha), else the
        # previous block's last value without its own start: alpha beta**(C-1) * (its sum).
        previous = blocks[:, :-1].sum(-1)
        blocks[:, 0, 0].div_(alpha)
        blocks[:, 1:, 0].add_(previous.mul_(carry))
        blocks.cumsum_(-1).mul_(coefficient)
        if scale is not None:
            x.div_(scale)
        result[first : first + count].copy_(x)
    return result
