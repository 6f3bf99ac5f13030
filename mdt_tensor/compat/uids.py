"""The chain's sparse ``(uid, value)`` rows as dense tensors, batched.

``convert_weight_uids_and_vals_to_tensor`` and ``convert_bond_uids_and_vals_to_tensor`` follow the
Bittensor SDK (``opentensor/bittensor bittensor/utils/weight_utils.py``): ``row[uid] = value``,
the last write winning for a repeated uid. Padded ``(*, K)`` rows with a per-row ``count`` let a
whole metagraph's weights or bonds convert in one call.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._array import Array, ArrayOrigin, as_tensor, check_same_device
from .._intmath import INT64_MAX
from .._scaling import scale_down_rows
from .._validation import (
    check_alloc,
    check_finite,
    check_float_or_int,
    check_int,
    check_ndim,
    check_non_negative,
    first_index,
)
from ..errors import ShapeError, ValueRangeError
from ._rows import arange_like, check_integer_dtype

__all__ = ["UidRangeError", "convert_weight_uids_and_vals_to_tensor", "convert_bond_uids_and_vals_to_tensor"]


class UidRangeError(ValueRangeError, IndexError):
    """A uid is outside ``[0, n)``; also an ``IndexError``, which the reference raises."""


def _read_pairs(uids: Array, vals: Array, name: str) -> tuple[Tensor, Tensor, ArrayOrigin]:
    """Read ``uids`` (integers) and ``vals`` (numbers), both ``(*, K)`` on one device."""
    u, _ = as_tensor(uids, "uids")
    v, origin = as_tensor(vals, name)
    check_integer_dtype(u, "uids")
    check_float_or_int(v, name)
    check_ndim(v, name, 1, "(*, K)")
    check_same_device(uids=u, **{name: v})
    if u.shape != v.shape:
        raise ShapeError(f"Expected `uids` and `{name}` to have the same shape, but got {tuple(u.shape)} and {tuple(v.shape)}.")
    return u.to(torch.int64), v, origin


def _real_entries(u: Tensor, count: Array | None) -> Tensor:
    """Which entries of the ``(*, K)`` rows are real: the first ``count`` of each row (all if None)."""
    if count is None:
        return torch.ones_like(u, dtype=torch.bool)
    c, _ = as_tensor(count, "count")
    check_integer_dtype(c, "count")
    if c.shape != u.shape[:-1]:
        raise ShapeError(f"Expected `count` of shape {tuple(u.shape[:-1])}, but got {tuple(c.shape)}.")
    check_same_device(uids=u, count=c)
    return arange_like(u) < c.to(u.device).unsqueeze(-1)


def _scatter_last_write(n: int, uids: Array, vals: Array, count: Array | None, name: str) -> tuple[Tensor, Tensor, ArrayOrigin]:
    """Dense ``(*, n)`` rows from ``uids``/``vals`` ``(*, K)``: ``row[uid] = val``, last write wins.

    Returns ``(dense values, written mask, origin of vals)``; unwritten entries are 0.
    """
    n = check_int(n, "n", low=0, high=INT64_MAX)
    u, v, origin = _read_pairs(uids, vals, name)
    real = _real_entries(u, count)
    bad = first_index(real & ((u < 0) | (u >= n)))
    if bad is not None:
        raise UidRangeError(f"Expected `uids` in [0, {n}), but found {int(u[bad])} at index {bad}.")
    # The chain stores u16 values: a negative, NaN or infinite one is corrupt input, which the
    # row normalisation would turn into silent nonsense (a negative share, a row of NaN).
    check_finite(v.masked_fill(~real, 0), name)
    check_non_negative(v.masked_fill(~real, 0), name)
    check_alloc((*u.shape[:-1], n), torch.int64, u.device, "n")
    index = u.masked_fill(~real, 0)
    positions = arange_like(u).expand_as(u).masked_fill(~real, -1)
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
        ValueRangeError: ``n < 0``; a negative, NaN or infinite weight among the real entries;
            an ``n`` whose rows do not fit the device's memory.

    Example:
        >>> convert_weight_uids_and_vals_to_tensor(4, torch.tensor([1, 3]), torch.tensor([50, 50]))
        tensor([0.0000, 0.5000, 0.0000, 0.5000])
    """
    dense, _, origin = _scatter_last_write(n, uids, weights, count, "weights")
    if dense.is_floating_point() and dense.numel():
        # Rows scaled by a power of two to max < 1 (exact, and the shares are scale-invariant):
        # float64 values beyond float32's range, or sums past it, do not overflow.
        dense, _ = scale_down_rows(dense)
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

    Raises:
        UidRangeError: a uid outside [0, n).
        ValueRangeError: ``n < 0``; a negative, NaN or infinite bond among the real entries; a
            float bond of 2**63 or more (it does not fit int64); an ``n`` whose rows do not fit
            the device's memory.

    Example:
        >>> convert_bond_uids_and_vals_to_tensor(5, torch.tensor([1, 3, 4]), torch.tensor([10, 20, 30]))
        tensor([ 0, 10,  0, 20, 30])
    """
    dense, _, origin = _scatter_last_write(n, uids, bonds, count, "bonds")
    if dense.is_floating_point():
        dense = torch.trunc(dense)
        bad = first_index(dense >= 2.0**63)
        if bad is not None:
            raise ValueRangeError(f"Expected `bonds` below 2**63 (int64), but found {float(dense[bad])} at index {bad}.")
    return origin.wrap(dense.to(torch.int64))

