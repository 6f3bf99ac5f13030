"""The numpy CPU kernel of the stake-weighted median (``consensus.weighted_median`` and ``_fixed``).

The same closed form as ``consensus._select_torch`` (sort each column's keys, cumulate the stake
in value order, pick the first rank past the minority), run in numpy on the tensors' own memory,
column block by column block on the shared thread pool. Why it is shaped this way is in
``docs/design/weighted-median.md``; ``consensus`` chooses it through :func:`use_numpy_kernel`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .threads import run_blocks

__all__ = ["row_index_bits", "numpy_encoding", "select_numpy"]

#: Key elements per block of columns: 256 columns of 256 rows, so the transposed read stays in cache.
BLOCK_ELEMENTS = 1 << 16
#: The bits of +inf: above every finite weight, the key of excluded rows of float32 weights.
EXCLUDED_FLOAT_KEY = 0x7FF0000000000000

#: How the kernel keys a matrix: ``(kind, offset, excluded_value_key)``.
Encoding = tuple[str, int, int]


def row_index_bits(rows: int) -> int:
    """Bits needed to store a row index in ``[0, rows)`` (at least 1)."""
    return max(1, (rows - 1).bit_length())


def _layout(rows: int) -> tuple[int, int, int]:
    """``(group, chunks, padded)``: rows padded to ``chunks`` groups of ``group`` (about sqrt(V))."""
    group = 1 << (max(rows - 1, 0).bit_length() + 1) // 2
    chunks = -(-rows // group)
    return group, chunks, group * chunks


def numpy_encoding(values: Tensor) -> Encoding | None:
    """How the kernel keys the CPU tensor ``values``, or None where it does not apply.

    float32 values widened to float64 order like their bits and leave 29 zero bits for the row
    index; float64 values are argsorted; int64 values are shifted to start at 0 when their span
    and the row index fit 62 bits together.
    """
    row_bits = row_index_bits(_layout(values.shape[-2])[2])
    if values.dtype == torch.float32 and row_bits <= 29:
        return "float32", 0, EXCLUDED_FLOAT_KEY
    if values.dtype == torch.float64:
        return "float64", 0, 0
    if values.dtype == torch.int64 and values.numel():
        array = values.numpy()  # numpy's reductions do not contend for torch's threads
        low, high = int(array.min()), int(array.max())
        span = high - low + 1
        if span.bit_length() + row_bits <= 62:
            return "int64", low, span << row_bits
    return None


def _ranked_rows(block: np.ndarray, excluded_rows: np.ndarray, padded: int, encoding: Encoding) -> np.ndarray:
    """The row of each rank of every column of ``block (width, V)``: ``(width, padded)`` int64.

    Excluded and padding rows come last.
    """
    width, rows = block.shape
    kind, offset, excluded_key = encoding
    if kind == "float64":
        # No room for the row index beside a float64 key: numpy's (SIMD) argsort of the values,
        # excluded and padding rows pushed last by +inf (weights are finite).
        columns = np.empty((width, padded), dtype=np.float64)
        np.copyto(columns[:, :rows], block)
        columns[:, excluded_rows] = np.inf
        return np.argsort(columns, axis=-1)  # ties in any order
    row_bits = row_index_bits(padded)
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
    np.bitwise_and(keys, (1 << row_bits) - 1, out=keys)
    return keys


def _median_block(
    values: np.ndarray,
    stake: np.ndarray,
    excluded_rows: np.ndarray,
    included_count: int,
    minority: float | int,
    encoding: Encoding,
    start: int,
    stop: int,
    out: np.ndarray,
) -> None:
    """Columns ``start:stop`` of one matrix ``values (V, N)``: sort keys, cumulate stake, pick.

    ``stake`` is padded to the layout's row count with zeros and ``excluded_rows`` lists the
    excluded and the padding rows (:func:`select_numpy` passes the included rows only, so just
    the padding). The cumulative stake is found in two levels (sums of groups of about sqrt(V)
    ranks, then the ranks of the one group where the threshold is crossed): numpy's float
    accumulate is slow, its reductions and these small scans are not.
    """
    group, chunks, padded = _layout(values.shape[0])
    width = stop - start
    ranks = _ranked_rows(values[:, start:stop].T, excluded_rows, padded, encoding)
    ranked = np.take(stake, ranks).reshape(width, chunks, group)
    chunk_prefix = np.cumsum(ranked.sum(axis=-1), axis=-1)  # (width, chunks)
    full = np.count_nonzero(chunk_prefix <= minority, axis=-1)  # groups entirely at or below
    chunk = np.minimum(full, chunks - 1)
    lanes = np.arange(width)
    before = np.where(chunk > 0, chunk_prefix[lanes, chunk - 1], 0)
    local = np.cumsum(ranked[lanes, chunk], axis=-1)
    local += before[:, None]
    position = chunk * group + np.count_nonzero(local <= minority, axis=-1)
    np.minimum(position, included_count - 1, out=position)
    out[start:stop] = values[ranks[lanes, position], start + lanes]


def select_numpy(values: Tensor, stake: Tensor, included: Tensor, minority: Tensor, encoding: Encoding) -> Tensor:
    """``consensus._select_torch`` on CPU tensors: the weighted median ``(B, N)`` of ``values (B, V, N)``.

    Args:
        stake: ``(B, V)`` stake of the included rows (0 elsewhere), float64 or int64 bits.
        included: ``(B, V)`` rows that take part.
        minority: ``(B,)`` the most stake allowed strictly below the answer.
        encoding: :func:`numpy_encoding` of ``values``.
    """
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
        step = max(1, min(columns, BLOCK_ELEMENTS // padded))
        for start in range(0, columns, step):
            tasks.append((matrix, padded_stake, padding_rows, count, minority_list[b], encoding,
                          start, min(start + step, columns), out_np[b]))
    run_blocks(_median_block, tasks)
    return out
