"""Consensus across validators: the stake-weighted median (Yuma's ``C_j``) and stack reductions.

The stake-weighted median follows the chain's ``weighted_median_col_sparse``
(``spec/yuma.md`` B.4) in closed form: for each column, keep the rows with positive stake,
renormalise their stake to ``s`` (sum ``sigma``), set ``minority = sigma - kappa``, and return

    C_j = the largest value p of the column with  sum_{i: W_ij < p} s_i <= minority,

(equivalently: the largest value backed by at least ``kappa`` of the stake), or the column's
minimum if no value qualifies, or 0 when no row has positive stake. The chain gets there by an
iterative quickselect; the closed form depends only on the order of the values, so a sort plus
a cumulative sum gives the same answer, batched, on any device. ``weighted_median_fixed`` does
exactly this on I32F32 bits (exact integer sums: the chain's bits); ``weighted_median`` does it
in float64 on the unnormalised stake (``minority = total - kappa * total``).

Why a hand-written sort: the usual recipe (transpose, ``torch.sort`` with indices, gather the
stakes, cumsum) spends most of its time sorting (value, index) pairs along a strided axis. Here
each value is turned into an order-preserving integer key with its row index packed into the
low bits, so one values-only sort of int64 keys along a contiguous axis carries the row along
(no index sort, no strided access); on the CPU that sort is numpy's SIMD sort on the tensor's
own memory (zero-copy), run in cache-sized column blocks on a small thread pool, elsewhere
``torch.sort``. The float and the fixed-point versions share this core; only the key encoding
and the stake dtype (float64 or exact int64 I32F32) differ. Float64 values leave no room for the
row index, so they take one sort of values with indices instead (numpy's SIMD argsort on the CPU,
``torch.sort`` elsewhere), excluded rows pushed last by a ``+inf`` sentinel: the closed form only
needs the order of the values, not the order among equal ones. This is the project's one
stake-weighted median (the Yuma epoch calls it in both its modes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ._array import Array, ArrayOrigin, as_float_tensor, as_tensor, check_same_device, float_compute_dtype
from ._validation import check_finite, check_in_range, check_ndim, check_non_negative, check_not_nan, normalize_dim
from .errors import DTypeError, ShapeError, ValueRangeError
from ._cpu.threads import run_blocks
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


# ----------------------------------------------------------------------------- the shared core


def _row_bits(rows: int) -> int:
    return max(1, (rows - 1).bit_length())


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
    row_bits = _row_bits(rows)
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
        row_bits = _row_bits(values.shape[-2])
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


# ----------------------------------------------------------------------------- the CPU engine
#
# On the CPU the same steps run in numpy on the tensors' own memory, column block by column
# block: numpy's sort of int64 is a SIMD sort (several times torch's), a block of keys stays in
# cache through sort, stake lookup and cumulative sum, and blocks run on a small thread pool
# (numpy releases the GIL in these loops). Float32 weights need no shifting at all: widened to
# float64 (exact), their bit patterns order like the values (non-negative values) and the low 29
# mantissa bits are zero, so the row index is simply OR-ed in.

_BLOCK_ELEMENTS = 1 << 16  # 256 columns of 256 rows: the transposed read stays in cache
_EXCLUDED_FLOAT_KEY = 0x7FF0000000000000  # the bits of +inf: above every finite weight
def _layout(rows: int) -> tuple[int, int, int]:
    """``(group, chunks, padded)``: rows padded to ``chunks`` groups of ``group`` (about sqrt(V))."""
    group = 1 << (max(rows - 1, 0).bit_length() + 1) // 2
    chunks = -(-rows // group)
    return group, chunks, group * chunks


def _numpy_encoding(values: Tensor) -> tuple[str, int, int] | None:
    """How the CPU engine keys ``values``: ``(kind, offset, excluded_value_key)`` or None."""
    row_bits = _row_bits(_layout(values.shape[-2])[2])
    if values.dtype == torch.float32 and row_bits <= 29:
        return "float32", 0, _EXCLUDED_FLOAT_KEY
    if values.dtype == torch.float64:
        return "float64", 0, 0
    if values.dtype == torch.int64 and values.numel():
        array = values.numpy()  # CPU only: numpy's reductions do not contend for torch's threads
        low, high = int(array.min()), int(array.max())
        span = high - low + 1
        if span.bit_length() + row_bits <= 62:
            return "int64", low, span << row_bits
    return None


def _median_block(
    values: np.ndarray,
    stake: np.ndarray,
    excluded_rows: np.ndarray,
    included_count: int,
    minority: float | int,
    encoding: tuple[str, int, int],
    start: int,
    stop: int,
    out: np.ndarray,
) -> None:
    """Columns ``start:stop`` of one matrix ``values (V, N)``: sort keys, cumulate stake, pick.

    ``stake`` is padded to the layout's row count with zeros and ``excluded_rows`` lists the
    excluded and the padding rows (the numpy engine passes the included rows only, so just the
    padding). The cumulative stake is found in two levels (sums of groups of
    about sqrt(V) ranks, then the ranks of the one group where the threshold is crossed): numpy's
    float accumulate is slow, its reductions and these small scans are not.
    """
    rows = values.shape[0]
    group, chunks, padded = _layout(rows)
    row_bits = _row_bits(padded)
    kind, offset, excluded_key = encoding
    width = stop - start
    block = values[:, start:stop].T  # (width, V), a strided view read in cache-sized blocks
    if kind == "float64":
        # No room for the row index beside a float64 key: numpy's (SIMD) argsort of the values,
        # excluded and padding rows pushed last by +inf (weights are finite).
        columns = np.empty((width, padded), dtype=np.float64)
        np.copyto(columns[:, :rows], block)
        columns[:, excluded_rows] = np.inf
        keys = np.argsort(columns, axis=-1)  # the row of each rank; ties in any order
    else:
        keys = np.empty((width, padded), dtype=np.int64)
        head = keys[:, :rows]
        if kind == "float32":
            np.copyto(head.view(np.float64), block)  # exact widening; the low 29 bits are zero
        else:
            np.subtract(block, offset, out=head)
            np.left_shift(head, row_bits, out=head)
        np.bitwise_or(keys, np.arange(padded, dtype=np.int64), out=keys)
        keys[:, excluded_rows] = excluded_key | excluded_rows  # after every value, in row order
        keys.sort(axis=-1)
        np.bitwise_and(keys, (1 << row_bits) - 1, out=keys)  # now the row of each rank
    ranked = np.take(stake, keys).reshape(width, chunks, group)
    chunk_prefix = np.cumsum(ranked.sum(axis=-1), axis=-1)  # (width, chunks)
    full = np.count_nonzero(chunk_prefix <= minority, axis=-1)  # groups entirely at or below
    chunk = np.minimum(full, chunks - 1)
    lanes = np.arange(width)
    before = np.where(chunk > 0, chunk_prefix[lanes, chunk - 1], 0)
    local = np.cumsum(ranked[lanes, chunk], axis=-1)
    local += before[:, None]
    position = chunk * group + np.count_nonzero(local <= minority, axis=-1)
    np.minimum(position, included_count - 1, out=position)
    out[start:stop] = values[keys[lanes, position], start + lanes]


def _select_numpy(values: Tensor, stake: Tensor, included: Tensor, minority: Tensor, encoding: tuple[str, int, int]) -> Tensor:
    batch, rows, columns = values.shape
    out = torch.zeros((batch, columns), dtype=values.dtype)
    counts = included.sum(-1).tolist()
    if rows == 0 or columns == 0 or not any(counts):
        return out
    values_np, stake_all, included_np, out_np = values.numpy(), stake.numpy(), included.numpy(), out.numpy()
    minority_list = minority.tolist()
    tasks = []
    for b in range(batch):  # blocks of columns of every matrix: the units of work of the pool
        count = counts[b]
        if count == 0:
            continue
        # Only the included rows are sorted (in the epoch: the validators, often a small part).
        matrix, matrix_stake = values_np[b], stake_all[b]
        if count < rows:
            kept = np.flatnonzero(included_np[b])
            matrix, matrix_stake = matrix[kept], matrix_stake[kept]
        padded = _layout(count)[2]
        padded_stake = np.zeros(padded, dtype=stake_all.dtype)
        padded_stake[:count] = matrix_stake
        padding_rows = np.arange(count, padded, dtype=np.int64)
        step = max(1, min(columns, _BLOCK_ELEMENTS // padded))
        for start in range(0, columns, step):
            tasks.append((matrix, padded_stake, padding_rows, count, minority_list[b], encoding,
                          start, min(start + step, columns), out_np[b]))
    run_blocks(_median_block, tasks)
    return out


def _select(values: Tensor, stake: Tensor, included: Tensor, minority: Tensor) -> Tensor:
    """The closed-form weighted median ``(B, N)``; the numpy engine on the CPU, else torch."""
    if values.device.type == "cpu" and not _FORCE_TORCH_ENGINE:
        encoding = _numpy_encoding(values)
        if encoding is not None:
            return _select_numpy(values, stake, included, minority, encoding)
    return _select_torch(values, stake, included, minority)


#: Tests set this to run the torch engine (the one used on GPUs) on the CPU.
_FORCE_TORCH_ENGINE = False


def _broadcast(*shapes: tuple[int, ...]) -> torch.Size:
    """``np.broadcast_shapes`` as a ``torch.Size`` (``torch.broadcast_shapes`` imports sympy on first use)."""
    return torch.Size(np.broadcast_shapes(*shapes))


def _kappa_batch(batch: torch.Size, kappa_shape: torch.Size) -> torch.Size:
    try:
        return _broadcast(batch, kappa_shape)
    except ValueError:
        raise ShapeError(
            f"Expected `kappa` to broadcast against the batch dimensions {tuple(batch)}, but it has shape "
            f"{tuple(kappa_shape)}."
        ) from None


def _batch_shapes(weights: Tensor, stakes: Tensor, weights_name: str, stakes_name: str) -> torch.Size:
    check_ndim(weights, weights_name, 2, "(*, V, N)")
    check_ndim(stakes, stakes_name, 1, "(*, V)")
    if stakes.shape[-1] != weights.shape[-2]:
        raise ShapeError(
            f"Expected `{stakes_name}` to have shape (*, V) with V = {weights.shape[-2]} (the rows of "
            f"`{weights_name}` {tuple(weights.shape)}), but got shape {tuple(stakes.shape)}."
        )
    try:
        return _broadcast(weights.shape[:-2], stakes.shape[:-1])
    except ValueError:
        raise ShapeError(
            f"Expected the leading dimensions of `{weights_name}` {tuple(weights.shape)} and "
            f"`{stakes_name}` {tuple(stakes.shape)} to broadcast, but they do not."
        ) from None


def _run_core(weights: Tensor, stake: Tensor, included: Tensor, minority: Tensor, batch: torch.Size) -> Tensor:
    rows, columns = weights.shape[-2:]
    size = math.prod(batch)
    flat_weights = weights.expand(batch + (rows, columns)).reshape(size, rows, columns)
    flat_stake = stake.expand(batch + (rows,)).reshape(size, rows)
    flat_included = included.expand(batch + (rows,)).reshape(size, rows)
    flat_minority = minority.expand(batch).reshape(size)
    return _select(flat_weights, flat_stake, flat_included, flat_minority).reshape(batch + (columns,))


def _check_finite_non_negative(tensor: Tensor, name: str) -> None:
    """One reduction pass when the data is fine; the detailed (indexed) checks only on failure."""
    if tensor.numel() == 0 or not tensor.is_floating_point():
        if tensor.numel() and not tensor.is_floating_point():
            check_non_negative(tensor, name)
        return
    if tensor.device.type == "cpu":
        array = tensor.detach().numpy()
        low, high = array.min(), array.max()
    else:
        low, high = torch.aminmax(tensor)
    if bool(low >= 0) and bool(high < math.inf):  # NaN fails both comparisons
        return
    check_not_nan(tensor, name)
    check_finite(tensor, name)
    check_non_negative(tensor, name)


def _kappa_tensor(kappa: float | Array, dtype: torch.dtype, device: torch.device, validate: bool) -> Tensor:
    if isinstance(kappa, (int, float)) and not isinstance(kappa, bool):
        if not 0.0 <= kappa <= 1.0:
            raise ValueRangeError(f"Expected `kappa` in [0, 1], but got {kappa!r}.")
        return torch.tensor(float(kappa), dtype=dtype, device=device)
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
    ``p`` among ``W[:, j]`` with ``sum(s_i for W_ij >= p) >= kappa`` (spec B.4, closed form; the
    chain's ``weighted_median_col_sparse`` in float). When no value qualifies (``kappa`` above the
    stake the column can gather) the column's minimum; 0 when no row has positive stake or there
    are no rows. The result is always one of the column's values (no interpolation); rows with
    stake <= 0 take no part. ``kappa = 0`` gives the column maximum; a value backed by exactly
    half the stake is consensus under the default ``kappa = 32767/65535``.

    Stake sums are accumulated in float64 without renormalising: a value qualifies when the
    stake strictly below it is at most ``total - kappa * total`` (the chain's
    ``minority = sigma - kappa``, scaled by the total), so integer stakes are summed exactly and a
    threshold that lands exactly on a partial sum is decided exactly. For the chain's bits use
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
    if s.dtype == torch.bool:
        raise DTypeError("Expected `stakes` to hold numbers, but got dtype torch.bool.")
    s = s.to(torch.float64)
    if validate:
        _check_finite_non_negative(w, "weights")
        _check_finite_non_negative(s, "stakes")
    k = _kappa_tensor(kappa, torch.float64, w.device, validate)
    included = s > 0
    positive = torch.where(included, s, torch.zeros_like(s))
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
    if isinstance(kappa_bits, int):
        if not 0 <= kappa_bits <= ONE:
            raise ValueRangeError(f"Expected `kappa_bits` in [0, {ONE}] (kappa in [0, 1]), but got {kappa_bits}.")
        k = torch.tensor(kappa_bits, dtype=torch.int64, device=w.device)
    else:
        k, _ = as_tensor(kappa_bits, "kappa_bits")
        if k.dtype.is_floating_point:
            raise DTypeError(f"Expected `kappa_bits` to be I32F32 bits in an integer dtype, but got {k.dtype}.")
        k = k.to(device=w.device, dtype=torch.int64)
        if validate:
            check_in_range(k, "kappa_bits", 0, ONE)
    included = s > 0
    positive = torch.where(included, s, torch.zeros_like(s))
    share = fx_normalize(positive) if renormalize else positive
    minority = share.sum(-1) - k
    batch = _kappa_batch(batch, minority.shape)
    out = _run_core(w, share, included, minority.expand(batch), batch)
    return origin.wrap(out)


def clip_to_consensus(weights: Array, consensus: Array) -> Array:
    """Clip each weight at its column's consensus: ``min(W_ij, C_j)`` (Yuma's ``W̄``).

    Args:
        weights: ``(*, V, N)``.
        consensus: ``(*, N)``, leading dimensions broadcastable against ``weights``'.

    Returns:
        ``(*, V, N)`` in the array type of ``weights``. Two integer inputs (e.g. I32F32 bits)
        give an integer result; otherwise the float compute dtype of ``weights``.

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
    try:
        _broadcast(w.shape[:-2], c.shape[:-1])
    except ValueError:
        raise ShapeError(
            f"Expected the leading dimensions of `weights` {tuple(w.shape)} and `consensus` "
            f"{tuple(c.shape)} to broadcast, but they do not."
        ) from None
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


def _odd_even_merge_network(count: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort network for ``count`` wires, as (low, high) comparators.

    Built for the next power of two; comparators that touch a wire >= ``count`` are dropped,
    which is exact when those wires hold +inf (they never move).
    """
    size = 1 << max(0, (count - 1).bit_length())
    network: list[tuple[int, int]] = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < count:
                        network.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return network


@lru_cache(maxsize=64)
def _median_network(count: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """The comparators that feed the middle wire(s), each with which outputs are still needed."""
    wanted = {count // 2, (count - 1) // 2}
    needed: list[tuple[int, int, bool, bool]] = []
    for low, high in reversed(_odd_even_merge_network(count)):
        use_low, use_high = low in wanted, high in wanted
        if use_low or use_high:
            needed.append((low, high, use_low, use_high))
            wanted |= {low, high}
    return tuple(reversed(needed))


_NETWORK_MAX_COUNT = 32
_MEDIAN_BLOCK = 1 << 15


def _median_block_numpy(stack: np.ndarray, start: int, stop: int, out: np.ndarray) -> None:
    """``np.median`` of ``stack[:, start:stop]`` by a min/max selection network, in cache."""
    count = stack.shape[0]
    wires = [stack[i, start:stop] for i in range(count)]  # views: the input is never written
    spare = np.empty(stop - start, dtype=stack.dtype)
    fresh = [np.empty_like(spare) for _ in range(count)]
    owned = [False] * count
    for low, high, use_low, use_high in _median_network(count):
        a, b = wires[low], wires[high]
        if use_high:
            target = wires[high] if owned[high] else fresh[high]
            if use_low:
                np.minimum(a, b, out=spare)
            np.maximum(a, b, out=target)
            wires[high], owned[high] = target, True
            if use_low:
                wires[low], spare = spare, (wires[low] if owned[low] else fresh[low])
                owned[low] = True
        else:
            target = wires[low] if owned[low] else fresh[low]
            np.minimum(a, b, out=target)
            wires[low], owned[low] = target, True
    upper = wires[count // 2]
    if count % 2:
        out[start:stop] = upper
    else:
        lower = wires[count // 2 - 1]
        np.add(lower, upper, out=out[start:stop])
        out[start:stop] /= 2


def _median_even_average(x: Tensor, dim: int) -> Tensor:
    """``np.median`` along ``dim``: the middle value, or ``(a + b) / 2`` of the two middle values.

    On the CPU, stacks of up to 32 matrices go through a min/max selection network (Batcher's
    odd-even merge sort, pruned to the comparators that feed the middle), run block by block in
    cache on numpy's SIMD minimum/maximum over contiguous slices; otherwise ``torch.sort``.
    """
    count = x.shape[dim]
    rest = x.shape[:dim] + x.shape[dim + 1 :]
    if count == 0:
        return torch.full(rest, math.nan, dtype=x.dtype, device=x.device)
    cpu_network = x.device.type == "cpu" and not _FORCE_TORCH_ENGINE
    if cpu_network and count <= _NETWORK_MAX_COUNT and x.dtype in (torch.float32, torch.float64):
        stack = x.movedim(dim, 0).reshape(count, -1).contiguous().numpy()
        out = np.empty(stack.shape[1], dtype=stack.dtype)
        step = _MEDIAN_BLOCK
        blocks = [(start, min(start + step, stack.shape[1])) for start in range(0, stack.shape[1], step)]
        run_blocks(_median_block_numpy, [(stack, start, stop, out) for start, stop in blocks])
        return torch.from_numpy(out).reshape(rest)
    ordered = torch.sort(x, dim=dim).values
    upper = ordered.select(dim, count // 2)
    if count % 2:
        return upper
    return (ordered.select(dim, count // 2 - 1) + upper) / 2


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
          middle values for an even count (``a + (b - a) / 2``).
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
        ValueError: an unknown method, ``stakes`` missing or of the wrong length.
        ShapeError: matrices of different shapes, a bad ``dim``.
        ValueRangeError: NaN under ``validate``.

    Example:
        >>> stack = torch.tensor([[[0.1, 0.4]], [[0.3, 0.2]], [[0.2, 0.9]], [[0.4, 0.0]]])
        >>> compute_weight_consensus(stack, "median")
        tensor([[0.2500, 0.3000]])
        >>> compute_weight_consensus(stack, "stake_median", stakes=torch.tensor([1.0, 1.0, 1.0, 5.0]))
        tensor([[0.4000, 0.0000]])
    """
    x, origin, dim = _stack(stack, dim)
    if validate:
        check_not_nan(x, "stack")
    if method == "mean":
        out = x.mean(dim)
    elif method == "max":
        out = x.amax(dim)
    elif method == "min":
        out = x.amin(dim)
    elif method == "median":
        out = _median_even_average(x, dim)
    elif method == "stake_median":
        if stakes is None:
            raise ValueError("compute_weight_consensus(method='stake_median') needs `stakes`, one per stacked matrix.")
        s, _ = as_tensor(stakes, "stakes")
        if s.ndim != 1 or s.shape[0] != x.shape[dim]:
            raise ShapeError(
                f"Expected `stakes` of shape ({x.shape[dim]},), one per matrix along dim {dim}, "
                f"but got shape {tuple(s.shape)}."
            )
        moved = x.movedim(dim, 0)
        rest = moved.shape[1:]
        flat = moved.reshape(moved.shape[0], -1)
        out = weighted_median(flat, s, kappa, validate=validate).reshape(rest)
    else:
        raise ValueError(
            f"Expected `method` to be one of 'mean', 'median', 'max', 'min', 'stake_median', but got {method!r}."
        )
    return origin.wrap(origin.restore_float(out))
