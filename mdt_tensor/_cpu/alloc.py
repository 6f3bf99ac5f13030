"""Large CPU result buffers through numpy's allocator, which asks the kernel for huge pages.

torch's CPU allocator backs a fresh multi-MB buffer with 4 KiB pages, each paid for by a page
fault on first write; numpy's allocator asks for transparent huge pages. ``weights`` allocates
its large CPU results here (viewed with ``torch.from_numpy``: such a tensor cannot be
``resize_``-d, nothing else differs) and keeps ``torch.empty`` as the reference path.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["HUGE_PAGE_BYTES", "numpy_dtype", "huge_page_sized", "empty_numpy"]

#: Below this many bytes the page-fault cost of a fresh torch buffer does not matter.
HUGE_PAGE_BYTES = 1 << 21

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}


def numpy_dtype(dtype: torch.dtype) -> type | None:
    """The numpy dtype :func:`empty_numpy` allocates for ``dtype``, or None (e.g. bfloat16)."""
    return _NUMPY_DTYPES.get(dtype)


def huge_page_sized(shape: tuple[int, ...], dtype: torch.dtype) -> bool:
    """Whether a buffer is large enough for huge pages to pay."""
    return math.prod(shape) * dtype.itemsize >= HUGE_PAGE_BYTES


def empty_numpy(shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """An uninitialised contiguous CPU tensor allocated by numpy (``dtype`` must have a :func:`numpy_dtype`)."""
    return torch.from_numpy(np.empty(shape, dtype=_NUMPY_DTYPES[dtype]))
