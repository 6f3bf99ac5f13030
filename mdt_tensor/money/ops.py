"""Functions of several Balances: a range check, a percentage and an exact sum.

Every argument must be a :class:`~mdt_tensor.money.balance.Balance`: a bare number raises
:class:`~mdt_tensor.errors.DTypeError`, because its unit (wei or MDT) would be a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction

from .._validation import check_int
from ..errors import BalanceError
from ._rounding import MAX_DIGITS, Rounding, round_fraction, rounding_mode, wei_to_decimal
from .balance import MDT, MIN_BALANCE, Balance, Token, require_balance

__all__ = ["validate_balance", "calculate_percentage", "sum_balances"]


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
    amount = require_balance(balance, "balance")
    low = require_balance(min_balance, "min_balance") if min_balance is not None else Balance._make(MIN_BALANCE, amount.token)
    if not low <= amount:
        return False
    if max_balance is not None and not amount <= require_balance(max_balance, "max_balance"):
        return False
    return True


def calculate_percentage(amount: Balance, total: Balance, decimals: int = 2, *, rounding: Rounding = "floor") -> Decimal:
    """``amount / total * 100`` as a Decimal with ``decimals`` places (default rounding floor).

    A zero total gives ``Decimal(0)`` (with ``decimals`` places), as in the original. Values above
    100 are allowed.

    Raises:
        DTypeError: ``amount`` or ``total`` is not a Balance, or ``decimals`` not an int.
        ValueRangeError: ``decimals`` outside [0, 80] or an unknown ``rounding``.
        BalanceError: the two Balances are in different tokens.

    Example:
        >>> calculate_percentage(Balance.from_mdt(1), Balance.from_mdt(3))
        Decimal('33.33')
    """
    part = require_balance(amount, "amount")
    whole = require_balance(total, "total")
    part._same_token(whole, "compare")
    places = check_int(decimals, "decimals", low=0, high=MAX_DIGITS)
    mode = rounding_mode(rounding)
    if whole.wei == 0:
        return wei_to_decimal(0, places)
    scaled = round_fraction(Fraction(part.wei * 100 * 10**places, whole.wei), mode)
    return wei_to_decimal(scaled, places)


def sum_balances(balances: Iterable[Balance], *, token: Token = MDT) -> Balance:
    """The exact sum of Balances of one token; an empty iterable gives ``Balance(0, token)``.

    Example:
        >>> sum_balances([Balance(1), Balance(2)]).wei
        3
    """
    total = 0
    first_token: Token | None = None
    for position, item in enumerate(balances):
        require_balance(item, f"balances[{position}]")
        if first_token is None:
            first_token = item.token
        elif item.token != first_token:
            raise BalanceError(f"`balances[{position}]` is in {item.token.symbol}, the first in {first_token.symbol}.")
        total += item.wei
    return Balance._make(total, first_token or token)
