"""``compute_weight_entropy``: the Shannon entropy of every row's positive part.

An arithmetic form (``log2`` of the sum minus the weighted mean of ``log2``) over cache-sized row
blocks, three passes over a block of positive weights (``log2``, sum, one dot product per row);
blocks with a zero, a negative or a non-finite value are detected by that dot product and mended.
On the CPU the logarithm, the cost of it, runs through numpy's SIMD ``log2`` where numpy has its
AVX-512 kernel (below that, torch's ``log2`` is faster) and the row dot products through
``np.vecdot`` (``_cpu/ufuncs.py``; torch's ``log2`` and multiply-and-sum are the reference).
See ``docs/design/weights.md``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._array import Array
from .._cpu import ufuncs
from .._cpu.engine import numpy_avx512, use_numpy_kernel
from .._scaling import scale_down_rows
from .._validation import normalize_dim
from . import _common
from ._common import BlockChecker, read_weights, rows_last, rows_per_block

__all__ = ["compute_weight_entropy"]


def _numpy_float(*tensors: Tensor) -> bool:
    """Whether the numpy kernels take these tensors: contiguous float32/float64 of one dtype."""
    return all(t.dtype in ufuncs.NUMPY_FLOAT_DTYPES and t.dtype == tensors[0].dtype and t.is_contiguous() for t in tensors)


def _log2(source: Tensor, out: Tensor) -> Tensor:
    """``log2`` of every element of ``source`` into ``out`` (-inf at 0, NaN below 0).

    numpy's ``log2`` on the CPU where it runs its AVX-512 kernel (``_cpu.ufuncs.log2``), else torch's.
    """
    if _numpy_float(source, out) and use_numpy_kernel(source, wins=numpy_avx512()):
        return ufuncs.log2(source, out)
    return torch.log2(source, out=out)


def _row_dot(a: Tensor, b: Tensor, out: Tensor, buffers: _Buffers) -> Tensor:
    """``(a * b).sum(-1)`` into ``out``: ``np.vecdot`` on the CPU, else torch's product (in a buffer), summed."""
    if ufuncs.HAS_VECDOT and _numpy_float(a, b, out) and use_numpy_kernel(a):
        return ufuncs.row_dot(a, b, out)
    return torch.sum(torch.mul(a, b, out=buffers.scratch(a.shape[0])), -1, out=out)


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
    if not (_all_finite(total) and _all_finite(weighted_log)):
        # A sum overflowed on finite input (``4 x 1e38``, or ``x log2 x`` of one 1e37 in
        # float32): the entropy is scale-invariant, so take it of the rows scaled to max |w| < 1.
        total, weighted_log = _row_sums(scale_down_rows(w, dim)[0], dim, BlockChecker(w, False))
    safe_total = torch.where(total > 0, total, torch.ones_like(total))
    entropy = (safe_total.log2() - weighted_log / safe_total).mul_(math.log(2)).clamp_min_(0)
    return origin.wrap(origin.restore_float(entropy))


def _row_sums(w: Tensor, dim: int, checker: BlockChecker) -> tuple[Tensor, Tensor]:
    """``(S, sum(x log2 x))`` per row along ``dim`` (``w``'s shape without ``dim``), ``x = max(w, 0)``."""
    # H = ln 2 (log2 S - sum(x log2 x) / S) with x = max(w, 0), S = sum(x) (this arithmetic form is
    # several times faster on CPU than xlogy/entr). The passes run block by block of rows so that
    # each block is read from memory once (see _common.rows_per_block).
    rows, moved_shape = rows_last(w, dim)
    num_rows, size = rows.shape
    total = torch.empty(num_rows, dtype=w.dtype, device=w.device)
    weighted_log = torch.empty(num_rows, dtype=w.dtype, device=w.device)
    # Half the usual block: the block and its logarithms stay in cache between the three passes.
    step = rows_per_block(rows, _common.BLOCK_BYTES // 2)
    buffers = _Buffers(min(step, num_rows), size, w)
    for start in range(0, num_rows, step):
        block = rows[start : start + step]
        count = block.shape[0]
        block_total, block_weighted = total[start : start + count], weighted_log[start : start + count]
        logs = _log2(block, buffers.logs[:count])
        torch.sum(block, -1, out=block_total)
        _row_dot(block, logs, block_weighted, buffers)
        # A finite dot product proves every element positive and finite (a zero gives 0 * -inf,
        # a negative value or NaN gives NaN, +inf gives inf): the usual case ends here.
        if not _all_finite(block_weighted):
            _mend_block(block, logs, block_total, block_weighted, checker, buffers)
    return total.reshape(moved_shape[:-1]), weighted_log.reshape(moved_shape[:-1])


def _all_finite(t: Tensor) -> bool:
    """Whether every element of the small 1-d ``t`` is finite (on the CPU through numpy: no torch dispatch)."""
    if t.device.type == "cpu" and t.dtype in ufuncs.NUMPY_FLOAT_DTYPES:
        return bool(ufuncs.all_finite(t))
    return bool(torch.isfinite(t).all())


def _mend_block(block: Tensor, logs: Tensor, total: Tensor, weighted: Tensor, checker: BlockChecker,
                buffers: _Buffers) -> None:
    """Redo the sums of a block holding a zero, a negative or a non-finite value (or a sum that overflowed)."""
    count = block.shape[0]
    low = block.amin()
    # NaN/inf show in the minimum (NaN, -inf) or in the sum of the block (NaN, +inf).
    checker.finite_summary(torch.stack([low, total.sum()]))
    positive = block
    if not bool(low >= 0):
        positive = torch.clamp_min(block, 0, out=buffers.positive[:count])
        torch.sum(positive, -1, out=total)
    # x log2 x is 0 where x = max(w, 0) is 0: log2 gave -inf at a zero and NaN below (a NaN of
    # the input stays NaN in ``positive``, +inf stays +inf in both)
    torch.nan_to_num_(logs, nan=0.0, neginf=0.0, posinf=math.inf)
    _row_dot(positive, logs, weighted, buffers)


class _Buffers:
    """The per-call block buffers of :func:`_row_sums`; the rarely needed ones made on first use."""

    def __init__(self, rows: int, size: int, like: Tensor) -> None:
        self._shape, self._like = (rows, size), like
        self.logs = self._empty()
        self._positive: Tensor | None = None
        self._scratch: Tensor | None = None

    def _empty(self) -> Tensor:
        return _common.empty(self._shape, self._like.dtype, self._like)  # (huge pages on the CPU)

    @property
    def positive(self) -> Tensor:
        if self._positive is None:
            self._positive = self._empty()
        return self._positive

    def scratch(self, count: int) -> Tensor:
        """A product buffer for the torch row dot (not allocated where ``np.vecdot`` runs)."""
        if self._scratch is None:
            self._scratch = self._empty()
        return self._scratch[:count]
