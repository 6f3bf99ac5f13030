"""The numpy CPU kernels of ``compute_weight_consensus(method="median")``.

Both compute ``np.median`` along the stack axis exactly, block by block in cache:

* small stacks: a min/max selection network (Batcher's odd-even merge sort, pruned to the
  comparators that feed the middle wire or wires) on numpy's SIMD ``minimum``/``maximum`` over
  contiguous slices;
* larger stacks, where the network's comparators grow as ``K log^2 K``: blocks of columns copied
  out (one contiguous run per matrix), transposed in cache so that each column's ``K`` values are
  contiguous, and ``np.partition``-ed at the middle (numpy's SIMD selection); the lower middle
  of an even count is the largest value of the lower part.

``consensus`` keeps the ``torch.sort`` path as the reference and chooses through
:func:`use_numpy_kernel` and :func:`stack_median_kernel`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from .threads import run_blocks, serial_pieces

__all__ = ["NETWORK_MAX_COUNT", "StackMedianKernel", "stack_median_kernel", "stack_median_numpy"]

StackMedianKernel = Literal["network", "partition"]

#: Up to this many stacked matrices the selection network beats the partition kernel.
NETWORK_MAX_COUNT = 96
#: Elements of each wire per block of the network: the wires of a block stay in cache.
MEDIAN_BLOCK = 1 << 15
#: Bytes of one transposed block of the partition kernel (and of its staging copy): near L2.
PARTITION_BLOCK_BYTES = 1 << 19
#: Columns of the stack per task of the partition kernel on the thread pool.
PARTITION_TASK = 1 << 14


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


def _median_block_numpy(stack: np.ndarray, start: int, stop: int, out: np.ndarray) -> None:
    """``np.median`` of ``stack[:, start:stop]`` by the selection network, in cache."""
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
        _midpoint_into(wires[count // 2 - 1], upper, out[start:stop])


def _midpoint_into(lower: np.ndarray, upper: np.ndarray, middle: np.ndarray) -> None:
    """``middle[:] = (lower + upper) / 2`` as ``np.median`` rounds it; ``a / 2 + b / 2`` where the sum overflows."""
    with np.errstate(over="ignore"):
        np.add(lower, upper, out=middle)
    middle /= 2
    # (a + b) overflowed on finite values: a / 2 + b / 2 is then exact up to its one rounding
    overflow = np.isinf(middle)
    if overflow.any():
        overflow &= np.isfinite(lower) & np.isfinite(upper)
        middle[overflow] = lower[overflow] / 2 + upper[overflow] / 2


def _median_partition_numpy(stack: np.ndarray, start: int, stop: int, out: np.ndarray) -> None:
    """``np.median`` of ``stack[:, start:stop]`` by ``np.partition`` of transposed blocks, in cache.

    Each block is first copied out matrix by matrix (contiguous runs: a direct transposed read
    of rows a power-of-two apart thrashes the cache's sets), then transposed by torch's blocked
    copy, so that each column's values are one contiguous row for ``np.partition``. The torch
    operations take ``serial_pieces`` (this runs in a pool thread).
    """
    count = stack.shape[0]
    half = count // 2
    width = max(1, min(stop - start, PARTITION_BLOCK_BYTES // (count * stack.itemsize)))
    staged = np.empty((count, width), dtype=stack.dtype)
    columns = np.empty((width, count), dtype=stack.dtype)
    staged_t, columns_t = torch.from_numpy(staged), torch.from_numpy(columns)
    for begin in range(start, stop, width):
        end = min(begin + width, stop)
        n = end - begin
        np.copyto(staged[:, :n], stack[:, begin:end])
        block = columns[:n]
        pieces = serial_pieces(n, count)
        for piece in pieces:
            columns_t[piece].copy_(staged_t[:, piece].T)
        block.partition(half, axis=-1)  # NaN sorts last; np.median gives NaN for such a column
        upper = block[:, half]
        if count % 2:
            out[begin:end] = upper
        else:  # (torch's max along short rows is several times numpy's speed)
            lower = np.empty_like(upper)
            for piece in pieces:
                torch.amax(columns_t[piece, :half], -1, out=torch.from_numpy(lower[piece]))
            _midpoint_into(lower, upper, out[begin:end])
        if np.isnan(staged[:, :n].max()):
            out[begin:end][np.isnan(block).any(axis=-1)] = np.nan


def stack_median_kernel(count: int) -> StackMedianKernel:
    """The faster kernel for a stack of ``count`` matrices."""
    return "network" if count <= NETWORK_MAX_COUNT else "partition"


def stack_median_numpy(x: Tensor, dim: int, kernel: StackMedianKernel | None = None) -> Tensor:
    """``np.median`` of the float32/float64 CPU tensor ``x`` along ``dim`` (at least one element along it).

    Args:
        kernel: ``"network"`` or ``"partition"``; by default :func:`stack_median_kernel`.
    """
    count = x.shape[dim]
    rest = x.shape[:dim] + x.shape[dim + 1 :]
    stack = x.movedim(dim, 0).reshape(count, -1).contiguous().numpy()
    out = np.empty(stack.shape[1], dtype=stack.dtype)
    size = stack.shape[1]
    if (kernel or stack_median_kernel(count)) == "network":
        function, step = _median_block_numpy, MEDIAN_BLOCK
    else:
        function, step = _median_partition_numpy, PARTITION_TASK
    run_blocks(function, [(stack, start, min(start + step, size), out) for start in range(0, size, step)])
    return torch.from_numpy(out).reshape(rest)
