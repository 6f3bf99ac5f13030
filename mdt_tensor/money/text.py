"""Balances as text: :func:`format_balance` and :func:`parse_balance`, which read each other's output.

The parser keeps signs and exponents, knows the token's smallest unit (``"wei"``) as well as its
symbol, refuses unit-less text unless a default unit is named, and raises
:class:`~mdt_tensor.errors.BalanceError` for everything it cannot read.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from .._validation import check_int
from ..errors import BalanceError, DTypeError
from ._rounding import MAX_DIGITS, Rounding, decimal_fraction, normalize_rounding, round_fraction, rounding_mode, to_units
from .balance import MDT, Balance, Token, require_balance

__all__ = ["format_balance", "parse_balance"]

_NUMBER = re.compile(
    r"""^\s*(?P<sign>[+-])?
        (?P<int>\d{1,3}(?:,\d{3})+|\d+)?
        (?:\.(?P<frac>\d*))?
        (?:[eE](?P<exp>[+-]?\d+))?
        \s*(?P<unit>[A-Za-z]+)?\s*$""",
    re.VERBOSE,
)


def _unit_of(unit: str, token: Token, name: str = "unit") -> Literal["token", "smallest"]:
    """'token' or 'smallest' for a unit name (case-insensitive)."""
    if isinstance(unit, str):
        if unit.lower() == token.symbol.lower():
            return "token"
        if unit.lower() == token.smallest.lower():
            return "smallest"
    raise BalanceError(
        f"Unknown {name} {unit!r}: expected {token.symbol!r} or {token.smallest!r} (any case)."
    )


def format_balance(
    balance: Balance,
    unit: str | None = None,
    decimals: int | None = None,
    *,
    thousands: bool = True,
    symbol: bool = True,
    rounding: Rounding = "floor",
) -> str:
    """A Balance as text, e.g. ``"1,234.500000000 MDT"`` or ``"1,500,000,000 wei"``.

    The amount must be a :class:`Balance`: a bare int or float has no unit and raises
    :class:`DTypeError`. ``parse_balance(format_balance(b))`` gives ``b`` back whenever no digits
    were cut (``decimals`` at least the token's, the default).

    Args:
        balance: the amount.
        unit: the token symbol (``"MDT"``; the default is the balance's token) or its smallest
            unit (``"wei"``), any case.
        decimals: digits after the point for the token unit (default: the token's decimals);
            fewer digits round with ``rounding``. Not allowed with the smallest unit.
        thousands: group the integer digits with commas.
        symbol: append the unit.
        rounding: how to cut digits when ``decimals`` is below the token's decimals.

    Raises:
        DTypeError: ``balance`` is not a Balance, or ``decimals`` not an int.
        ValueRangeError: ``decimals`` outside [0, 80] or an unknown ``rounding``.
        BalanceError: an unknown unit, or ``decimals`` with the smallest unit.

    Example:
        >>> b = Balance.from_mdt("1234.5")
        >>> format_balance(b), format_balance(b, "wei"), format_balance(b, decimals=2, symbol=False)
        ('1,234.500000000 MDT', '1,234,500,000,000 wei', '1,234.50')
    """
    token = require_balance(balance, "balance").token
    kind = _unit_of(token.symbol if unit is None else unit, token)
    group = "," if thousands else ""
    if kind == "smallest":
        if decimals not in (None, 0):
            raise BalanceError(f"`decimals` applies to {token.symbol}, not to {token.smallest}; got {decimals!r}.")
        text = f"{balance.wei:{group}d}"
        return f"{text} {token.smallest}" if symbol else text
    places = token.decimals if decimals is None else check_int(decimals, "decimals", low=0, high=MAX_DIGITS)
    scaled = round_fraction(Fraction(balance.wei * 10**places, token.unit), rounding_mode(rounding))
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), 10**places)  # scaled is in units of 10**-places
    text = f"{sign}{whole:{group}d}" + (f".{frac:0{places}d}" if places else "")
    return f"{text} {token.symbol}" if symbol else text


def parse_balance(
    text: str,
    *,
    default_unit: str | None = None,
    token: Token = MDT,
    rounding: Rounding | None = None,
    allow_negative: bool = False,
) -> Balance:
    """Read a Balance from text such as ``"1,234.5 MDT"``, ``"1500000000 wei"`` or ``"1e3 MDT"``.

    Grammar: optional sign, digits (optionally grouped in threes with commas), an optional
    fraction, an optional exponent (``e3``, ``E-2``), then the unit: the token symbol or its
    smallest unit, any case. Nothing is dropped: a sign and an exponent are honoured, and a
    string that does not match as a whole is an error.

    A string without a unit is refused (the original guessed MDT or wei from whether a ``.`` was
    present); pass ``default_unit="MDT"`` (or ``"wei"``) to accept unit-less text.

    Args:
        text: the string.
        default_unit: the unit of unit-less text; None (default) makes a unit mandatory.
        token: the token (default MDT).
        rounding: how to round amounts finer than one wei; None (default) raises.
        allow_negative: accept a negative amount (``"-1.5 MDT"``).

    Raises:
        BalanceError: empty or malformed text, an unknown unit, a missing unit, more precision
            than one wei (without ``rounding``), or a negative amount without ``allow_negative``.
        DTypeError: ``text`` is not a str.

    Example:
        >>> parse_balance("1,234.5 MDT").wei
        1234500000000
        >>> parse_balance("1e3 MDT").mdt
        Decimal('1000.000000000')
        >>> parse_balance("-1.5 MDT", allow_negative=True).wei
        -1500000000
    """
    match = _match_amount(text, token)
    kind = _unit_of(_unit_text(match, text, default_unit, token), token)
    value = decimal_fraction(_decimal_of(match), "text")
    scaled_token = token if kind == "token" else Token(token.symbol, 0, token.smallest)
    try:
        wei = to_units(value, scaled_token, normalize_rounding(rounding), "text")
    except BalanceError as exc:
        raise BalanceError(f"Cannot parse {text!r}: {exc}") from None
    return Balance(wei, token=token, allow_negative=allow_negative)


def _match_amount(text: str, token: Token) -> re.Match[str]:
    """The grammar's match of the whole of ``text``; an error for anything else."""
    if not isinstance(text, str):
        raise DTypeError(f"Expected `text` to be a str, but got {type(text).__name__}.")
    if not text.strip():
        raise BalanceError("Cannot parse an empty string as a balance.")
    match = _NUMBER.match(text)
    if match is None or (match["int"] is None and not match["frac"]):
        raise BalanceError(
            f"Cannot parse {text!r} as a balance: expected a number and a unit, e.g. '1,234.5 "
            f"{token.symbol}' or '1500000000 {token.smallest}'."
        )
    return match


def _unit_text(match: re.Match[str], text: str, default_unit: str | None, token: Token) -> str:
    """The unit written in the text, else ``default_unit``; an error when there is neither."""
    unit = match["unit"]
    if unit is not None:
        return unit
    if default_unit is None:
        raise BalanceError(
            f"{text!r} has no unit: write '{text.strip()} {token.symbol}' or "
            f"'{text.strip()} {token.smallest}', or pass default_unit='{token.symbol}'."
        )
    return default_unit


def _decimal_of(match: re.Match[str]) -> Decimal:
    """The matched number (without separators) as a Decimal."""
    number = (match["sign"] or "") + (match["int"] or "0").replace(",", "")
    if match["frac"]:
        number += "." + match["frac"]
    if match["exp"]:
        number += "e" + match["exp"]
    return Decimal(number)
