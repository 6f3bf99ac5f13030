"""numpy ufuncs on a CPU tensor's own memory, where they beat torch's CPU kernels.

``log2`` and ``row_dot`` serve the weight entropy (the logarithm is its cost; numpy's ``vecdot``
is one pass where torch's multiply-and-sum is two) and ``min_max`` the finite-and-non-negative
check (numpy's reductions do not wait for torch's OpenMP threads). The callers keep the torch
operations as the reference and choose through :func:`use_numpy_kernel`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["HAS_VECDOT", "NUMPY_FLOAT_DTYPES", "all_finite", "log2", "row_dot", "min_max"]

#: The float dtypes these kernels take.
NUMPY_FLOAT_DTYPES = (torch.float32, torch.float64)
#: ``np.vecdot`` exists (numpy >= 2.0).
HAS_VECDOT = hasattr(np, "vecdot")


def log2(source: Tensor, out: Tensor) -> Tensor:
    """``torch.log2(source, out=out)`` through numpy's ``log2``, for contiguous float32/float64 CPU tensors.

    ``out`` may be ``source``. Zeros give -inf and negative values NaN, without numpy's warnings.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        np.log2(source.numpy(), out=out.numpy())
    return out


def row_dot(a: Tensor, b: Tensor, out: Tensor) -> Tensor:
    """``torch.sum(a * b, -1, out=out)`` through ``np.vecdot`` (needs :data:`HAS_VECDOT`), for
    contiguous ``(R, N)`` float32/float64 CPU tensors of one dtype and a contiguous ``(R,)`` ``out``."""
    with np.errstate(invalid="ignore", over="ignore"):
        np.vecdot(a.numpy(), b.numpy(), out=out.numpy())
    return out


def min_max(t: Tensor) -> tuple[Any, Any]:
    """The smallest and largest element of a non-empty CPU tensor of a numpy dtype (NaN if it holds one)."""
    array = t.detach().numpy()
    return array.min(), array.max()


def all_finite(t: Tensor) -> bool:
    """Whether every element of the float32/float64 CPU tensor ``t`` is finite."""
    return bool(np.isfinite(t.detach().numpy()).all())
