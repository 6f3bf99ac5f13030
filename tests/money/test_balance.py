"""Balance and Token: construction, the Python protocol, arithmetic; the original SDK's
defects and Bittensor's traps (docs/design/balance.md), each with a test named after it."""

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

from mdt_tensor import (
    MDT,
    Balance,
    BalanceError,
    DTypeError,
    Token,
    ValueRangeError,
    calculate_percentage,
    format_balance,
    parse_balance,
    validate_balance,
)
from tests.money.rounding_reference import MODES, reference_round


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
# the ModernTensor SDK's Balance defects (sdk/utils/balance.py; docs/design/balance.md), one test each


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
# Bittensor's Balance traps (bittensor/utils/balance.py; docs/design/balance.md)


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


# ---------------------------------------------------------------------------------------------
# argument checks shared with the rest of the package (_validation): wrong type DTypeError,
# wrong value or unknown option ValueRangeError


def test_token_arguments_use_the_shared_checks() -> None:
    with pytest.raises(DTypeError):
        Token("ETH", "18")  # type: ignore[arg-type]
    with pytest.raises(DTypeError):
        Token("ETH", True)  # type: ignore[arg-type]
    with pytest.raises(ValueRangeError, match="decimals"):
        Token("ETH", 31)
    with pytest.raises(DTypeError, match="symbol"):
        Token(5)  # type: ignore[arg-type]
    with pytest.raises(BalanceError, match="letters"):
        Token("E1H")


@pytest.mark.parametrize("mode", ["nearest", "", None, 3])
def test_unknown_rounding_mode_is_a_value_range_error(mode: object) -> None:
    with pytest.raises(ValueRangeError, match="rounding"):
        Balance(10).mul(2, rounding=mode)  # type: ignore[arg-type]
    with pytest.raises(ValueRangeError, match="rounding"):
        Balance(10).div(3, rounding=mode)  # type: ignore[arg-type]
    if mode is not None:  # None means "no rounding" where rounding is optional
        with pytest.raises(ValueRangeError, match="rounding"):
            Balance.from_mdt("1", rounding=mode)  # type: ignore[arg-type]


def test_rounding_mode_spellings() -> None:
    assert Balance(10).div(4, rounding="HALF_EVEN").wei == 2
    assert Balance(10).div(4, rounding="ROUND_HALF_UP").wei == 3  # type: ignore[arg-type]
