"""``compute_weight_entropy``: the Shannon entropy of every row's positive part.

An arithmetic form (``log2`` of the sum minus the weighted mean of ``log2``) over cache-sized row
blocks; the logarithm, the cost of it, runs through numpy's SIMD ``log2`` on the CPU
(``_cpu/ufuncs.py``, torch's ``log2_`` as the reference). See ``docs/design/weights.md``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._array import Array
from .._cpu.engine import use_numpy_kernel
from .._cpu.ufuncs import NUMPY_FLOAT_DTYPES, log2_
from .._scaling import scale_down_rows
from .._validation import normalize_dim
from ._common import BlockChecker, read_weights, rows_last, rows_per_block

__all__ = ["compute_weight_entropy"]


def _log2_(t: Tensor) -> Tensor:
    """``t.log2_()`` for positive finite ``t``; on the CPU the numpy kernel (``_cpu.ufuncs.log2_``)."""
    if t.dtype in NUMPY_FLOAT_DTYPES and t.is_contiguous() and use_numpy_kernel(t):
        return log2_(t)
    return t.log2_()


def compute_weight_entropy(weights: Array, *, dim: int = -1, validate: bool = True) -> Array:
    """Shannon entropy (natural log) of every row's positive part, renormalised to sum to 1.

    Negative entries are ignored (as in the original); a row with no positive entry has entropy
    0 (the original skipped such rows when averaging; here every row gets its own value).
    ``[0.9, 0.05, 0.03, 0.02]`` gives 0.428 (the original's docstring said 0.64).

    Args:
        weights: ``(*, N)`` weights (need not be normalized).
        dim: the axis the distribution runs along.
        validate: check that ``weights`` is finite.

    Returns:
        ``(*)``: one entropy per row (``weights``' shape without ``dim``), in ``[0, ln N]``.

    Raises:
        ValueRangeError: NaN or inf in ``weights``.
        ShapeError / DTypeError: bad ``dim``, 0-d input, bool/string input.

    Example:
        >>> compute_weight_entropy(torch.tensor([[0.9, 0.05, 0.03, 0.02], [1.0, 1.0, 0.0, -3.0]]))
        tensor([0.4280, 0.6931])
    """
    w, origin = read_weights(weights, "weights")
    dim = normalize_dim(dim, w.ndim)
    total, weighted_log = _row_sums(w, dim, BlockChecker(w, validate))
    if not bool(torch.isfinite(total).all() & torch.isfinite(weighted_log).all()):
        # A sum overflowed on finite input (``4 x 1e38``, or ``x log2 x`` of one 1e37 in
        # float32): the entropy is scale-invariant, so take it of the rows scaled to max |w| < 1.
        total, weighted_log = _row_sums(scale_down_rows(w, dim)[0], dim, BlockChecker(w, False))
    safe_total = torch.where(total > 0, total, torch.ones_like(total))
    entropy = (safe_total.log2() - weighted_log / safe_total).mul_(math.log(2)).clamp_min_(0)
    return origin.wrap(origin.restore_float(entropy))


def _row_sums(w: Tensor, dim: int, checker: BlockChecker) -> tuple[Tensor, Tensor]:
    """``(S, sum(x log2 x))`` per row along ``dim`` (``w``'s shape without ``dim``), ``x = max(w, 0)``."""
    # H = ln 2 (log2 S - sum(x log2 x) / S) with x = max(w, 0), S = sum(x). log2(max(w, tiny)) is
    # log2(x) for every normal positive x and finite elsewhere, so x * log2(...) is 0 where x is 0 (this
    # arithmetic form is several times faster on CPU than xlogy/entr). The passes run block by
    # block of rows so that each block is read from memory once (see _common.rows_per_block).
    rows, moved_shape = rows_last(w, dim)
    num_rows, size = rows.shape
    total = torch.empty(num_rows, dtype=w.dtype, device=w.device)
    weighted_log = torch.empty(num_rows, dtype=w.dtype, device=w.device)
    step = rows_per_block(rows)
    positive_buffer = torch.empty(min(step, num_rows), size, dtype=w.dtype, device=w.device)
    log_buffer = torch.empty_like(positive_buffer)
    tiny = torch.finfo(w.dtype).tiny
    for start in range(0, num_rows, step):
        block = rows[start : start + step]
        count = block.shape[0]
        # (non-negative blocks, the usual case, skip the clamp: a read is cheaper than a write)
        low = block.amin() if block.numel() else torch.zeros((), dtype=w.dtype, device=w.device)
        positive = block if bool(low >= 0) else torch.clamp_min(block, 0, out=positive_buffer[:count])
        torch.sum(positive, -1, out=total[start : start + count])
        # NaN/inf show in the minimum (NaN, -inf) or in the sums of the positive parts (NaN, +inf).
        checker.finite_summary(torch.stack([low, total[start : start + count].sum()]))
        logs = _log2_(torch.clamp_min(block, tiny, out=log_buffer[:count]))
        torch.sum(logs.mul_(positive), -1, out=weighted_log[start : start + count])  # (faster here than bmm)
    return total.reshape(moved_shape[:-1]), weighted_log.reshape(moved_shape[:-1])
