"""Weight operations against slow, obviously correct per-row references (numpy float64 / Python loops).

Every property test draws a batched array (1 to 3 dimensions), a ``dim`` and a dtype, applies the
reference to each row along ``dim`` with a Python loop, and compares. Array kinds and devices are
covered by the ``kind_device`` tests (CuPy and CUDA are marked ``cuda``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import mdt_tensor as mt
from tests.helpers import assert_kind, to_kind, to_numpy

FLOAT_DTYPES = [np.float32, np.float64]
KIND_DEVICE = [
    ("numpy", "cpu"),
    ("torch", "cpu"),
    pytest.param(("torch", "cuda"), marks=pytest.mark.cuda),
    pytest.param(("cupy", "cuda"), marks=pytest.mark.cuda),
]

# ----------------------------------------------------------------------------- strategies


def _elements(dtype: type, low: float, high: float, zeros: bool = True) -> st.SearchStrategy[float]:
    width = 32 if dtype == np.float32 else 64
    values = st.floats(low, high, width=width, allow_subnormal=False)
    # Magnitudes below 1e-6 (other than 0) only test rounding, not semantics.
    values = values.filter(lambda v: v == 0 or abs(v) >= 1e-6)
    return st.one_of(st.just(0.0), values) if zeros else values


@st.composite
def batched(draw: st.DrawFn, low: float = 0.0, high: float = 10.0, max_side: int = 6, zeros: bool = True) -> tuple[np.ndarray, int]:
    """A ``(*, N)`` array (1 to 3 dims, float32 or float64) and a ``dim`` in ``[-ndim, ndim)``."""
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    shape = draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=max_side))
    array = draw(arrays(dtype, shape, elements=_elements(dtype, low, high, zeros)))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return array, dim


def per_row(reference: Callable[[np.ndarray], np.ndarray | float], array: np.ndarray, dim: int, *, reduces: bool = False) -> np.ndarray:
    """Apply ``reference`` to every row of ``array`` along ``dim`` (a Python loop, float64)."""
    moved = np.moveaxis(np.asarray(array, dtype=np.float64), dim, -1)
    out = np.empty(moved.shape[:-1] if reduces else moved.shape, dtype=np.float64)
    for index in np.ndindex(*moved.shape[:-1]):
        out[index] = reference(moved[index])
    return out if reduces else np.moveaxis(out, -1, dim)


def tolerance(dtype: type) -> dict[str, float]:
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}


# ----------------------------------------------------------------------------- references


def ref_normalize(row: np.ndarray, method: str) -> np.ndarray:
    values = [float(v) for v in row]
    if method == "sum":
        total = sum(values)
        return np.array([v / total if total != 0 else 0.0 for v in values])
    if method == "max":
        largest = max(abs(v) for v in values)
        return np.array([v / largest if largest != 0 else 0.0 for v in values])
    low, high = min(values), max(values)
    if high == low:
        return np.zeros(len(values))
    if method == "minmax":
        return np.array([(v - low) / (high - low) for v in values])
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return np.array([(v - mean) / std for v in values])


def ref_entropy(row: np.ndarray) -> float:
    positive = [float(v) for v in row if v > 0]
    total = sum(positive)
    return -sum(v / total * math.log(v / total) for v in positive) if positive else 0.0


def ref_top_k(row: np.ndarray, k: int, other: float) -> np.ndarray:
    order = sorted(range(len(row)), key=lambda i: (-row[i], i))  # larger first, then lower index
    kept = set(order[:k])
    return np.array([row[i] if i in kept else other for i in range(len(row))])


def ref_moving_average(row: np.ndarray, window: int) -> np.ndarray:
    half = window // 2
    return np.array([np.mean(row[max(0, i - half) : i + half + 1]) for i in range(len(row))])


def ref_ema(row: np.ndarray, window: int) -> np.ndarray:
    alpha = 2.0 / (window + 1)
    out = [float(row[0])]
    for value in row[1:]:
        out.append(alpha * float(value) + (1 - alpha) * out[-1])
    return np.array(out)


def ref_decay(row: np.ndarray, factor: float, steps: float, floor: float) -> np.ndarray:
    out = []
    for value in row:
        decayed = float(value) * factor**steps
        out.append(0.0 if value == 0 else max(decayed, floor))
    return np.array(out)


# ----------------------------------------------------------------------------- normalize


@pytest.mark.parametrize("method", ["sum", "max", "minmax", "zscore"])
@given(data=batched(low=-10.0, high=10.0))
def test_normalize_matches_per_row_reference(method: str, data: tuple[np.ndarray, int]) -> None:
    array, dim = data
    result = mt.normalize_weights(array, method, dim=dim)
    assert isinstance(result, np.ndarray) and result.dtype == array.dtype and result.shape == array.shape
    expected = per_row(lambda r: ref_normalize(r, method), array, dim)
    if method == "sum":  # rows whose sum nearly cancels amplify rounding; compare the rest
        sums = np.moveaxis(np.abs(array.astype(np.float64)).sum(dim, keepdims=True), dim, dim)
        tot = np.abs(array.astype(np.float64).sum(dim, keepdims=True))
        stable = np.broadcast_to((tot >= 1e-3 * np.maximum(sums, 1e-300)) | (tot == 0), array.shape)
        np.testing.assert_allclose(result[stable], expected[stable], **tolerance(array.dtype))
    else:
        np.testing.assert_allclose(result, expected, **{k: v * 10 for k, v in tolerance(array.dtype).items()})


@given(data=batched(low=0.0, high=10.0))
def test_normalize_minmax_hits_zero_and_one_exactly(data: tuple[np.ndarray, int]) -> None:
    array, dim = data
    result = mt.normalize_weights(array, "minmax", dim=dim)
    assert np.all((result >= 0) & (result <= 1))
    span = array.max(dim) - array.min(dim)
    np.testing.assert_array_equal(result.max(dim)[span > 0], 1.0)
    np.testing.assert_array_equal(result.min(dim)[span > 0], 0.0)


def test_normalize_degenerate_row_does_not_touch_others() -> None:
    w = torch.tensor([[1.0, 1.0], [0.0, 0.0], [2.0, -2.0]])
    assert torch.equal(mt.normalize_weights(w), torch.tensor([[0.5, 0.5], [0.0, 0.0], [0.0, 0.0]]))
    assert torch.equal(mt.normalize_weights(torch.tensor([[3.0, 3.0], [1.0, 3.0]]), "zscore"), torch.tensor([[0.0, 0.0], [-1.0, 1.0]]))
    assert torch.equal(mt.normalize_weights(torch.tensor([[0.1] * 7, [0.0, 1.0] * 3 + [0.0]]), "minmax")[0], torch.zeros(7))


def test_normalize_max_uses_absolute_value() -> None:
    assert torch.equal(mt.normalize_weights(torch.tensor([-1.0, -2.0]), "max"), torch.tensor([-0.5, -1.0]))


def test_normalize_out_and_in_place() -> None:
    w = torch.tensor([[1.0, 3.0], [2.0, 2.0]])
    out = torch.empty(2, 2)
    assert mt.normalize_weights(w, out=out) is out
    assert torch.equal(out, torch.tensor([[0.25, 0.75], [0.5, 0.5]]))
    mt.normalize_weights(w, out=w)
    assert torch.equal(w, out)
    array = np.array([1.0, 1.0], dtype=np.float32)
    assert mt.normalize_weights(array, out=array) is array and array.tolist() == [0.5, 0.5]
    with pytest.raises(mt.DTypeError, match="dtype"):
        mt.normalize_weights(torch.ones(2), out=torch.empty(2, dtype=torch.float64))
    with pytest.raises(mt.ShapeError, match="shape"):
        mt.normalize_weights(torch.ones(2), out=torch.empty(3))
    half = torch.empty(2, dtype=torch.float16)
    assert mt.normalize_weights(torch.ones(2, dtype=torch.float16), out=half) is half and half.tolist() == [0.5, 0.5]


def test_normalize_large_input_uses_numpy_backed_buffer_correctly() -> None:
    w = torch.rand(64, 8192, generator=torch.Generator().manual_seed(1))  # 2 MiB: the huge-page path
    result = mt.normalize_weights(w)
    torch.testing.assert_close(result, w / w.sum(-1, keepdim=True))
    assert isinstance(result, torch.Tensor) and result.is_contiguous()


# ----------------------------------------------------------------------------- validate


@given(data=batched(low=0.0, high=10.0))
def test_validate_accepts_normalized_rows_and_reports_the_first_bad_row(data: tuple[np.ndarray, int]) -> None:
    array, dim = data
    normalized = mt.normalize_weights(array, dim=dim)
    sums = normalized.astype(np.float64).sum(dim)
    report = mt.validate_weight_matrix(normalized, dim=dim)
    bad = np.argwhere(np.abs(sums - 1) > 1e-6)  # all-zero rows stay zero and fail
    if len(bad) == 0:
        assert report and report.kind is None and tuple(report) == (True, None)
    else:
        assert not report and report.kind == "normalization"
        assert report.index == tuple(int(i) for i in bad[0])
        assert report.value == pytest.approx(sums[tuple(bad[0])])


def test_validate_checks_in_order_with_index_and_value() -> None:
    w = np.array([[[0.5, 0.5], [0.2, 0.8]], [[1.0, -0.0], [0.3, 0.7]]])
    assert mt.validate_weight_matrix(w, num_neurons=2)
    report = mt.validate_weight_matrix(w, num_neurons=3)
    assert (report.kind, report.index, report.value) == ("shape", (2,), 2.0)
    w[1, 1, 1] = -0.5
    report = mt.validate_weight_matrix(w)
    assert (report.kind, report.index, report.value) == ("negative", (1, 1, 1), -0.5)
    assert mt.validate_weight_matrix(w, allow_negative=True).kind == "normalization"
    assert mt.validate_weight_matrix(w, allow_negative=True, check_normalized=False)
    w[0, 1, 0] = np.inf
    assert mt.validate_weight_matrix(w).kind == "inf"
    w[1, 0, 1] = np.nan
    report = mt.validate_weight_matrix(w)
    assert (report.kind, report.index) == ("nan", (1, 0, 1)) and math.isnan(report.value)
    ok, message = report
    assert ok is False and "NaN" in message
    assert mt.validate_weight_matrix(np.zeros((0, 3))).kind == "empty"
    assert mt.validate_weight_matrix(np.float64(1.0)).kind == "shape"


def test_validate_non_square_and_batched_shapes() -> None:
    w = torch.full((2, 3, 4), 0.25)
    assert mt.validate_weight_matrix(w, num_neurons=4)
    assert mt.validate_weight_matrix(w.transpose(-1, -2), num_neurons=4, dim=-2)
    assert mt.validate_weight_matrix(w.transpose(-1, -2), num_neurons=4).kind == "shape"
    assert mt.validate_weight_matrix(torch.tensor([[0.5, 0.5], [0.0, 0.0]])).index == (1,)  # all-zero row fails


def test_check_weights_raises_the_matching_error() -> None:
    mt.check_weights(np.array([0.25, 0.75]))
    with pytest.raises(mt.ValueRangeError, match=r"index \(1,\)"):
        mt.check_weights(np.array([0.5, np.nan]))
    with pytest.raises(mt.ValueRangeError, match="-0.5"):
        mt.check_weights(np.array([1.5, -0.5]))
    with pytest.raises(mt.WeightError, match=r"Row \(0,\) sums to 0.9"):
        mt.check_weights(np.array([[0.5, 0.4]]))
    with pytest.raises(mt.ShapeError, match="empty"):
        mt.check_weights(np.array([]))
    with pytest.raises(mt.ShapeError, match="3 neurons"):
        mt.check_weights(np.array([0.5, 0.5]), num_neurons=3)


# ----------------------------------------------------------------------------- clip, decay


@given(data=batched(low=-5.0, high=5.0), bounds=st.tuples(st.floats(-3, 3), st.floats(-3, 3)))
def test_clip_matches_reference(data: tuple[np.ndarray, int], bounds: tuple[float, float]) -> None:
    array, _ = data
    low, high = sorted(bounds)
    result = mt.clip_weights(array, low, high)
    expected = np.array([min(max(float(v), low), high) for v in array.reshape(-1)]).reshape(array.shape)
    np.testing.assert_allclose(result, expected.astype(array.dtype), rtol=0, atol=0)
    assert result.dtype == array.dtype


@given(
    data=batched(low=0.0, high=10.0),
    factor=st.floats(0.0, 1.0),
    floor=st.one_of(st.just(0.0), st.floats(0.0, 2.0)),
    per_row_steps=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_decay_matches_reference(data: tuple[np.ndarray, int], factor: float, floor: float, per_row_steps: bool, seed: int) -> None:
    array, dim = data
    rows_shape = np.delete(np.array(array.shape), dim % array.ndim)
    if per_row_steps:
        steps = np.random.default_rng(seed).integers(0, 5, size=tuple(rows_shape)).astype(np.float64)
    else:
        steps = np.full(tuple(rows_shape), 2.0)
    result = mt.apply_weight_decay(array, factor, steps if per_row_steps else 2, floor, dim=dim)
    moved = np.moveaxis(array.astype(np.float64), dim, -1)
    expected = np.empty_like(moved)
    for index in np.ndindex(*moved.shape[:-1]):
        expected[index] = ref_decay(moved[index], factor, float(steps[index]), floor)
    expected = np.moveaxis(expected, -1, dim)
    np.testing.assert_allclose(result, expected, **tolerance(array.dtype))
    assert np.all(result[array == 0] == 0)  # the floor never lifts a zero


def test_decay_steps_broadcast_and_floor_keeps_zeros() -> None:
    w = torch.tensor([[[1.0, 0.0], [0.5, 0.02]]])  # (1, 2, 2): steps per (batch, validator)
    result = mt.apply_weight_decay(w, 0.5, steps=torch.tensor([1, 3]), min_weight=0.05)
    assert torch.allclose(result, torch.tensor([[[0.5, 0.0], [0.0625, 0.05]]]))
    assert torch.equal(mt.apply_weight_decay(w, 0.0, steps=0), w)  # 0 ** 0 == 1
    assert torch.equal(mt.apply_weight_decay(w, 0.3, steps=1.0, dim=0), w * 0.3)
    with pytest.raises(mt.ShapeError, match=r"row shape \(1, 2\)"):
        mt.apply_weight_decay(w, 0.5, steps=torch.tensor([1, 2, 3]))


# ----------------------------------------------------------------------------- smoothing


@pytest.mark.parametrize("method", ["moving_average", "exponential"])
@given(data=batched(low=-10.0, high=10.0, max_side=8), window=st.one_of(st.integers(1, 6), st.integers(30, 90)))
def test_smooth_matches_reference(method: str, data: tuple[np.ndarray, int], window: int) -> None:
    array, dim = data
    reference = ref_moving_average if method == "moving_average" else ref_ema
    result = mt.smooth_weights(array, window, method, dim=dim)
    assert result.dtype == array.dtype and result.shape == array.shape
    np.testing.assert_allclose(result, per_row(lambda r: reference(r, window), array, dim), **tolerance(array.dtype))


@pytest.mark.parametrize("method", ["moving_average", "exponential"])
@pytest.mark.parametrize("window", [2, 3, 7, 40, 1001])
def test_smooth_long_rows_stay_accurate(method: str, window: int) -> None:
    rng = np.random.default_rng(window)
    rows = rng.random((3, 5000)) * rng.choice([1e-3, 1.0, 1e3], size=(3, 1))
    reference = ref_moving_average if method == "moving_average" else ref_ema
    expected = np.stack([reference(r, window) for r in rows])
    np.testing.assert_allclose(mt.smooth_weights(rows, window, method), expected, rtol=1e-11, atol=0)
    np.testing.assert_allclose(mt.smooth_weights(rows.astype(np.float32), window, method), expected, rtol=2e-6, atol=0)


def test_smooth_documented_values_and_integer_promotion() -> None:
    np.testing.assert_allclose(mt.smooth_weights(np.array([0.1, 0.5, 0.2, 0.8, 0.3])), [0.3, 0.8 / 3, 0.5, 1.3 / 3, 0.55])
    result = mt.smooth_weights(np.array([0, 1, 0]))
    assert result.dtype == np.float32 and np.allclose(result, [0.5, 1 / 3, 0.5])
    np.testing.assert_allclose(mt.smooth_weights(np.array([0, 1, 0]), 2), result)  # even window == next odd one
    huge = np.array([1e300, 0.0, -1e300])  # float64 rows are scaled: no overflow in the EMA
    np.testing.assert_allclose(mt.smooth_weights(huge, 3, "exponential"), ref_ema(huge, 3), rtol=1e-12)


# ----------------------------------------------------------------------------- top-k


@st.composite
def tied_batched(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    shape = draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7))
    levels = st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.0, 0.25])
    array = draw(arrays(dtype, shape, elements=st.one_of(levels, _elements(dtype, -5, 5))))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    k = draw(st.integers(0, shape[dim]))
    return array, dim, k


@pytest.mark.parametrize("engine", ["numpy", "torch"])  # np.argpartition or torch.topk on the CPU
@given(data=tied_batched(), other=st.sampled_from([0.0, -1.0, 7.5]))
def test_top_k_matches_reference_with_ties_to_the_lower_index(
    engine: str, data: tuple[np.ndarray, int, int], other: float
) -> None:
    from mdt_tensor._cpu import cpu_engine

    array, dim, k = data
    with cpu_engine(engine):  # type: ignore[arg-type]
        result = mt.top_k_weights(array, k, dim=dim, other_value=other)
    expected = per_row(lambda r: ref_top_k(r, k, other), array, dim)
    np.testing.assert_array_equal(result, expected.astype(array.dtype))


def test_top_k_documented_tie_and_edge_cases() -> None:
    row = torch.tensor([0.5, 1.0, 0.5, 0.5, 0.2])
    assert mt.top_k_weights(row, 2).tolist() == [0.5, 1.0, 0.0, 0.0, 0.0]
    assert mt.top_k_weights(row, 0).tolist() == [0.0] * 5
    assert torch.equal(mt.top_k_weights(row, 5), row)
    inf = torch.tensor([-math.inf, math.inf, 1.0, math.inf])
    assert mt.top_k_weights(inf, 1, other_value=-1).tolist() == [-1.0, math.inf, -1.0, -1.0]
    big = torch.zeros(4, 3000)
    big[:, ::3] = 1.0  # 1000 ones per row: the boundary tie goes to the lowest indices
    result = mt.top_k_weights(big, 64)
    assert torch.equal(result[:, : 64 * 3], big[:, : 64 * 3]) and result[:, 64 * 3 :].sum() == 0
    columns = mt.top_k_weights(big.T.contiguous(), 2, dim=0)
    assert columns.T[:, :3].tolist() == [[1.0, 0.0, 0.0]] * 4 and columns.sum() == 4 + 4  # ones at rows 0 and 3


# ----------------------------------------------------------------------------- entropy


@given(data=batched(low=-2.0, high=10.0))
def test_entropy_matches_reference(data: tuple[np.ndarray, int]) -> None:
    array, dim = data
    result = mt.compute_weight_entropy(array, dim=dim)
    expected = per_row(ref_entropy, array, dim, reduces=True)
    assert result.shape == expected.shape and result.dtype == array.dtype
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4 if array.dtype == np.float32 else 1e-9)


def test_entropy_documented_values() -> None:
    assert float(mt.compute_weight_entropy(np.array([0.9, 0.05, 0.03, 0.02]))) == pytest.approx(0.4280, abs=1e-4)
    assert float(mt.compute_weight_entropy(np.array([1.0, 1.0]))) == pytest.approx(math.log(2))
    result = mt.compute_weight_entropy(torch.tensor([[0.0, -1.0], [2.0, 2.0]]))
    assert torch.allclose(result, torch.tensor([0.0, math.log(2)]))
    assert mt.compute_weight_entropy(np.zeros((3, 0))).tolist() == [0.0, 0.0, 0.0]


# ----------------------------------------------------------------------------- sparse <-> dense


@given(data=batched(low=-1.0, high=1.0), threshold=st.sampled_from([0.0, -0.5, 0.25]))
def test_dense_to_sparse_and_back(data: tuple[np.ndarray, int], threshold: float) -> None:
    array, _ = data
    indices, values = mt.dense_to_sparse_weights(array, threshold)
    expected = [(index, float(array[index])) for index in np.ndindex(*array.shape) if array[index] > threshold]
    assert [tuple(int(i) for i in col) for col in indices.T] == [index for index, _ in expected]
    assert values.tolist() == [value for _, value in expected] and values.dtype == array.dtype
    as_dict = mt.dense_to_sparse_weights(array, threshold, format="dict")
    assert as_dict == dict(expected)
    default = threshold - 1.0
    dense = mt.sparse_to_dense_weights((indices, values), default_weight=default, shape=array.shape)
    np.testing.assert_array_equal(dense, np.where(array > threshold, array, np.asarray(default, array.dtype)))
    sparse = mt.dense_to_sparse_weights(torch.from_numpy(array), threshold, format="torch")
    assert sparse.is_sparse and sparse.shape == array.shape
    np.testing.assert_array_equal(mt.sparse_to_dense_weights(sparse).numpy(), np.where(array > threshold, array, 0))


def test_sparse_dict_form_like_the_original() -> None:
    dense = mt.sparse_to_dense_weights({(0, 1): 0.5, (2, 0): 1.0}, 3)
    assert dense.dtype == torch.float64 and dense.tolist() == [[0, 0.5, 0], [0, 0, 0], [1.0, 0, 0]]
    assert mt.sparse_to_dense_weights({}, 0).shape == (0, 0)
    assert mt.sparse_to_dense_weights({}, 2, default_weight=0.5).tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert mt.dense_to_sparse_weights(dense, format="dict") == {(0, 1): 0.5, (2, 0): 1.0}
    batched = torch.zeros(2, 2, 3)
    batched[1, 0, 2] = 0.75
    indices, values = mt.dense_to_sparse_weights(batched)
    assert indices.tolist() == [[1], [0], [2]] and values.tolist() == [0.75]
    assert torch.equal(mt.sparse_to_dense_weights((indices, values), shape=(2, 2, 3)), batched)


def test_sparse_to_dense_rejects_bad_indices() -> None:
    with pytest.raises(mt.WeightError, match=r"\(0, 3\) of entry 1 is out of range"):
        mt.sparse_to_dense_weights({(0, 1): 0.5, (0, 3): 1.0}, 3)
    with pytest.raises(mt.WeightError, match=r"\(-1, 0\)"):
        mt.sparse_to_dense_weights((np.array([[-1], [0]]), np.array([1.0])), 2)
    with pytest.raises(mt.WeightError, match="more than once"):
        mt.sparse_to_dense_weights((np.array([[0, 1, 0], [1, 1, 1]]), np.array([1.0, 2.0, 3.0])), 2)
    with pytest.raises(mt.DTypeError, match="integers"):
        mt.sparse_to_dense_weights((np.array([[0.0], [1.0]]), np.array([1.0])), 2)
    with pytest.raises(mt.ShapeError, match=r"\(2,\)"):
        mt.sparse_to_dense_weights((np.array([[0], [1]]), np.array([1.0, 2.0])), 2)
    with pytest.raises(mt.ShapeError, match="neither"):
        mt.sparse_to_dense_weights((np.array([[0], [1]]), np.array([1.0])))
    with pytest.raises(mt.ValueRangeError, match="finite"):
        mt.sparse_to_dense_weights((np.array([[0], [1]]), np.array([np.nan])), 2)
    with pytest.raises(mt.DTypeError):
        mt.sparse_to_dense_weights("not sparse", 2)
    with pytest.raises(mt.ValueRangeError, match="format"):
        mt.dense_to_sparse_weights(np.ones(2), format="csr")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- kinds, devices, dtypes

CASES: dict[str, tuple[Callable, Callable[[np.ndarray], np.ndarray]]] = {
    "normalize": (lambda x: mt.normalize_weights(x, dim=1), lambda a: per_row(lambda r: ref_normalize(r, "sum"), a, 1)),
    "zscore": (lambda x: mt.normalize_weights(x, "zscore"), lambda a: per_row(lambda r: ref_normalize(r, "zscore"), a, -1)),
    "clip": (lambda x: mt.clip_weights(x, 0.2, 0.6), lambda a: np.clip(a, 0.2, 0.6)),
    "decay": (lambda x: mt.apply_weight_decay(x, 0.5, 2, 0.1), lambda a: per_row(lambda r: ref_decay(r, 0.5, 2, 0.1), a, -1)),
    "moving_average": (lambda x: mt.smooth_weights(x, 3, dim=0), lambda a: per_row(lambda r: ref_moving_average(r, 3), a, 0)),
    "ema": (lambda x: mt.smooth_weights(x, 4, "exponential"), lambda a: per_row(lambda r: ref_ema(r, 4), a, -1)),
    "top_k": (lambda x: mt.top_k_weights(x, 2, dim=1), lambda a: per_row(lambda r: ref_top_k(r, 2, 0.0), a, 1)),
    "entropy": (lambda x: mt.compute_weight_entropy(x), lambda a: per_row(ref_entropy, a, -1, reduces=True)),
}


def _sample(dtype: type = np.float64) -> np.ndarray:
    rng = np.random.default_rng(7)
    sample = rng.random((2, 3, 5)).astype(dtype)
    sample[0, 1, 2] = 0.0
    sample[1, 2] = sample[1, 2, 0]  # a constant row, with ties
    return sample


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("kind_device", KIND_DEVICE)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_kind_device_and_dtype_are_kept(name: str, kind_device: tuple[str, str], dtype: type) -> None:
    kind, device = kind_device
    function, reference = CASES[name]
    sample = _sample(dtype)
    result = function(to_kind(sample, kind, device))
    assert_kind(result, kind, device)
    assert to_numpy(result).dtype == dtype
    np.testing.assert_allclose(to_numpy(result), reference(sample), **tolerance(dtype))


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_comes_back_in_its_dtype(name: str, dtype: torch.dtype) -> None:
    function, reference = CASES[name]
    sample = _sample(np.float32)
    result = function(torch.from_numpy(sample).to(dtype))
    assert result.dtype == dtype
    rounded = torch.from_numpy(sample).to(dtype).double().numpy()
    np.testing.assert_allclose(result.double().numpy(), reference(rounded), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_integer_input_is_promoted_to_float32(name: str, kind: str) -> None:
    function, reference = CASES[name]
    sample = np.arange(30, dtype=np.int64).reshape(2, 3, 5) % 7
    result = function(to_kind(sample, kind))
    assert to_numpy(result).dtype == np.float32
    np.testing.assert_allclose(to_numpy(result), reference(sample.astype(np.float64)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind_device", KIND_DEVICE)
def test_sparse_kinds_and_devices(kind_device: tuple[str, str]) -> None:
    kind, device = kind_device
    dense = np.array([[0.0, 0.5], [0.25, 0.0]], dtype=np.float32)
    indices, values = mt.dense_to_sparse_weights(to_kind(dense, kind, device))
    assert_kind(indices, kind, device)
    assert_kind(values, kind, device)
    back = mt.sparse_to_dense_weights((indices, values), shape=(2, 2))
    assert_kind(back, kind, device)
    np.testing.assert_array_equal(to_numpy(back), dense)
    sparse = mt.dense_to_sparse_weights(to_kind(dense, kind, device), format="torch")
    assert sparse.device.type == device
    np.testing.assert_array_equal(to_numpy(mt.sparse_to_dense_weights(sparse)), dense)


@pytest.mark.cuda
def test_cuda_validation_and_ties_match_cpu() -> None:
    w = torch.zeros(8, 1000)
    w[:, ::2] = 1.0
    assert torch.equal(mt.top_k_weights(w.cuda(), 10).cpu(), mt.top_k_weights(w, 10))
    with pytest.raises(mt.ValueRangeError, match=r"index \(3, 5\)"):
        bad = w.clone()
        bad[3, 5] = math.nan
        mt.normalize_weights(bad.cuda())


# ----------------------------------------------------------------------------- internal fast paths


@st.composite
def long_tied_rows(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """Rows long enough for the two-stage top-k (N >= 32 (k + 1)), with many ties, any tail length."""
    k = draw(st.integers(1, 5))
    size = draw(st.integers(32 * (k + 1), 32 * (k + 1) + 40))
    levels = draw(st.sampled_from([[0.0, 1.0], [0.0, 0.5, 1.0, 2.0], [-1.0, 3.0]]))
    rows = draw(st.integers(1, 3))
    array = draw(arrays(np.float32, (rows, size), elements=st.one_of(st.sampled_from(levels), st.floats(-2, 2, width=32))))
    return array, k


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@given(data=long_tied_rows())
def test_two_stage_top_k_matches_reference(engine: str, data: tuple[np.ndarray, int]) -> None:
    from mdt_tensor._cpu import cpu_engine

    array, k = data
    expected = per_row(lambda r: ref_top_k(r, k, 0.0), array, -1)
    with cpu_engine(engine):  # type: ignore[arg-type]
        np.testing.assert_array_equal(mt.top_k_weights(array, k), expected.astype(np.float32))
        np.testing.assert_array_equal(mt.top_k_weights(array.T.copy(), k, dim=0), expected.T.astype(np.float32))


@pytest.mark.parametrize("block_bytes", [1, 64, 1 << 22])
def test_row_blocks_give_the_same_results(monkeypatch: pytest.MonkeyPatch, block_bytes: int) -> None:
    import mdt_tensor.weights._common as weights_common

    monkeypatch.setattr(weights_common, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(3)
    array = rng.random((3, 5, 37)) - 0.2
    for dtype in FLOAT_DTYPES:
        sample = array.astype(dtype)
        np.testing.assert_allclose(mt.compute_weight_entropy(sample), per_row(ref_entropy, sample, -1, reduces=True), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(mt.smooth_weights(sample, 3, "exponential"), per_row(lambda r: ref_ema(r, 3), sample, -1), **tolerance(dtype))


def test_numpy_log2_path_matches_torch() -> None:
    from mdt_tensor._cpu import cpu_engine
    from mdt_tensor.weights.entropy import _log2

    values = torch.rand(1000, dtype=torch.float64) * 10 + 1e-300
    for dtype in (torch.float32, torch.float64):
        x = values.to(dtype)
        with cpu_engine("numpy"):
            through_numpy = _log2(x, torch.empty_like(x))
            in_place = _log2(x.clone(), x.clone())
        through_torch = _log2(x.unsqueeze(1).expand(-1, 2)[:, 0], torch.empty_like(x))  # non-contiguous: torch path
        with cpu_engine("torch"):
            forced_torch = _log2(x, torch.empty_like(x))
        for other in (in_place, through_torch, forced_torch, torch.log2(x)):
            torch.testing.assert_close(through_numpy, other, rtol=2 * torch.finfo(dtype).eps, atol=0)
        with cpu_engine("numpy"):
            edges = _log2(torch.tensor([0.0, -1.0, math.inf], dtype=dtype), torch.empty(3, dtype=dtype))
        assert edges[0] == -math.inf and math.isnan(edges[1]) and edges[2] == math.inf


def test_numpy_row_dot_matches_torch() -> None:
    from mdt_tensor._cpu import cpu_engine
    from mdt_tensor.weights.entropy import _Buffers, _row_dot

    rng = np.random.default_rng(4)
    for dtype in (torch.float32, torch.float64):
        a, b = (torch.from_numpy(rng.random((7, 300))).to(dtype) for _ in range(2))
        expected = (a.double() * b.double()).sum(-1)
        for name in ("numpy", "torch"):
            out = torch.empty(7, dtype=dtype)
            with cpu_engine(name):  # type: ignore[arg-type]
                _row_dot(a, b, out, _Buffers(7, 300, a))
            torch.testing.assert_close(out.double(), expected, rtol=8 * torch.finfo(dtype).eps, atol=0)


def test_entropy_of_blocks_with_zeros_and_negatives_across_engines() -> None:
    # the mended blocks (a zero, a negative value) beside clean ones, on both engines
    from mdt_tensor._cpu import cpu_engine

    rng = np.random.default_rng(6)
    array = rng.random((40, 33)) + 0.01
    array[3, 5] = 0.0
    array[7, :4] = -1.0
    array[9] = 0.0
    array[11, 2] = 1e-310  # subnormal in float64
    for dtype in FLOAT_DTYPES:
        sample = array.astype(dtype)
        expected = per_row(ref_entropy, sample, -1, reduces=True)
        for name in ("numpy", "torch", "auto"):
            with cpu_engine(name):  # type: ignore[arg-type]
                np.testing.assert_allclose(mt.compute_weight_entropy(sample), expected, rtol=1e-5, atol=1e-6)


def test_in_place_normalize_reports_the_original_nan_index() -> None:
    w = torch.tensor([[0.5, 0.5, 1.0], [0.25, math.nan, 0.25]])
    with pytest.raises(mt.ValueRangeError, match=r"index \(1, 1\)"):
        mt.normalize_weights(w, out=w)
    assert w[0].tolist() == [0.5, 0.5, 1.0]  # nothing written


def test_clip_and_decay_in_place_and_checks() -> None:
    w = torch.tensor([[0.5, 0.0, 2.0], [0.01, 0.3, 0.0]])
    expected = torch.tensor([[0.1, 0.0, 0.1], [0.1, 0.1, 0.0]])
    same = w.clone()
    assert mt.apply_weight_decay(same, 0.0, 1, 0.1, out=same) is same  # factor 0: all non-zeros lifted to the floor
    assert torch.equal(same, expected)
    assert torch.equal(mt.clip_weights(w, 0.2, 0.4, out=w), torch.tensor([[0.4, 0.2, 0.4], [0.2, 0.3, 0.2]]))
    late = torch.zeros(4, 6)
    late[3, 4] = math.nan
    late[3, 5] = -1.0
    with pytest.raises(mt.ValueRangeError, match=r"nan at index \(3, 4\)"):
        mt.clip_weights(late, out=late)
    assert not late[:3].any()
    late[3, 4] = 0.0
    with pytest.raises(mt.ValueRangeError, match=r"-1.0 at index \(3, 5\)"):
        mt.apply_weight_decay(late, 0.5, out=late)
    huge = np.full((8, 4), 3e38, dtype=np.float32)  # the sum overflows, the values are fine
    assert np.array_equal(mt.apply_weight_decay(huge, 1.0), huge)
