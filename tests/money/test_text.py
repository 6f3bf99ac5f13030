"""format_balance and parse_balance: the grammar, errors, and round trips in both directions."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdt_tensor import (
    MDT,
    WEI_PER_MDT,
    Balance,
    BalanceError,
    DTypeError,
    ValueRangeError,
    format_balance,
    parse_balance,
)


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


def test_format_balance_decimals_and_rounding_use_the_shared_checks() -> None:
    b = Balance.from_mdt("1.5")
    with pytest.raises(ValueRangeError, match="decimals"):
        format_balance(b, decimals=-1)
    with pytest.raises(DTypeError, match="decimals"):
        format_balance(b, decimals=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueRangeError, match="rounding"):
        format_balance(b, decimals=0, rounding="nearest")  # type: ignore[arg-type]
    with pytest.raises(ValueRangeError, match="rounding"):
        parse_balance("1.5 MDT", rounding="nearest")  # type: ignore[arg-type]
