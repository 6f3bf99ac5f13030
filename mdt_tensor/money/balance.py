"""Exact token amounts: :class:`Token` and :class:`Balance`, one Python ``int`` of wei.

A Balance never goes through a binary float: a bare ``int`` or ``float`` is never silently taken
as wei or MDT (only a literal zero mixes in, so ``sum()`` and ``b > 0`` work), a float is read by
its shortest decimal repr, and sub-wei precision is an error unless a rounding mode is named.
``docs/design/balance.md`` lists what this fixes in the ModernTensor SDK's and Bittensor's
``Balance``. Text forms live in :mod:`.text`, array conversions in :mod:`.units`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np

from .._constants import WEI_PER_MDT
from .._validation import check_int
from ..errors import BalanceError, DTypeError
from ._rounding import (
    Rounding,
    check_wei_range,
    normalize_rounding,
    round_fraction,
    rounding_mode,
    to_fraction,
    to_units,
    wei_int,
    wei_to_decimal,
)

__all__ = [
    "Token",
    "MDT",
    "Balance",
    "Rounding",
    "WEI_PER_MDT",
    "MIN_BALANCE",
    "MAX_BALANCE",
]

#: The smallest valid balance, in wei.
MIN_BALANCE = 0
#: The MDT supply cap, in wei (21 million MDT); pass it to :func:`validate_balance` to check it.
MAX_BALANCE = 21_000_000 * WEI_PER_MDT


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
        check_int(self.decimals, "decimals", low=0, high=30)
        for name in ("symbol", "smallest"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise DTypeError(f"Expected `{name}` to be a str, but got {type(value).__name__}.")
            if not re.fullmatch(r"[A-Za-z]+", value):
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
# Balance


def _mixing_error(op: str, other: object) -> DTypeError:
    return DTypeError(
        f"Cannot {op} a Balance and a bare {type(other).__name__} ({other!r}): its unit is unknown. "
        "Use Balance.from_mdt(x) for an amount in MDT or Balance.from_wei(n) for wei."
    )


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float, Decimal, Fraction, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _is_zero_number(x: object) -> bool:
    return _is_number(x) and x == 0


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
        value = wei_int(wei, "wei")
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
        return cls(to_units(mdt, token, normalize_rounding(rounding), "mdt"), token=token, allow_negative=allow_negative)

    @classmethod
    def _make(cls, wei: int, token: Token) -> Balance:
        check_wei_range(wei, "wei")  # results of arithmetic too (b * 10**70)
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
        return wei_to_decimal(self._wei, self._token.decimals)

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
        mode = rounding_mode(rounding)
        wei = round_fraction(self._wei * to_fraction(factor, "factor"), mode)
        return self._result(wei, allow_negative or self._wei < 0, "multiply")

    def div(self, divisor: int | float | Decimal | Fraction | str, *, rounding: Rounding = "floor", allow_negative: bool = False) -> Balance:
        """``self / divisor`` rounded to a whole wei with ``rounding`` (default floor).

        Example:
            >>> Balance(10).div(3).wei, Balance(10).div(3, rounding="ceil").wei
            (3, 4)
        """
        if isinstance(divisor, Balance):
            raise DTypeError("Use `a / b` for the ratio of two Balances (a Fraction), not div().")
        value = to_fraction(divisor, "divisor")
        if value == 0:
            raise ZeroDivisionError("Cannot divide a Balance by zero.")
        mode = rounding_mode(rounding)
        return self._result(round_fraction(self._wei / value, mode), allow_negative or self._wei < 0, "divide")

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
        from .text import format_balance  # here only: text.py builds on this module

        return format_balance(self)

    def __repr__(self) -> str:
        token = "" if self._token == MDT else f", token={self._token!r}"
        return f"Balance.from_wei({self._wei}{token})"


def require_balance(value: object, name: str) -> Balance:
    """``value`` if it is a Balance; else a DTypeError saying that a bare number has no unit."""
    if not isinstance(value, Balance):
        raise DTypeError(
            f"Expected `{name}` to be a Balance, but got {type(value).__name__}: its unit is unknown. "
            "Use Balance.from_mdt(x) or Balance.from_wei(n)."
        )
    return value
