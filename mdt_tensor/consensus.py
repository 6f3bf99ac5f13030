"""Consensus across validators: the stake-weighted median (Yuma's ``C_j``) and stack reductions.

The stake-weighted median is the chain's ``weighted_median_col_sparse`` (opentensor/subtensor
``pallets/subtensor/src/epoch/math.rs``) in closed form: the largest value of each column backed
by at least ``kappa`` of the positive stake (the column's minimum if none is, 0 without stake).
It needs only the order of the values, so a sort plus a cumulative sum gives the chain's answer,
batched, on any device; ``weighted_median_fixed`` does it on I32F32 bits with exact integer sums,
``weighted_median`` in float64. How the sort is keyed, and the numpy CPU kernels
(``_cpu/weighted_median.py``, ``_cpu/stack_median.py``): ``docs/design/weighted-median.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ._array import Array, ArrayOrigin, as_float_tensor, as_tensor, check_same_device, float_compute_dtype
from ._cpu.engine import use_numpy_kernel
from ._cpu.stack_median import stack_median_numpy
from ._cpu.weighted_median import numpy_encoding, row_index_bits, select_numpy
from ._validation import (
    check_choice,
    check_finite_non_negative,
    check_float_or_int,
    check_in_range,
    check_int,
    check_ndim,
    check_not_nan,
    check_number,
    normalize_dim,
)
from ._scaling import scale_back, scale_down_rows
from .errors import DTypeError, ShapeError
from .chain.fixed import ONE, fx_normalize

__all__ = [
    "DEFAULT_KAPPA",
    "DEFAULT_KAPPA_BITS",
    "weighted_median",
    "weighted_median_fixed",
    "clip_to_consensus",
    "compute_weight_consensus",
]

#: The chain's default consensus majority, ``Kappa = 32767`` as a u16 proportion.
DEFAULT_KAPPA = 32767 / 65535
#: The same in I32F32 bits: ``I32F32(32767).safe_div(I32F32(65535))``.
DEFAULT_KAPPA_BITS = (32767 << 32) // 65535

ConsensusMethod = Literal["mean", "median", "max", "min", "stake_median"]
_METHODS = ("mean", "median", "max", "min", "stake_median")


# ----------------------------------------------------------------------------- the shared core


def _float32_keys(values: Tensor) -> Tensor:
    """Order-preserving non-negative int64 keys of float32 values, in ``[0, 2**32)``.

    ``-0.0`` is folded into ``+0.0`` first (they compare equal, so they must get one key).
    """
    bits = (values + 0.0).view(torch.int32)
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # negative floats: flip the magnitude bits
    return ordered.to(torch.int64) + 2**31


def _packed_keys(values: Tensor, included: Tensor) -> Tensor | None:
    """Sortable int64 keys ``(B, N, V)``: the value's order key above the row index.

    Rows that are not included get a key above every value, so they sort last. Returns None when
    the value keys and the row index do not fit 63 bits together (then an index sort is used).
    """
    rows = values.shape[-2]
    row_bits = row_index_bits(rows)
    if values.dtype == torch.float32:
        keys, excluded_key = _float32_keys(values), 2**32  # 33 bits with the excluded key
    elif values.dtype == torch.int64:
        if values.numel() == 0:
            return None
        low, high = int(values.min()), int(values.max())
        span_bits = (high - low + 1).bit_length()
        if span_bits + row_bits > 62:
            return None
        keys, excluded_key = values - low, high - low + 1
    else:
        return None
    keys = keys.masked_fill(~included.unsqueeze(-1), excluded_key)
    row_index = torch.arange(rows, device=values.device, dtype=torch.int64)
    packed = torch.empty(values.shape[:-2] + (values.shape[-1], rows), dtype=torch.int64, device=values.device)
    torch.bitwise_or(keys.transpose(-1, -2) << row_bits, row_index, out=packed)
    return packed


def _sort_last(keys: Tensor) -> Tensor:
    """Sort int64 keys along the last (contiguous) axis."""
    return torch.sort(keys, dim=-1).values


def _rows_in_value_order(values: Tensor, included: Tensor) -> Tensor:
    """For each column, the row indices in ascending value order (excluded rows last): ``(B, N, V)``.

    Equal values keep ascending row order; the result does not depend on it (see ``_select_torch``).
    """
    packed = _packed_keys(values, included)
    if packed is not None:
        row_bits = row_index_bits(values.shape[-2])
        return _sort_last(packed) & ((1 << row_bits) - 1)
    if values.is_floating_point():
        # float64: one sort of the values with their indices, excluded rows pushed last by a +inf
        # sentinel (weights are finite); the order among equal values does not matter.
        columns = values.masked_fill(~included.unsqueeze(-1), math.inf).transpose(-1, -2)
        return torch.sort(columns, dim=-1).indices
    # Fallback (int64 values spanning more than 62 - row_bits bits, which may hold any value):
    # sort the values with their indices, excluded rows pushed to the end by a stable sort on the mask.
    columns = values.transpose(-1, -2)
    order = torch.sort(columns, dim=-1, stable=True).indices
    excluded = (~included).unsqueeze(-2).expand_as(columns)
    by_exclusion = torch.sort(excluded.gather(-1, order).to(torch.uint8), dim=-1, stable=True).indices
    return order.gather(-1, by_exclusion)


def _select_torch(values: Tensor, stake: Tensor, included: Tensor, minority: Tensor) -> Tensor:
    """The closed-form weighted median ``(B, N)`` of ``values (B, V, N)``.

    Args:
        stake: ``(B, V)`` stake of the included rows (0 elsewhere), float64 or int64 bits.
        included: ``(B, V)`` rows that take part.
        minority: ``(B,)`` the most stake allowed strictly below the answer, in the stake's dtype.

    In ascending value order with cumulative stake ``c_k``, the answer is the value at the first
    ``k`` with ``c_k > minority``: its group's lower stake is ``<= minority`` and every larger
    value has more. If no ``k`` qualifies it is the largest included value; if ``minority < 0``
    the smallest. The position found is the same whatever order equal values are in.
    """
    batch, rows, columns = values.shape
    out = torch.zeros((batch, columns), dtype=values.dtype, device=values.device)
    if rows == 0 or columns == 0:
        return out
    order = _rows_in_value_order(values, included)  # (B, N, V)
    sorted_stake = torch.gather(stake.unsqueeze(1).expand(batch, columns, rows), -1, order)
    cumulative = sorted_stake.cumsum_(-1)
    threshold = minority.to(cumulative.dtype).view(batch, 1, 1).expand(batch, columns, 1).contiguous()
    position = torch.searchsorted(cumulative, threshold, right=True)  # count of c_k <= minority
    included_count = included.sum(-1).view(batch, 1, 1)
    position = torch.minimum(position, (included_count - 1).clamp(min=0))
    answer_row = order.gather(-1, position)  # (B, N, 1)
    answer = values.gather(-2, answer_row.transpose(-1, -2)).squeeze(-2)  # (B, N)
    return torch.where(included_count.view(batch, 1) > 0, answer, out)


def _select(values: Tensor, stake: Tensor, included: Tensor, minority: Tensor) -> Tensor:
    """The closed-form weighted median ``(B, N)``: the numpy kernel where it applies, else torch."""
    if use_numpy_kernel(values):
        encoding = numpy_encoding(values)
        if encoding is not None:
            return select_numpy(values, stake, included, minority, encoding)
    return _select_torch(values, stake, included, minority)


def _select_with_zero_votes(
    values: Tensor, stake: Tensor, included: Tensor, minority: Tensor, zero_mass: Tensor, zero_voters: Tensor
) -> Tensor:
    """``_select`` with more included rows, voting 0 in every column, given only by their stake.

    ``zero_mass (B,)``: their stake; ``zero_voters (B,)``: whether there are any. For
    non-negative values (the epoch's weights, which leave out validators whose rows are all
    zero): those votes sort first, so the answer is 0 where they reach past the minority and
    otherwise the rows' answer with the minority lowered by their stake. The same decisions
    as on the full matrix.
    """
    answer = _select(values, stake, included, minority - zero_mass)
    return answer.masked_fill_((zero_voters & (zero_mass > minority)).unsqueeze(-1), 0)


def _broadcast(error: str, *shapes: tuple[int, ...]) -> torch.Size:
    """``np.broadcast_shapes`` as a ``torch.Size``, or a ShapeError saying ``error``.

    (``torch.broadcast_shapes`` imports sympy on first use.)
    """
    try:
        return torch.Size(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(error) from None


def _kappa_batch(batch: torch.Size, kappa_shape: torch.Size) -> torch.Size:
    return _broadcast(
        f"Expected `kappa` to broadcast against the batch dimensions {tuple(batch)}, but it has shape "
        f"{tuple(kappa_shape)}.",
        batch,
        kappa_shape,
    )


def _batch_shapes(weights: Tensor, stakes: Tensor, weights_name: str, stakes_name: str) -> torch.Size:
    check_ndim(weights, weights_name, 2, "(*, V, N)")
    check_ndim(stakes, stakes_name, 1, "(*, V)")
    if stakes.shape[-1] != weights.shape[-2]:
        raise ShapeError(
            f"Expected `{stakes_name}` to have shape (*, V) with V = {weights.shape[-2]} (the rows of "
            f"`{weights_name}` {tuple(weights.shape)}), but got shape {tuple(stakes.shape)}."
        )
    error = _leading_dims_error(weights_name, weights, stakes_name, stakes)
    return _broadcast(error, weights.shape[:-2], stakes.shape[:-1])


def _leading_dims_error(first_name: str, first: Tensor, second_name: str, second: Tensor) -> str:
    return (
        f"Expected the leading dimensions of `{first_name}` {tuple(first.shape)} and `{second_name}` "
        f"{tuple(second.shape)} to broadcast, but they do not."
    )


def _run_core(weights: Tensor, stake: Tensor, included: Tensor, minority: Tensor, batch: torch.Size) -> Tensor:
    rows, columns = weights.shape[-2:]
    size = math.prod(batch)
    flat_weights = weights.expand(batch + (rows, columns)).reshape(size, rows, columns)
    flat_stake = stake.expand(batch + (rows,)).reshape(size, rows)
    flat_included = included.expand(batch + (rows,)).reshape(size, rows)
    flat_minority = minority.expand(batch).reshape(size)
    return _select(flat_weights, flat_stake, flat_included, flat_minority).reshape(batch + (columns,))


def _is_scalar(value: object) -> bool:
    """A Python or numpy scalar (bool included, so that the scalar checks reject it as a DTypeError)."""
    return isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating))


def _kappa_tensor(kappa: float | Array, dtype: torch.dtype, device: torch.device, validate: bool) -> Tensor:
    if _is_scalar(kappa):
        return torch.tensor(check_number(kappa, "kappa", low=0.0, high=1.0), dtype=dtype, device=device)
    k, _ = as_float_tensor(kappa, "kappa")
    if validate:
        check_in_range(k, "kappa", 0.0, 1.0)
    return k.to(device=device, dtype=dtype)


# ----------------------------------------------------------------------------- public


def weighted_median(
    weights: Array,
    stakes: Array,
    kappa: float | Array = DEFAULT_KAPPA,
    *,
    validate: bool = True,
) -> Array:
    """Stake-weighted median of each column: the largest weight backed by ``kappa`` of the stake.

    For each column j, with the rows of positive stake renormalised to ``s``: the largest value
    ``p`` among ``W[:, j]`` with ``sum(s_i for W_ij >= p) >= kappa`` (the closed form of the
    chain's ``weighted_median_col_sparse``, in float). When no value qualifies (``kappa`` above the
    stake the column can gather) the column's minimum; 0 when no row has positive stake or there
    are no rows. The result is always one of the column's values (no interpolation); rows with
    stake <= 0 take no part. ``kappa = 0`` gives the column maximum; a value backed by exactly
    half the stake is consensus under the default ``kappa = 32767/65535``.

    Stake sums are accumulated in float64 without renormalising: a value qualifies when the
    stake strictly below it is at most ``total - kappa * total`` (the chain's
    ``minority = sigma - kappa``, scaled by the total), so integer stakes are summed exactly (while
    their total stays below ``2**53``) and a threshold that lands exactly on a partial sum is
    decided exactly. Each stake row is first scaled by a power of two (exact), so stakes near the
    float64 maximum cannot overflow the sums. For the chain's bits use
    :func:`weighted_median_fixed`.

    Args:
        weights: ``(*, V, N)`` float (or integer) weights, V validators by N neurons.
        stakes: ``(*, V)`` stake per validator; leading dimensions broadcast against ``weights``'.
        kappa: the majority in ``[0, 1]``, a float or a tensor broadcastable to ``(*)``.
        validate: check for NaN, inf and negative values (reads the data; skip for speed).
            Without the checks such values give an unspecified result.

    Returns:
        ``(*, N)`` consensus, in the dtype and array type of ``weights``.

    Raises:
        ShapeError: ``weights`` is not ``(*, V, N)`` or ``stakes`` does not match its V.
        ValueRangeError: NaN, inf or negative weights or stakes, or ``kappa`` outside ``[0, 1]``.

    Example:
        >>> w = torch.tensor([[0.1, 0.5], [0.2, 0.5], [0.3, 0.0]])
        >>> weighted_median(w, torch.tensor([1.0, 1.0, 2.0]))  # 0.3 holds half the stake
        tensor([0.3000, 0.5000])
        >>> weighted_median(w, torch.tensor([1.0, 1.0, 2.0]), kappa=0.6)
        tensor([0.2000, 0.0000])
    """
    w, origin = as_float_tensor(weights, "weights")
    s, _ = as_tensor(stakes, "stakes")
    check_same_device(weights=w, stakes=s)
    batch = _batch_shapes(w, s, "weights", "stakes")
    check_float_or_int(s, "stakes")
    s = s.to(torch.float64)
    if validate:
        check_finite_non_negative(w, "weights")
        check_finite_non_negative(s, "stakes")
    k = _kappa_tensor(kappa, torch.float64, w.device, validate)
    included = s > 0
    positive = torch.where(included, s, torch.zeros_like(s))
    if positive.numel():
        # Each stake row scaled by a power of two to max < 1 (exact, so the same decisions), so
        # that the sums below cannot overflow float64 (two stakes of 1e308).
        positive, _ = scale_down_rows(positive)
    # Unnormalised: the stake strictly below p must be at most total - kappa * total. Integer
    # stakes then sum exactly, and so do thresholds that land exactly on a partial sum.
    total = positive.sum(-1)
    minority = total - k * total
    batch = _kappa_batch(batch, minority.shape)
    out = _run_core(w, positive, included, minority.expand(batch), batch)
    return origin.wrap(origin.restore_float(out))


def weighted_median_fixed(
    weight_bits: Array,
    stake_bits: Array,
    kappa_bits: int | Array = DEFAULT_KAPPA_BITS,
    *,
    renormalize: bool = True,
    validate: bool = True,
) -> Array:
    """The chain's ``weighted_median_col_sparse`` on I32F32 bits, bit for bit.

    Rows with ``stake_bits > 0`` are kept and their stake renormalised with the chain's
    ``inplace_normalize`` (each ``s_i.safe_div(sum)``, truncating), ``sigma`` is the sum of the
    renormalised stake and ``minority = sigma - kappa``; the result is the largest value ``p`` of
    the column whose strictly-lower stake is ``<= minority`` (the minimum if none, 0 when no row
    has positive stake). All sums are exact integer sums, so this equals the chain's quickselect
    on every input, on CPU and CUDA alike.

    Args:
        weight_bits: ``(*, V, N)`` I32F32 bits (int64; any values, missing sparse entries as 0).
        stake_bits: ``(*, V)`` I32F32 bits of the (active) stake; leading dimensions broadcast.
        kappa_bits: I32F32 bits of kappa, an int or an integer tensor broadcastable to ``(*)``;
            default ``DEFAULT_KAPPA_BITS`` (u16 32767 as the chain converts it).
        renormalize: renormalise the positive stake as the chain does (default). ``False`` uses
            the given stake as it is, with ``minority = sum(stake) - kappa``.
        validate: check that ``kappa_bits`` lies in ``[0, 2**32]`` (reads the data).

    Returns:
        ``(*, N)`` int64 I32F32 bits.

    Example:
        >>> from mdt_tensor.chain.fixed import fx_from_float, fx_to_float
        >>> w = fx_from_float(torch.tensor([[0.1, 0.5], [0.2, 0.5], [0.3, 0.0]], dtype=torch.float64))
        >>> fx_to_float(weighted_median_fixed(w, fx_from_float(torch.tensor([1.0, 1.0, 2.0]))))
        tensor([0.3000, 0.5000], dtype=torch.float64)
    """
    w, origin = as_tensor(weight_bits, "weight_bits")
    s, _ = as_tensor(stake_bits, "stake_bits")
    for tensor, name in ((w, "weight_bits"), (s, "stake_bits")):
        if tensor.dtype.is_floating_point or tensor.dtype == torch.bool:
            raise DTypeError(f"Expected `{name}` to hold I32F32 bits in an integer dtype, but got {tensor.dtype}.")
    w, s = w.to(torch.int64), s.to(torch.int64)
    check_same_device(weight_bits=w, stake_bits=s)
    batch = _batch_shapes(w, s, "weight_bits", "stake_bits")
    k = _kappa_bits_tensor(kappa_bits, w.device, validate)
    included = s > 0
    positive = torch.where(included, s, torch.zeros_like(s))
    share = fx_normalize(positive) if renormalize else positive
    minority = share.sum(-1) - k
    batch = _kappa_batch(batch, minority.shape)
    out = _run_core(w, share, included, minority.expand(batch), batch)
    return origin.wrap(out)


def _kappa_bits_tensor(kappa_bits: int | Array, device: torch.device, validate: bool) -> Tensor:
    """``kappa_bits`` as an int64 tensor on ``device``, in ``[0, ONE]`` (kappa in [0, 1])."""
    if _is_scalar(kappa_bits):
        return torch.tensor(check_int(kappa_bits, "kappa_bits", low=0, high=ONE), dtype=torch.int64, device=device)
    k, _ = as_tensor(kappa_bits, "kappa_bits")
    if k.dtype.is_floating_point:
        raise DTypeError(f"Expected `kappa_bits` to be I32F32 bits in an integer dtype, but got {k.dtype}.")
    k = k.to(device=device, dtype=torch.int64)
    if validate:
        check_in_range(k, "kappa_bits", 0, ONE)
    return k


def clip_to_consensus(weights: Array, consensus: Array, *, validate: bool = True) -> Array:
    """Clip each weight at its column's consensus: ``min(W_ij, C_j)`` (Yuma's ``W̄``).

    Args:
        weights: ``(*, V, N)``.
        consensus: ``(*, N)``, leading dimensions broadcastable against ``weights``'.
        validate: reject NaN in ``weights`` or ``consensus`` (a NaN would silently spread to
            the whole column; ``±inf`` are ordinary values). Reads the data.

    Returns:
        ``(*, V, N)`` in the array type of ``weights``. Two integer inputs (e.g. I32F32 bits)
        give an integer result; otherwise the float compute dtype of ``weights``.

    Raises:
        ShapeError: ``weights`` not ``(*, V, N)``, ``consensus`` not ``(*, N)`` with the same N,
            or leading dimensions that do not broadcast.
        ValueRangeError: NaN in ``weights`` or ``consensus`` (``validate=True``).
        DTypeError: bool, string or complex input.

    Example:
        >>> clip_to_consensus(torch.tensor([[0.1, 0.9], [0.4, 0.2]]), torch.tensor([0.3, 0.5]))
        tensor([[0.1000, 0.5000],
                [0.3000, 0.2000]])
    """
    w, origin = as_tensor(weights, "weights")
    c, _ = as_tensor(consensus, "consensus")
    check_same_device(weights=w, consensus=c)
    check_ndim(w, "weights", 2, "(*, V, N)")
    check_ndim(c, "consensus", 1, "(*, N)")
    if c.shape[-1] != w.shape[-1]:
        raise ShapeError(
            f"Expected `consensus` to have shape (*, N) with N = {w.shape[-1]} (the columns of `weights` "
            f"{tuple(w.shape)}), but got shape {tuple(c.shape)}."
        )
    _broadcast(_leading_dims_error("weights", w, "consensus", c), w.shape[:-2], c.shape[:-1])
    check_float_or_int(w, "weights")
    check_float_or_int(c, "consensus")
    if validate:
        check_not_nan(w, "weights")
        check_not_nan(c, "consensus")
    integer = not (w.dtype.is_floating_point or c.dtype.is_floating_point)
    if integer:
        w, c = w.to(torch.int64) if w.dtype != c.dtype else w, c.to(torch.int64) if w.dtype != c.dtype else c
    else:
        dtype = float_compute_dtype(w.dtype) if w.dtype.is_floating_point else float_compute_dtype(c.dtype)
        w, c = w.to(dtype), c.to(dtype)
    out = torch.minimum(w, c.unsqueeze(-2))
    return origin.wrap(origin.restore_float(out) if not integer else out)


def _stack(stack: Array | Sequence[Array], dim: int) -> tuple[Tensor, ArrayOrigin, int]:
    if isinstance(stack, (list, tuple)) and stack and not isinstance(stack[0], (int, float)):
        parts = [as_float_tensor(item, f"stack[{i}]") for i, item in enumerate(stack)]
        first_shape = parts[0][0].shape
        for i, (tensor, _) in enumerate(parts):
            if tensor.shape != first_shape:
                raise ShapeError(
                    f"Expected every matrix of `stack` to have the shape of stack[0] {tuple(first_shape)}, "
                    f"but stack[{i}] has shape {tuple(tensor.shape)}."
                )
            if tensor.device != parts[0][0].device:
                check_same_device(**{"stack[0]": parts[0][0], f"stack[{i}]": tensor})
        dtype = parts[0][0].dtype
        for tensor, _ in parts:
            dtype = torch.promote_types(dtype, tensor.dtype)
        dim = normalize_dim(dim, len(first_shape) + 1)
        return torch.stack([t.to(dtype) for t, _ in parts], dim=dim), parts[0][1], dim
    x, origin = as_float_tensor(stack, "stack")
    if x.ndim == 0:
        raise ShapeError("Expected `stack` to be a stacked array or a list of arrays, but got a 0-d value.")
    return x, origin, normalize_dim(dim, x.ndim)


def _median_even_average(x: Tensor, dim: int) -> Tensor:
    """``np.median`` along ``dim``: the middle value, or ``(a + b) / 2`` of the two middle values.

    ``torch.sort``; on the CPU, float stacks go through the numpy kernels of
    ``_cpu/stack_median.py`` instead (a selection network for small stacks, a partition of
    transposed blocks for larger ones: both beat the sort at every count).
    """
    count = x.shape[dim]
    if count == 0:
        return torch.full(x.shape[:dim] + x.shape[dim + 1 :], math.nan, dtype=x.dtype, device=x.device)
    if x.dtype in (torch.float32, torch.float64) and use_numpy_kernel(x):
        return stack_median_numpy(x, dim)
    ordered = torch.sort(x, dim=dim).values
    upper = ordered.select(dim, count // 2)
    if count % 2:
        return upper
    return midpoint(ordered.select(dim, count // 2 - 1), upper)


def midpoint(lower: Tensor, upper: Tensor) -> Tensor:
    """``(a + b) / 2`` (correctly rounded), or ``a / 2 + b / 2`` where ``a + b`` overflows.

    The two agree wherever the sum is finite; where it overflows both values are large, so their
    halves are exact and the one rounding of their sum is the correctly rounded midpoint.
    """
    middle = (lower + upper) / 2
    overflow = torch.isinf(middle) & torch.isfinite(lower) & torch.isfinite(upper)
    if bool(overflow.any()):
        middle = torch.where(overflow, lower / 2 + upper / 2, middle)
    return middle


def _mean(x: Tensor, dim: int) -> Tensor:
    """``x.mean(dim)``; where the sum overflows on finite values, the mean of the column scaled
    by a power of two to ``max |x| < 1``, scaled back (exact, and the mean is at most ``max |x|``)."""
    out = x.mean(dim)
    if bool(torch.isfinite(out).all()) or x.shape[dim] == 0:
        return out
    scaled, exponent = scale_down_rows(x, dim)
    return scale_back(scaled.mean(dim), exponent.squeeze(dim))


def _stake_median(x: Tensor, dim: int, stakes: Array | None, kappa: float, validate: bool) -> Tensor:
    """:func:`weighted_median` across the stack axis ``dim``, one stake per stacked matrix."""
    s = None if stakes is None else as_tensor(stakes, "stakes")[0]
    if s is None or s.ndim != 1 or s.shape[0] != x.shape[dim]:
        raise ShapeError(
            f"Expected `stakes` of shape ({x.shape[dim]},), one per matrix along dim {dim}, "
            f"but got {'none' if s is None else f'shape {tuple(s.shape)}'}."
        )
    moved = x.movedim(dim, 0)
    flat = moved.reshape(moved.shape[0], -1)
    return weighted_median(flat, s, kappa, validate=validate).reshape(moved.shape[1:])


def compute_weight_consensus(
    stack: Array | Sequence[Array],
    method: ConsensusMethod = "mean",
    dim: int = 0,
    *,
    stakes: Array | None = None,
    kappa: float = DEFAULT_KAPPA,
    validate: bool = True,
) -> Array:
    """Consensus of a stack of validator weight matrices, reduced along ``dim``.

    Methods:
        - ``"mean"``, ``"max"``, ``"min"``: the plain reductions.
        - ``"median"``: as ``np.median``: the middle value for an odd count, the mean of the two
          middle values for an even count (``(a + b) / 2``, or ``a / 2 + b / 2`` where the
          sum would overflow: finite values never give inf).
        - ``"stake_median"``: :func:`weighted_median` across the stack, one stake per stacked
          matrix (``stakes`` of shape ``(K,)`` for K matrices), with ``kappa``.

    Args:
        stack: a list of equally shaped arrays, or one array holding them along ``dim``.
        method: the reduction.
        dim: the stacking axis (for a list: where the list is stacked, default 0).
        stakes: ``(K,)`` stake per matrix, required by ``"stake_median"``.
        kappa: the majority for ``"stake_median"``.
        validate: reject NaN (and, for ``"stake_median"``, negative weights and stakes).

    Returns:
        The stack reduced along ``dim``, in the float compute dtype, as the first input's array type.

    Raises:
        ValueRangeError: an unknown method; NaN under ``validate``.
        ShapeError: an empty stack, matrices of different shapes, a bad ``dim``, ``stakes``
            missing or of the wrong length for ``"stake_median"``.

    Example:
        >>> stack = torch.tensor([[[0.1, 0.4]], [[0.3, 0.2]], [[0.2, 0.9]], [[0.4, 0.0]]])
        >>> compute_weight_consensus(stack, "median")
        tensor([[0.2500, 0.3000]])
        >>> compute_weight_consensus(stack, "stake_median", stakes=torch.tensor([1.0, 1.0, 1.0, 5.0]))
        tensor([[0.4000, 0.0000]])
    """
    check_choice(method, "method", _METHODS)
    x, origin, dim = _stack(stack, dim)
    if x.shape[dim] == 0:
        raise ShapeError(
            f"Expected `stack` to hold at least one matrix along dim {dim}, but got shape {tuple(x.shape)}: "
            "the consensus of no matrices is undefined."
        )
    if validate:
        check_not_nan(x, "stack")
    if method == "stake_median":
        out = _stake_median(x, dim, stakes, kappa, validate)
    elif method == "median":
        out = _median_even_average(x, dim)
    else:
        out = _mean(x, dim) if method == "mean" else x.amax(dim) if method == "max" else x.amin(dim)
    return origin.wrap(origin.restore_float(out))
