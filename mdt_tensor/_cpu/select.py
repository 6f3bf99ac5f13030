"""The numpy CPU kernel of the largest entries of every row (``weights.select``'s top-k stages).

``np.argpartition`` (introselect with numpy 2's SIMD partitions) finds the ``count`` largest
entries of every row of a float32/float64 matrix faster than ``torch.topk`` on the CPU, with
AVX2 and with AVX-512 (figures in ``benchmarks/README.md``). Blocks of rows run on the shared
thread pool (numpy releases the GIL).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .threads import run_blocks

__all__ = ["largest_indices_numpy"]

#: Elements per block of rows on the thread pool.
_BLOCK_ELEMENTS = 1 << 16


def largest_indices_numpy(values: Tensor, count: int) -> Tensor:
    """Indices ``(R, count)`` int64 of the ``count`` largest entries of every row of the CPU float
    tensor ``values (R, N)``, in no particular order (among equal values, any of them).

    ``1 <= count <= N``; NaN counts as the largest (as in ``torch.topk``).
    """
    rows, size = values.shape
    source = values.contiguous().numpy()
    out = np.empty((rows, count), dtype=np.int64)
    kth = size - count

    def block(start: int, stop: int) -> None:
        out[start:stop] = np.argpartition(source[start:stop], kth, axis=-1)[:, kth:]

    step = max(1, _BLOCK_ELEMENTS // max(size, 1))
    run_blocks(block, [(start, min(start + step, rows)) for start in range(0, rows, step)])
    return torch.from_numpy(out)
