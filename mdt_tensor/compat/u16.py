"""The u16 codecs: weights to the values a ``set_weights`` call submits, and back to the chain's scale.

``convert_weights_and_uids_for_emit`` and ``convert_maybe_split_to_u16`` follow the Bittensor SDK
(``opentensor/bittensor bittensor/utils/weight_utils.py``); ``u16_max_upscale`` is the chain's
``vec_u16_max_upscale_to_u16`` (``opentensor/subtensor pallets/subtensor/src/epoch/math.rs``),
bit for bit. Each works on ``(*, N)`` rows at once, without a loop over rows or entries.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .._array import Array, as_tensor
from .._constants import U16_MAX
from .._scaling import scale_down_rows
from .._validation import (
    check_finite_non_negative,
    check_float_or_int,
    check_ndim,
    check_u16,
    first_index,
    normalize_dim,
)
from ..errors import ShapeError, ValueRangeError
from ._rows import check_integer_dtype, compact, match_uids, read_uids_and_weights

__all__ = ["EmitRows", "convert_weights_and_uids_for_emit", "u16_max_upscale", "convert_maybe_split_to_u16"]


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


def max_upscale_float_to_u16(weights: Tensor, submit: Tensor | None, drop_rounded_zeros: bool) -> tuple[Tensor, Tensor]:
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
    w, origin, u, _ = read_uids_and_weights(uids, weights)
    if w.shape[-1] == 0:
        raise ShapeError("Expected at least one weight per row, but got an empty last dimension.")
    expanded = match_uids(u, w)
    if validate:
        check_finite_non_negative(w, "weights")
        check_u16(u, "uids")  # before expanding: one check per distinct row
    u = expanded
    values, kept = max_upscale_float_to_u16(w.to(torch.float64), None, drop_rounded_zeros)
    uids_out, values_out = compact(kept, u.to(torch.int64), values, fills=(-1, 0))
    count = kept.sum(-1)
    if w.ndim == 1:
        n = int(count)
        return uids_out[:n].tolist(), values_out[:n].tolist()
    return EmitRows(origin.wrap(uids_out), origin.wrap(values_out), origin.wrap(count))


def u16_max_upscale(values: Array, *, dim: int = -1, validate: bool = True) -> Array:
    """The chain's ``vec_u16_max_upscale_to_u16``: rescale u16 rows so their maximum is 65535.

    Bit-exact emulation of the chain's I32F32 steps on int64: for a row maximum
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
    check_integer_dtype(v, "values")
    check_ndim(v, "values", 1, "(*, N)")
    dim = normalize_dim(dim, v.ndim)
    if validate:
        check_u16(v, "values")
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
    if validate:
        check_finite_non_negative(x, "split")
    # Rows scaled by a power of two to max < 1 (exact; the split is scale-invariant), so that the
    # sum cannot overflow. A sequential sum on the CPU (cumsum), as Python's sum() adds left to right.
    x, _ = scale_down_rows(x)
    total = x.cumsum(-1)[..., -1:]
    if validate:
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

