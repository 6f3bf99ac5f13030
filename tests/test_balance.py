"""Balance, parse/format, conversions: exactness, the original's defects (spec section 4) and
Bittensor's traps (bittensor-compat A.2), each with a test named after it."""

from __future__ import annotations

import copy
import pickle
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import mdt_tensor as mt
from mdt_tensor import (
    MAX_BALANCE,
    MDT,
    WEI_PER_MDT,
    Balance,
    BalanceError,
    DTypeError,
    Token,
    WeiOverflowError,
    calculate_percentage,
    format_balance,
    mdt_to_wei,
    parse_balance,
    sum_balances,
    validate_balance,
    wei_to_mdt,
)

MODES = ["floor", "ceil", "down", "up", "half_even", "half_up", "half_down"]


def reference_round(value: Fraction, mode: str) -> int:
    """Slow, obvious rounding of a Fraction to an int."""
    lower = value.numerator // value.denominator
    if value == lower:
        return lower
    upper = lower + 1
    toward_zero, away = (lower, upper) if value > 0 else (upper, lower)
    if mode == "floor":
        return lower
    if mode == "ceil":
        return upper
    if mode == "down":
        return toward_zero
    if mode == "up":
        return away
    distance = value - lower
    if distance != Fraction(1, 2):
        return lower if distance < Fraction(1, 2) else upper
    return {"half_even": lower if lower % 2 == 0 else upper, "half_up": away, "half_down": toward_zero}[mode]


# ---------------------------------------------------------------------------------------------
# construction


def test_from_mdt_reads_a_float_by_its_shortest_repr() -> None:
    assert Balance.from_mdt(1.005).wei == 1_005_000_000
    assert Balance.from_mdt(1.001).wei == 1_001_000_000
    assert Balance.from_mdt(0.1).wei == 100_000_000
    assert Balance.from_mdt(np.float32(1.005)).wei == 1_005_000_000


@pytest.mark.parametrize(
    "amount, wei",
    [(1, 10**9), (Decimal("1.5"), 1_500_000_000), ("2.25", 2_250_000_000), ("1e3", 10**12),
     (Fraction(1, 4), 250_000_000), ("0.000000001", 1), (np.int64(3), 3 * 10**9)],
)
def test_from_mdt_accepts_int_decimal_str_fraction(amount: object, wei: int) -> None:
    assert Balance.from_mdt(amount).wei == wei  # type: ignore[arg-type]


def test_sub_wei_precision_is_an_error_unless_a_rounding_mode_is_given() -> None:
    with pytest.raises(BalanceError, match="rounding"):
        Balance.from_mdt("0.0000000019")
    with pytest.raises(BalanceError, match="rounding"):
        Balance.from_mdt("1e-10")
    assert Balance.from_mdt("0.0000000019", rounding="floor").wei == 1
    assert Balance.from_mdt("0.0000000019", rounding="half_even").wei == 2
    assert Balance.from_mdt("1e-10", rounding="ceil").wei == 1
    assert Balance.from_mdt("1e-999999999", rounding="ceil").wei == 1  # no billion-digit integer


@pytest.mark.parametrize("bad", ["abc", "", "1,000", "1_000", "nan", "NaN", "inf", "-inf", float("nan"), float("inf")])
def test_from_mdt_rejects_garbage_nan_and_inf_with_balance_error(bad: object) -> None:
    with pytest.raises(BalanceError):
        Balance.from_mdt(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [None, True, [1], Balance(1)])
def test_from_mdt_rejects_non_numbers_with_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        Balance.from_mdt(bad)  # type: ignore[arg-type]


def test_negative_amounts_need_allow_negative() -> None:
    with pytest.raises(BalanceError, match="allow_negative"):
        Balance.from_mdt("-1")
    with pytest.raises(BalanceError, match="allow_negative"):
        Balance(-5)
    assert Balance.from_mdt("-1", allow_negative=True).wei == -(10**9)


def test_from_wei_takes_python_and_numpy_ints_only() -> None:
    assert Balance.from_wei(5).wei == 5
    assert Balance.from_wei(np.int64(5)).wei == 5
    assert Balance.from_wei(np.uint16(7)).wei == 7
    assert Balance(torch.tensor(9)).wei == 9
    for bad in (True, np.bool_(True), 1.7, Decimal(1), "5"):
        with pytest.raises(TypeError, match="from_mdt|int"):
            Balance.from_wei(bad)  # type: ignore[arg-type]


def test_mdt_property_is_an_exact_decimal() -> None:
    assert Balance(1).mdt == Decimal("0.000000001")
    assert str(Balance(1).mdt) == "1E-9"
    assert Balance(2**80).mdt == Decimal(2**80) / Decimal(10**9)
    assert Balance.from_mdt("1.5").mdt_float == 1.5


# ---------------------------------------------------------------------------------------------
# Python protocol


def test_balance_is_immutable() -> None:
    b = Balance(5)
    with pytest.raises(AttributeError):
        b._wei = 6  # type: ignore[misc]
    with pytest.raises(AttributeError):
        b.wei = 6  # type: ignore[misc]
    with pytest.raises(AttributeError):
        b.extra = 1  # type: ignore[attr-defined]
    assert b.wei == 5


def test_balance_is_hashable_and_usable_as_a_key() -> None:
    assert {Balance(5): "a"}[Balance(5)] == "a"
    assert len({Balance(5), Balance(5), Balance(6)}) == 2
    assert hash(Balance(0)) == hash(0)  # Balance(0) == 0


def test_bool_of_zero_balance_is_false() -> None:
    assert not Balance(0)
    assert Balance(1)


def test_pickle_and_copy_round_trip() -> None:
    b = Balance(12, token=Token("ETH", 18))
    assert pickle.loads(pickle.dumps(b)) == b
    assert copy.deepcopy(b) == b and copy.copy(b) == b


def test_repr_and_str() -> None:
    assert repr(Balance(1_500_000_000)) == "Balance.from_wei(1500000000)"
    assert str(Balance.from_mdt("1234567.5")) == "1,234,567.500000000 MDT"


# ---------------------------------------------------------------------------------------------
# arithmetic


def test_add_sub_and_builtin_sum() -> None:
    a, b = Balance.from_mdt(1), Balance.from_mdt("0.5")
    assert (a + b).wei == 1_500_000_000
    assert (a - b).wei == 500_000_000
    assert sum([a, b, b]).wei == 2 * 10**9
    assert sum([]) == 0


def test_negative_result_raises_unless_allowed() -> None:
    a, b = Balance(1), Balance(3)
    with pytest.raises(BalanceError, match="allow_negative"):
        a - b
    assert a.sub(b, allow_negative=True).wei == -2
    debt = Balance(-2, allow_negative=True)
    assert (debt + a).wei == -1  # an operand already negative: the caller opted in


@pytest.mark.parametrize("other", [1, 5, 1.0, 0.5, Decimal("1"), np.int64(3)])
def test_bare_numbers_do_not_mix_with_balances(other: object) -> None:
    b = Balance.from_mdt(1)
    for op in (lambda: b + other, lambda: other + b, lambda: b - other, lambda: b < other, lambda: b == other, lambda: b >= other):
        with pytest.raises(TypeError, match="from_mdt"):
            op()


def test_zero_mixes_in() -> None:
    b = Balance(3)
    assert b + 0 == b and 0 + b == b and b - 0 == b
    assert b > 0 and Balance(0) == 0 and Balance(0) >= 0 and not Balance(0) < 0


def test_mul_div_round_down_by_default_and_take_a_mode() -> None:
    b = Balance(10)
    assert (b * 3).wei == 30 and (3 * b).wei == 30
    assert (b * 0.25).wei == 2  # floor of 2.5
    assert b.mul(0.25, rounding="half_even").wei == 2
    assert b.mul(0.25, rounding="half_up").wei == 3
    assert (b / 3).wei == 3 and b.div(3, rounding="ceil").wei == 4
    assert (b // 4).wei == 2
    assert Balance.from_mdt(1).mul(1.1).wei == 1_100_000_000  # 1.1 read as 1.1, not 1.10000000000000009
    with pytest.raises(ZeroDivisionError):
        b / 0
    with pytest.raises(TypeError):
        b * b


@given(st.integers(-(10**30), 10**30), st.fractions(), st.sampled_from(MODES))
def test_mul_matches_exact_rounding(wei: int, factor: Fraction, mode: str) -> None:
    b = Balance(wei, allow_negative=True)
    assert b.mul(factor, rounding=mode, allow_negative=True).wei == reference_round(wei * factor, mode)  # type: ignore[arg-type]
    if factor != 0:
        assert b.div(factor, rounding=mode, allow_negative=True).wei == reference_round(wei / factor, mode)  # type: ignore[arg-type]


def test_balance_over_balance_is_a_ratio_not_a_balance() -> None:
    three, two = Balance.from_mdt(3), Balance.from_mdt(2)
    assert three / two == Fraction(3, 2)
    assert three // two == 1
    assert (three % two) == Balance.from_mdt(1)


def test_tokens_do_not_mix() -> None:
    eth = Token("ETH", 18)
    a, b = Balance(1), Balance(1, token=eth)
    with pytest.raises(BalanceError, match="different tokens"):
        a + b
    with pytest.raises(BalanceError):
        a < b
    assert a != b


def test_eighteen_decimals_token() -> None:
    eth = Token("ETH", 18)
    b = Balance.from_mdt("1.5", token=eth)
    assert b.wei == 1_500_000_000_000_000_000
    assert format_balance(b, "ETH") == "1.500000000000000000 ETH"
    assert parse_balance("1.5 ETH", token=eth) == b


# ---------------------------------------------------------------------------------------------
# format / parse


@pytest.mark.parametrize(
    "text, wei",
    [("1,234.5 MDT", 1_234_500_000_000), ("1500000000 wei", 1_500_000_000), ("1e3 MDT", 10**12),
     ("0.000000001 MDT", 1), ("  7 mdt ", 7 * 10**9), ("1,500,000,000 WEI", 1_500_000_000),
     ("+2 MDT", 2 * 10**9), ("1.5E2 MDT", 150 * 10**9), (".5 MDT", 500_000_000), ("1e-9 MDT", 1),
     ("15e8 wei", 1_500_000_000)],
)
def test_parse_balance_cases(text: str, wei: int) -> None:
    assert parse_balance(text).wei == wei


def test_parse_balance_keeps_the_sign() -> None:
    assert parse_balance("-1.5 MDT", allow_negative=True).wei == -1_500_000_000
    with pytest.raises(BalanceError, match="allow_negative"):
        parse_balance("-1.5 MDT")


@pytest.mark.parametrize(
    "bad, match",
    [("", "empty"), ("   ", "empty"), ("abc", "Cannot parse"), ("MDT", "Cannot parse"), ("1.5 TAO", "Unknown unit"),
     ("1.5 RAO", "Unknown unit"), ("0.0000000001 MDT", "precision"), ("1.5 wei", "precision"), ("12,34 MDT", "Cannot parse"),
     ("1..5 MDT", "Cannot parse"), ("1.5 MDT MDT", "Cannot parse"), ("0x10 wei", "Cannot parse"), ("1e999999 MDT", "below"),
     ("1.5", "no unit"), ("- 1 MDT", "Cannot parse"), ("1 e3 MDT", "Cannot parse")],
)
def test_parse_balance_errors_are_balance_errors(bad: str, match: str) -> None:
    with pytest.raises(BalanceError, match=match):
        parse_balance(bad)


def test_parse_balance_unitless_text_needs_a_default_unit() -> None:
    assert parse_balance("1.5", default_unit="MDT").wei == 1_500_000_000
    assert parse_balance("15", default_unit="wei").wei == 15
    with pytest.raises(BalanceError, match="default_unit"):
        parse_balance("15")


def test_parse_balance_rounding_opt_in() -> None:
    assert parse_balance("0.0000000015 MDT", rounding="half_even").wei == 2


def test_parse_balance_rejects_non_strings_with_type_error() -> None:
    with pytest.raises(TypeError):
        parse_balance(5)  # type: ignore[arg-type]


def test_format_balance_options() -> None:
    b = Balance.from_mdt("1234.5")
    assert format_balance(b) == "1,234.500000000 MDT"
    assert format_balance(b, thousands=False) == "1234.500000000 MDT"
    assert format_balance(b, symbol=False) == "1,234.500000000"
    assert format_balance(b, "wei") == "1,234,500,000,000 wei"
    assert format_balance(b, "WEI", thousands=False) == "1234500000000 wei"
    assert format_balance(b, decimals=0) == "1,234 MDT"
    assert format_balance(Balance.from_mdt("1.999999999"), decimals=0) == "1 MDT"
    assert format_balance(Balance.from_mdt("1.999999999"), decimals=0, rounding="half_even") == "2 MDT"
    assert format_balance(Balance.from_mdt("-1.5", allow_negative=True)) == "-1.500000000 MDT"
    assert format_balance(Balance(0)) == "0.000000000 MDT"
    with pytest.raises(BalanceError, match="Unknown unit"):
        format_balance(b, "TAO")


@given(
    st.integers(-(10**25), 10**25),
    st.sampled_from(["MDT", "wei", "mdt", "WEI"]),
    st.booleans(),
    st.integers(9, 12),
)
def test_format_then_parse_round_trips(wei: int, unit: str, thousands: bool, decimals: int) -> None:
    b = Balance(wei, allow_negative=True)
    places = None if unit.lower() == "wei" else decimals
    text = format_balance(b, unit, places, thousands=thousands)
    assert parse_balance(text, allow_negative=True) == b


@st.composite
def balance_texts(draw: st.DrawFn) -> tuple[str, Fraction, str]:
    """Random well-formed balance strings and their exact value in wei."""
    sign = draw(st.sampled_from(["", "+", "-"]))
    whole = draw(st.integers(0, 10**15))
    grouped = draw(st.booleans())
    digits = f"{whole:,}" if grouped else str(whole)
    fraction = draw(st.text("0123456789", min_size=0, max_size=12))
    exponent = draw(st.one_of(st.just(""), st.integers(-12, 12).map(lambda e: f"e{e}")))
    unit = draw(st.sampled_from(["MDT", "mdt", "wei", "Wei"]))
    text = f"{sign}{digits}{'.' + fraction if fraction else ''}{exponent} {unit}"
    value = Fraction(whole) + (Fraction(int(fraction), 10 ** len(fraction)) if fraction else 0)
    value *= Fraction(10) ** (int(exponent[1:]) if exponent else 0)
    value *= -1 if sign == "-" else 1
    if unit.lower() == "mdt":
        value *= WEI_PER_MDT
    return text, value, unit


@given(balance_texts())
def test_parse_then_format_round_trips(case: tuple[str, Fraction, str]) -> None:
    text, value, unit = case
    if value.denominator != 1:
        with pytest.raises(BalanceError, match="precision"):
            parse_balance(text, allow_negative=True)
        return
    parsed = parse_balance(text, allow_negative=True)
    assert parsed.wei == value.numerator  # signs and exponents are never dropped
    for fmt_unit in ("MDT", "wei"):
        for thousands in (True, False):
            again = format_balance(parsed, fmt_unit, thousands=thousands)
            assert parse_balance(again, allow_negative=True) == parsed
            assert format_balance(parse_balance(again, allow_negative=True), fmt_unit, thousands=thousands) == again


@given(st.integers(-(10**20), 10**20), st.integers(-12, 12))
def test_parse_of_scientific_text(mantissa: int, exponent: int) -> None:
    text = f"{mantissa}e{exponent} MDT"
    value = Fraction(mantissa) * Fraction(10) ** exponent * WEI_PER_MDT
    if value.denominator != 1:
        with pytest.raises(BalanceError, match="precision"):
            parse_balance(text, allow_negative=True)
    else:
        assert parse_balance(text, allow_negative=True).wei == value.numerator


# ---------------------------------------------------------------------------------------------
# conversions and helpers


def test_scalar_conversions() -> None:
    assert mdt_to_wei("1.5") == 1_500_000_000 and isinstance(mdt_to_wei(1), int)
    assert mdt_to_wei(1.005) == 1_005_000_000
    assert wei_to_mdt(1_500_000_000) == Decimal("1.5")
    assert wei_to_mdt(np.int64(1)) == Decimal("1e-9")
    with pytest.raises(TypeError):
        wei_to_mdt(1.5)  # type: ignore[arg-type]


def test_mdt_to_wei_arrays_of_strings_and_decimals_are_exact() -> None:
    strings = np.array([["1.5", "0.000000001"], ["9223372036.854775807", "-2"]])
    out = mdt_to_wei(strings)
    assert isinstance(out, np.ndarray) and out.dtype == np.int64
    assert out.tolist() == [[1_500_000_000, 1], [2**63 - 1, -2_000_000_000]]
    objects = np.array([Decimal("1.005"), Decimal("2")], dtype=object)
    assert mdt_to_wei(objects).tolist() == [1_005_000_000, 2 * 10**9]
    listed = mdt_to_wei(["1.5", Decimal("0.25")])
    assert isinstance(listed, torch.Tensor) and listed.tolist() == [1_500_000_000, 250_000_000]


def test_mdt_to_wei_array_errors_name_the_index() -> None:
    with pytest.raises(BalanceError, match=r"\[1\]"):
        mdt_to_wei(np.array(["1.5", "0.0000000001"]))
    with pytest.raises(WeiOverflowError, match=r"\(1,\)"):
        mdt_to_wei(np.array(["1", "9223372036.854775808"]))
    with pytest.raises(BalanceError):
        mdt_to_wei(["1", "garbage"])


def test_mdt_to_wei_float_tensors_need_a_rounding_mode() -> None:
    with pytest.raises(BalanceError, match="rounding"):
        mdt_to_wei(torch.tensor([1.5]))
    out = mdt_to_wei(torch.tensor([1.005, 0.1], dtype=torch.float64), rounding="half_even")
    assert out.dtype == torch.int64 and out.tolist() == [1_005_000_000, 100_000_000]
    # the exact binary value of float64(1.005) is 1.00499999999999989...
    assert mdt_to_wei(torch.tensor([1.005], dtype=torch.float64), rounding="floor").tolist() == [1_004_999_999]
    as_numpy = mdt_to_wei(np.array([1.5, 2.5e-9]), rounding="half_even")
    assert isinstance(as_numpy, np.ndarray) and as_numpy.tolist() == [1_500_000_000, 3]  # 2.5e-9 is 2.50000000000000016e-9


@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-9e9, max_value=9e9), min_size=1, max_size=20),
    st.sampled_from(MODES),
    st.sampled_from([torch.float64, torch.float32]),
)
def test_mdt_to_wei_float_tensor_matches_exact_rounding(values: list[float], mode: str, dtype: torch.dtype) -> None:
    tensor = torch.tensor(values, dtype=dtype)
    out = mdt_to_wei(tensor, rounding=mode)
    expected = [reference_round(Fraction(float(v)) * WEI_PER_MDT, mode) for v in tensor.tolist()]
    assert out.tolist() == expected


def test_mdt_to_wei_int_tensors_and_overflow() -> None:
    assert mdt_to_wei(torch.tensor([1, 2])).tolist() == [10**9, 2 * 10**9]
    with pytest.raises(WeiOverflowError, match=r"\(1,\)"):
        mdt_to_wei(torch.tensor([1, 10**10]))
    with pytest.raises(WeiOverflowError, match="9.2"):
        mdt_to_wei(torch.tensor([10.0]), rounding="floor", token=Token("ETH", 18))
    with pytest.raises(WeiOverflowError):
        mdt_to_wei(torch.tensor([1e10], dtype=torch.float64), rounding="floor")
    with pytest.raises(BalanceError):
        mdt_to_wei(torch.tensor([float("nan")]), rounding="floor")


def test_validate_balance_bounds_are_balances() -> None:
    one, two = Balance.from_mdt(1), Balance.from_mdt(2)
    assert validate_balance(one, max_balance=two)
    assert not validate_balance(two, max_balance=one)
    assert validate_balance(two, min_balance=two, max_balance=two)
    assert not validate_balance(Balance(-1, allow_negative=True))
    assert validate_balance(Balance(MAX_BALANCE), max_balance=Balance(MAX_BALANCE))
    assert not validate_balance(Balance(MAX_BALANCE + 1), max_balance=Balance(MAX_BALANCE))


def test_calculate_percentage() -> None:
    assert calculate_percentage(Balance(1), Balance(3)) == Decimal("33.33")
    assert calculate_percentage(Balance(2), Balance(3), decimals=3, rounding="half_even") == Decimal("66.667")
    assert calculate_percentage(Balance(5), Balance(2)) == Decimal("250.00")
    assert calculate_percentage(Balance(5), Balance(0)) == Decimal("0.00")
    with pytest.raises(TypeError):
        calculate_percentage(5, 10)  # type: ignore[arg-type]


def test_sum_balances() -> None:
    assert sum_balances([Balance(1), Balance(2)]) == Balance(3)
    assert sum_balances([]) == Balance(0)
    with pytest.raises(TypeError, match=r"balances\[1\]"):
        sum_balances([Balance(1), 2])  # type: ignore[list-item]
    with pytest.raises(BalanceError):
        sum_balances([Balance(1), Balance(1, token=Token("ETH", 18))])


def test_constants() -> None:
    assert WEI_PER_MDT == 10**9 and MAX_BALANCE == 21_000_000 * 10**9 and MDT.decimals == 9 and mt.MIN_BALANCE == 0


# ---------------------------------------------------------------------------------------------
# the original's defects (spec/seed-utils.md section 4, items 1-5), one test each


def test_defect_1_package_imports_and_exports_mdt_to_wei_and_wei_to_mdt() -> None:
    import mdt_tensor

    assert callable(mdt_tensor.mdt_to_wei) and callable(mdt_tensor.wei_to_mdt)
    assert not hasattr(mdt_tensor, "tao_to_wei") and not hasattr(mdt_tensor, "rao_to_mdt")


def test_defect_2_format_balance_wei_unit_works() -> None:
    assert format_balance(Balance(1500), "wei") == "1,500 wei"
    assert format_balance(Balance(1500), "WEI") == "1,500 wei"


def test_defect_3a_parse_balance_reads_wei() -> None:
    assert parse_balance("1500000000 wei") == Balance.from_mdt("1.5")


def test_defect_3b_parse_balance_keeps_minus_sign_and_exponent() -> None:
    assert parse_balance("-1.5 MDT", allow_negative=True) == Balance.from_mdt("-1.5", allow_negative=True)
    assert parse_balance("1e3 MDT") == Balance.from_mdt(1000)  # not 13 MDT


@pytest.mark.parametrize("bad", ["1500000000 abc", "abc", "", "0x10", "-5"])
def test_defect_3c_parse_balance_errors_are_one_family(bad: str) -> None:
    with pytest.raises(BalanceError):
        parse_balance(bad)


def test_defect_4_units_never_depend_on_python_type() -> None:
    with pytest.raises(TypeError, match="Balance"):
        validate_balance(1.0, max_balance=2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Balance"):
        validate_balance(Balance.from_mdt(1), max_balance=2)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_balance(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        calculate_percentage(1.0, 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="from_mdt"):
        Balance(1.7)  # type: ignore[arg-type]


def test_defect_4_from_mdt_inf_is_a_balance_error_not_overflow() -> None:
    with pytest.raises(BalanceError):
        Balance.from_mdt("inf")
    with pytest.raises(BalanceError):
        Balance.from_mdt(float("inf"))


def test_defect_5_strings_say_mdt_and_wei_not_tao_and_rao() -> None:
    texts = [str(Balance(1)), repr(Balance(1)), format_balance(Balance(1), "wei")]
    assert all("TAO" not in t.upper() and "RAO" not in t.upper() for t in texts)
    assert str(Balance(1)).endswith(" MDT") and texts[2].endswith(" wei")


# ---------------------------------------------------------------------------------------------
# Bittensor's Balance traps (bittensor-compat A.2)


def test_bittensor_trap_float_truncation_is_gone() -> None:
    assert Balance.from_mdt(1.005).wei == 1_005_000_000  # bittensor: 1004999999


def test_bittensor_trap_numpy_ints_accepted_and_bool_rejected() -> None:
    assert Balance.from_wei(np.int64(10)).wei == 10
    with pytest.raises(TypeError):
        Balance.from_wei(True)  # type: ignore[arg-type]


def test_bittensor_trap_balance_times_balance_and_ratio() -> None:
    with pytest.raises(TypeError):
        Balance(3) * Balance(2)  # type: ignore[operator]
    assert Balance.from_mdt(3) / Balance.from_mdt(2) == Fraction(3, 2)  # bittensor: 1 rao


def test_bittensor_trap_comparison_with_a_bare_number_is_refused() -> None:
    with pytest.raises(TypeError):
        Balance.from_mdt(1) == 10**9  # noqa: B015
    with pytest.raises(TypeError):
        Balance(1) < 0.5  # noqa: B015


def test_non_number_equality_is_false_not_an_error() -> None:
    assert Balance(1) != "1" and Balance(1) != None  # noqa: E711
    with pytest.raises(DTypeError):
        Balance(1) < "1"  # type: ignore[operator]
