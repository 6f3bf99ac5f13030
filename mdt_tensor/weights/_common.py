"""What every weight operation shares: reading the input, result buffers and ``out=``, value checks.

Inputs are read as float tensors in their compute dtype (float16/bfloat16 compute in float32,
integers become float32) and handed back as the caller's array kind. Large CPU results are
allocated through ``_cpu/alloc.py``; value checks first try one cheap reduction and search for
the offending element only when it fails. See ``docs/design/weights.md``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._array import Array, ArrayOrigin, as_tensor, check_same_device, float_compute_dtype, is_array
from .._cpu.alloc import empty_numpy, huge_page_sized, numpy_dtype
from .._cpu.engine import use_numpy_kernel
from .._validation import check_finite, check_float_or_int, check_non_negative
from ..errors import DTypeError, ShapeError, ValueRangeError

__all__: list[str] = []

#: Row blocks of about this size keep multi-pass formulas in cache on CPU (see rows_per_block).
BLOCK_BYTES = 1 << 22


def read_weights(x: Array, name: str) -> tuple[Tensor, ArrayOrigin]:
    """``x`` as a float tensor in its compute dtype; bool/string/object inputs raise DTypeError."""
    tensor, origin = as_tensor(x, name)
    check_float_or_int(tensor, name)
    return tensor.to(float_compute_dtype(tensor.dtype)), origin


def empty(shape: tuple[int, ...], dtype: torch.dtype, like: Tensor) -> Tensor:
    """An uninitialised contiguous tensor on ``like``'s device; large CPU buffers come from numpy (huge pages)."""
    if numpy_dtype(dtype) is not None and use_numpy_kernel(like, wins=huge_page_sized(shape, dtype)):
        return empty_numpy(shape, dtype)
    return torch.empty(shape, dtype=dtype, device=like.device)


def empty_like(t: Tensor) -> Tensor:
    """:func:`empty` with the shape, dtype and device of ``t``."""
    return empty(tuple(t.shape), t.dtype, t)


def result_dtype(origin: ArrayOrigin, compute: torch.dtype) -> torch.dtype:
    """The dtype a weight function returns: a half input's own dtype, else the compute dtype."""
    return origin.dtype if origin.dtype in (torch.float16, torch.bfloat16) else compute


def out_buffer(out: Array | None, w: Tensor, origin: ArrayOrigin) -> tuple[Tensor, Tensor | None]:
    """The tensor to compute into, and the caller's ``out`` tensor to copy into afterwards (or None).

    ``out`` must have the shape of the result and the dtype the function returns (the input's
    float dtype, float32 for integer input) on the input's device.
    """
    if out is None:
        return empty_like(w), None
    if not is_array(out):
        raise DTypeError(f"Expected `out` to be a torch tensor, numpy array or CuPy array, but got {type(out).__name__}.")
    target, _ = as_tensor(out, "out")
    expected = result_dtype(origin, w.dtype)
    if tuple(target.shape) != tuple(w.shape):
        raise ShapeError(f"Expected `out` to have shape {tuple(w.shape)}, but got {tuple(target.shape)}.")
    if target.dtype != expected:
        raise DTypeError(f"Expected `out` to have dtype {expected}, but got {target.dtype}.")
    check_same_device(weights=w, out=target)
    check_writable_out(out, target, w)
    if target.dtype == w.dtype:
        return target, None
    return empty_like(w), target


def check_writable_out(out: Array, target: Tensor, w: Tensor) -> None:
    """Raise unless ``out`` (read as ``target``) can take the result of an operation on ``w``.

    Refused: a read-only numpy array, a tensor that requires grad or is an inference tensor
    outside inference mode (torch would raise a RuntimeError mid-way), a buffer in which several
    elements share memory (an expanded or otherwise self-overlapping view: the result would be
    garbage), and a buffer that overlaps ``w`` other than exactly (``out=weights`` is an in-place
    update; a shifted view of the input would be overwritten while it is read).

    Raises:
        ValueRangeError: a read-only ``out``.
        ShapeError: an ``out`` whose elements overlap each other or partially overlap ``w``.
    """
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        raise ValueRangeError("Expected `out` to be writable, but got a read-only numpy array (flags.writeable is False).")
    if target.requires_grad:
        raise ValueRangeError("Expected `out` not to require grad: out= results are not differentiable.")
    if target.is_inference() and not torch.is_inference_mode_enabled():
        raise ValueRangeError("Expected `out` to be writable here, but got an inference tensor outside inference mode.")
    if target.numel() > 1 and _overlaps_itself(target):
        raise ShapeError(
            f"Expected `out` to have one memory location per element, but its strides {tuple(target.stride())} "
            f"make elements share memory (an expanded view?); pass a contiguous buffer."
        )
    if _partial_overlap(target, w):
        raise ShapeError(
            "Expected `out` to be the input itself (in place) or memory apart from it, but it overlaps "
            "the input partially: the result would overwrite values still to be read."
        )


def _overlaps_itself(t: Tensor) -> bool:
    status = torch._debug_has_internal_overlap(t)  # 0: no, 1: yes, 2: too hard to tell
    if status != 2:
        return bool(status)
    offsets = torch.zeros((), dtype=torch.int64)
    for size, stride in zip(t.shape, t.stride()):
        offsets = (offsets.unsqueeze(-1) + torch.arange(size, dtype=torch.int64) * stride).reshape(-1)
    return int(torch.unique(offsets).numel()) != t.numel()


def _byte_span(t: Tensor) -> tuple[int, int]:
    low = sum((size - 1) * stride for size, stride in zip(t.shape, t.stride()) if stride < 0)
    high = sum((size - 1) * stride for size, stride in zip(t.shape, t.stride()) if stride > 0)
    return t.data_ptr() + low * t.element_size(), t.data_ptr() + (high + 1) * t.element_size()


def _partial_overlap(a: Tensor, b: Tensor) -> bool:
    """True when ``a`` and ``b`` share memory without being the same view (conservative: spans)."""
    if a.numel() == 0 or b.numel() == 0 or a.device != b.device:
        return False
    same_view = (
        a.data_ptr() == b.data_ptr() and a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride()
    )
    if same_view:
        return False
    a_start, a_end = _byte_span(a)
    b_start, b_end = _byte_span(b)
    return a_start < b_end and b_start < a_end


def finish(result: Tensor, origin: ArrayOrigin, out: Array | None, out_target: Tensor | None) -> Any:
    """Hand ``result`` back: into the caller's ``out`` if given, else as the caller's array kind."""
    if out is not None:
        if out_target is not None:
            out_target.copy_(result)
        return out
    return origin.wrap(origin.restore_float(result))


class BlockChecker:
    """Value checks of ``w``, on all of it or block by block, before anything is written.

    A sum (or minimum) is finite (non-negative) when the elements it came from are, so one cheap
    reduction usually proves a block good; only a failing summary pays for the exact search,
    which runs once over all of ``w``: blocks written before (possibly in place) passed, so the
    first offending element is still where it was. If that search finds nothing (a sum merely
    overflowed) the rest of ``w`` is known good.
    """

    def __init__(self, w: Tensor, validate: bool) -> None:
        self.w = w
        self.check_finite = validate and w.is_floating_point()
        self.check_sign = validate

    def finite(self, block: Tensor) -> None:
        if self.check_finite and block.numel():
            self.finite_summary(block.sum())

    def finite_summary(self, summary: Tensor) -> None:
        """Check a summary that is finite whenever the elements it came from are."""
        if self.check_finite and not bool(torch.isfinite(summary).all()):
            check_finite(self.w, "weights")
            self.check_finite = False

    def non_negative(self, block: Tensor) -> None:
        if self.check_sign and block.numel() and not bool(block.amin() >= 0):
            check_non_negative(self.w, "weights")
            self.check_sign = False


def rows_last(w: Tensor, dim: int) -> tuple[Tensor, tuple[int, ...]]:
    """``w`` with ``dim`` moved last and flattened to ``(R, L)``, plus the moved shape."""
    moved = w.movedim(dim, -1)
    return moved.reshape(math.prod(moved.shape[:-1]), moved.shape[-1]), tuple(moved.shape)


def rows_back(rows: Tensor, moved_shape: tuple[int, ...], dim: int) -> Tensor:
    """Undo :func:`rows_last`."""
    return rows.reshape(moved_shape).movedim(-1, dim)


def rows_per_block(rows: Tensor, block_bytes: int | None = None) -> int:
    """How many rows of ``(R, N)`` make a cache-sized block on CPU (all of them elsewhere).

    Args:
        block_bytes: the block's size (default :data:`BLOCK_BYTES`).
    """
    if rows.device.type != "cpu":
        return max(1, rows.shape[0])
    return max(1, (BLOCK_BYTES if block_bytes is None else block_bytes) // max(1, rows.shape[1] * rows.element_size()))
