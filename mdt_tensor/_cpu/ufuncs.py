"""numpy ufuncs on a CPU tensor's own memory, where they beat torch's CPU kernels.

``log2_`` serves the weight entropy (its logarithm is the entropy's cost) and ``min_max`` the
finite-and-non-negative check (numpy's reductions do not wait for torch's OpenMP threads). The
callers keep the torch operation as the reference and choose through :func:`use_numpy_kernel`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["NUMPY_FLOAT_DTYPES", "log2_", "min_max"]

#: The float dtypes these kernels take.
NUMPY_FLOAT_DTYPES = (torch.float32, torch.float64)


def log2_(t: Tensor) -> Tensor:
    """``t.log2_()`` through numpy's SIMD ``log2``, in place, for a contiguous float32/float64 CPU tensor."""
    array = t.numpy()
    np.log2(array, out=array)
    return t


def min_max(t: Tensor) -> tuple[Any, Any]:
    """The smallest and largest element of a non-empty CPU tensor of a numpy dtype (NaN if it holds one)."""
    array = t.detach().numpy()
    return array.min(), array.max()
