"""Exact token amounts: :class:`Balance`, wei <-> MDT conversion, parsing and formatting.

A :class:`Balance` holds one Python ``int`` of wei (the smallest unit; 1 MDT = 10**9 wei) and a
:class:`Token` (symbol and decimals), and never goes through a binary float. It fixes what the
original ``sdk/utils/balance.py`` and Bittensor's ``Balance`` got wrong (``spec/seed-utils.md``
section 4, ``spec/bittensor-compat.md`` A.2):

* units never depend on a Python type: a bare ``int`` or ``float`` is never silently taken as wei
  or MDT; mixing raises :class:`~mdt_tensor.errors.DTypeError` naming ``Balance.from_mdt`` /
  ``Balance.from_wei`` (only a literal zero mixes in, so ``sum()`` and ``b > 0`` work);
* a float is read by its shortest decimal repr (``from_mdt(1.005)`` is 1_005_000_000 wei), and
  sub-wei precision is an error unless a rounding mode is named;
* Balances are immutable, hashable, and ``bool(Balance(0))`` is False;
* ``parse_balance`` keeps signs and exponents, knows the ``wei`` unit, and raises
  :class:`~mdt_tensor.errors.BalanceError` for everything it cannot read.

:func:`mdt_to_wei` also converts whole arrays (decimal strings, ``Decimal`` objects, or floats
with an explicit rounding mode) into int64 wei tensors, exactly; see its docstring.

Rounding modes (the ``rounding=`` arguments): ``"floor"`` (toward -inf; the chain's rule and the
default of arithmetic), ``"ceil"``, ``"down"`` (toward zero), ``"up"`` (away from zero),
``"half_even"``, ``"half_up"`` (ties away from zero), ``"half_down"`` (ties toward zero). The
``decimal`` module's names (``decimal.ROUND_FLOOR`` ...) are accepted too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from .._array import as_tensor
from .._intmath import INT64_MAX, mul_div_floor_rem
from .._validation import first_index
from ..errors import BalanceError, DTypeError, WeiOverflowError

__all__ = [
    "Token",
    "MDT",
    "Balance",
    "Rounding",
    "WEI_PER_MDT",
    "MIN_BALANCE",
    "MAX_BALANCE",
    "format_balance",
    "parse_balance",
    "mdt_to_wei",
    "wei_to_mdt",
    "validate_balance",
    "calculate_percentage",
    "sum_balances",
]

#: wei per MDT (9 decimals).
WEI_PER_MDT = 10**9
#: The smallest valid balance, in wei.
MIN_BALANCE = 0
#: The MDT supply cap, in wei (21 million MDT); pass it to :func:`validate_balance` to check it.
MAX_BALANCE = 21_000_000 * WEI_PER_MDT

Rounding = Literal["floor", "ceil", "down", "up", "half_even", "half_up", "half_down"]
_ROUNDINGS = ("floor", "ceil", "down", "up", "half_even", "half_up", "half_down")

#: Amounts beyond 10**_MAX_DIGITS smallest units are refused before any big-integer arithmetic
#: (``"1e999999999 MDT"`` would otherwise build a billion-digit integer).
_MAX_DIGITS = 60


@dataclass(frozen=True)
class Token:
    """A token: its symbol, its number of decimals and the name of its smallest unit.

    Attributes:
        symbol: e.g. ``"MDT"``.
        decimals: smallest units per token = ``10**decimals`` (9 for MDT; some chains use 18,
            where an int64 tensor overflows at about 9.2 tokens).
        smallest: the smallest unit's name, e.g. ``"wei"``.

    Example:
        >>> Token("ETH", 18).unit
        1000000000000000000
    """

    symbol: str = "MDT"
    decimals: int = 9
    smallest: str = "wei"

    def __post_init__(self) -> None:
        if isinstance(self.decimals, bool) or not isinstance(self.decimals, int) or not 0 <= self.decimals <= 30:
            raise BalanceError(f"Expected `decimals` to be an int in [0, 30], but got {self.decimals!r}.")
        for name in ("symbol", "smallest"):
            value = getattr(self, name)
            if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]+", value):
                raise BalanceError(f"Expected `{name}` to be letters only, but got {value!r}.")
        if self.symbol.lower() == self.smallest.lower():
            raise BalanceError("Expected `symbol` and `smallest` to differ.")

    @property
    def unit(self) -> int:
        """Smallest units per whole token (``10**decimals``)."""
        return 10**self.decimals


#: The default token: MDT, 9 decimals, smallest unit wei.
MDT = Token()


# --------------------------------------------------------------------------------------------
# exact rounding


def _normalize_rounding(rounding: str | None, name: str = "rounding") -> str | None:
    if rounding is None:
        return None
    if isinstance(rounding, str):
        key = rounding.lower()
        key = key[len("round_"):] if key.startswith("round_") else key
        if key in _ROUNDINGS:
            return key
    raise BalanceError(f"Expected `{name}` to be one of {', '.join(_ROUNDINGS)} (or None), but got {rounding!r}.")


def _round_fraction(value: Fraction, rounding: str) -> int:
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


def _to_fraction(x: Any, name: str) -> Fraction:
    """A plain number (int, Decimal, Fraction, float by its shortest repr, str) as a Fraction."""
    if isinstance(x, (bool, np.bool_)):
        raise DTypeError(f"Expected `{name}` to be a number, but got bool.")
    if isinstance(x, (int, np.integer)):
        return Fraction(int(x))
    if isinstance(x, Fraction):
        return x
    if isinstance(x, (float, np.floating)):
        return _decimal_fraction(_float_decimal(x, name), name)
    if isinstance(x, Decimal):
        return _decimal_fraction(x, name)
    if isinstance(x, str):
        return _decimal_fraction(_str_decimal(x, name), name)
    if isinstance(x, Balance):
        raise DTypeError(f"Expected `{name}` to be a plain number, but got a Balance.")
    raise DTypeError(f"Expected `{name}` to be an int, float, Decimal, Fraction or str, but got {type(x).__name__}.")


def _float_decimal(x: float | np.floating, name: str) -> Decimal:
    if not np.isfinite(x):
        raise BalanceError(f"Expected `{name}` to be finite, but got {x!r}.")
    return Decimal(str(x))  # str() is the shortest repr that reads back to the same float


def _str_decimal(text: str, name: str) -> Decimal:
    try:
        if "_" in text:  # Decimal would accept "1_000"; an amount should not
            raise InvalidOperation
        return Decimal(text.strip())
    except InvalidOperation:
        raise BalanceError(f"Expected `{name}` to be a decimal number, but got {text!r}.") from None


def _decimal_fraction(value: Decimal, name: str) -> Fraction:
    if not value.is_finite():
        raise BalanceError(f"Expected `{name}` to be finite, but got {value}.")
    if value.is_zero():
        return Fraction(0)
    if value.adjusted() > _MAX_DIGITS:
        raise BalanceError(f"Expected `{name}` below 10**{_MAX_DIGITS}, but got {value}.")
    if value.adjusted() < -_MAX_DIGITS:
        # far below any smallest unit: every rounding mode treats it like this stand-in
        return Fraction(-1 if value.is_signed() else 1, 10**_MAX_DIGITS)
    return Fraction(value)


def _units(x: Any, token: Token, rounding: str | None, name: str) -> int:
    """An amount in whole tokens (exact number) as an int of smallest units."""
    value = _to_fraction(x, name) * token.unit
    if value.denominator == 1:
        return value.numerator
    if rounding is None:
        raise BalanceError(
            f"`{name}` = {x!r} has more precision than one {token.smallest} (1e-{token.decimals} "
            f"{token.symbol}); pass rounding='floor' (or another mode) to round it."
        )
    return _round_fraction(value, rounding)


# --------------------------------------------------------------------------------------------
# Balance


def _mixing_error(op: str, other: object) -> DTypeError:
    return DTypeError(
        f"Cannot {op} a Balance and a bare {type(other).__name__} ({other!r}): its unit is unknown. "
        "Use Balance.from_mdt(x) for an amount in MDT or Balance.from_wei(n) for wei."
    )


def _is_zero_number(x: object) -> bool:
    return (
        isinstance(x, (int, float, Decimal, Fraction, np.integer, np.floating))
        and not isinstance(x, (bool, np.bool_))
        and x == 0
    )


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float, Decimal, Fraction, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


class Balance:
    """An exact amount of a token, stored as a Python int of its smallest unit (wei).

    ``Balance(n)`` takes an int of wei (same as :meth:`from_wei`); amounts in MDT go through
    :meth:`from_mdt`. Balances are immutable and hashable. Arithmetic:

    * ``a + b``, ``a - b`` with another Balance of the same token (``sum()`` works: ``0 + b`` is
      allowed, any other bare number raises :class:`DTypeError`);
    * ``b * x``, ``x * b``, ``b / x``, ``b // x`` with a plain number ``x`` (int, Decimal,
      Fraction, float read by its shortest repr), rounded with ``"floor"`` (the chain's rule);
      :meth:`mul` and :meth:`div` take any other ``rounding=``;
    * ``a / b`` of two Balances is their exact ratio, a :class:`~fractions.Fraction`; ``a // b``
      an int; ``a % b`` a Balance;
    * comparisons with a Balance of the same token or with zero.

    A result below zero raises :class:`BalanceError` unless an operand is already negative or the
    method is called with ``allow_negative=True`` (negative amounts are opt-in everywhere).

    Example:
        >>> b = Balance.from_mdt("1.5")
        >>> b.wei, b.mdt, str(b)
        (1500000000, Decimal('1.500000000'), '1.500000000 MDT')
        >>> sum([b, b]) / b
        Fraction(2, 1)
        >>> (b * 3 - b).mdt
        Decimal('3.000000000')
        >>> bool(Balance(0)), Balance(0) == 0
        (False, True)
    """

    __slots__ = ("_wei", "_token")

    _wei: int
    _token: Token

    def __init__(self, wei: int = 0, *, token: Token = MDT, allow_negative: bool = False) -> None:
        value = _wei_int(wei, "wei")
        if not isinstance(token, Token):
            raise DTypeError(f"Expected `token` to be a Token, but got {type(token).__name__}.")
        if value < 0 and not allow_negative:
            raise BalanceError(
                f"Expected a non-negative balance, but got {value} {token.smallest}; pass "
                "allow_negative=True where a negative amount is meant."
            )
        object.__setattr__(self, "_wei", value)
        object.__setattr__(self, "_token", token)

    # construction -------------------------------------------------------------------------
    @classmethod
    def from_wei(cls, wei: int, *, token: Token = MDT, allow_negative: bool = False) -> Balance:
        """A Balance of ``wei`` smallest units (a Python or numpy int; bool and floats refused).

        Example:
            >>> Balance.from_wei(np.int64(5)).wei
            5
        """
        return cls(wei, token=token, allow_negative=allow_negative)

    @classmethod
    def from_mdt(
        cls,
        mdt: int | float | Decimal | Fraction | str,
        *,
        rounding: Rounding | None = None,
        token: Token = MDT,
        allow_negative: bool = False,
    ) -> Balance:
        """A Balance of ``mdt`` whole tokens, exactly.

        A float is read by its shortest decimal repr (``1.005`` is 1.005, not
        1.00499999999999989...), a str as a plain decimal number (``"1e3"`` is 1000; units and
        thousands separators belong to :func:`parse_balance`).

        Args:
            mdt: the amount in whole tokens.
            rounding: how to round sub-wei precision; None (default) raises instead.
            token: the token (default MDT, 9 decimals).
            allow_negative: accept a negative amount.

        Raises:
            BalanceError: NaN, inf, an unreadable string, sub-wei precision without a rounding
                mode, or a negative amount without ``allow_negative``.
            DTypeError: bool, None, a Balance or another type.

        Example:
            >>> Balance.from_mdt(1.005).wei
            1005000000
            >>> Balance.from_mdt("1e-10", rounding="floor").wei
            0
        """
        return cls(_units(mdt, token, _normalize_rounding(rounding), "mdt"), token=token, allow_negative=allow_negative)

    @classmethod
    def _make(cls, wei: int, token: Token) -> Balance:
        balance = object.__new__(cls)
        object.__setattr__(balance, "_wei", wei)
        object.__setattr__(balance, "_token", token)
        return balance

    # read-only views ----------------------------------------------------------------------
    @property
    def wei(self) -> int:
        """The amount in the smallest unit (int)."""
        return self._wei

    @property
    def mdt(self) -> Decimal:
        """The amount in whole tokens, exactly, with ``decimals`` digits after the point."""
        return _wei_to_decimal(self._wei, self._token.decimals)

    @property
    def mdt_float(self) -> float:
        """The amount in whole tokens as a float (rounded; for display and plotting only)."""
        return float(self.mdt)

    @property
    def token(self) -> Token:
        """The token this amount is in."""
        return self._token

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Balance is immutable; build a new one with Balance.from_wei / from_mdt.")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Balance is immutable.")

    def __reduce__(self) -> tuple[Any, tuple[int, Token]]:
        return (Balance._make, (self._wei, self._token))

    # arithmetic ---------------------------------------------------------------------------
    def _same_token(self, other: Balance, op: str) -> None:
        if other._token != self._token:
            raise BalanceError(
                f"Cannot {op} {self._token.symbol} and {other._token.symbol} balances: different tokens."
            )

    def _result(self, wei: int, negative_ok: bool, op: str) -> Balance:
        if wei < 0 and not negative_ok:
            raise BalanceError(
                f"{op} gives a negative balance ({wei} {self._token.smallest}); call the method "
                "form with allow_negative=True if a negative amount is meant."
            )
        return Balance._make(wei, self._token)

    def _operand(self, other: object, op: str) -> Balance | None:
        """The other Balance, None for a zero number; raises for anything else."""
        if isinstance(other, Balance):
            self._same_token(other, op)
            return other
        if _is_zero_number(other):
            return None
        if _is_number(other):
            raise _mixing_error(op, other)
        raise DTypeError(f"Cannot {op} a Balance and a {type(other).__name__}.")

    def add(self, other: Balance, *, allow_negative: bool = False) -> Balance:
        """``self + other`` (same token)."""
        value = self._operand(other, "add")
        wei = self._wei + (value._wei if value is not None else 0)
        return self._result(wei, allow_negative or self._wei < 0 or (value is not None and value._wei < 0), "add")

    def sub(self, other: Balance, *, allow_negative: bool = False) -> Balance:
        """``self - other`` (same token); a negative result needs ``allow_negative=True``.

        Example:
            >>> Balance(1).sub(Balance(3), allow_negative=True).wei
            -2
        """
        value = self._operand(other, "subtract")
        wei = self._wei - (value._wei if value is not None else 0)
        return self._result(wei, allow_negative or self._wei < 0 or (value is not None and value._wei < 0), "subtract")

    def mul(self, factor: int | float | Decimal | Fraction | str, *, rounding: Rounding = "floor", allow_negative: bool = False) -> Balance:
        """``self * factor`` rounded to a whole wei with ``rounding`` (default floor).

        Example:
            >>> Balance(10).mul(Decimal("0.25"), rounding="half_even").wei
            2
        """
        if isinstance(factor, Balance):
            raise DTypeError("Cannot multiply two Balances (wei * wei has no meaning); multiply by a number.")
        mode = _normalize_rounding(rounding)
        assert mode is not None
        wei = _round_fraction(self._wei * _to_fraction(factor, "factor"), mode)
        return self._result(wei, allow_negative or self._wei < 0, "multiply")

    def div(self, divisor: int | float | Decimal | Fraction | str, *, rounding: Rounding = "floor", allow_negative: bool = False) -> Balance:
        """``self / divisor`` rounded to a whole wei with ``rounding`` (default floor).

        Example:
            >>> Balance(10).div(3).wei, Balance(10).div(3, rounding="ceil").wei
            (3, 4)
        """
        if isinstance(divisor, Balance):
            raise DTypeError("Use `a / b` for the ratio of two Balances (a Fraction), not div().")
        value = _to_fraction(divisor, "divisor")
        if value == 0:
            raise ZeroDivisionError("Cannot divide a Balance by zero.")
        mode = _normalize_rounding(rounding)
        assert mode is not None
        return self._result(_round_fraction(self._wei / value, mode), allow_negative or self._wei < 0, "divide")

    def __add__(self, other: object) -> Balance:
        return self.add(other)  # type: ignore[arg-type]

    def __radd__(self, other: object) -> Balance:
        return self.add(other)  # type: ignore[arg-type]

    def __sub__(self, other: object) -> Balance:
        return self.sub(other)  # type: ignore[arg-type]

    def __rsub__(self, other: object) -> Balance:
        if self._operand(other, "subtract") is None:
            return self._result(-self._wei, self._wei <= 0, "subtract")
        raise AssertionError  # pragma: no cover - _operand only returns None for numbers

    def __mul__(self, other: object) -> Balance:
        if isinstance(other, Balance) or not _is_number(other):
            return NotImplemented
        return self.mul(other)  # type: ignore[arg-type]

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> Any:
        if isinstance(other, Balance):
            self._same_token(other, "divide")
            if other._wei == 0:
                raise ZeroDivisionError("Cannot divide by a zero Balance.")
            return Fraction(self._wei, other._wei)
        if not _is_number(other):
            return NotImplemented
        return self.div(other)  # type: ignore[arg-type]

    def __floordiv__(self, other: object) -> Any:
        if isinstance(other, Balance):
            self._same_token(other, "divide")
            if other._wei == 0:
                raise ZeroDivisionError("Cannot divide by a zero Balance.")
            return self._wei // other._wei
        if not _is_number(other):
            return NotImplemented
        return self.div(other, rounding="floor")  # type: ignore[arg-type]

    def __mod__(self, other: object) -> Balance:
        if not isinstance(other, Balance):
            raise _mixing_error("take the remainder of", other)
        self._same_token(other, "divide")
        if other._wei == 0:
            raise ZeroDivisionError("Cannot divide by a zero Balance.")
        return Balance._make(self._wei % other._wei, self._token)

    def __neg__(self) -> Balance:
        """Negation is explicit, so it may give a negative balance."""
        return Balance._make(-self._wei, self._token)

    def __pos__(self) -> Balance:
        return self

    def __abs__(self) -> Balance:
        return Balance._make(abs(self._wei), self._token)

    # comparison ---------------------------------------------------------------------------
    def _compare_value(self, other: object, op: str) -> int:
        value = self._operand(other, op)
        return value._wei if value is not None else 0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Balance):
            return self._token == other._token and self._wei == other._wei
        if _is_zero_number(other):
            return self._wei == 0
        if _is_number(other):
            raise _mixing_error("compare", other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __lt__(self, other: object) -> bool:
        return self._wei < self._compare_value(other, "compare")

    def __le__(self, other: object) -> bool:
        return self._wei <= self._compare_value(other, "compare")

    def __gt__(self, other: object) -> bool:
        return self._wei > self._compare_value(other, "compare")

    def __ge__(self, other: object) -> bool:
        return self._wei >= self._compare_value(other, "compare")

    def __hash__(self) -> int:
        # equal to hash(0) for zero, which compares equal to Balance(0)
        return hash(self._wei) if self._wei == 0 else hash((self._wei, self._token))

    def __bool__(self) -> bool:
        return self._wei != 0

    # text ---------------------------------------------------------------------------------
    def __str__(self) -> str:
        return format_balance(self)

    def __repr__(self) -> str:
        token = "" if self._token == MDT else f", token={self._token!r}"
        return f"Balance.from_wei({self._wei}{token})"


def _wei_int(wei: object, name: str) -> int:
    if isinstance(wei, (bool, np.bool_)):
        raise DTypeError(f"Expected `{name}` to be an int of wei, but got bool.")
    if isinstance(wei, (int, np.integer)):
        return int(wei)
    if isinstance(wei, Tensor) and wei.ndim == 0 and not wei.is_floating_point() and wei.dtype != torch.bool:
        return int(wei)
    if isinstance(wei, (float, np.floating, Decimal, Fraction, str)):
        raise DTypeError(
            f"Expected `{name}` to be an int of wei, but got {type(wei).__name__} {wei!r}. "
            "Use Balance.from_mdt(x) for an amount in MDT."
        )
    raise DTypeError(f"Expected `{name}` to be an int of wei, but got {type(wei).__name__}.")


def _wei_to_decimal(wei: int, decimals: int) -> Decimal:
    """``wei / 10**decimals`` as an exact Decimal with ``decimals`` digits after the point."""
    sign, digits, _ = Decimal(wei).as_tuple()
    return Decimal((sign, digits, -decimals))


# --------------------------------------------------------------------------------------------
# text


def _unit_of(unit: str, token: Token, name: str = "unit") -> str:
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

    Example:
        >>> b = Balance.from_mdt("1234.5")
        >>> format_balance(b), format_balance(b, "wei"), format_balance(b, decimals=2, symbol=False)
        ('1,234.500000000 MDT', '1,234,500,000,000 wei', '1,234.50')
    """
    if not isinstance(balance, Balance):
        raise DTypeError(
            f"Expected `balance` to be a Balance, but got {type(balance).__name__}: its unit is unknown. "
            "Use Balance.from_mdt(x) or Balance.from_wei(n) first."
        )
    token = balance.token
    kind = _unit_of(token.symbol if unit is None else unit, token)
    group = "," if thousands else ""
    if kind == "smallest":
        if decimals not in (None, 0):
            raise BalanceError(f"`decimals` applies to {token.symbol}, not to {token.smallest}; got {decimals!r}.")
        text = f"{balance.wei:{group}d}"
        return f"{text} {token.smallest}" if symbol else text
    places = token.decimals if decimals is None else decimals
    if isinstance(places, bool) or not isinstance(places, int) or places < 0:
        raise BalanceError(f"Expected `decimals` to be a non-negative int, but got {decimals!r}.")
    mode = _normalize_rounding(rounding)
    assert mode is not None
    scaled = _round_fraction(Fraction(balance.wei * 10**places, token.unit), mode)  # units of 10**-places
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), 10**places)
    text = f"{sign}{whole:{group}d}" + (f".{frac:0{places}d}" if places else "")
    return f"{text} {token.symbol}" if symbol else text


_NUMBER = re.compile(
    r"""^\s*(?P<sign>[+-])?
        (?P<int>\d{1,3}(?:,\d{3})+|\d+)?
        (?:\.(?P<frac>\d*))?
        (?:[eE](?P<exp>[+-]?\d+))?
        \s*(?P<unit>[A-Za-z]+)?\s*$""",
    re.VERBOSE,
)


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
    if not isinstance(text, str):
        raise DTypeError(f"Expected `text` to be a str, but got {type(text).__name__}.")
    match = _NUMBER.match(text)
    if not text.strip():
        raise BalanceError("Cannot parse an empty string as a balance.")
    if match is None or (match["int"] is None and not match["frac"]):
        raise BalanceError(
            f"Cannot parse {text!r} as a balance: expected a number and a unit, e.g. '1,234.5 "
            f"{token.symbol}' or '1500000000 {token.smallest}'."
        )
    unit = match["unit"]
    if unit is None:
        if default_unit is None:
            raise BalanceError(
                f"{text!r} has no unit: write '{text.strip()} {token.symbol}' or "
                f"'{text.strip()} {token.smallest}', or pass default_unit='{token.symbol}'."
            )
        unit = default_unit
    kind = _unit_of(unit, token)
    number = (match["sign"] or "") + (match["int"] or "0").replace(",", "")
    if match["frac"]:
        number += "." + match["frac"]
    if match["exp"]:
        number += "e" + match["exp"]
    value = _decimal_fraction(Decimal(number), "text")
    scaled_token = token if kind == "token" else Token(token.symbol, 0, token.smallest)
    try:
        wei = _units(value, scaled_token, _normalize_rounding(rounding), "text")
    except BalanceError as exc:
        raise BalanceError(f"Cannot parse {text!r}: {exc}") from None
    return Balance(wei, token=token, allow_negative=allow_negative)


# --------------------------------------------------------------------------------------------
# conversions


def _is_array(x: object) -> bool:
    return isinstance(x, (Tensor, np.ndarray, list, tuple)) or type(x).__module__.split(".", 1)[0] == "cupy"


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
    mode = _normalize_rounding(rounding)
    if not _is_array(amount):
        return _units(amount, token, mode, "amount")
    if isinstance(amount, (list, tuple)) or (isinstance(amount, np.ndarray) and amount.dtype.kind in "OUS"):
        return _objects_to_wei(amount, token, mode)
    tensor, origin = as_tensor(amount, "amount")
    if tensor.dtype == torch.bool:
        raise DTypeError("Expected `amount` to hold numbers, but got dtype torch.bool.")
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
            value = _units(_str_decimal(item, f"amount{list(index)}"), token, mode, f"amount{list(index)}")
        else:
            value = _units(item, token, mode, f"amount{list(index)}")
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
    if token.decimals > 18:
        raise _overflow(None, token, "(any value)")
    x = tensor.to(torch.float64)
    bad = first_index(~torch.isfinite(x))
    if bad is not None:
        raise BalanceError(f"Expected `amount` to be finite, but found {float(x[bad])} at index {bad}.")
    magnitude = x.abs()
    too_big = magnitude * float(token.unit) >= float(2**63)
    bad = first_index(too_big)
    if bad is not None:
        raise _overflow(bad, token, f"({float(tensor[bad])!r} {token.symbol})")
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
    return _wei_to_decimal(_wei_int(wei, "wei"), token.decimals)


def _require_balance(value: object, name: str) -> Balance:
    if not isinstance(value, Balance):
        raise DTypeError(
            f"Expected `{name}` to be a Balance, but got {type(value).__name__}: its unit is unknown. "
            "Use Balance.from_mdt(x) or Balance.from_wei(n)."
        )
    return value


def validate_balance(
    balance: Balance,
    min_balance: Balance | None = None,
    max_balance: Balance | None = None,
) -> bool:
    """True when ``min_balance <= balance <= max_balance`` (inclusive), False otherwise.

    Every argument is a :class:`Balance` (a bare number raises :class:`DTypeError`, because its
    unit would be a guess). ``min_balance=None`` means zero (negative balances are invalid),
    ``max_balance=None`` no upper bound (pass ``Balance(MAX_BALANCE)`` for the supply cap).

    Example:
        >>> validate_balance(Balance.from_mdt(1), max_balance=Balance.from_mdt(2))
        True
        >>> validate_balance(Balance.from_mdt(-1, allow_negative=True))
        False
    """
    amount = _require_balance(balance, "balance")
    low = _require_balance(min_balance, "min_balance") if min_balance is not None else Balance._make(MIN_BALANCE, amount.token)
    if not low <= amount:
        return False
    if max_balance is not None and not amount <= _require_balance(max_balance, "max_balance"):
        return False
    return True


def calculate_percentage(amount: Balance, total: Balance, decimals: int = 2, *, rounding: Rounding = "floor") -> Decimal:
    """``amount / total * 100`` as a Decimal with ``decimals`` places (default rounding floor).

    A zero total gives ``Decimal(0)`` (with ``decimals`` places), as in the original. Values above
    100 are allowed.

    Example:
        >>> calculate_percentage(Balance.from_mdt(1), Balance.from_mdt(3))
        Decimal('33.33')
    """
    part = _require_balance(amount, "amount")
    whole = _require_balance(total, "total")
    part._same_token(whole, "compare")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0:
        raise BalanceError(f"Expected `decimals` to be a non-negative int, but got {decimals!r}.")
    mode = _normalize_rounding(rounding)
    assert mode is not None
    if whole.wei == 0:
        return _wei_to_decimal(0, decimals)
    scaled = _round_fraction(Fraction(part.wei * 100 * 10**decimals, whole.wei), mode)
    return _wei_to_decimal(scaled, decimals)


def sum_balances(balances: Iterable[Balance], *, token: Token = MDT) -> Balance:
    """The exact sum of Balances of one token; an empty iterable gives ``Balance(0, token)``.

    Example:
        >>> sum_balances([Balance(1), Balance(2)]).wei
        3
    """
    total = 0
    first_token: Token | None = None
    for position, item in enumerate(balances):
        if not isinstance(item, Balance):
            raise DTypeError(
                f"Expected `balances[{position}]` to be a Balance, but got {type(item).__name__}. "
                "Use Balance.from_mdt(x) or Balance.from_wei(n)."
            )
        if first_token is None:
            first_token = item.token
        elif item.token != first_token:
            raise BalanceError(f"`balances[{position}]` is in {item.token.symbol}, the first in {first_token.symbol}.")
        total += item.wei
    return Balance._make(total, first_token or token)

