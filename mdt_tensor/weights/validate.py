"""``validate_weight_matrix`` (a report of the first problem) and ``check_weights`` (raise it).

One ordered list of checks (empty, NaN, inf, shape, sign, row sums) serves both: the report
names the failed check, the element or row and its value; ``check_weights`` maps it to an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._array import Array, as_tensor
from .._validation import check_float_or_int, check_int, check_number, first_index, normalize_dim
from ..errors import ShapeError, ValueRangeError, WeightError

__all__ = ["WeightReport", "validate_weight_matrix", "check_weights"]


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
        num_neurons = check_int(num_neurons, "num_neurons", low=0)
    tolerance = check_number(tolerance, "tolerance")
    if tensor.numel() == 0:
        return _failure("empty", None, None, f"Weight matrix is empty (shape {tuple(tensor.shape)}).")
    checks = (
        lambda: _first_non_finite(tensor),
        lambda: _shape_problem(tensor, num_neurons, dim),
        lambda: None if allow_negative else _first_element(tensor, "negative", tensor < 0),
        lambda: _row_sum_problem(tensor, normalize_dim(dim, tensor.ndim), tolerance) if check_normalized else None,
    )
    for check in checks:
        report = check()
        if report is not None:
            return report
    return WeightReport(True)


def _first_element(tensor: Tensor, kind: str, mask: Tensor) -> WeightReport | None:
    """The report for the first element where ``mask`` holds (``kind``: nan, inf, negative), or None."""
    at = first_index(mask)
    if at is None:
        return None
    value = math.nan if kind == "nan" else float(tensor[at])
    shown = "NaN" if kind == "nan" else str(value)
    return _failure(kind, at, value, f"Weight matrix contains {shown} at index {at}.")


def _first_non_finite(tensor: Tensor) -> WeightReport | None:
    if not tensor.is_floating_point():
        return None
    nan = _first_element(tensor, "nan", torch.isnan(tensor))
    return nan if nan is not None else _first_element(tensor, "inf", torch.isinf(tensor))


def _shape_problem(tensor: Tensor, num_neurons: int | None, dim: int) -> WeightReport | None:
    if tensor.ndim == 0:
        message = "Expected weights of shape (*, N) with at least one dimension, but got a 0-d value."
        return _failure("shape", (), None, message)
    dim = normalize_dim(dim, tensor.ndim)
    if num_neurons is None or tensor.shape[dim] == num_neurons:
        return None
    return _failure(
        "shape",
        (dim,),
        float(tensor.shape[dim]),
        f"Expected {num_neurons} neurons along dim {dim}, but weights have shape {tuple(tensor.shape)}.",
    )


def _row_sum_problem(tensor: Tensor, dim: int, tolerance: float) -> WeightReport | None:
    sums = tensor.sum(dim, dtype=torch.float64)
    bad_row = first_index((sums - 1).abs() > tolerance)
    if bad_row is None:
        return None
    total = float(sums[bad_row])
    message = f"Row {bad_row} sums to {total:.7g}, expected 1 within {tolerance:g}."
    return _failure("normalization", bad_row, total, message)


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
