"""``normalize_weights``: sum, max, min-max and z-score normalisation of every row.

The row statistics propagate NaN and inf, so they double as the finiteness check, and a
degenerate row (zero sum, range or std) becomes zeros by dividing by inf instead of masking.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from .._array import Array
from .._scaling import scale_down_rows
from .._validation import check_choice, normalize_dim
from ._common import BlockChecker, finish, out_buffer, read_weights

__all__ = ["normalize_weights"]

NormalizeMethod = Literal["sum", "max", "minmax", "zscore"]
_METHODS = ("sum", "max", "minmax", "zscore")


def normalize_weights(
    weights: Array,
    method: NormalizeMethod = "sum",
    *,
    dim: int = -1,
    out: Array | None = None,
    validate: bool = True,
) -> Array:
    """Normalize every row of ``weights`` along ``dim``, each row on its own.

    Methods (statistics per row):

    * ``"sum"``: ``w / sum(w)``;
    * ``"max"``: ``w / max(|w|)`` (the largest absolute value, so signs are kept);
    * ``"minmax"``: ``(w - min) / (max - min)``, in ``[0, 1]`` with the minimum exactly 0 and the
      maximum exactly 1;
    * ``"zscore"``: ``(w - mean) / std`` with the population std (ddof=0).

    A degenerate row (sum exactly 0, all zeros for ``"max"``, zero range, zero std) becomes all
    zeros; the other rows are not touched. (For ``"zscore"`` a std that underflows to 0, as for
    rows whose spread is below ~1e-19 in float32, counts as zero.)

    Args:
        weights: ``(*, N)`` weights (any leading batch shape; rows along ``dim``).
        method: one of ``"sum"``, ``"max"``, ``"minmax"``, ``"zscore"``.
        dim: the axis to normalize along (default the last, the neuron axis).
        out: optional buffer of the result's shape and dtype (torch tensor, numpy or CuPy array,
            may be ``weights`` itself for an in-place update); it is returned.
        validate: check that ``weights`` is finite (a GPU sync).

    Returns:
        ``(*, N)`` normalized weights, the caller's array kind and dtype (float32 for integers).

    Raises:
        ValueRangeError: unknown ``method``.
        ValueRangeError: ``weights`` holds NaN or inf (``validate=True``).
        ShapeError: ``dim`` out of range, or a 0-d input.
        DTypeError: bool, string or object input.

    Example:
        >>> normalize_weights(torch.tensor([[1.0, 3.0], [0.0, 0.0]]))
        tensor([[0.2500, 0.7500],
                [0.0000, 0.0000]])
        >>> normalize_weights(torch.tensor([-4.0, 2.0]), "max")
        tensor([-1.0000,  0.5000])
    """
    check_choice(method, "method", _METHODS)
    w, origin = read_weights(weights, "weights")
    dim = normalize_dim(dim, w.ndim)
    result, out_target = out_buffer(out, w, origin)
    if w.numel() == 0:
        return finish(result, origin, out, out_target)
    _normalize_into(w, result, method, dim, validate)
    return finish(result, origin, out, out_target)


def _normalize_into(w: Tensor, out: Tensor, method: str, dim: int, validate: bool, rescale: bool = True) -> None:
    """Normalize ``w`` along ``dim`` into ``out`` (which may be ``w``).

    The row statistics propagate NaN/inf, so they double as the finiteness check (run before
    anything is written). Every degenerate denominator is replaced by inf: finite / inf == 0, so
    such rows become zeros without a masking pass. A statistic that overflows although ``w`` is
    finite (the sum of ``4 x 1e38`` in float32) sends the whole computation to the scaled form
    (``_scaling``): every method is scale-invariant, so rows scaled to ``max |w| < 1`` give the
    same answer without overflowing (once: ``rescale=False`` there, where only non-finite input,
    unchecked under ``validate=False``, could still give a non-finite statistic).
    """
    inf = torch.tensor(math.inf, dtype=w.dtype, device=w.device)
    checker = BlockChecker(w, validate)
    if method == "sum":
        total = w.sum(dim, keepdim=True)
        if _overflowed(total, checker, rescale):
            return _normalize_scaled(w, out, method, dim)
        torch.div(w, torch.where(total == 0, inf, total), out=out)
        return
    if method == "max":
        largest = torch.maximum(w.amax(dim, keepdim=True), w.amin(dim, keepdim=True).neg_())
        checker.finite_summary(largest)
        torch.div(w, torch.where(largest == 0, inf, largest), out=out)
        return
    low = w.amin(dim, keepdim=True)
    span = w.amax(dim, keepdim=True).sub_(low)
    if _overflowed(span, checker, rescale):
        return _normalize_scaled(w, out, method, dim)
    if method == "minmax":
        torch.sub(w, low, out=out).div_(torch.where(span == 0, inf, span))
        return
    # Two-pass population std (mean, then the norm of the centred row): accurate, and much faster
    # on CPU than torch.var_mean's Welford loop. A constant row (max == min) is degenerate even
    # where the computed mean is off by an ulp.
    mean = w.mean(dim, keepdim=True)
    if rescale and not bool(torch.isfinite(mean).all()):  # the sum inside the mean overflowed (w is finite)
        return _normalize_scaled(w, out, method, dim)
    centred = torch.sub(w, mean, out=out)
    std = torch.linalg.vector_norm(centred, dim=dim, keepdim=True).div_(math.sqrt(w.shape[dim]))
    if rescale and not bool(torch.isfinite(std).all()):
        # The norm overflowed. ``out`` (maybe ``w`` itself) holds the centred rows, each within
        # the finite span; the z-score is shift-invariant, so it is the z-score of those.
        return _normalize_scaled(centred, out, method, dim)
    centred.div_(torch.where((span == 0) | (std == 0), inf, std))


def _overflowed(summary: Tensor, checker: BlockChecker, rescale: bool) -> bool:
    """True when ``summary`` is not finite and ``rescale`` (under ``validate``, only when the input
    is finite: the finite check raises otherwise).

    One sync, also with ``validate=False``: an overflow of finite input is not a bad input.
    """
    if not rescale:
        checker.finite_summary(summary)
        return False
    if bool(torch.isfinite(summary).all()):
        return False
    checker.finite_summary(summary)  # raises for NaN / inf in w under validate
    return True


def _normalize_scaled(w: Tensor, out: Tensor, method: str, dim: int) -> None:
    """:func:`_normalize_into` on ``w`` with every row scaled by a power of two to ``max |w| < 1``."""
    scaled, _ = scale_down_rows(w, dim)
    _normalize_into(scaled, out, method, dim, validate=False, rescale=False)
