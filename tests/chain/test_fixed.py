"""I32F32 / I64F64 emulation against Python-int references (big integers, no overflow)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import mdt_tensor as mt
from mdt_tensor.errors import DTypeError, ValueRangeError
from tests.helpers import DEVICES, assert_kind, to_kind

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ONE = 1 << 32

EXTREMES = [
    0, 1, -1, 2, -2, ONE - 1, ONE, ONE + 1, -ONE, 2**31, -(2**31), 2**32 + 2**31, 3 << 31,
    2**47, 2**62, -(2**62), 2**63 - 2**32, INT64_MAX, INT64_MIN, INT64_MIN + 1, INT64_MAX - 1,
    123456789012345678, -987654321098765432, 0x7FFFFFFF_FFFF0000, 0x1_0000_FFFF,
]
int64s = st.integers(INT64_MIN, INT64_MAX)


def saturate(v: int) -> int:
    return max(INT64_MIN, min(INT64_MAX, v))


def ref_mul(a: int, b: int) -> tuple[int, bool]:
    exact = (a * b) >> 32  # Python's >> on negative ints is floor, like an arithmetic shift
    return saturate(exact), not INT64_MIN <= exact <= INT64_MAX


def ref_div(a: int, b: int) -> tuple[int, bool]:
    """``checked_div``: truncation toward zero; None (here: failed) for b == 0 or overflow."""
    if b == 0:
        return 0, True
    magnitude = (abs(a) << 32) // abs(b)
    q = magnitude if (a < 0) == (b < 0) else -magnitude
    if not INT64_MIN <= q <= INT64_MAX:
        return 0, True
    return q, False


def ref_exp(x: int) -> tuple[int, bool]:
    """substrate_fixed ``transcendental::exp::<I32F32, I32F32>`` transcribed with Python ints."""
    if x == 0:
        return ONE, False
    if x == ONE:
        return (0xADF85458A2BB4A9AAFDC5620273D3CF1 >> 103) << 9, False
    neg = x < 0
    op = -x if neg else x
    if op > INT64_MAX:
        return 0, True
    result = op + ONE
    if result > INT64_MAX:
        return 0, True
    term = op
    for i in range(2, 32):
        term, failed = ref_mul(term, op)
        if failed:
            return 0, True
        term, failed = ref_div(term, i << 32)
        result += term
        if result > INT64_MAX:
            return 0, True
    if neg:
        result, failed = ref_div(ONE, result)
        if failed:
            return 0, True
    return result, False


def ref_round(x: int) -> int:
    value = Fraction(x, ONE)
    floor = value.numerator // value.denominator
    frac = value - floor
    if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and x >= 0):
        floor += 1
    return saturate(floor << 32)


def t(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


# ----------------------------------------------------------------------------- multiply / divide


def test_mul_all_extreme_pairs() -> None:
    pairs = list(itertools.product(EXTREMES, repeat=2))
    a, b = t([p[0] for p in pairs]), t([p[1] for p in pairs])
    product, overflow = mt.fx_mul_checked(a, b)
    expected = [ref_mul(x, y) for x, y in pairs]
    assert product.tolist() == [e[0] for e in expected]
    assert overflow.tolist() == [e[1] for e in expected]
    assert torch.equal(mt.fx_mul(a, b), product)


def test_div_all_extreme_pairs() -> None:
    pairs = list(itertools.product(EXTREMES, repeat=2))
    a, b = t([p[0] for p in pairs]), t([p[1] for p in pairs])
    quotient, failed = mt.fx_div_checked(a, b)
    expected = [ref_div(x, y) for x, y in pairs]
    assert quotient.tolist() == [e[0] for e in expected]
    assert failed.tolist() == [e[1] for e in expected]
    assert torch.equal(mt.fx_div(a, b), quotient)


@given(st.lists(st.tuples(int64s, int64s), min_size=1, max_size=30))
def test_mul_random_against_python_ints(pairs: list[tuple[int, int]]) -> None:
    a, b = t([p[0] for p in pairs]), t([p[1] for p in pairs])
    assert mt.fx_mul(a, b).tolist() == [ref_mul(x, y)[0] for x, y in pairs]


@given(st.lists(st.tuples(int64s, int64s), min_size=1, max_size=30))
def test_div_random_against_python_ints(pairs: list[tuple[int, int]]) -> None:
    a, b = t([p[0] for p in pairs]), t([p[1] for p in pairs])
    assert mt.fx_div(a, b).tolist() == [ref_div(x, y)[0] for x, y in pairs]


@given(
    st.lists(
        st.tuples(st.integers(-(2**40), 2**40), st.integers(-(2**40), 2**40).filter(lambda v: v != 0)),
        min_size=1,
        max_size=30,
    )
)
def test_div_proportion_range_against_python_ints(pairs: list[tuple[int, int]]) -> None:
    # the range the epoch lives in (sums and proportions of u16 weights)
    a, b = t([p[0] for p in pairs]), t([p[1] for p in pairs])
    assert mt.fx_div(a, b).tolist() == [ref_div(x, y)[0] for x, y in pairs]


def test_div_with_huge_divisors_uses_long_division() -> None:
    # divisors above 2**61 take the bitwise long-division path
    a = t([2**62 - 1, -(2**62), 5, INT64_MAX, INT64_MIN])
    b = t([2**62 + 3, INT64_MAX, 2**62, INT64_MIN + 1, INT64_MAX])
    assert mt.fx_div(a, b).tolist() == [ref_div(x, y)[0] for x, y in zip(a.tolist(), b.tolist())]


def test_saturating_div() -> None:
    a, b = t([ONE << 20, -(ONE << 20), ONE, 7]), t([1, 1, 3, 0])
    assert mt.fx_saturating_div(a, b).tolist() == [INT64_MAX, INT64_MIN, ref_div(ONE, 3)[0], 0]


def test_mul_and_div_broadcast() -> None:
    a = t([ONE, 2 * ONE]).view(2, 1)
    b = t([ONE // 2, ONE // 4, 3 * ONE])
    assert mt.fx_mul(a, b).shape == (2, 3)
    assert mt.fx_div(a, b).tolist() == [[ref_div(x, y)[0] for y in b.tolist()] for x in [ONE, 2 * ONE]]


# ----------------------------------------------------------------------------- round / exp


def test_round_ties_away_from_zero() -> None:
    values = EXTREMES + [3 << 31, -(3 << 31), (5 << 31), -(5 << 31), (1 << 31) - 1, -(1 << 31) + 1, 1 << 31]
    assert mt.fx_round(t(values)).tolist() == [ref_round(v) for v in values]


@given(st.lists(int64s, min_size=1, max_size=40))
def test_round_random(values: list[int]) -> None:
    assert mt.fx_round(t(values)).tolist() == [ref_round(v) for v in values]


def test_exp_matches_the_transcribed_series() -> None:
    values = [0, 1, -1, ONE, -ONE, ONE // 3, -(ONE // 3), 20 * ONE, -20 * ONE, 21 * ONE, 22 * ONE,
              -22 * ONE, 5 * ONE + 12345, 163 * ONE, -(163 * ONE), INT64_MAX, INT64_MIN, 2**40]
    value, failed = mt.fx_exp(t(values))
    expected = [ref_exp(v) for v in values]
    assert value.tolist() == [e[0] for e in expected]
    assert failed.tolist() == [e[1] for e in expected]


@given(st.lists(st.integers(-30 * ONE, 30 * ONE), min_size=1, max_size=20))
def test_exp_random_in_the_sigmoid_range(values: list[int]) -> None:
    value, failed = mt.fx_exp(t(values))
    expected = [ref_exp(v) for v in values]
    assert value.tolist() == [e[0] for e in expected]
    assert failed.tolist() == [e[1] for e in expected]


def test_exp_is_close_to_math_exp() -> None:
    x = torch.linspace(-10, 10, 41, dtype=torch.float64)
    value, failed = mt.fx_exp(mt.fx_from_float(x))
    assert not failed.any()
    torch.testing.assert_close(mt.fx_to_float(value), torch.exp(x), rtol=1e-6, atol=1e-8)


def test_safe_exp_and_exp_safe() -> None:
    x = t([30 * ONE, -30 * ONE, 2 * ONE])
    assert mt.fx_safe_exp(x).tolist() == [0, 0, ref_exp(2 * ONE)[0]]
    assert mt.fx_exp_safe(x).tolist() == [ref_exp(20 * ONE)[0], ref_exp(-20 * ONE)[0], ref_exp(2 * ONE)[0]]


# ----------------------------------------------------------------------------- conversions


def test_u16_proportions_exhaustively() -> None:
    u = torch.arange(65536, dtype=torch.int64)
    bits = mt.fx_from_u16_proportion(u)
    assert bits.tolist() == [(v << 32) // 65535 for v in range(65536)]
    expected_back = [max(0, min(65535, ((b * (65535 << 32)) >> 32) >> 32)) for b in bits.tolist()]
    assert mt.fx_to_u16(bits).tolist() == expected_back
    # the chain's stored values are lossy: 1..65534 lose one unit on the way back except exact ones
    assert mt.fx_to_u16(bits)[65535] == 65535


def test_to_u16_clamps() -> None:
    bits = t([INT64_MIN, -1, 0, ONE, ONE + (ONE // 2), INT64_MAX, 2**47, 2**48])
    expected = [max(0, min(65535, ref_mul(b, 65535 << 32)[0] >> 32)) for b in bits.tolist()]
    assert mt.fx_to_u16(bits).tolist() == expected


def test_from_u16_rejects_out_of_range() -> None:
    with pytest.raises(ValueRangeError, match="values"):
        mt.fx_from_u16_proportion(t([0, 70000]))


def test_from_int_saturates() -> None:
    values = [0, 1, -1, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1, INT64_MAX]
    assert mt.fx_from_int(t(values)).tolist() == [saturate(v << 32) for v in values]


def _round_half_even(value: Fraction) -> int:
    floor = value.numerator // value.denominator
    frac = value - floor
    if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and floor % 2 == 1):
        return floor + 1
    return floor


@given(st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=1, max_size=30))
def test_from_float_rounds_to_nearest_even(values: list[float]) -> None:
    got = mt.fx_from_float(torch.tensor(values, dtype=torch.float64)).tolist()
    assert got == [_round_half_even(Fraction(v) * ONE) for v in values]


def test_from_float_ties_and_errors() -> None:
    half_ulp = 2.0**-33
    got = mt.fx_from_float(torch.tensor([half_ulp, 3 * half_ulp, -half_ulp, 1e30, -1e30], dtype=torch.float64))
    assert got.tolist() == [0, 2, 0, INT64_MAX, INT64_MIN]
    with pytest.raises(ValueRangeError, match="index"):
        mt.fx_from_float(torch.tensor([0.0, float("nan")]))


def test_to_float() -> None:
    assert mt.fx_to_float(t([ONE, -ONE // 2, 1])).tolist() == [1.0, -0.5, 2.0**-32]


def test_integer_dtype_required() -> None:
    with pytest.raises(DTypeError, match="bits"):
        mt.fx_mul(torch.tensor([1.0]), torch.tensor([1]))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_array_kind_in_is_kind_out(kind: str) -> None:
    a = to_kind(np.array([ONE, 3 * ONE], dtype=np.int64), kind)
    b = to_kind(np.array([ONE // 2, ONE], dtype=np.int64), kind)
    assert_kind(mt.fx_mul(a, b), kind)
    assert_kind(mt.fx_div(a, b), kind)
    assert_kind(mt.fx_normalize(a), kind)


# ----------------------------------------------------------------------------- normalisation


def ref_normalize(values: list[int], rule: str) -> list[int]:
    total = sum(values)
    use = total != 0 if rule == "nonzero" else total > 0
    return [ref_div(v, total)[0] for v in values] if use else list(values)


@given(st.lists(st.lists(st.integers(-(2**36), 2**36), min_size=3, max_size=3), min_size=1, max_size=5))
def test_normalize_rules(rows: list[list[int]]) -> None:
    x = t(rows)
    assert mt.fx_normalize(x).tolist() == [ref_normalize(r, "nonzero") for r in rows]
    assert mt.fx_row_normalize(x).tolist() == [ref_normalize(r, "positive") for r in rows]
    columns = [list(c) for c in zip(*rows)]
    expected_cols = [ref_normalize(c, "nonzero") for c in columns]
    assert mt.fx_col_normalize(x).tolist() == [list(r) for r in zip(*expected_cols)]
    assert mt.fx_normalize(x, dim=0).tolist() == [list(r) for r in zip(*expected_cols)]


@given(st.lists(st.lists(st.integers(-(2**36), 2**36), min_size=3, max_size=3), min_size=1, max_size=5))
def test_col_max_upscale(rows: list[list[int]]) -> None:
    columns = [list(c) for c in zip(*rows)]
    expected = []
    for c in columns:
        top = max([0] + c)
        expected.append([ref_div(v, top)[0] for v in c] if top != 0 else c)
    assert mt.fx_col_max_upscale(t(rows)).tolist() == [list(r) for r in zip(*expected)]


def test_stake_normalisation_spec_example() -> None:
    bits = mt.normalize_i64f64_to_i32f32(torch.full((10,), 7_000_000_000, dtype=torch.int64))
    assert bits.tolist() == [429496729] * 10
    # multiplying by 1e9 gives 99,999,999, not 100,000,000 (docs/design/yuma-epoch.md, step 4)
    assert (429496729 * 10**9) >> 32 == 99_999_999


@given(st.lists(st.integers(0, 2**55), min_size=1, max_size=12))
def test_stake_normalisation_against_python_ints(stakes: list[int]) -> None:
    total = sum(stakes)
    expected = [(s << 32) // total if total else 0 for s in stakes]
    assert mt.normalize_i64f64_to_i32f32(t(stakes)).tolist() == expected
    # the chain's two steps: I64F64 quotient, then narrowing by dropping 32 fraction bits
    if total:
        assert expected == [((s << 128) // (total << 64)) >> 32 for s in stakes]


def test_stake_normalisation_huge_totals_and_batches() -> None:
    stakes = t([[2**62, 2**61, 1], [0, 0, 0]])
    expected = [[(s << 32) // sum(r) if sum(r) else 0 for s in r] for r in stakes.tolist()]
    assert mt.normalize_i64f64_to_i32f32(stakes).tolist() == expected
    with pytest.raises(ValueRangeError, match="overflow"):
        mt.normalize_i64f64_to_i32f32(t([INT64_MAX, INT64_MAX]))
    with pytest.raises(ValueRangeError, match="non-negative"):
        mt.normalize_i64f64_to_i32f32(t([1, -1]))


def test_bonds_ema_alpha() -> None:
    for bma in (0, 1, 900_000, 975_000, 999_999, 1_000_000):
        ratio = ((bma << 64) // 1_000_000) >> 32
        assert mt.fx_bonds_ema_alpha(bma) == ONE - ratio
    assert mt.fx_bonds_ema_alpha(t([900_000, 975_000])).tolist() == [
        mt.fx_bonds_ema_alpha(900_000), mt.fx_bonds_ema_alpha(975_000)
    ]


# ----------------------------------------------------------------------------- devices


@pytest.mark.parametrize("device", DEVICES)
def test_cpu_and_device_give_the_same_bits(device: str) -> None:
    generator = torch.Generator().manual_seed(3)
    a = torch.randint(INT64_MIN, INT64_MAX, (4096,), generator=generator, dtype=torch.int64)
    b = torch.randint(INT64_MIN, INT64_MAX, (4096,), generator=generator, dtype=torch.int64)
    small = torch.randint(-30 * ONE, 30 * ONE, (512,), generator=generator, dtype=torch.int64)
    for fn in (mt.fx_mul, mt.fx_div, lambda x, y: mt.fx_round(x)):
        assert torch.equal(fn(a, b), fn(a.to(device), b.to(device)).cpu())
    assert torch.equal(mt.fx_exp(small)[0], mt.fx_exp(small.to(device))[0].cpu())
