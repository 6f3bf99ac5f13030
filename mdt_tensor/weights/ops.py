"""Batched weight operations: normalize, validate, clip, decay, smooth, top-k, entropy, sparse <-> dense.

Every function takes weights of shape ``(*, N)`` (usually ``(*, V, N)``: V validators, N
neurons) and works along ``dim`` (default ``-1``, the neuron axis), independently for every row
and every leading batch index. numpy, torch and CuPy arrays come in; the same kind comes back on
the same device. float32/float64 keep their precision, float16/bfloat16 compute in float32 and
come back in their own dtype, integer weights are promoted to float32. bool, string, object and
complex inputs raise :class:`~mdt_tensor.errors.DTypeError`.

With ``validate=True`` (the default) value checks run first (NaN, inf, sign where it matters);
they read the data and therefore synchronise a GPU. ``validate=False`` skips them; the results
for inputs that would have failed are then unspecified.

Hand-written mechanisms, and why a library call did not serve:

* **Output buffers** (:func:`_empty_like`): torch's CPU allocator hands out fresh multi-MB
  buffers backed by 4 KiB pages, so every large result pays one page fault per 4 KiB (measured:
  a fresh 64 MiB result costs 3-4x a copy into an existing buffer). numpy's allocator asks the
  kernel for transparent huge pages, so large CPU results are allocated through ``numpy.empty``
  and viewed with ``torch.from_numpy`` (such a tensor cannot be ``resize_``-d; nothing else
  differs). The streaming functions also accept ``out=`` to reuse a buffer.
* **Exponential moving average** (:func:`_ema_last`): torch has no linear-recurrence scan, and a
  Python loop over positions is what made the original slow. The EMA is computed in float64 as a
  weighted cumulative sum inside blocks short enough that the weights stay far from overflow,
  with each block's start taken from the previous block's end (see the function for the bound).
* **Logarithm on CPU** (:func:`_log2_`): torch 2.13's CPU ``log``/``log2`` run at about 1 ns
  per element, numpy's SIMD ``log2`` about 4x faster, and the logarithm is the cost of the
  entropy. On CPU the entropy's ``log2`` runs in place through numpy on the same memory (no
  copy); on other devices ``torch.log2_``. Both are accurate to an ulp; the tests compare them.
* **Row blocks** (:func:`_rows_per_block`): the compute-heavy multi-pass formulas (entropy, EMA)
  run over blocks of about 4 MiB of rows on CPU, so every pass after the first reads from cache
  (measured 2-3x faster). The loop is over blocks (numel / 2**20 iterations for float32), each
  iteration a batched torch call. Streaming ops (normalize, clip, decay) run whole: on an
  oversubscribed machine each torch call waits for OpenMP threads that may be descheduled
  (OpenMP spin-waits by default; ``OMP_WAIT_POLICY=PASSIVE`` or fewer torch threads help), so
  they keep the number of calls minimal.
* **Top-k with deterministic ties** (:func:`top_k_weights`, :func:`_top_k_plus_one`):
  ``torch.topk`` does not specify which of several equal values it returns, a stable full sort
  is several times slower, and one ``torch.topk`` over a long row is slow on CPU. A two-stage
  selection (group maxima, then the members of the best groups) finds the k + 1 largest values;
  everything above their minimum t is kept, and copies of t fill the remaining slots from the
  lowest index up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .._array import Array, ArrayOrigin, as_tensor, check_same_device, float_compute_dtype
from .._validation import (
    check_finite,
    check_float_or_int,
    check_non_negative,
    check_not_nan,
    first_index,
    normalize_dim,
)
from ..errors import DTypeError, ShapeError, ValueRangeError, WeightError

__all__ = [
    "WeightReport",
    "normalize_weights",
    "validate_weight_matrix",
    "check_weights",
    "clip_weights",
    "apply_weight_decay",
    "smooth_weights",
    "top_k_weights",
    "compute_weight_entropy",
    "sparse_to_dense_weights",
    "dense_to_sparse_weights",
]

NormalizeMethod = Literal["sum", "max", "minmax", "zscore"]
SmoothMethod = Literal["moving_average", "exponential"]
SparseFormat = Literal["coo", "torch", "dict"]

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}
#: Below this many bytes the page-fault cost of a fresh torch buffer does not matter.
_HUGE_PAGE_BYTES = 1 << 21
#: Row blocks of about this size keep multi-pass formulas in cache on CPU (see _rows_per_block).
_BLOCK_BYTES = 1 << 22
#: Moving averages up to this window width sum directly (avg_pool1d); wider ones use a float64 cumsum.
_DIRECT_WINDOW_MAX = 33
#: Group width of the two-stage top-k selection (see _top_k_plus_one).
_TOPK_GROUP = 8
#: EMA blocks are cut so that (1 - alpha) ** block <= 2 ** -_EMA_BLOCK_BITS (see _ema_last).
_EMA_BLOCK_BITS = 200


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _read_weights(x: Array, name: str) -> tuple[Tensor, ArrayOrigin]:
    """``x`` as a float tensor in its compute dtype; bool/string/object inputs raise DTypeError."""
    tensor, origin = as_tensor(x, name)
    check_float_or_int(tensor, name)
    return tensor.to(float_compute_dtype(tensor.dtype)), origin


def _empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """An uninitialised contiguous tensor; large CPU buffers come from numpy (huge pages, see above)."""
    np_dtype = _NUMPY_DTYPES.get(dtype)
    if device.type == "cpu" and np_dtype is not None and math.prod(shape) * dtype.itemsize >= _HUGE_PAGE_BYTES:
        return torch.from_numpy(np.empty(shape, dtype=np_dtype))
    return torch.empty(shape, dtype=dtype, device=device)


def _empty_like(t: Tensor) -> Tensor:
    """:func:`_empty` with the shape, dtype and device of ``t``."""
    return _empty(tuple(t.shape), t.dtype, t.device)


def _result_dtype(origin: ArrayOrigin, compute: torch.dtype) -> torch.dtype:
    return origin.dtype if origin.dtype in (torch.float16, torch.bfloat16) else compute


def _out_buffer(out: Array | None, w: Tensor, origin: ArrayOrigin) -> tuple[Tensor, Tensor | None]:
    """The tensor to compute into, and the caller's ``out`` tensor to copy into afterwards (or None).

    ``out`` must have the shape of the result and the dtype the function returns (the input's
    float dtype, float32 for integer input) on the input's device.
    """
    if out is None:
        return _empty_like(w), None
    target, _ = as_tensor(out, "out")
    expected = _result_dtype(origin, w.dtype)
    if tuple(target.shape) != tuple(w.shape):
        raise ShapeError(f"Expected `out` to have shape {tuple(w.shape)}, but got {tuple(target.shape)}.")
    if target.dtype != expected:
        raise DTypeError(f"Expected `out` to have dtype {expected}, but got {target.dtype}.")
    check_same_device(weights=w, out=target)
    if target.dtype == w.dtype:
        return target, None
    return _empty_like(w), target


def _finish(result: Tensor, origin: ArrayOrigin, out: Array | None, out_target: Tensor | None) -> Any:
    """Hand ``result`` back: into the caller's ``out`` if given, else as the caller's array kind."""
    if out is not None:
        if out_target is not None:
            out_target.copy_(result)
        return out
    return origin.wrap(origin.restore_float(result))


def _check_finite(w: Tensor, name: str, summary: Tensor | None = None) -> None:
    """:func:`check_finite`, but first through one cheap reduction.

    A NaN or inf element makes any sum (or NaN-propagating min/max) non-finite, so a finite
    ``summary`` (default: the sum of ``w``) proves ``w`` finite without materialising a mask.
    Only a non-finite summary (a bad element, or an overflowing sum) pays for the exact search.
    """
    if not w.is_floating_point() or w.numel() == 0:
        return
    if summary is None:
        summary = w.sum()
    if not bool(torch.isfinite(summary).all()):
        check_finite(w, name)


def _check_number(value: Any, name: str, *, finite: bool = True) -> float:
    """``value`` as a Python float; non-numbers raise DTypeError, NaN (and inf if ``finite``) raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DTypeError(f"Expected `{name}` to be a real number, but got {type(value).__name__}.")
    number = float(value)
    if math.isnan(number) or (finite and math.isinf(number)):
        raise ValueRangeError(f"Expected `{name}` to be finite, but got {number}.")
    return number


def _check_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DTypeError(f"Expected `{name}` to be an int, but got {type(value).__name__}.")
    number = int(value)
    if number < low or (high is not None and number > high):
        span = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueRangeError(f"Expected `{name}` in {span}, but got {number}.")
    return number


def _rows_last(w: Tensor, dim: int) -> tuple[Tensor, tuple[int, ...]]:
    """``w`` with ``dim`` moved last and flattened to ``(R, L)``, plus the moved shape."""
    moved = w.movedim(dim, -1)
    return moved.reshape(math.prod(moved.shape[:-1]), moved.shape[-1]), tuple(moved.shape)


def _rows_back(rows: Tensor, moved_shape: tuple[int, ...], dim: int) -> Tensor:
    return rows.reshape(moved_shape).movedim(-1, dim)


def _rows_per_block(rows: Tensor) -> int:
    """How many rows of ``(R, N)`` make a cache-sized block on CPU (all of them elsewhere)."""
    if rows.device.type != "cpu":
        return max(1, rows.shape[0])
    return max(1, _BLOCK_BYTES // max(1, rows.shape[1] * rows.element_size()))



# --------------------------------------------------------------------------------------------
# normalize
# --------------------------------------------------------------------------------------------


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
        WeightError: unknown ``method``.
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
    if method not in ("sum", "max", "minmax", "zscore"):
        raise WeightError(f"Expected `method` to be one of 'sum', 'max', 'minmax', 'zscore', but got {method!r}.")
    w, origin = _read_weights(weights, "weights")
    dim = normalize_dim(dim, w.ndim)
    result, out_target = _out_buffer(out, w, origin)
    if w.numel() == 0:
        return _finish(result, origin, out, out_target)
    _normalize_into(w, result, method, dim, validate)
    return _finish(result, origin, out, out_target)


def _normalize_into(w: Tensor, out: Tensor, method: str, dim: int, validate: bool) -> None:
    """Normalize ``w`` along ``dim`` into ``out`` (which may be ``w``).

    The row statistics propagate NaN/inf, so they double as the finiteness check (run before
    anything is written). Every degenerate denominator is replaced by inf: finite / inf == 0, so
    such rows become zeros without a masking pass.
    """
    inf = torch.tensor(math.inf, dtype=w.dtype, device=w.device)
    if method == "sum":
        total = w.sum(dim, keepdim=True)
        if validate:
            _check_finite(w, "weights", total)
        torch.div(w, torch.where(total == 0, inf, total), out=out)
        return
    if method == "max":
        largest = torch.maximum(w.amax(dim, keepdim=True), w.amin(dim, keepdim=True).neg_())
        if validate:
            _check_finite(w, "weights", largest)
        torch.div(w, torch.where(largest == 0, inf, largest), out=out)
        return
    low = w.amin(dim, keepdim=True)
    span = w.amax(dim, keepdim=True).sub_(low)
    if validate:
        _check_finite(w, "weights", span)
    if method == "minmax":
        torch.sub(w, low, out=out).div_(torch.where(span == 0, inf, span))
        return
    # Two-pass population std (mean, then the norm of the centred row): accurate, and much faster
    # on CPU than torch.var_mean's Welford loop. A constant row (max == min) is degenerate even
    # where the computed mean is off by an ulp.
    centred = torch.sub(w, w.mean(dim, keepdim=True), out=out)
    std = torch.linalg.vector_norm(centred, dim=dim, keepdim=True).div_(math.sqrt(w.shape[dim]))
    centred.div_(torch.where((span == 0) | (std == 0), inf, std))


# --------------------------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightReport:
    """The outcome of :func:`validate_weight_matrix`: truthy when valid, else the first problem.

    For compatibility with the original ``(is_valid, message)`` tuple it also unpacks:
    ``ok, message = validate_weight_matrix(w)`` gives ``message=None`` when valid.

    Attributes:
        ok: True when every check passed.
        kind: ``None`` or the failed check: ``"empty"``, ``"nan"``, ``"inf"``, ``"shape"``,
            ``"negative"``, ``"normalization"``.
        index: the first offending element (``"nan"``, ``"inf"``, ``"negative"``), the first
            offending row (``"normalization"``: the index with ``dim`` removed), or the offending
            axis as a 1-tuple (``"shape"``; ``()`` for a 0-d input).
        value: the offending value (the element, the row sum, or the axis length).
        message: a human-readable description ("ok" when valid).
    """

    ok: bool
    kind: str | None = None
    index: tuple[int, ...] | None = None
    value: float | None = None
    message: str = "ok"

    def __bool__(self) -> bool:
        return self.ok

    def __iter__(self) -> Any:
        return iter((self.ok, None if self.ok else self.message))


def _failure(kind: str, index: tuple[int, ...] | None, value: float | None, message: str) -> WeightReport:
    return WeightReport(False, kind, index, value, message)


def validate_weight_matrix(
    weights: Array,
    num_neurons: int | None = None,
    allow_negative: bool = False,
    check_normalized: bool = True,
    tolerance: float = 1e-6,
    *,
    dim: int = -1,
) -> WeightReport:
    """Check a ``(*, V, N)`` weight batch and report the first problem found (never raises for numbers).

    Checks, in this order (the first failure is reported):

    1. ``"empty"``: the input has no elements;
    2. ``"nan"`` / 3. ``"inf"``: the first NaN / infinite element;
    4. ``"shape"``: a 0-d input (weights need a neuron axis), or, when ``num_neurons`` is given,
       ``weights.shape[dim] != num_neurons``. Any number of leading dimensions is accepted and
       the matrix need not be square: V validators and N neurons differ in real networks (the
       original required ``n x n`` for 2-D input and silently passed 3-D input);
    5. ``"negative"``: the first negative element, unless ``allow_negative``;
    6. ``"normalization"`` (if ``check_normalized``): every row along ``dim`` (every validator of
       every batch index) must sum to 1 within ``tolerance`` (sums accumulate in float64). An
       all-zero row fails this check.

    Args:
        weights: ``(*, N)`` weights.
        num_neurons: the expected length of the ``dim`` axis, or None.
        allow_negative: accept negative weights.
        check_normalized: require every row to sum to 1.
        tolerance: absolute tolerance of the row-sum check.
        dim: the neuron axis (default the last).

    Returns:
        A :class:`WeightReport`: truthy if valid; otherwise falsy with ``kind``, ``index``,
        ``value`` and ``message`` of the first problem.

    Raises:
        DTypeError: bool, string, object or complex input (not numbers at all).
        ShapeError: ``dim`` out of range for an input with at least one dimension.

    Example:
        >>> report = validate_weight_matrix(torch.tensor([[0.5, 0.5], [0.9, 0.3]]))
        >>> bool(report), report.kind, report.index
        (False, 'normalization', (1,))
        >>> report.message
        'Row (1,) sums to 1.2, expected 1 within 1e-06.'
    """
    tensor, _ = as_tensor(weights, "weights")
    check_float_or_int(tensor, "weights")
    if num_neurons is not None:
        num_neurons = _check_int(num_neurons, "num_neurons", 0)
    tolerance = _check_number(tolerance, "tolerance")
    if tensor.numel() == 0:
        return _failure("empty", None, None, f"Weight matrix is empty (shape {tuple(tensor.shape)}).")
    if tensor.is_floating_point():
        nan_at = first_index(torch.isnan(tensor))
        if nan_at is not None:
            return _failure("nan", nan_at, math.nan, f"Weight matrix contains NaN at index {nan_at}.")
        inf_at = first_index(torch.isinf(tensor))
        if inf_at is not None:
            value = float(tensor[inf_at])
            return _failure("inf", inf_at, value, f"Weight matrix contains {value} at index {inf_at}.")
    if tensor.ndim == 0:
        message = "Expected weights of shape (*, N) with at least one dimension, but got a 0-d value."
        return _failure("shape", (), None, message)
    dim = normalize_dim(dim, tensor.ndim)
    if num_neurons is not None and tensor.shape[dim] != num_neurons:
        return _failure(
            "shape",
            (dim,),
            float(tensor.shape[dim]),
            f"Expected {num_neurons} neurons along dim {dim}, but weights have shape {tuple(tensor.shape)}.",
        )
    if not allow_negative:
        negative_at = first_index(tensor < 0)
        if negative_at is not None:
            value = float(tensor[negative_at])
            return _failure("negative", negative_at, value, f"Weight matrix contains {value} at index {negative_at}.")
    if check_normalized:
        sums = tensor.sum(dim, dtype=torch.float64)
        bad_row = first_index((sums - 1).abs() > tolerance)
        if bad_row is not None:
            total = float(sums[bad_row])
            return _failure(
                "normalization",
                bad_row,
                total,
                f"Row {bad_row} sums to {total:.7g}, expected 1 within {tolerance:g}.",
            )
    return WeightReport(True)


def check_weights(
    weights: Array,
    num_neurons: int | None = None,
    allow_negative: bool = False,
    check_normalized: bool = True,
    tolerance: float = 1e-6,
    *,
    dim: int = -1,
) -> None:
    """Like :func:`validate_weight_matrix`, but raise on the first problem instead of reporting it.

    Raises:
        ShapeError: empty input, a 0-d input, or the wrong number of neurons.
        ValueRangeError: NaN, inf, or a negative weight (unless ``allow_negative``).
        WeightError: a row that does not sum to 1 within ``tolerance``.
        DTypeError: bool, string, object or complex input.

    Example:
        >>> check_weights(torch.tensor([[0.25, 0.75]]), num_neurons=2)
        >>> check_weights(torch.tensor([[0.25, 0.75]]), num_neurons=3)
        Traceback (most recent call last):
        ...
        mdt_tensor.errors.ShapeError: Expected 3 neurons along dim 1, but weights have shape (1, 2).
    """
    report = validate_weight_matrix(
        weights, num_neurons, allow_negative, check_normalized, tolerance, dim=dim
    )
    if report:
        return
    error = {"empty": ShapeError, "shape": ShapeError, "normalization": WeightError}.get(
        report.kind or "", ValueRangeError
    )
    raise error(report.message)


# --------------------------------------------------------------------------------------------
# clip, decay
# --------------------------------------------------------------------------------------------


def clip_weights(
    weights: Array,
    min_weight: float = 0.0,
    max_weight: float = 1.0,
    *,
    out: Array | None = None,
    validate: bool = True,
) -> Array:
    """Clamp every weight into ``[min_weight, max_weight]``.

    Args:
        weights: ``(*, N)`` weights.
        min_weight: lower bound (may be ``-inf``).
        max_weight: upper bound (may be ``inf``); must be ``>= min_weight``.
        out: optional buffer of the result's shape and dtype (may be ``weights`` itself).
        validate: check that ``weights`` is finite.

    Returns:
        ``(*, N)`` clipped weights (float32 for integer input).

    Raises:
        ValueRangeError: ``min_weight > max_weight``, a NaN bound, or non-finite weights.
        DTypeError: bool, string or object input, or a non-numeric bound.

    Example:
        >>> clip_weights(torch.tensor([-0.5, 0.25, 3.0]))
        tensor([0.0000, 0.2500, 1.0000])
    """
    low = _check_number(min_weight, "min_weight", finite=False)
    high = _check_number(max_weight, "max_weight", finite=False)
    if low > high:
        raise ValueRangeError(f"Expected `min_weight` <= `max_weight`, but got {low} > {high}.")
    w, origin = _read_weights(weights, "weights")
    result, out_target = _out_buffer(out, w, origin)
    _BlockChecker(w, validate).finite(w)
    torch.clamp(w, low, high, out=result)
    return _finish(result, origin, out, out_target)


def apply_weight_decay(
    weights: Array,
    decay_factor: float,
    steps: Array | float = 1,
    min_weight: float = 0.0,
    *,
    dim: int = -1,
    out: Array | None = None,
    validate: bool = True,
) -> Array:
    """Multiplicative decay: ``weights * decay_factor ** steps``, with a floor for surviving weights.

    ``steps`` is a number or a ``(*)`` tensor of per-row ages (the weights' shape with ``dim``
    removed, or anything that broadcasts to it), applied along ``dim``.

    The floor: a weight that was non-zero and decays below ``min_weight`` is **raised to**
    ``min_weight``, so a weight that is present never falls below the floor; a zero weight stays
    exactly zero (the original turned zeros into ``min_weight``).

    Args:
        weights: ``(*, N)`` non-negative weights.
        decay_factor: the factor per step, in ``[0, 1]`` (``0 ** 0 == 1``).
        steps: number of steps, ``>= 0``; a number or a ``(*)`` array of per-row steps (may be
            fractional).
        min_weight: the floor, ``>= 0``.
        dim: the neuron axis along which ``steps`` is broadcast.
        out: optional buffer of the result's shape and dtype (may be ``weights`` itself).
        validate: check that ``weights`` and ``steps`` are finite and non-negative.

    Returns:
        ``(*, N)`` decayed weights (float32 for integer input).

    Raises:
        ValueRangeError: ``decay_factor`` outside ``[0, 1]``, negative or non-finite
            ``min_weight``, negative/NaN/inf weights or steps (``validate=True``).
        ShapeError: ``steps`` does not broadcast to the row shape; bad ``dim``.
        DTypeError: bool, string or object input.

    Example:
        >>> apply_weight_decay(torch.tensor([[0.8, 0.0, 0.1]]), 0.5, steps=2, min_weight=0.05)
        tensor([[0.2000, 0.0000, 0.0500]])
        >>> apply_weight_decay(torch.ones(2, 2), 0.5, steps=torch.tensor([0, 1]))
        tensor([[1.0000, 1.0000],
                [0.5000, 0.5000]])
    """
    factor = _check_number(decay_factor, "decay_factor")
    if not 0.0 <= factor <= 1.0:
        raise ValueRangeError(f"Expected `decay_factor` in [0, 1], but got {factor}.")
    floor = _check_number(min_weight, "min_weight")
    if floor < 0:
        raise ValueRangeError(f"Expected `min_weight` >= 0, but got {floor}.")
    w, origin = _read_weights(weights, "weights")
    dim = normalize_dim(dim, w.ndim)
    result, out_target = _out_buffer(out, w, origin)
    checker = _BlockChecker(w, validate)
    checker.finite(w)
    checker.non_negative(w)
    if isinstance(steps, (int, float, np.integer, np.floating)) and not isinstance(steps, bool):
        count = _check_number(steps, "steps")
        if count < 0:
            raise ValueRangeError(f"Expected `steps` >= 0, but got {count}.")
        scale: float | Tensor = factor**count
    else:
        scale = _decay_scale(steps, factor, w, dim, validate)
    if floor > 0:
        # max(w * factor ** steps, floor * sign(w)): the floor for w > 0, and zero stays zero
        # (w >= 0). Arithmetic, not a boolean mask (torch's masked ops are several times slower on
        # CPU); sign(w) is taken before `result`, which may be `w` itself, is written.
        lifted = torch.sign(w, out=_empty_like(w)).mul_(floor)
        torch.maximum(torch.mul(w, scale, out=result), lifted, out=result)
    else:
        torch.mul(w, scale, out=result)
    return _finish(result, origin, out, out_target)


class _BlockChecker:
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


def _decay_scale(steps: Array, factor: float, w: Tensor, dim: int, validate: bool) -> Tensor:
    """``factor ** steps`` as a tensor that broadcasts against ``w`` along ``dim``."""
    count, _ = as_tensor(steps, "steps")
    check_float_or_int(count, "steps")
    check_same_device(weights=w, steps=count)
    rows_shape = tuple(w.shape[:dim] + w.shape[dim + 1 :])
    try:
        fits = torch.broadcast_shapes(tuple(count.shape), rows_shape) == torch.Size(rows_shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise ShapeError(
            f"Expected `steps` to broadcast to the row shape {rows_shape} (weights {tuple(w.shape)} "
            f"without dim {dim}), but got shape {tuple(count.shape)}."
        )
    count = count.to(torch.float64)
    if validate:
        check_finite(count, "steps")
        check_non_negative(count, "steps")
    scale = torch.pow(torch.tensor(factor, dtype=torch.float64, device=w.device), count).to(w.dtype)
    return scale.expand(rows_shape).unsqueeze(dim)


# --------------------------------------------------------------------------------------------
# smoothing
# --------------------------------------------------------------------------------------------


def smooth_weights(
    weights: Array,
    window_size: int = 3,
    method: SmoothMethod = "moving_average",
    *,
    dim: int = -1,
    validate: bool = True,
) -> Array:
    """Smooth every row of ``weights`` along ``dim`` (e.g. over time or over neurons).

    * ``"moving_average"``: a centred window ``[i - h, i + h]`` with ``h = window_size // 2``,
      **shrinking at the edges**: near an edge the mean is taken over the positions that exist
      (no padding), so ``[0.1, 0.5, 0.2, 0.8, 0.3]`` with window 3 gives
      ``[0.3, 0.2667, 0.5, 0.4333, 0.55]``. An **even** window behaves like the next odd one
      (window 2 averages 3 positions), as in the original.
    * ``"exponential"``: ``s_0 = w_0``, ``s_i = a * w_i + (1 - a) * s_{i-1}`` with
      ``a = 2 / (window_size + 1)``. Computed in float64 as a blocked weighted cumulative sum (no
      loop over positions, stable for any length); the result agrees with the sequential
      recurrence to float64 rounding, except that contributions older than a whole block, below
      ``2**-200`` times the row's largest ``|w|``, are dropped.

    Integer input is promoted to float32 (never truncated). An empty input gives an empty output.

    Args:
        weights: ``(*, N)`` weights.
        window_size: ``>= 1`` (1 returns the input values).
        method: ``"moving_average"`` or ``"exponential"``.
        dim: the axis to smooth along.
        validate: check that ``weights`` is finite.

    Returns:
        ``(*, N)`` smoothed weights, same kind as the input (float32 for integers).

    Raises:
        WeightError: unknown ``method``.
        ValueRangeError: ``window_size < 1``; NaN or inf in ``weights``.
        ShapeError / DTypeError: bad ``dim``, 0-d input, bool/string input.

    Example:
        >>> smooth_weights(torch.tensor([0.1, 0.5, 0.2, 0.8, 0.3], dtype=torch.float64))
        tensor([0.3000, 0.2667, 0.5000, 0.4333, 0.5500], dtype=torch.float64)
        >>> smooth_weights(torch.tensor([0.0, 1.0, 1.0]), method="exponential")
        tensor([0.0000, 0.5000, 0.7500])
    """
    if method not in ("moving_average", "exponential"):
        raise WeightError(f"Expected `method` to be 'moving_average' or 'exponential', but got {method!r}.")
    window = _check_int(window_size, "window_size", 1)
    w, origin = _read_weights(weights, "weights")
    dim = normalize_dim(dim, w.ndim)
    if validate:
        _check_finite(w, "weights")
    if w.numel() == 0 or window == 1:
        return origin.wrap(origin.restore_float(w.clone()))
    rows, moved_shape = _rows_last(w, dim)
    if method == "moving_average":
        smoothed = _moving_average_last(rows, window // 2)
    else:
        smoothed = _ema_last(rows, 2.0 / (window + 1))
    return origin.wrap(origin.restore_float(_rows_back(smoothed, moved_shape, dim)))


def _moving_average_last(rows: Tensor, half: int) -> Tensor:
    """Centred moving average of width ``2 * half + 1`` along the last axis of ``(R, L)``, shrinking at edges."""
    width = 2 * half + 1
    if width <= _DIRECT_WINDOW_MAX:
        # avg_pool1d with count_include_pad=False divides by the number of real positions.
        return F.avg_pool1d(rows.unsqueeze(1), width, stride=1, padding=half, count_include_pad=False).squeeze(1)
    # Wide windows: O(L) differences of a float64 prefix sum.
    length = rows.shape[-1]
    prefix = torch.zeros(rows.shape[0], length + 1, dtype=torch.float64, device=rows.device)
    torch.cumsum(rows, -1, dtype=torch.float64, out=prefix[:, 1:])
    position = torch.arange(length, device=rows.device)
    upper = (position + half + 1).clamp_(max=length)
    lower = (position - half).clamp_(min=0)
    sums = prefix[:, upper] - prefix[:, lower]
    return sums.div_((upper - lower).to(torch.float64)).to(rows.dtype)


def _ema_last(rows: Tensor, alpha: float) -> Tensor:
    """EMA along the last axis of ``(R, L)``: ``s_0 = x_0``, ``s_i = alpha x_i + beta s_{i-1}``.

    With ``s_{-1} := x_0`` the recurrence holds from ``i = 0``. The row is cut into blocks of
    ``C`` positions with ``beta ** C <= 2**-200``. Inside a block starting at ``p``:

        s_{p+i} = alpha * beta**i * sum_{j<=i} beta**-j x_{p+j}  +  beta**(i+1) * s_{p-1}

    The weights ``beta**-j`` stay below ``2**200 / beta``, so after scaling each row by a power of
    two to ``max |x| <= 1`` nothing overflows in float64. ``s_{p-1}`` is taken as the previous
    block's own (zero-start) sum; what that drops is ``beta**C * s_{p-C-1}``, at most
    ``2**-200`` times the row's largest ``|x|``.
    """
    beta = 1.0 - alpha
    num_rows, length = rows.shape
    device = rows.device
    block = min(length, max(1, math.ceil(_EMA_BLOCK_BITS * math.log(2) / -math.log(beta))))
    num_blocks = -(-length // block)
    offset = torch.arange(block, dtype=torch.float64, device=device)
    beta_t = torch.tensor(beta, dtype=torch.float64, device=device)
    growth = torch.pow(beta_t, -offset)  # beta ** -j
    coefficient = torch.pow(beta_t, offset).mul_(alpha)  # alpha beta ** i
    carry = beta**block
    result = _empty((num_rows, length), rows.dtype, device)
    step = max(1, _rows_per_block(rows) // 2)  # the float64 buffer is twice as wide
    buffer = torch.empty(min(step, num_rows), num_blocks * block, dtype=torch.float64, device=device)
    buffer[:, length:].zero_()  # causal: padding at the end changes nothing before it
    for first in range(0, num_rows, step):
        count = min(step, num_rows - first)
        work = buffer[:count]
        x = work[:, :length].copy_(rows[first : first + count])
        scale = None
        if rows.dtype == torch.float64:
            # Exact power-of-two scaling per row to max |x| <= 1, so beta**-j * x cannot overflow
            # (float32 and promoted inputs are below 2**128: no scaling needed).
            largest = torch.maximum(x.amax(-1, keepdim=True), x.amin(-1, keepdim=True).neg_())
            scale = torch.ldexp(torch.ones_like(largest), -torch.frexp(largest).exponent)
            x.mul_(scale)
        blocks = work.view(count, num_blocks, block).mul_(growth)
        # c_i = (beta / alpha) s_start + sum_{j<=i} beta**-j x_j, then s_i = alpha beta**i c_i.
        # s_start: x_0 for the first block (so its first element becomes x_0 / alpha), else the
        # previous block's last value without its own start: alpha beta**(C-1) * (its sum).
        previous = blocks[:, :-1].sum(-1)
        blocks[:, 0, 0].div_(alpha)
        blocks[:, 1:, 0].add_(previous.mul_(carry))
        blocks.cumsum_(-1).mul_(coefficient)
        if scale is not None:
            x.div_(scale)
        result[first : first + count].copy_(x)
    return result


# --------------------------------------------------------------------------------------------
# top-k, entropy
# --------------------------------------------------------------------------------------------


def top_k_weights(
    weights: Array,
    k: int,
    *,
    dim: int = -1,
    other_value: float = 0.0,
    validate: bool = True,
) -> Array:
    """Keep the ``k`` largest weights of every row along ``dim``; set the others to ``other_value``.

    Ties are broken deterministically: among equal values the **lower index** is kept (on every
    device). ``k = 0`` keeps nothing, ``k = N`` keeps everything. ``±inf`` are ordinary values.

    Args:
        weights: ``(*, N)`` weights.
        k: how many to keep per row, ``0 <= k <= N``.
        dim: the axis to select along.
        other_value: the value written where a weight is not kept.
        validate: check ``weights`` for NaN (NaN has no rank). Without it NaN rows are unspecified.

    Returns:
        ``(*, N)`` weights with all but the top ``k`` per row replaced (float32 for integers).

    Raises:
        ValueRangeError: ``k`` outside ``0..N``; NaN in ``weights``.
        ShapeError / DTypeError: bad ``dim``, 0-d input, bool/string input, non-int ``k``.

    Example:
        >>> top_k_weights(torch.tensor([[0.5, 1.0, 0.5, 0.5, 0.2]]), 2)
        tensor([[0.5000, 1.0000, 0.0000, 0.0000, 0.0000]])
    """
    w, origin = _read_weights(weights, "weights")
    dim = normalize_dim(dim, w.ndim)
    size = w.shape[dim]
    k = _check_int(k, "k", 0, size)
    fill = _check_number(other_value, "other_value", finite=False)
    if validate and w.is_floating_point() and w.numel() and bool(torch.isnan(w.sum())):
        check_not_nan(w, "weights")
    if k == size or w.numel() == 0:
        return origin.wrap(origin.restore_float(w.clone()))
    rows, moved_shape = _rows_last(w, dim)
    result = _empty_like(rows).fill_(fill)
    if k > 0:
        # The k + 1 largest (any order) hold every element above t = their minimum. Scatter them
        # with the copies of t replaced by `fill`: rows where t occurs once are then done (k kept);
        # rows with a tie at the boundary still need `free` copies of t, at the lowest indices.
        values, indices = _top_k_plus_one(rows, k)
        threshold = values.amin(1, keepdim=True)
        at_threshold = values == threshold
        result.scatter_(1, indices, values.masked_fill(at_threshold, fill))
        free = at_threshold.sum(1) - 1  # k minus the number above t
        if bool((free > 0).any()):
            _place_ties(rows, result, free, threshold)
    return origin.wrap(origin.restore_float(_rows_back(result, moved_shape, dim)))


def _top_k_plus_one(rows: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k + 1`` largest values of every row of ``(R, N)`` (in any order) and their indices.

    For long rows a two-stage selection replaces one ``torch.topk`` over N (slow on CPU): split
    each row into G strided groups of ``_TOPK_GROUP`` elements, keep the ``k + 1`` groups with
    the largest maxima (L is the smallest of those maxima), run topk over their members plus
    the few leftover tail elements. Every element outside the kept groups is at most L, and the
    kept groups hold at least ``k + 1`` elements >= L, so the ``k + 1`` largest *values* are
    found exactly, and every element strictly above the (k+1)-th value is a candidate, so the
    indices of those are exact too (copies of the (k+1)-th value are placed by the caller).
    """
    num_rows, size = rows.shape
    keep = k + 1
    width = _TOPK_GROUP
    groups = size // width
    if groups < 4 * keep:
        return torch.topk(rows, keep, dim=1, largest=True, sorted=False)
    body = rows[:, : width * groups].unflatten(1, (width, groups))  # body[r, m, g] = rows[r, m * G + g]
    _, best = torch.topk(body.amax(1), keep, dim=1, largest=True, sorted=False)  # (R, k+1)
    members = best.unsqueeze(1).expand(num_rows, width, keep)
    candidates = body.gather(2, members).reshape(num_rows, width * keep)
    offsets = torch.arange(width, device=rows.device).mul_(groups).view(1, width, 1)
    positions = (members + offsets).reshape(num_rows, width * keep)
    tail = size - width * groups
    if tail:
        candidates = torch.cat([candidates, rows[:, width * groups :]], 1)
        tail_positions = torch.arange(width * groups, size, device=rows.device).expand(num_rows, tail)
        positions = torch.cat([positions, tail_positions], 1)
    values, chosen = torch.topk(candidates, keep, dim=1, largest=True, sorted=False)
    return values, positions.gather(1, chosen)


def _place_ties(rows: Tensor, result: Tensor, free: Tensor, threshold: Tensor) -> None:
    """Write ``t`` (``threshold``) at the first ``free`` positions holding ``t`` of every row with ``free > 0``.

    The copies are ranked by a running count along the row over the shortest column prefix,
    widened 4x at a time, that holds enough copies in every such row; all those rows are handled
    by one set of batched calls (per-block loops and ``nonzero`` bookkeeping were several times
    slower).
    """
    tied = free > 0
    every_row = bool(tied.all())
    which = torch.arange(rows.shape[0], device=rows.device) if every_row else tied.nonzero().squeeze(1)
    threshold, free = threshold[which], free[which]  # (A, 1), (A,)

    def prefix_equal(width: int) -> Tensor:
        prefix = rows[:, :width] if every_row else rows[which, :width]
        return prefix == threshold

    width = min(rows.shape[1], 4 * int(free.max()))
    equal = prefix_equal(width)
    while width < rows.shape[1] and bool((equal.sum(1) < free).any()):
        width = min(rows.shape[1], 4 * width)
        equal = prefix_equal(width)
    keep = equal & (torch.cumsum(equal, 1, dtype=torch.int32) <= free.unsqueeze(1))
    if every_row:
        result[:, :width] = torch.where(keep, threshold, result[:, :width])
    else:
        result[which, :width] = torch.where(keep, threshold, result[which, :width])


def _log2_(t: Tensor) -> Tensor:
    """``t.log2_()`` for positive finite ``t``; on CPU through numpy's SIMD ufunc (see module docstring)."""
    if t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) and t.is_contiguous():
        array = t.numpy()
        np.log2(array, out=array)
        return t
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
    w, origin = _read_weights(weights, "weights")
    dim = normalize_dim(dim, w.ndim)
    checker = _BlockChecker(w, validate)
    # H = ln 2 (log2 S - sum(x log2 x) / S) with x = max(w, 0), S = sum(x). log2(max(w, tiny)) is
    # log2(x) for every normal positive x and finite elsewhere, so x * log2(...) is 0 where x is 0 (this
    # arithmetic form is several times faster on CPU than xlogy/entr). The passes run block by
    # block of rows so that each block is read from memory once (see _rows_per_block).
    rows, moved_shape = _rows_last(w, dim)
    num_rows, size = rows.shape
    total = torch.empty(num_rows, dtype=w.dtype, device=w.device)
    weighted_log = torch.empty(num_rows, dtype=w.dtype, device=w.device)
    step = _rows_per_block(rows)
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
        torch.sum(logs.mul_(positive), -1, out=weighted_log[start : start + count])  # (bmm is ~4x slower here)
    total = total.reshape(moved_shape[:-1])
    weighted_log = weighted_log.reshape(moved_shape[:-1])
    safe_total = torch.where(total > 0, total, torch.ones_like(total))
    entropy = (safe_total.log2() - weighted_log / safe_total).mul_(math.log(2)).clamp_min_(0)
    return origin.wrap(origin.restore_float(entropy))


# --------------------------------------------------------------------------------------------
# sparse <-> dense
# --------------------------------------------------------------------------------------------


def sparse_to_dense_weights(
    sparse_weights: Any,
    num_neurons: int | None = None,
    default_weight: float = 0.0,
    *,
    shape: tuple[int, ...] | None = None,
    validate: bool = True,
) -> Array:
    """Build a dense weight tensor from sparse entries.

    Accepted forms:

    * ``(indices, values)``: COO arrays, ``indices`` an integer ``(ndim, nnz)`` array (``(2, nnz)``
      for a matrix) and ``values`` an ``(nnz,)`` array. The result is ``values``' array kind and
      float dtype (float32 for integer values). Duplicate positions are an error.
    * a torch sparse COO tensor: its shape; duplicates are summed (torch's coalesce semantics).
    * the original's dict ``{(i, j): weight}``: a float64 torch tensor.

    The shape is ``shape`` if given, else ``(num_neurons,) * ndim`` (``n x n`` for a matrix, as
    in the original); a torch sparse tensor brings its own. Positions not listed hold
    ``default_weight``.

    Args:
        sparse_weights: the entries, in one of the forms above.
        num_neurons: the size of every axis when ``shape`` is not given (and, with a sparse
            tensor, a check of its last axis).
        default_weight: the value of unlisted positions.
        shape: the dense shape.
        validate: check that the values are finite.

    Returns:
        The dense ``shape`` tensor / array.

    Raises:
        WeightError: an index out of range (negative ones included) or a duplicate position.
        ShapeError: malformed ``indices``/``values`` shapes, or no way to know the shape.
        DTypeError: non-integer indices, non-numeric values.
        ValueRangeError: NaN or inf values, non-finite ``default_weight``.

    Example:
        >>> sparse_to_dense_weights({(0, 1): 0.5, (1, 0): 1.0}, num_neurons=2)
        tensor([[0.0000, 0.5000],
                [1.0000, 0.0000]], dtype=torch.float64)
        >>> idx = torch.tensor([[0, 1], [2, 0]])
        >>> sparse_to_dense_weights((idx, torch.tensor([0.25, 0.75])), shape=(2, 3))
        tensor([[0.0000, 0.0000, 0.2500],
                [0.7500, 0.0000, 0.0000]])
    """
    default = _check_number(default_weight, "default_weight")
    if num_neurons is not None:
        num_neurons = _check_int(num_neurons, "num_neurons", 0)
    if isinstance(sparse_weights, Tensor) and sparse_weights.layout == torch.sparse_coo:
        return _dense_from_torch_sparse(sparse_weights, num_neurons, default, shape, validate)
    if isinstance(sparse_weights, dict):
        indices, values, origin = _coo_from_dict(sparse_weights)
    elif isinstance(sparse_weights, (tuple, list)) and len(sparse_weights) == 2:
        indices, _ = as_tensor(sparse_weights[0], "indices")
        values, origin = _read_weights(sparse_weights[1], "values")
    else:
        raise DTypeError(
            "Expected `sparse_weights` to be (indices, values), a torch sparse COO tensor or a "
            f"{{(i, j): weight}} dict, but got {type(sparse_weights).__name__}."
        )
    if indices.dtype.is_floating_point or indices.dtype == torch.bool:
        raise DTypeError(f"Expected `indices` to hold integers, but got dtype {indices.dtype}.")
    if indices.ndim != 2:
        raise ShapeError(f"Expected `indices` to have shape (ndim, nnz), but got {tuple(indices.shape)}.")
    if values.ndim != 1 or values.shape[0] != indices.shape[1]:
        raise ShapeError(
            f"Expected `values` to have shape ({indices.shape[1]},) to match indices {tuple(indices.shape)}, "
            f"but got {tuple(values.shape)}."
        )
    check_same_device(indices=indices, values=values)
    dense_shape = _dense_shape(shape, num_neurons, indices.shape[0])
    if validate:
        check_finite(values, "values")
    indices = indices.to(torch.int64)
    _check_coo_indices(indices, dense_shape)
    dense = torch.full(dense_shape, default, dtype=values.dtype, device=values.device)
    dense[tuple(indices)] = values
    return origin.wrap(origin.restore_float(dense))


def _coo_from_dict(entries: dict) -> tuple[Tensor, Tensor, ArrayOrigin]:
    keys = list(entries)
    if not all(isinstance(key, tuple) for key in keys):
        raise DTypeError("Expected the keys of `sparse_weights` to be index tuples such as (i, j).")
    ndim = len(keys[0]) if keys else 2
    if any(len(key) != ndim for key in keys):
        raise ShapeError(f"Expected every key of `sparse_weights` to have {ndim} indices.")
    index_array = np.array(keys, dtype=np.int64).reshape(len(keys), ndim).T
    indices, _ = as_tensor(np.ascontiguousarray(index_array), "indices")
    values, origin = _read_weights(np.array([entries[key] for key in keys], dtype=np.float64), "values")
    return indices, values, ArrayOrigin("python", origin.dtype)


def _dense_shape(shape: tuple[int, ...] | None, num_neurons: int | None, ndim: int) -> tuple[int, ...]:
    if shape is not None:
        dense_shape = tuple(_check_int(size, "shape", 0) for size in shape)
        if len(dense_shape) != ndim:
            raise ShapeError(f"Expected `shape` to have {ndim} entries (the rows of `indices`), but got {dense_shape}.")
        if num_neurons is not None and dense_shape[-1] != num_neurons:
            raise ShapeError(f"Expected `shape[-1]` == num_neurons ({num_neurons}), but got {dense_shape}.")
        return dense_shape
    if num_neurons is None:
        raise ShapeError("Expected `shape` or `num_neurons` to size the dense result, but got neither.")
    return (num_neurons,) * ndim


def _check_coo_indices(indices: Tensor, dense_shape: tuple[int, ...]) -> None:
    """Raise WeightError for the first entry whose index is negative or out of range, or repeated."""
    if indices.shape[1] == 0:
        return
    limits = torch.tensor(dense_shape, dtype=torch.int64, device=indices.device).unsqueeze(1)
    bad = first_index(((indices < 0) | (indices >= limits)).any(0))
    if bad is not None:
        entry = bad[0]
        position = tuple(int(i) for i in indices[:, entry])
        raise WeightError(f"Index {position} of entry {entry} is out of range for shape {dense_shape}.")
    flat = torch.zeros(indices.shape[1], dtype=torch.int64, device=indices.device)
    for axis, size in enumerate(dense_shape):  # loop over axes (ndim), not over entries
        flat = flat * size + indices[axis]
    unique, counts = torch.unique(flat, return_counts=True)
    if bool((counts > 1).any()):
        repeated = unique[counts > 1][0]
        entry = int((flat == repeated).nonzero()[1, 0])
        position = tuple(int(i) for i in indices[:, entry])
        raise WeightError(f"Index {position} appears more than once (again at entry {entry}).")


def _dense_from_torch_sparse(
    sparse: Tensor, num_neurons: int | None, default: float, shape: tuple[int, ...] | None, validate: bool
) -> Tensor:
    if shape is not None and tuple(shape) != tuple(sparse.shape):
        raise ShapeError(f"Expected `shape` {tuple(shape)} to equal the sparse tensor's {tuple(sparse.shape)}.")
    if sparse.ndim == 0 or (num_neurons is not None and sparse.shape[-1] != num_neurons):
        raise ShapeError(
            f"Expected a sparse tensor with {num_neurons} neurons on its last axis, but got {tuple(sparse.shape)}."
        )
    if sparse.dtype == torch.bool:
        raise DTypeError("Expected `sparse_weights` to hold numbers, but got dtype torch.bool.")
    sparse = sparse.coalesce()
    values = sparse.values().to(float_compute_dtype(sparse.dtype))
    if validate:
        check_finite(values, "values")
    dense = torch.full(tuple(sparse.shape), default, dtype=values.dtype, device=values.device)
    dense[tuple(sparse.indices())] = values
    return dense.to(sparse.dtype) if sparse.dtype in (torch.float16, torch.bfloat16) else dense


def dense_to_sparse_weights(
    weights: Array,
    threshold: float = 0.0,
    *,
    format: SparseFormat = "coo",
    validate: bool = True,
) -> Any:
    """The entries of ``weights`` **strictly greater than** ``threshold``, in a sparse form.

    With the default threshold 0, zeros and negative weights are dropped. Entries come in
    row-major order.

    Args:
        weights: ``(*, N)`` weights, at least 1-D.
        threshold: keep entries ``> threshold``.
        format: ``"coo"``: ``(indices, values)`` with ``indices`` int64 ``(ndim, nnz)`` and
            ``values`` ``(nnz,)``, both the caller's array kind; ``"torch"``: a coalesced torch
            sparse COO tensor (on the input's device, also for numpy/CuPy input); ``"dict"``:
            the original's ``{(i, j): float}`` (index tuples of length ndim).
        validate: check that ``weights`` is finite.

    Returns:
        The kept entries in the requested form.

    Raises:
        ValueRangeError: NaN threshold; NaN or inf in ``weights``.
        ShapeError: 0-d input. WeightError: unknown ``format``. DTypeError: bool/string input.

    Example:
        >>> dense_to_sparse_weights(torch.tensor([[0.0, 0.5], [0.25, -1.0]]), format="dict")
        {(0, 1): 0.5, (1, 0): 0.25}
        >>> indices, values = dense_to_sparse_weights(np.array([[0.0, 0.5], [0.25, 0.0]]))
        >>> indices.tolist(), values.tolist()
        ([[0, 1], [1, 0]], [0.5, 0.25])
    """
    if format not in ("coo", "torch", "dict"):
        raise WeightError(f"Expected `format` to be 'coo', 'torch' or 'dict', but got {format!r}.")
    cut = _check_number(threshold, "threshold", finite=False)
    w, origin = _read_weights(weights, "weights")
    if w.ndim == 0:
        raise ShapeError("Expected `weights` to have shape (*, N) with at least one dimension, but got a 0-d value.")
    if validate:
        _check_finite(w, "weights")
    indices = (w > cut).nonzero().T.contiguous()
    values = w[tuple(indices)]
    if format == "dict":
        return {tuple(key): value for key, value in zip(indices.T.tolist(), values.double().tolist(), strict=True)}
    values = origin.restore_float(values)
    if format == "torch":
        return torch.sparse_coo_tensor(indices, values, tuple(w.shape), is_coalesced=True, check_invariants=False)
    return origin.wrap(indices), origin.wrap(values)
