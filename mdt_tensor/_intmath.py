"""Exact ``floor(a * b / c)`` on int64 tensors when ``a * b`` does not fit in 64 bits.

Money (``money/apportion``) and the chain's fixed point (``chain/fixed``) both need this product-then-
divide, batched and with the same bits on CPU and CUDA. Python ints would be exact but neither
batched nor on a GPU, and float64 is neither exact above 2**53 nor order-independent, so the
division is done by long division over k-bit digits of ``b`` (``docs/design/apportion.md``):
only int64 ``* + - // >> &`` are used, and every intermediate stays below 2**63.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .errors import ValueRangeError

__all__: list[str] = []

INT64_MAX = 2**63 - 1

#: The largest divisor ``mul_div_floor_rem`` accepts: long division needs ``c * 2**(k+1) <= 2**63``
#: with at least one bit per digit.
MAX_DIVISOR = 2**61 - 1


def bit_length(values: Tensor) -> int:
    """Bits needed for the largest value of a non-negative int64 tensor (0 for an empty one).

    This reads one number back to the host (a GPU sync); callers that know a bound pass it on.
    """
    if values.numel() == 0:
        return 0
    return int(values.max()).bit_length()


def mul_div_floor_rem(
    a: Tensor,
    b: Tensor,
    c: Tensor,
    *,
    b_bits: int | None = None,
    c_bits: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Quotient and remainder of ``a * b`` divided by ``c``, exactly, in int64.

    Args:
        a: non-negative int64, broadcastable against ``b`` and ``c``.
        b: non-negative int64.
        c: non-negative int64, at most :data:`MAX_DIVISOR`; where ``c == 0`` both outputs are 0
            (the chain's ``safe_div``).
        b_bits: an upper bound on the bit length of ``b`` (skips a host sync when given).
        c_bits: an upper bound on the bit length of ``c`` (skips a host sync when given).

    Returns:
        ``(q, r)`` with ``q = floor(a * b / c)`` and ``r = (a * b) mod c``, broadcast shape.
        The caller guarantees that ``q`` fits int64 (it does whenever ``b <= c``).

    Example:
        >>> a = torch.tensor([2**62]); b = torch.tensor([3]); c = torch.tensor([4])
        >>> mul_div_floor_rem(a, b, c)
        (tensor([3458764513820540928]), tensor([0]))
    """
    if c_bits is None:
        c_bits = bit_length(c)
    if c_bits > MAX_DIVISOR.bit_length():
        raise ValueRangeError(f"Expected a divisor below 2**61, but got one of {c_bits} bits.")
    if b_bits is None:
        b_bits = bit_length(b)
    safe_c = torch.where(c > 0, c, torch.ones_like(c))
    whole, part = torch.div(a, safe_c, rounding_mode="floor"), a % safe_c  # a = whole*c + part
    quotient = whole * b
    digit_bits = 62 - c_bits
    digit_mask = (1 << digit_bits) - 1
    remainder = torch.zeros_like(quotient)
    low = torch.zeros_like(quotient)
    for shift in reversed(range(0, max(b_bits, 1), digit_bits)):
        digit = (b >> shift) & digit_mask
        # remainder < c and part*digit < c * 2**digit_bits, so t < c * 2**(digit_bits+1) <= 2**63.
        t = (remainder << digit_bits) + part * digit
        d = torch.div(t, safe_c, rounding_mode="floor")
        remainder = t - d * safe_c
        low = (low << digit_bits) + d
    quotient = quotient + low
    zero = c == 0
    return quotient.masked_fill(zero, 0), remainder.masked_fill(zero, 0)
