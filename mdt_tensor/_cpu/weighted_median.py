"""The numpy CPU kernel of the stake-weighted median (``consensus.weighted_median`` and ``_fixed``).

The same closed form as ``consensus._select_torch`` (sort each column's keys, cumulate the stake
in value order, pick the first rank past the minority), run in numpy on the tensors' own memory,
column block by column block on the shared thread pool. Why it is shaped this way is in
``docs/design/weighted-median.md``; ``consensus`` chooses it through :func:`use_numpy_kernel`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .threads import run_blocks, serial_pieces

__all__ = ["row_index_bits", "numpy_encoding", "select_numpy"]

#: Key elements per block of columns: 256 columns of 256 rows, so the transposed read stays in cache.
BLOCK_ELEMENTS = 1 << 16
#: Keys per slab of small matrices sorted together (``_median_slab``), and the largest matrix
#: that goes into one: 2 MB of int64 keys keep the per-slab numpy calls few.
SLAB_ELEMENTS = 1 << 18
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


def _rows_by_rank(values: np.ndarray, excluded: np.ndarray | None, padded: int, encoding: Encoding) -> np.ndarray:
    """The row of each rank along the last axis of ``values (..., V)``: ``(..., padded)`` int64.

    Rows ``V..padded`` are padding. They, and the rows where ``excluded`` (None, or a bool array
    broadcasting against ``values``) holds, come after every value, in row order.
    """
    *lead, rows = values.shape
    kind, offset, excluded_key = encoding
    if kind == "float64":
        # No room for the row index beside a float64 key: numpy's (SIMD) argsort of the values,
        # excluded and padding rows pushed last by +inf (weights are finite).
        columns = np.empty((*lead, padded), dtype=np.float64)
        np.copyto(columns[..., :rows], values)
        columns[..., rows:] = np.inf
        if excluded is not None:
            np.copyto(columns[..., :rows], np.inf, where=excluded)
        return np.argsort(columns, axis=-1)  # ties in any order
    row_bits = row_index_bits(padded)
    row_index = np.arange(padded, dtype=np.int64)
    keys = np.empty((*lead, padded), dtype=np.int64)
    head = keys[..., :rows]
    if kind == "float32":
        np.copyto(head.view(np.float64), values)  # exact widening; the low 29 bits are zero
    else:
        np.subtract(values, offset, out=head)
        np.left_shift(head, row_bits, out=head)
    np.bitwise_or(head, row_index[:rows], out=head)
    if excluded is not None:
        np.copyto(head, excluded_key | row_index[:rows], where=excluded)
    keys[..., rows:] = excluded_key | row_index[rows:]
    keys.sort(axis=-1)
    np.bitwise_and(keys, (1 << row_bits) - 1, out=keys)
    return keys


def _median_block(
    values: np.ndarray,
    stake: np.ndarray,
    included_count: int,
    minority: float | int,
    encoding: Encoding,
    start: int,
    stop: int,
    out: np.ndarray,
) -> None:
    """Columns ``start:stop`` of one matrix ``values (V, N)``: sort keys, cumulate stake, pick.

    ``values`` holds the included rows only and ``stake`` is padded to the layout's row count with
    zeros (the padding rows rank last). The cumulative stake is found in two levels (sums of groups of about sqrt(V)
    ranks, then the ranks of the one group where the threshold is crossed): numpy's float
    accumulate is slow, its reductions and these small scans are not.
    """
    group, chunks, padded = _layout(values.shape[0])
    width = stop - start
    ranks = _rows_by_rank(values[:, start:stop].T, None, padded, encoding)
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


def _median_slab(
    values: np.ndarray,
    stake: np.ndarray,
    included: np.ndarray,
    counts: np.ndarray,
    minority: np.ndarray,
    encoding: Encoding,
    start: int,
    stop: int,
    out: np.ndarray,
) -> None:
    """Matrices ``start:stop`` of ``values (B, V, N)`` at once: sort keys, cumulate stake, pick.

    For batches of small matrices whose rows are mostly included (the epoch's validator rows):
    one set of numpy calls serves many matrices instead of one each.
    """
    slab = values[start:stop]
    k, rows, columns = slab.shape
    ranks = _rows_by_rank(slab.transpose(0, 2, 1), ~included[start:stop, None, :], rows, encoding)  # (k, N, V)
    cumulative = np.empty(ranks.shape, dtype=stake.dtype)
    for i in range(k):  # one small table each: many times faster than one flat take with offsets
        np.take(stake[start + i], ranks[i], out=cumulative[i], mode="clip")  # excluded rows hold 0 stake
    running = torch.from_numpy(cumulative).view(-1, rows)
    for piece in serial_pieces(running.shape[0], rows):  # (this runs in a pool thread)
        running[piece].cumsum_(-1)  # (torch's scan along a short last axis is ~5x numpy's)
    position = np.count_nonzero(cumulative <= minority[start:stop, None, None], axis=-1)
    np.minimum(position, np.maximum(counts[start:stop] - 1, 0)[:, None], out=position)
    answer_rows = np.take_along_axis(ranks, position[..., None], axis=-1)  # (k, N, 1)
    picked = np.take_along_axis(slab, answer_rows.transpose(0, 2, 1), axis=1)[:, 0, :]
    out[start:stop] = np.where(counts[start:stop, None] > 0, picked, 0)


def select_numpy(values: Tensor, stake: Tensor, included: Tensor, minority: Tensor, encoding: Encoding) -> Tensor:
    """``consensus._select_torch`` on CPU tensors: the weighted median ``(B, N)`` of ``values (B, V, N)``.

    Small matrices whose rows are mostly included (the epoch's validator rows) go in slabs of
    several matrices at once (``_median_slab``: one set of numpy calls for many matrices); the
    others one by one, on their included rows only, in column blocks (``_median_block``).

    Args:
        stake: ``(B, V)`` stake of the included rows (0 elsewhere), float64 or int64 bits.
        included: ``(B, V)`` rows that take part.
        minority: ``(B,)`` the most stake allowed strictly below the answer.
        encoding: :func:`numpy_encoding` of ``values``.
    """
    batch, rows, columns = values.shape
    out = torch.zeros((batch, columns), dtype=values.dtype)
    if rows == 0 or columns == 0 or batch == 0:
        return out
    values_np, stake_np, included_np, out_np = values.numpy(), stake.numpy(), included.numpy(), out.numpy()
    minority_np = minority.numpy()
    counts = included_np.sum(-1)
    in_slabs = (counts * 2 > rows) & (rows * columns <= SLAB_ELEMENTS)
    tasks: list[tuple[Any, ...]] = []
    for b in np.flatnonzero(~in_slabs & (counts > 0)).tolist():
        tasks += _block_tasks(values_np[b], stake_np[b], included_np[b], int(counts[b]), minority_np[b], encoding, out_np[b])
    slabs = np.flatnonzero(in_slabs)
    if slabs.size == batch:
        tasks += _slab_tasks(values_np, stake_np, included_np, counts, minority_np, encoding, out_np)
        run_blocks(_median_task, tasks)
    elif slabs.size:  # the slab matrices gathered, so that a slab is one contiguous run
        result = np.empty((slabs.size, columns), dtype=out_np.dtype)
        tasks += _slab_tasks(values_np[slabs], stake_np[slabs], included_np[slabs], counts[slabs], minority_np[slabs],
                             encoding, result)
        run_blocks(_median_task, tasks)
        out_np[slabs] = result
    else:
        run_blocks(_median_task, tasks)
    return out


def _median_task(function: Any, *arguments: Any) -> None:
    function(*arguments)


def _block_tasks(
    matrix: np.ndarray, stake: np.ndarray, included: np.ndarray, count: int, minority: Any, encoding: Encoding,
    out: np.ndarray,
) -> list[tuple[Any, ...]]:
    """Column blocks of one matrix, its included rows only (in the epoch: the validators)."""
    rows, columns = matrix.shape
    if count < rows:
        kept = np.flatnonzero(included)
        matrix, stake = matrix[kept], stake[kept]
    padded = _layout(count)[2]
    padded_stake = np.zeros(padded, dtype=stake.dtype)
    padded_stake[:count] = stake
    step = max(1, min(columns, BLOCK_ELEMENTS // padded))
    return [
        (_median_block, matrix, padded_stake, count, minority, encoding, start, min(start + step, columns), out)
        for start in range(0, columns, step)
    ]


def _slab_tasks(
    values: np.ndarray, stake: np.ndarray, included: np.ndarray, counts: np.ndarray, minority: np.ndarray,
    encoding: Encoding, out: np.ndarray,
) -> list[tuple[Any, ...]]:
    """Slabs of whole matrices, of about ``SLAB_ELEMENTS`` keys, at least two per pool worker
    (when there are enough matrices), in whole rounds of the pool."""
    batch, rows, columns = values.shape
    threads = torch.get_num_threads()
    slabs = max(-(-batch * rows * columns // SLAB_ELEMENTS), min(batch, 2 * threads))
    slabs = -(-slabs // threads) * threads  # a whole number of rounds of the pool
    step = -(-batch // slabs)
    return [
        (_median_slab, values, stake, included, counts, minority, encoding, start, min(start + step, batch), out)
        for start in range(0, batch, step)
    ]
