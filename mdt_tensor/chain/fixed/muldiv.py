"""I32F32 multiply and divide, exact for every pair of int64 bit patterns.

torch has no 128-bit integers, so the wide product is split into 32- and 16-bit limbs and the wide
quotient done by ``_intmath.mul_div_floor_rem`` or binary long division; integer operators are
exact on every device. The CPU runs the limb product on numpy views (``_cpu.threads``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..._array import Array
from ..._cpu.threads import chunked_numpy
from ..._intmath import MAX_DIVISOR, bit_length, mul_div_floor_rem
from .core import FRAC_BITS, I32F32_MAX, I32F32_MIN, LOW16, LOW32, ONE, bits_of, broadcast_bits

__all__ = ["fx_mul", "fx_mul_checked", "fx_div", "fx_saturating_div", "fx_div_checked"]


def mul_hi_lo(a: Any, b: Any) -> tuple[Any, Any]:
    """``floor(a * b / 2**32)`` as ``high * 2**32 + low`` with ``0 <= low < 2**32``.

    ``a = ah * 2**32 + al`` with ``ah = a >> 32`` (signed) and ``0 <= al < 2**32``; likewise b:

        a*b / 2**32 = ah*bh * 2**32 + ah*bl + al*bh + al*bl / 2**32

    ``ah*bl`` and ``al*bh`` fit int64 (|.| < 2**63); ``al*bl`` can reach 2**64, so its high half
    comes from 16-bit limbs of ``al``. Every partial term is split into 32-bit halves before it
    is added, so nothing overflows. Operators only: works on torch tensors and numpy arrays.
    """
    ah, al = a >> 32, a & LOW32
    bh, bl = b >> 32, b & LOW32
    # floor(al*bl / 2**32) = floor((al_hi*bl + floor(al_lo*bl / 2**16)) / 2**16)
    low_product = ((al >> 16) * bl + (((al & LOW16) * bl) >> 16)) >> 16
    cross1 = ah * bl
    cross2 = al * bh
    low_sum = (cross1 & LOW32) + (cross2 & LOW32) + low_product  # < 3 * 2**32
    high = ah * bh + (cross1 >> 32) + (cross2 >> 32) + (low_sum >> 32)
    return high, low_sum & LOW32


def fx_mul_checked(a: Array, b: Array) -> tuple[Array, Array]:
    """I32F32 product ``floor(a * b / 2**32)`` and a mask of where it does not fit.

    Args:
        a, b: I32F32 bits, broadcastable; any int64 bit patterns.

    Returns:
        ``(product, overflow)``: the saturated product (as :func:`fx_mul`) and a bool mask that
        is true where the exact product lies outside the I32F32 range (where the chain's
        ``checked_mul`` returns ``None``).

    Example:
        >>> p, over = fx_mul_checked(torch.tensor([2**62]), torch.tensor([2**62]))
        >>> p, over
        (tensor([9223372036854775807]), tensor([True]))
    """
    x, origin = bits_of(a, "a")
    y, _ = bits_of(b, "b")
    x, y = broadcast_bits(x, y)
    if x.device.type == "cpu":
        product, overflow = chunked_numpy(_mul_parts, x, y)
    else:
        product, overflow = _mul_parts(x, y, torch)
    return origin.wrap(product), origin.wrap(overflow)


def _mul_parts(a: Any, b: Any, xp: Any) -> tuple[Any, Any]:
    """Saturated ``floor(a * b / 2**32)`` and its overflow mask; torch tensors or numpy arrays."""
    high, low = mul_hi_lo(a, b)
    too_high = high >= 2**31
    too_low = high < -(2**31)
    product = (xp.clip(high, -(2**31), 2**31 - 1) << 32) | low
    product = xp.where(too_high, I32F32_MAX, xp.where(too_low, I32F32_MIN, product))
    return product, too_high | too_low


def fx_mul(a: Array, b: Array) -> Array:
    """I32F32 ``saturating_mul``: ``(a_bits * b_bits) >> 32`` (floor), saturated to the range.

    Exact for every pair of int64 bit patterns (the 128-bit product is split into limbs).
    Within range this is also the chain's plain ``*`` and ``checked_mul``.

    Args:
        a, b: I32F32 bits, broadcastable ``(*)``.

    Returns:
        int64 bits, the broadcast shape.

    Example:
        >>> half = torch.tensor([2**31]); third = torch.tensor([1431655765])
        >>> fx_mul(half, third)  # floor(0.5 * 0.33333) in bits
        tensor([715827882])
        >>> fx_mul(torch.tensor([-1]), torch.tensor([1]))  # floor, not truncation
        tensor([-1])
    """
    return fx_mul_checked(a, b)[0]


def frac_quotient(r: Tensor, d: Tensor, d_bits: int) -> Tensor:
    """``floor(r * 2**32 / d)`` for ``0 <= r < d`` and ``1 <= d < 2**63``, exactly."""
    if d_bits <= MAX_DIVISOR.bit_length():
        q, _ = mul_div_floor_rem(r, torch.full_like(r, ONE), d, b_bits=33, c_bits=d_bits)
        return q
    # Binary long division without ever forming 2*r (which may exceed int64): with r < d,
    # 2r >= d  <=>  r >= d - r, and then 2r - d = r - (d - r).
    q = torch.zeros_like(r)
    for _ in range(FRAC_BITS):
        gap = d - r
        one = r >= gap
        r = torch.where(one, r - gap, r + r)
        q = (q << 1) | one.to(torch.int64)
    return q


def div_parts(a: Tensor, b: Tensor, b_bits: int | None) -> tuple[Tensor, Tensor]:
    """Truncated ``a * 2**32 / b`` and an overflow mask (also true where ``b == 0``)."""
    a, b = broadcast_bits(a, b)
    negative = (a < 0) != (b < 0)
    b_is_min = b == I32F32_MIN
    # |b| fits int64 except for b == -2**63, which is handled on its own below.
    ub = torch.where((b == 0) | b_is_min, torch.ones_like(b), b.abs())
    # |a| may be 2**63: divide |a| - 1 (always representable) and carry the 1 into the remainder.
    a_neg = a < 0
    ua_minus = torch.where(a_neg, -(a + 1), a)
    whole = torch.div(ua_minus, ub, rounding_mode="floor")
    rem = ua_minus - whole * ub + a_neg.to(torch.int64)
    wrap = (rem == ub).to(torch.int64)
    rem = rem.masked_fill(wrap.bool(), 0)
    if b_bits is None:
        b_bits = bit_length(ub)
    frac = frac_quotient(rem, ub, max(b_bits, 1))
    # magnitude = (whole + wrap) * 2**32 + frac (whole + wrap may be 2**63: compare, never add);
    # it fits when whole + wrap < 2**31, or (negative) when it equals 2**63 exactly.
    fits = whole < 2**31 - wrap
    is_min = negative & (whole == 2**31 - wrap) & (frac == 0)
    whole = torch.where(fits, whole + wrap, whole)
    magnitude = (whole.clamp(max=2**31 - 1) << 32) | frac
    quotient = torch.where(negative, -magnitude, magnitude)
    quotient = quotient.masked_fill(is_min, I32F32_MIN)
    overflow = ~(fits | is_min)
    # b == -2**63: |a| / 2**63 * 2**32 = |a| >> 31, truncated; the sign flips.
    by_min = -torch.div(a, 2**31, rounding_mode="trunc")
    quotient = torch.where(b_is_min, by_min, quotient)
    overflow = torch.where(b_is_min, torch.zeros_like(overflow), overflow)
    zero = b == 0
    return quotient.masked_fill(overflow | zero, 0), overflow | zero


def fx_div_checked(a: Array, b: Array, *, b_bits: int | None = None) -> tuple[Array, Array]:
    """I32F32 quotient ``(a << 32) / b`` truncated toward zero, and where it fails.

    Args:
        a, b: I32F32 bits, broadcastable; any int64 bit patterns.
        b_bits: an upper bound on the bit length of ``|b|`` (skips a host sync when given).

    Returns:
        ``(quotient, failed)``: the quotient (0 where it failed) and a bool mask that is true where
        ``b == 0`` or the quotient does not fit I32F32 (where ``checked_div`` returns ``None``).

    Example:
        >>> fx_div_checked(torch.tensor([1 << 32, 1 << 32]), torch.tensor([0, 3 << 32]))
        (tensor([         0, 1431655765]), tensor([ True, False]))
    """
    x, origin = bits_of(a, "a")
    y, _ = bits_of(b, "b")
    quotient, failed = div_parts(x, y, b_bits)
    return origin.wrap(quotient), origin.wrap(failed)


def fx_div(a: Array, b: Array, *, b_bits: int | None = None) -> Array:
    """The chain's ``safe_div`` on I32F32: ``(a << 32) / b`` truncated toward zero, else 0.

    ``safe_div`` is ``checked_div(..).unwrap_or_default()``: 0 when ``b == 0`` and also 0 when the
    quotient does not fit I32F32. Exact for every pair of int64 bit patterns.

    Args:
        a, b: I32F32 bits, broadcastable ``(*)``.
        b_bits: an upper bound on the bit length of ``|b|`` (skips a host sync when given).

    Returns:
        int64 bits, the broadcast shape.

    Example:
        >>> fx_div(torch.tensor([1 << 32, -(1 << 32), 5]), torch.tensor([3 << 32, 3 << 32, 0]))
        tensor([ 1431655765, -1431655765,           0])
    """
    return fx_div_checked(a, b, b_bits=b_bits)[0]


def fx_saturating_div(a: Array, b: Array, *, b_bits: int | None = None) -> Array:
    """I32F32 ``saturating_div``: truncated quotient, saturated to the range when it overflows.

    The chain's ``saturating_div`` panics on a zero divisor; here ``b == 0`` gives 0.

    Example:
        >>> fx_saturating_div(torch.tensor([1 << 40]), torch.tensor([1]))
        tensor([9223372036854775807])
    """
    x, origin = bits_of(a, "a")
    y, _ = bits_of(b, "b")
    quotient, failed = div_parts(x, y, b_bits)
    overflow = failed & (y != 0)
    negative = (x < 0) != (y < 0)
    saturated = torch.where(negative, torch.full_like(x, I32F32_MIN), torch.full_like(x, I32F32_MAX))
    return origin.wrap(torch.where(overflow, saturated, quotient))
