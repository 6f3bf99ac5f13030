"""validate_balance, calculate_percentage, sum_balances and the money constants."""

from __future__ import annotations

from decimal import Decimal

import pytest

import mdt_tensor as mt
from mdt_tensor import (
    MAX_BALANCE,
    MDT,
    WEI_PER_MDT,
    Balance,
    BalanceError,
    DTypeError,
    Token,
    ValueRangeError,
    calculate_percentage,
    sum_balances,
    validate_balance,
)


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


def test_calculate_percentage_arguments_use_the_shared_checks() -> None:
    with pytest.raises(ValueRangeError, match="decimals"):
        calculate_percentage(Balance(1), Balance(2), decimals=-1)
    with pytest.raises(DTypeError, match="decimals"):
        calculate_percentage(Balance(1), Balance(2), decimals=True)  # type: ignore[arg-type]
    with pytest.raises(ValueRangeError, match="rounding"):
        calculate_percentage(Balance(1), Balance(3), rounding="nearest")  # type: ignore[arg-type]
