"""Bad input to the weight operations: clear errors from the error family, or defined results.

Each function is checked for NaN, inf, negative values (where they matter), empty input, a 0-d
input, wrong dtypes (bool, strings, objects, complex) and a wrong ``dim``, plus its own arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import mdt_tensor as mt

#: name -> a call taking (weights, dim).
OPS: dict[str, Callable[[Any, int], Any]] = {
    "normalize_sum": lambda w, dim: mt.normalize_weights(w, dim=dim),
    "normalize_max": lambda w, dim: mt.normalize_weights(w, "max", dim=dim),
    "normalize_minmax": lambda w, dim: mt.normalize_weights(w, "minmax", dim=dim),
    "normalize_zscore": lambda w, dim: mt.normalize_weights(w, "zscore", dim=dim),
    "clip": lambda w, dim: mt.clip_weights(w),
    "decay": lambda w, dim: mt.apply_weight_decay(w, 0.5, dim=dim),
    "decay_per_row": lambda w, dim: mt.apply_weight_decay(w, 0.5, steps=np.ones(()), min_weight=0.1, dim=dim),
    "moving_average": lambda w, dim: mt.smooth_weights(w, 3, dim=dim),
    "exponential": lambda w, dim: mt.smooth_weights(w, 3, "exponential", dim=dim),
    "top_k": lambda w, dim: mt.top_k_weights(w, 1, dim=dim),
    "entropy": lambda w, dim: mt.compute_weight_entropy(w, dim=dim),
    "dense_to_sparse": lambda w, dim: mt.dense_to_sparse_weights(w),
}
#: Ops whose answer does not depend on an axis (no `dim` argument).
NO_DIM = {"clip", "dense_to_sparse"}
#: Ops for which inf is an ordinary value (top-k ranks it) rather than an error.
INF_ALLOWED = {"top_k"}


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_nan_is_an_error_naming_the_first_index(name: str, kind: str) -> None:
    w = np.full((2, 3, 4), 0.25)
    w[1, 2, 3] = np.nan
    w[1, 2, 1] = np.nan
    with pytest.raises(mt.ValueRangeError, match=r"`weights`.*nan at index \(1, 2, 1\)"):
        OPS[name](w if kind == "numpy" else torch.from_numpy(w), -1)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_inf_is_an_error_naming_the_first_index(name: str, value: float) -> None:
    w = np.full((2, 3), 0.25, dtype=np.float32)
    w[1, 1] = value
    if name in INF_ALLOWED:
        assert np.isinf(OPS[name](w, -1)).sum() == (value > 0)  # the inf is the row's largest, or dropped
        return
    with pytest.raises(mt.ValueRangeError, match=r"`weights` to be finite, but found -?inf at index \(1, 1\)"):
        OPS[name](w, -1)


def test_sums_that_overflow_are_not_mistaken_for_inf() -> None:
    w = np.full((2, 4), 3e38, dtype=np.float32)  # finite, but the row sums overflow float32
    assert np.isfinite(mt.clip_weights(w, 0, 1)).all()
    assert np.isfinite(mt.normalize_weights(w, "max")).all()


@pytest.mark.parametrize("name", ["decay", "decay_per_row"])
def test_negative_weights_are_an_error_for_decay(name: str) -> None:
    w = np.array([[0.5, 0.25], [0.1, -0.2]])
    with pytest.raises(mt.ValueRangeError, match=r"non-negative, but found -0.2 at index \(1, 1\)"):
        OPS[name](w, -1)


@pytest.mark.parametrize("name", sorted(set(OPS) - {"decay", "decay_per_row"}))
def test_negative_weights_are_accepted_elsewhere(name: str) -> None:
    OPS[name](np.array([[0.5, -0.25], [-0.1, 0.2]]), -1)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("shape", [(0,), (0, 4), (3, 0), (2, 0, 3)])
def test_empty_input_gives_an_empty_result(name: str, shape: tuple[int, ...]) -> None:
    if name == "top_k" and shape[-1] == 0:
        result = mt.top_k_weights(np.zeros(shape), 0)
    else:
        result = OPS[name](np.zeros(shape), -1)
    if name == "dense_to_sparse":
        indices, values = result
        assert indices.shape == (len(shape), 0) and values.shape == (0,)
    elif name == "entropy":
        assert result.shape == shape[:-1] and not result.any()
    else:
        assert result.shape == shape


def test_empty_report_and_check() -> None:
    assert mt.validate_weight_matrix(np.zeros((3, 0))).kind == "empty"
    with pytest.raises(mt.ShapeError):
        mt.check_weights(np.zeros((0,)))


@pytest.mark.parametrize("name", sorted(set(OPS) - {"clip"}))
def test_zero_dimensional_input_is_a_shape_error(name: str) -> None:
    with pytest.raises(mt.ShapeError):
        OPS[name](np.float64(0.5), -1)


def test_clip_accepts_any_shape_including_scalars() -> None:
    assert float(mt.clip_weights(np.float64(2.0))) == 1.0


BAD_DTYPES = {
    "bool": np.array([[True, False]]),
    "strings": np.array([["a", "b"]]),
    "objects": np.array([[object(), None]], dtype=object),
    "complex": np.array([[1 + 1j, 0j]]),
    "a dict": {"a": 1},
}


@pytest.mark.parametrize("name", sorted(OPS) + ["validate"])
@pytest.mark.parametrize("bad", sorted(BAD_DTYPES))
def test_wrong_dtype_is_a_dtype_error(name: str, bad: str) -> None:
    call = OPS.get(name, lambda w, dim: mt.validate_weight_matrix(w))
    with pytest.raises(mt.DTypeError, match="weights"):
        call(BAD_DTYPES[bad], -1)


@pytest.mark.parametrize("name", sorted(set(OPS) - NO_DIM) + ["validate"])
@pytest.mark.parametrize("dim", [2, -3, 1.0, "x"])
def test_wrong_dim_is_an_error(name: str, dim: Any) -> None:
    call = OPS.get(name, lambda w, d: mt.validate_weight_matrix(w, dim=d))
    error = mt.ShapeError if isinstance(dim, int) else mt.DTypeError
    with pytest.raises(error, match="dim"):
        call(np.full((2, 2), 0.5), dim)


def test_unknown_methods_are_value_range_errors() -> None:
    with pytest.raises(mt.ValueRangeError, match="'l2'"):
        mt.normalize_weights(np.ones(2), "l2")  # type: ignore[arg-type]
    with pytest.raises(mt.ValueRangeError, match="'median'"):
        mt.smooth_weights(np.ones(2), 3, "median")  # type: ignore[arg-type]


def test_clip_bounds() -> None:
    with pytest.raises(mt.ValueRangeError, match="min_weight.*<=.*max_weight.*2.0 > 1.0"):
        mt.clip_weights(np.ones(2), 2.0, 1.0)
    with pytest.raises(mt.ValueRangeError, match="min_weight"):
        mt.clip_weights(np.ones(2), math.nan, 1.0)
    with pytest.raises(mt.DTypeError, match="max_weight"):
        mt.clip_weights(np.ones(2), 0.0, "1")  # type: ignore[arg-type]
    assert mt.clip_weights(np.array([5.0, -5.0]), -math.inf, 1.0).tolist() == [1.0, -5.0]


def test_decay_arguments() -> None:
    w = np.ones((2, 3))
    for factor in (-0.1, 1.5, math.nan):
        with pytest.raises(mt.ValueRangeError, match="decay_factor"):
            mt.apply_weight_decay(w, factor)
    with pytest.raises(mt.ValueRangeError, match="min_weight"):
        mt.apply_weight_decay(w, 0.5, min_weight=-1.0)
    with pytest.raises(mt.ValueRangeError, match="steps"):
        mt.apply_weight_decay(w, 0.5, steps=-1)
    with pytest.raises(mt.ValueRangeError, match=r"`steps`.*index \(1,\)"):
        mt.apply_weight_decay(w, 0.5, steps=np.array([1.0, -1.0]))
    with pytest.raises(mt.ValueRangeError, match=r"`steps` to be finite"):
        mt.apply_weight_decay(w, 0.5, steps=np.array([1.0, math.inf]))
    with pytest.raises(mt.DTypeError, match="steps"):
        mt.apply_weight_decay(w, 0.5, steps=np.array([True, False]))
    with pytest.raises(mt.ShapeError, match="steps"):
        mt.apply_weight_decay(w, 0.5, steps=np.ones((2, 3)))


def test_smooth_window() -> None:
    for window in (0, -3):
        with pytest.raises(mt.ValueRangeError, match="window_size"):
            mt.smooth_weights(np.ones(3), window)
    with pytest.raises(mt.DTypeError, match="window_size"):
        mt.smooth_weights(np.ones(3), 2.5)  # type: ignore[arg-type]


def test_top_k_k_range_and_type() -> None:
    w = np.ones((2, 4))
    for k in (-1, 5):
        with pytest.raises(mt.ValueRangeError, match=r"`k` in \[0, 4\]"):
            mt.top_k_weights(w, k)
    with pytest.raises(mt.DTypeError, match="`k`"):
        mt.top_k_weights(w, 2.0)  # type: ignore[arg-type]
    with pytest.raises(mt.ValueRangeError, match=r"`k` in \[0, 2\]"):
        mt.top_k_weights(w, 3, dim=0)


def test_validate_arguments() -> None:
    with pytest.raises(mt.ValueRangeError, match="num_neurons"):
        mt.validate_weight_matrix(np.ones(2), num_neurons=-1)
    with pytest.raises(mt.ValueRangeError, match="tolerance"):
        mt.validate_weight_matrix(np.ones(2), tolerance=math.nan)


def test_dense_to_sparse_threshold() -> None:
    with pytest.raises(mt.ValueRangeError, match="threshold"):
        mt.dense_to_sparse_weights(np.ones(2), math.nan)
    assert mt.dense_to_sparse_weights(np.array([1.0, 2.0]), 1.0, format="dict") == {(1,): 2.0}  # strictly greater


def test_validate_false_skips_value_checks() -> None:
    w = np.array([[0.5, math.nan]])
    assert np.isnan(mt.normalize_weights(w, validate=False)).all()
