"""mdt_to_wei and wei_to_mdt: scalars and arrays, exact against Fraction rounding."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mdt_tensor import (
    WEI_PER_MDT,
    BalanceError,
    Token,
    WeiOverflowError,
    mdt_to_wei,
    wei_to_mdt,
)
from tests.money.rounding_reference import MODES, reference_round


# ---------------------------------------------------------------------------------------------
# conversions


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
