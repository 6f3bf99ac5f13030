"""The numpy CPU kernel of ``compute_weight_consensus(method="median")`` for small stacks.

A min/max selection network (Batcher's odd-even merge sort, pruned to the comparators that feed
the middle wire or wires) computes ``np.median`` along the stack axis exactly, running block by
block in cache on numpy's SIMD ``minimum``/``maximum`` over contiguous slices. ``consensus``
keeps the ``torch.sort`` path as the reference and chooses through :func:`use_numpy_kernel`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from .threads import run_blocks

__all__ = ["NETWORK_MAX_COUNT", "stack_median_numpy"]

#: The network wins over a sort up to this many stacked matrices.
NETWORK_MAX_COUNT = 32
#: Elements of each wire per block: the wires of a block stay in cache.
MEDIAN_BLOCK = 1 << 15


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
        lower = wires[count // 2 - 1]
        middle = out[start:stop]
        with np.errstate(over="ignore"):
            np.add(lower, upper, out=middle)
        middle /= 2
        # (a + b) overflowed on finite values: a / 2 + b / 2 is then exact up to its one rounding
        overflow = np.isinf(middle)
        if overflow.any():
            overflow &= np.isfinite(lower) & np.isfinite(upper)
            middle[overflow] = lower[overflow] / 2 + upper[overflow] / 2


def stack_median_numpy(x: Tensor, dim: int) -> Tensor:
    """``np.median`` of the float32/float64 CPU tensor ``x`` along ``dim`` (at least one element along it)."""
    count = x.shape[dim]
    rest = x.shape[:dim] + x.shape[dim + 1 :]
    stack = x.movedim(dim, 0).reshape(count, -1).contiguous().numpy()
    out = np.empty(stack.shape[1], dtype=stack.dtype)
    size = stack.shape[1]
    blocks = [(stack, start, min(start + MEDIAN_BLOCK, size), out) for start in range(0, size, MEDIAN_BLOCK)]
    run_blocks(_median_block_numpy, blocks)
    return torch.from_numpy(out).reshape(rest)
