"""apportion: against Python Fraction references (exact paths bit for bit, the quota property for
any floats, batch == loop, extremes, array types, devices and errors)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mdt_tensor import (
    DTypeError,
    ShapeError,
    ValueRangeError,
    WeightError,
    WeiOverflowError,
    apportion,
)
from tests.helpers import ARRAY_KINDS, DEVICES, assert_kind, to_kind, to_numpy
from tests.money.apportion_reference import assert_quota, floors, hamilton, integer_hamilton

INT64_MAX = 2**63 - 1
TOTALS = st.one_of(
    st.sampled_from([0, 1, 10**9, 21 * 10**15, 2**53 + 1, INT64_MAX]),
    st.integers(0, INT64_MAX),
)


def nonzero(values: list) -> bool:
    return any(v != 0 for v in values)


u16_rows = st.lists(st.integers(0, 65535), min_size=1, max_size=12).filter(nonzero)
int64_rows = st.lists(st.integers(0, 2**62), min_size=1, max_size=8).filter(nonzero)
f32_rows = st.lists(st.floats(0, 1, width=32), min_size=1, max_size=12).filter(nonzero)
wide_rows = st.lists(
    st.one_of(st.just(0.0), st.floats(1e-30, 1e30), st.floats(5e-324, 1e-307)), min_size=1, max_size=10
).filter(nonzero)


# ---------------------------------------------------------------------------------------------
# exact paths: bit-identical to the Fraction reference


@given(TOTALS, u16_rows, st.sampled_from(["largest_remainder", "floor"]))
def test_u16_weights_match_the_fraction_reference(total: int, weights: list[int], method: str) -> None:
    parts, dust = apportion(total, torch.tensor(weights, dtype=torch.int32), method=method)  # type: ignore[arg-type]
    expected = hamilton(total, weights) if method == "largest_remainder" else floors(total, weights)
    assert (parts.tolist(), int(dust)) == expected


@given(TOTALS, f32_rows, st.sampled_from(["largest_remainder", "floor"]))
def test_float32_weights_match_the_fraction_reference(total: int, weights: list[float], method: str) -> None:
    tensor = torch.tensor(weights, dtype=torch.float32)
    exact_weights = [float(x) for x in tensor]
    parts, dust = apportion(total, tensor, method=method)  # type: ignore[arg-type]
    if method == "largest_remainder":
        assert parts.tolist() == hamilton(total, exact_weights)[0]
        assert_quota(total, exact_weights, parts.tolist())
    else:
        # the double-double path (weights over a wide range) may round a floor up when the
        # share lies within T * 2**-100 below an integer; everywhere else the floors are exact
        got, expected = parts.tolist(), floors(total, exact_weights)[0]
        assert all(g - e in (0, 1) for g, e in zip(got, expected))
        assert int(dust) == total - sum(got)


@given(TOTALS, st.lists(u16_rows, min_size=1, max_size=4), st.sampled_from([torch.float32, torch.float64]))
def test_normalised_u16_shares_floor_exactly(total: int, rows: list[list[int]], dtype: torch.dtype) -> None:
    """Shares as the epoch makes them (u16 values over their row sum: a span of a few dozen bits,
    held exactly with the fewest bits the floats need): every row's floors exact."""
    n = max(map(len, rows))
    values = torch.tensor([row + [0] * (n - len(row)) for row in rows], dtype=torch.float64)
    shares = (values / values.sum(-1, keepdim=True)).to(dtype)
    parts, dust = apportion(total, shares, method="floor")
    for row, (got, left) in enumerate(zip(parts.tolist(), dust.tolist())):
        assert (got, left) == floors(total, [float(x) for x in shares[row]]), f"row {row}"


@given(TOTALS, int64_rows)
def test_int64_weights_keep_the_quota_property(total: int, weights: list[int]) -> None:
    parts, dust = apportion(total, torch.tensor(weights))
    assert int(dust) == 0
    assert_quota(total, weights, parts.tolist(), slack=Fraction(1, 2**30))


# ---------------------------------------------------------------------------------------------
# float weights over any range: the quota property w.r.t. the float values themselves


@given(TOTALS, wide_rows)
def test_wide_float64_weights_keep_the_quota_property(total: int, weights: list[float]) -> None:
    parts, dust = apportion(total, torch.tensor(weights, dtype=torch.float64))
    assert int(dust) == 0
    assert_quota(total, weights, parts.tolist(), slack=Fraction(1, 2**30))


@given(TOTALS, st.lists(st.floats(0, 3.0000000054977558e+38, width=32), min_size=1, max_size=10).filter(nonzero))
def test_any_float32_weights_keep_the_quota_property(total: int, weights: list[float]) -> None:
    tensor = torch.tensor(weights, dtype=torch.float32)
    parts, _ = apportion(total, tensor)
    assert_quota(total, [float(x) for x in tensor], parts.tolist(), slack=Fraction(1, 2**30))


@given(
    st.integers(1, 5),
    st.integers(1, 9),
    st.data(),
    st.sampled_from(["largest_remainder", "floor"]),
)
def test_batch_equals_loop_of_single_rows(rows: int, n: int, data: st.DataObject, method: str) -> None:
    kinds = data.draw(st.lists(st.sampled_from(["f32", "wide", "zero"]), min_size=rows, max_size=rows))
    matrix = []
    for kind in kinds:
        if kind == "f32":
            matrix.append(data.draw(st.lists(st.floats(0, 1, width=32), min_size=n, max_size=n)))
        elif kind == "wide":
            matrix.append(data.draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-30, 1e30)), min_size=n, max_size=n)))
        else:
            matrix.append([0.0] * n)
    totals = data.draw(st.lists(TOTALS, min_size=rows, max_size=rows))
    weights = torch.tensor(matrix, dtype=torch.float64)
    parts, dust = apportion(torch.tensor(totals), weights, method=method, zero_weights="dust")  # type: ignore[arg-type]
    for i in range(rows):
        row_parts, row_dust = apportion(totals[i], weights[i], method=method, zero_weights="dust")  # type: ignore[arg-type]
        assert parts[i].tolist() == row_parts.tolist() and int(dust[i]) == int(row_dust)
    # dim=0 holds the recipients along the first axis
    parts_t, dust_t = apportion(torch.tensor(totals), weights.T, dim=0, method=method, zero_weights="dust")  # type: ignore[arg-type]
    assert torch.equal(parts_t.T, parts) and torch.equal(dust_t, dust)


def test_zero_weight_gets_zero_and_ties_go_to_the_lower_index() -> None:
    parts, _ = apportion(5, torch.tensor([1.0, 0.0, 1.0, 1.0]))
    assert parts.tolist() == [2, 0, 2, 1]
    parts, _ = apportion(1, torch.tensor([0, 3, 3]))
    assert parts.tolist() == [0, 1, 0]


def test_floor_method_returns_the_chain_dust() -> None:
    parts, dust = apportion(10, torch.tensor([1, 1, 1]), method="floor")
    assert parts.tolist() == [3, 3, 3] and int(dust) == 1


# ---------------------------------------------------------------------------------------------
# extremes


def test_total_int64_max_with_one_recipient() -> None:
    for w in (torch.tensor([1.0]), torch.tensor([7]), torch.tensor([2**62 + 12345]), torch.tensor([1e-300], dtype=torch.float64)):
        for method in ("largest_remainder", "floor"):
            parts, dust = apportion(INT64_MAX, w, method=method)  # type: ignore[arg-type]
            assert int(parts[0]) + int(dust) == INT64_MAX
            if method == "largest_remainder" or w.dtype != torch.int64 or int(w[0]) < 2**59:
                assert parts.tolist() == [INT64_MAX] and int(dust) == 0
            else:  # int64 weights beyond 2**59 take the double-double path: a floor may be 1 short
                assert int(parts[0]) >= INT64_MAX - 1


def test_total_int64_max_over_many_weights() -> None:
    weights = [3, 0, 65535, 1, 1, 2**20]
    parts, _ = apportion(INT64_MAX, torch.tensor(weights))
    assert parts.tolist() == hamilton(INT64_MAX, weights)[0]


def test_weights_spanning_1e_minus_30_to_1e30() -> None:
    weights = [1e-30, 1e30, 1.0, 1e-10, 0.0, 1e15]
    for total in (10**18, INT64_MAX, 7):
        parts, _ = apportion(total, torch.tensor(weights, dtype=torch.float64))
        assert_quota(total, weights, parts.tolist(), slack=Fraction(1, 2**30))


def test_subnormal_weights() -> None:
    f32 = torch.tensor([1e-45, 2e-45, 0.0, 3e-45], dtype=torch.float32)  # float32 subnormals: exact
    parts, _ = apportion(12, f32)
    assert parts.tolist() == hamilton(12, [float(x) for x in f32])[0]
    f64 = [5e-324, 1e-323, 1.0]
    parts, _ = apportion(INT64_MAX, torch.tensor(f64, dtype=torch.float64))
    assert_quota(INT64_MAX, f64, parts.tolist(), slack=Fraction(1, 2**30))


def test_a_million_recipients() -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(10**6, generator=gen)
    total = 21 * 10**15
    parts, dust = apportion(total, w)
    assert int(dust) == 0 and int(parts.sum()) == total
    # quota property in exact integers: float32 rand values are multiples of 2**-24
    q = (w.double() * 2**24).long().numpy().astype(object)
    q_sum = int(q.sum())
    deviation = parts.numpy().astype(object) * q_sum - total * q  # (p - share) * Q
    assert max(abs(int(x)) for x in deviation[:: 997]) < q_sum
    assert int(np.abs((parts.numpy() - (total * w.double() / w.double().sum()).numpy()))[:].max()) <= 2


@pytest.mark.parametrize("shape", [(1, 300_001), (300, 2_049)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64])
@pytest.mark.parametrize("method", ["largest_remainder", "floor"])
def test_rows_and_columns_spanning_several_blocks_are_exact(shape: tuple[int, int], dtype: torch.dtype, method: str) -> None:
    # CPU work is split into blocks of rows and of columns; many equal weights put ties
    # (equal remainders) in every block, so the lower-index rule is checked across blocks.
    gen = torch.Generator().manual_seed(1)
    w = torch.randint(0, 50, shape, generator=gen).to(dtype)
    w[:, 0] = 7  # every row has a positive weight
    totals = torch.randint(0, 2**62, (shape[0],), generator=gen)
    parts, dust = apportion(totals, w, method=method)
    weights = w.long().tolist()
    for row in range(0, shape[0], 37):
        total = int(totals[row])
        if method == "floor":
            weight_sum = sum(weights[row])
            expected = [total * x // weight_sum for x in weights[row]]
            assert int(dust[row]) == total - sum(expected)
        else:
            expected = integer_hamilton(total, weights[row])
            assert int(dust[row]) == 0
        assert parts[row].tolist() == expected


# ---------------------------------------------------------------------------------------------
# types, devices, errors


@pytest.mark.parametrize("kind", ARRAY_KINDS)
@pytest.mark.parametrize("device", DEVICES)
def test_returns_the_callers_array_type(kind: str, device: str) -> None:
    weights = to_kind(np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 1.0]], dtype=np.float32), kind, device)
    totals = to_kind(np.array([6, 5], dtype=np.int64), kind, device)
    parts, dust = apportion(totals, weights)
    assert_kind(parts, kind, device)
    assert_kind(dust, kind, device)
    assert to_numpy(parts).tolist() == [[1, 2, 3], [0, 3, 2]]


@pytest.mark.cuda
def test_cpu_and_cuda_give_the_same_bits() -> None:
    gen = torch.Generator().manual_seed(1)
    wide = torch.rand(64, 300, generator=gen, dtype=torch.float64) * torch.exp(torch.randn(64, 300, generator=gen) * 20)
    totals = torch.randint(0, 2**62, (64,), generator=gen)
    for weights in (torch.rand(64, 300, generator=gen), wide, torch.randint(0, 65536, (64, 300), generator=gen)):
        for method in ("largest_remainder", "floor"):
            cpu = apportion(totals, weights, method=method)  # type: ignore[arg-type]
            gpu = apportion(totals.cuda(), weights.cuda(), method=method)  # type: ignore[arg-type]
            assert torch.equal(cpu.parts, gpu.parts.cpu()) and torch.equal(cpu.dust, gpu.dust.cpu())


@pytest.mark.parametrize(
    "weights, match",
    [([1.0, float("nan")], r"nan at index \(1,\)"), ([1.0, float("inf")], r"inf at index \(1,\)"),
     ([1.0, -0.5], r"non-negative.*index \(1,\)")],
)
def test_bad_weights_are_named(weights: list[float], match: str) -> None:
    with pytest.raises(ValueRangeError, match=match):
        apportion(10, torch.tensor(weights))


def test_argument_errors() -> None:
    w = torch.tensor([1.0, 2.0])
    with pytest.raises(ValueRangeError, match="non-negative"):
        apportion(-1, w)
    with pytest.raises(ValueRangeError, match=r"index \(1,\)"):
        apportion(torch.tensor([1, -1]), torch.ones(2, 2))
    with pytest.raises(WeiOverflowError):
        apportion(2**63, w)
    with pytest.raises(DTypeError, match="mdt_to_wei"):
        apportion(torch.tensor(1.5), w)
    with pytest.raises(DTypeError):
        apportion(10, torch.tensor([True, False]))
    with pytest.raises(ShapeError, match=r"\(\*\)"):
        apportion(torch.tensor([1, 2, 3]), torch.ones(2, 2))
    with pytest.raises(ShapeError):
        apportion(10, w, dim=1)
    with pytest.raises(ValueRangeError, match="method"):
        apportion(10, w, method="hare")  # type: ignore[arg-type]


def test_all_zero_rows_need_a_policy() -> None:
    weights = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    with pytest.raises(WeightError, match=r"row \(1,\).*zero_weights"):
        apportion(torch.tensor([4, 5]), weights)
    parts, dust = apportion(torch.tensor([4, 5]), weights, zero_weights="dust")
    assert parts.tolist() == [[2, 2], [0, 0]] and dust.tolist() == [0, 5]
    parts, dust = apportion(torch.tensor([4, 5]), weights, zero_weights="even")
    assert parts.tolist() == [[2, 2], [3, 2]] and dust.tolist() == [0, 0]
    with pytest.raises(WeightError):
        apportion(5, torch.zeros(0))


def test_input_weights_are_not_modified() -> None:
    w = torch.tensor([1e-300, 1.0, 3.5], dtype=torch.float64)
    before = w.clone()
    apportion(10, w)
    assert torch.equal(w, before)


@pytest.mark.parametrize(
    "dtype",
    [torch.uint8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16, torch.float32, torch.float64],
)
def test_every_weight_dtype_is_exact(dtype: torch.dtype) -> None:
    raw = [3, 0, 7, 7, 1, 100]
    weights = torch.tensor(raw).to(dtype)
    for total in (0, 1, 10**9 + 7, INT64_MAX):
        parts, dust = apportion(total, weights)
        assert parts.dtype == torch.int64 and parts.tolist() == hamilton(total, raw)[0] and int(dust) == 0


def test_numpy_uint16_weights_and_numpy_totals() -> None:
    weights = np.array([[65535, 1, 0], [2, 2, 2]], dtype=np.uint16)
    parts, dust = apportion(np.array([10, 7]), weights)
    assert isinstance(parts, np.ndarray) and parts.tolist() == [[10, 0, 0], [3, 2, 2]]
    assert dust.tolist() == [0, 0]


def test_option_strings_use_check_choice() -> None:
    w = torch.tensor([1.0, 2.0])
    with pytest.raises(ValueRangeError, match="zero_weights"):
        apportion(10, w, zero_weights="skip")  # type: ignore[arg-type]
    with pytest.raises(ValueRangeError, match="method"):
        apportion(10, w, method=None)  # type: ignore[arg-type]
