"""Exact reading of amounts and exact rounding, shared by Balance, the text forms and the conversions.

Numbers become :class:`~fractions.Fraction` objects (a float by its shortest decimal repr, never by
its binary value), and a Fraction becomes an int under one of seven named rounding modes. No step
goes through a binary float, so an amount in MDT turns into wei exactly or raises.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor

from .._validation import check_choice
from ..errors import BalanceError, DTypeError

if TYPE_CHECKING:
    from .balance import Token

__all__ = ["Rounding"]

#: The ``rounding=`` modes: ``"floor"`` (toward -inf; the chain's rule and the default of
#: arithmetic), ``"ceil"``, ``"down"`` (toward zero), ``"up"`` (away from zero), ``"half_even"``,
#: ``"half_up"`` (ties away from zero), ``"half_down"`` (ties toward zero). The ``decimal``
#: module's names (``decimal.ROUND_FLOOR`` ...) are accepted too.
Rounding = Literal["floor", "ceil", "down", "up", "half_even", "half_up", "half_down"]
ROUNDINGS = ("floor", "ceil", "down", "up", "half_even", "half_up", "half_down")

#: Amounts beyond 10**MAX_DIGITS (in the unit they are written in) are refused before any
#: big-integer arithmetic (``"1e999999999 MDT"`` would otherwise build a billion-digit integer).
#: 80 digits hold every Balance (``|wei| < 2**256``, 78 digits), so each one's text reads back.
MAX_DIGITS = 80

#: Amounts of smallest units must satisfy ``|wei| < MAX_WEI`` (2**256, about 1.2e77: far above
#: any supply, the width of an EVM word); a larger int is refused rather than kept as a Balance
#: that cannot even be printed (``str`` of a 5000-digit int raises).
MAX_WEI = 2**256


def normalize_rounding(rounding: str | None, name: str = "rounding") -> str | None:
    """A rounding mode's short name (``"floor"`` ...); the ``decimal`` module's names
    (``"ROUND_FLOOR"`` ...) and any case are accepted, None stays None.

    Raises:
        ValueRangeError: any other value (via ``check_choice``).
    """
    if rounding is None:
        return None
    if isinstance(rounding, str):
        key = rounding.lower()
        key = key[len("round_"):] if key.startswith("round_") else key
        if key in ROUNDINGS:
            return key
    return check_choice(rounding, name, ROUNDINGS)  # raises: not a mode under any spelling


def rounding_mode(rounding: str, name: str = "rounding") -> str:
    """:func:`normalize_rounding` for arguments where None is not allowed."""
    return check_choice(normalize_rounding(rounding, name), name, ROUNDINGS)


def round_fraction(value: Fraction, rounding: str) -> int:
    """``value`` rounded to an integer with ``rounding`` (exact)."""
    floor = value.numerator // value.denominator
    rest = value - floor  # in [0, 1)
    if rest == 0:
        return floor
    if rounding == "floor":
        return floor
    if rounding == "ceil":
        return floor + 1
    if rounding == "down":
        return floor if value > 0 else floor + 1
    if rounding == "up":
        return floor + 1 if value > 0 else floor
    half = Fraction(1, 2)
    if rest != half:
        return floor + (rest > half)
    if rounding == "half_even":
        return floor + (floor % 2)
    if rounding == "half_up":  # ties away from zero
        return floor + 1 if value > 0 else floor
    return floor if value > 0 else floor + 1  # half_down: ties toward zero


def to_fraction(x: Any, name: str) -> Fraction:
    """A plain number (int, Decimal, Fraction, float by its shortest repr, str) as a Fraction."""
    if isinstance(x, (bool, np.bool_)):
        raise DTypeError(f"Expected `{name}` to be a number, but got bool.")
    if isinstance(x, (int, np.integer)):
        return Fraction(int(x))
    if isinstance(x, Fraction):
        return x
    if isinstance(x, (float, np.floating)):
        return decimal_fraction(float_decimal(x, name), name)
    if isinstance(x, Decimal):
        return decimal_fraction(x, name)
    if isinstance(x, str):
        return decimal_fraction(str_decimal(x, name), name)
    from .balance import Balance  # here only: balance.py builds on this module

    if isinstance(x, Balance):
        raise DTypeError(f"Expected `{name}` to be a plain number, but got a Balance.")
    raise DTypeError(f"Expected `{name}` to be an int, float, Decimal, Fraction or str, but got {type(x).__name__}.")


def float_decimal(x: float | np.floating, name: str) -> Decimal:
    """A finite float as the Decimal of its shortest repr."""
    if not np.isfinite(x):
        raise BalanceError(f"Expected `{name}` to be finite, but got {x!r}.")
    return Decimal(str(x))  # str() is the shortest repr that reads back to the same float


def str_decimal(text: str, name: str) -> Decimal:
    """A plain decimal number in text (no units, no thousands separators) as a Decimal."""
    try:
        if "_" in text:  # Decimal would accept "1_000"; an amount should not
            raise InvalidOperation
        return Decimal(text.strip())
    except InvalidOperation:
        raise BalanceError(f"Expected `{name}` to be a decimal number, but got {text!r}.") from None


def decimal_fraction(value: Decimal, name: str) -> Fraction:
    """A finite Decimal as a Fraction, refusing magnitudes beyond ``10**MAX_DIGITS``."""
    if not value.is_finite():
        raise BalanceError(f"Expected `{name}` to be finite, but got {value}.")
    if value.is_zero():
        return Fraction(0)
    if value.adjusted() > MAX_DIGITS:
        raise BalanceError(f"Expected `{name}` below 10**{MAX_DIGITS}, but got {value}.")
    if value.adjusted() < -MAX_DIGITS:
        # far below any smallest unit: every rounding mode treats it like this stand-in
        return Fraction(-1 if value.is_signed() else 1, 10**MAX_DIGITS)
    return Fraction(value)


def to_units(x: Any, token: Token, rounding: str | None, name: str) -> int:
    """An amount in whole tokens (exact number) as an int of smallest units."""
    value = to_fraction(x, name) * token.unit
    if value.denominator == 1:
        return value.numerator
    if rounding is None:
        raise BalanceError(
            f"`{name}` = {x!r} has more precision than one {token.smallest} (1e-{token.decimals} "
            f"{token.symbol}); pass rounding='floor' (or another mode) to round it."
        )
    return round_fraction(value, rounding)


def wei_int(wei: object, name: str) -> int:
    """An int of smallest units (Python or numpy int, 0-d integer tensor); anything else raises."""
    if isinstance(wei, (bool, np.bool_)):
        raise DTypeError(f"Expected `{name}` to be an int of wei, but got bool.")
    if isinstance(wei, (int, np.integer)):
        return check_wei_range(int(wei), name)
    if isinstance(wei, Tensor) and wei.ndim == 0 and not wei.is_floating_point() and wei.dtype != torch.bool:
        return int(wei)
    if isinstance(wei, (float, np.floating, Decimal, Fraction, str)):
        raise DTypeError(
            f"Expected `{name}` to be an int of wei, but got {type(wei).__name__} {wei!r}. "
            "Use Balance.from_mdt(x) for an amount in MDT."
        )
    raise DTypeError(f"Expected `{name}` to be an int of wei, but got {type(wei).__name__}.")


def check_wei_range(wei: int, name: str) -> int:
    """``wei`` if ``|wei| < MAX_WEI`` (2**256); else a :class:`BalanceError` (no digits printed)."""
    if -MAX_WEI < wei < MAX_WEI:
        return wei
    raise BalanceError(
        f"Expected `{name}` to be below 2**256 in magnitude (|wei| < {float(MAX_WEI):.3g}), but got an int of "
        f"{wei.bit_length()} bits."
    )


def wei_to_decimal(wei: int, decimals: int) -> Decimal:
    """``wei / 10**decimals`` as an exact Decimal with ``decimals`` digits after the point."""
    sign, digits, _ = Decimal(wei).as_tuple()
    return Decimal((sign, digits, -decimals))
