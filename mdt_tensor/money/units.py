"""Amounts in MDT to wei and back, exactly, for scalars and whole arrays.

:func:`mdt_to_wei` turns decimal strings, ``Decimal`` objects, integers, or floats with a named
rounding mode into int wei (a scalar) or int64 wei (an array in the caller's array type). Float
arrays are converted at their exact binary value with integer arithmetic only, so the bits are
the same on CPU and CUDA. :func:`wei_to_mdt` gives an exact ``Decimal``.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._array import as_tensor, is_array
from .._intmath import INT64_MAX, mul_div_floor_rem
from .._validation import check_float_or_int, first_index
from ..errors import BalanceError, WeiOverflowError
from ._rounding import Rounding, normalize_rounding, round_fraction, str_decimal, to_units, wei_int, wei_to_decimal
from .balance import MDT, Token

__all__ = ["mdt_to_wei", "wei_to_mdt"]


def _is_array_or_sequence(x: object) -> bool:
    """True for a torch / numpy / CuPy array or a list / tuple: amounts given in array form."""
    return isinstance(x, (list, tuple)) or is_array(x)


def mdt_to_wei(
    amount: Any,
    *,
    rounding: Rounding | None = None,
    token: Token = MDT,
) -> Any:
    """Amounts in MDT to wei, exactly: a scalar gives an int, an array an int64 array.

    Scalars: int, Decimal, Fraction, str, or float (read by its shortest repr, as in
    :meth:`Balance.from_mdt`). Arrays:

    * decimal strings or ``Decimal`` objects (a list, or a numpy ``str`` / ``object`` array):
      converted exactly, one element at a time;
    * integer arrays: multiplied by ``10**decimals`` exactly;
    * float arrays (any float dtype, numpy / torch / CuPy): only with an explicit ``rounding``.
      Each element is taken at its exact binary value (float64 ``1.005`` is
      1.00499999999999989...), so ``rounding="half_even"`` gives the nearest wei; the
      conversion is integer arithmetic (same bits on CPU and CUDA).

    Array results are int64 in the caller's array type and device (numpy in, numpy out; lists
    give a torch tensor).

    Args:
        amount: a scalar or an array of amounts in whole tokens.
        rounding: how to round sub-wei precision; None (default) raises instead (required for
            float arrays).
        token: the token (default MDT, 9 decimals).

    Raises:
        BalanceError: unreadable amounts, NaN / inf, sub-wei precision without ``rounding``,
            float arrays without ``rounding``.
        WeiOverflowError: an array element beyond int64 (about 9.2e9 MDT with 9 decimals, or
            only ~9.2 tokens with 18 decimals), naming its index.

    Example:
        >>> mdt_to_wei("1.5"), mdt_to_wei(0.1)
        (1500000000, 100000000)
        >>> mdt_to_wei(np.array(["1.5", "0.000000001"], dtype=object))
        array([1500000000,          1])
        >>> mdt_to_wei(torch.tensor([1.005], dtype=torch.float64), rounding="half_even")
        tensor([1005000000])
    """
    mode = normalize_rounding(rounding)
    if not _is_array_or_sequence(amount):
        return to_units(amount, token, mode, "amount")
    if isinstance(amount, (list, tuple)) or (isinstance(amount, np.ndarray) and amount.dtype.kind in "OUS"):
        return _objects_to_wei(amount, token, mode)
    tensor, origin = as_tensor(amount, "amount")
    check_float_or_int(tensor, "amount")
    if tensor.is_floating_point():
        if mode is None:
            raise BalanceError(
                "A float array has no exact decimal reading: pass rounding='half_even' (nearest wei) "
                "or 'floor', or pass decimal strings / Decimals for exact amounts."
            )
        return origin.wrap(_float_tensor_to_wei(tensor, token, mode))
    return origin.wrap(_int_tensor_to_wei(tensor.to(torch.int64), token))


def _overflow(index: tuple[int, ...] | None, token: Token, detail: str) -> WeiOverflowError:
    limit = Decimal(INT64_MAX).scaleb(-token.decimals)
    return WeiOverflowError(
        f"`amount` at index {index} {detail} does not fit int64 wei: the limit is {limit:.4g} "
        f"{token.symbol} with {token.decimals} decimals."
        + (" (18 decimals overflow int64 at about 9.2 tokens; keep such amounts as Balance objects.)" if token.decimals >= 18 else "")
    )


def _objects_to_wei(amount: Any, token: Token, mode: str | None) -> Any:
    array = np.asarray(amount, dtype=object)
    flat = array.reshape(-1)
    out = np.empty(flat.shape, dtype=np.int64)
    for position, item in enumerate(flat):
        index = tuple(int(i) for i in np.unravel_index(position, array.shape))
        if isinstance(item, str):
            value = to_units(str_decimal(item, f"amount{list(index)}"), token, mode, f"amount{list(index)}")
        else:
            value = to_units(item, token, mode, f"amount{list(index)}")
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise _overflow(index, token, f"({item!r})")
        out[position] = value
    result = out.reshape(array.shape)
    return result if isinstance(amount, np.ndarray) else torch.from_numpy(result)


def _int_tensor_to_wei(tensor: Tensor, token: Token) -> Tensor:
    limit = INT64_MAX // token.unit
    bad = first_index((tensor > limit) | (tensor < -limit))
    if bad is not None:
        raise _overflow(bad, token, f"({int(tensor[bad])} {token.symbol})")
    return tensor * token.unit


def _float_tensor_to_wei(tensor: Tensor, token: Token, mode: str) -> Tensor:
    """Exact ``round(x * 10**decimals)`` of float values (their binary value), in int64."""
    x = tensor.to(torch.float64)
    magnitude = x.abs()
    _check_float_amounts(tensor, x, magnitude, token, mode)
    mantissa, exponent = torch.frexp(magnitude)  # magnitude = mantissa * 2**exponent, mantissa in [0.5, 1)
    digits = (mantissa * float(2**53)).to(torch.int64)  # exact
    shift = (53 - exponent.to(torch.int64)).clamp(min=0)  # values >= 2**53 are whole numbers: shift 0
    digits = torch.where(exponent > 53, digits << (exponent.to(torch.int64) - 53).clamp(min=0, max=62), digits)
    first = shift.clamp(max=60)
    rest = (shift - first).clamp(max=62)  # beyond 62 the quotient (< 2**53) shifts out entirely anyway
    scale = torch.full_like(digits, token.unit)
    divisor = torch.ones_like(digits) << first
    quotient, remainder = mul_div_floor_rem(digits, scale, divisor, b_bits=token.unit.bit_length())
    # floor(q / 2**rest): the digits shifted out join the remainder (nested floors are exact)
    low = quotient & ((torch.ones_like(quotient) << rest) - 1)
    floor = quotient >> rest
    exact = (remainder == 0) & (low == 0)
    # compare the fraction (low + remainder / 2**first) / 2**rest with 1/2
    half_bit = (torch.ones_like(low) << (rest - 1).clamp(min=0))
    above_half = torch.where(rest > 0, (low > half_bit) | ((low == half_bit) & (remainder > 0)), 2 * remainder > (torch.ones_like(remainder) << first))
    at_half = torch.where(rest > 0, (low == half_bit) & (remainder == 0), 2 * remainder == (torch.ones_like(remainder) << first))
    negative = x < 0
    up_magnitude = _round_magnitude_up(mode, negative, floor, exact, above_half, at_half)
    wei = floor + up_magnitude.to(torch.int64)
    return torch.where(negative, -wei, wei)


def _check_float_amounts(tensor: Tensor, x: Tensor, magnitude: Tensor, token: Token, mode: str) -> None:
    """Raise for NaN / inf (BalanceError) and for amounts whose rounded wei do not fit int64.

    The float64 product ``|x| * 10**decimals`` decides all but a narrow band around 2**63 (its
    rounding error is below 2**11 there); amounts in that band are decided exactly, on the
    rounded integer itself, so an amount that fits is never refused and one that does not never
    wraps around.
    """
    if token.decimals > 18:
        raise _overflow(None, token, "(any value)")
    bad = first_index(~torch.isfinite(x))
    if bad is not None:
        raise BalanceError(f"Expected `amount` to be finite, but found {float(x[bad])} at index {bad}.")
    product = magnitude * float(token.unit)
    bad = first_index(product >= float(2**63 + 2**12))
    if bad is None:
        band = (product >= float(2**63 - 2**12)).nonzero()
        for row in band.tolist():  # a handful at most: exact Python ints
            index = tuple(row)
            wei = round_fraction(Fraction(float(x[index])) * token.unit, mode)
            if abs(wei) > INT64_MAX:  # (the magnitude is computed in int64)
                bad = index
                break
    if bad is not None:
        raise _overflow(bad, token, f"({float(tensor[bad])!r} {token.symbol})")


def _round_magnitude_up(mode: str, negative: Tensor, floor: Tensor, exact: Tensor, above: Tensor, at: Tensor) -> Tensor:
    """Whether |x| rounds to floor(|x|) + 1 under ``mode`` (x's sign in ``negative``)."""
    inexact = ~exact
    if mode == "floor":
        return inexact & negative
    if mode == "ceil":
        return inexact & ~negative
    if mode == "down":
        return torch.zeros_like(exact)
    if mode == "up":
        return inexact
    if mode == "half_up":
        return above | at
    if mode == "half_down":
        return above
    return above | (at & (floor % 2 == 1))  # half_even


def wei_to_mdt(wei: int, *, token: Token = MDT) -> Decimal:
    """An int of wei as an exact Decimal amount of MDT (``decimals`` digits after the point).

    Example:
        >>> wei_to_mdt(1)
        Decimal('1E-9')
        >>> wei_to_mdt(1_500_000_000)
        Decimal('1.500000000')
    """
    return wei_to_decimal(wei_int(wei, "wei"), token.decimals)
