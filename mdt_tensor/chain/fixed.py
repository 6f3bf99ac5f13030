"""The chain's fixed point (``substrate_fixed`` I32F32 / I64F64) on int64 tensors of raw bits.

The chain computes its epoch in I32F32: a signed 64-bit integer ``bits`` standing for
``bits / 2**32``. This module reproduces its rules bit for bit (``spec/yuma.md`` B.0), batched,
on any device:

* ``a * b`` is ``(a_bits * b_bits) >> 32`` (floor); the 128-bit product is split into 32-bit and
  16-bit limbs so that no int64 intermediate overflows, for *any* pair of bit patterns;
* ``a / b`` is ``(a_bits << 32) / b_bits`` truncated toward zero; the chain's ``safe_div`` gives 0
  when ``b == 0`` *or* when the quotient does not fit (it is ``checked_div().unwrap_or_default()``);
* narrowing I64F64 -> I32F32 and fixed -> int truncate toward -inf, ``round`` breaks ties away
  from zero, float -> fixed rounds to nearest (ties to even).

Why hand-written: torch has no 128-bit integers and float64 cannot hold 64-bit products, so the
wide products and quotients are done by limb arithmetic and long division on int64 tensors
(``_intmath.mul_div_floor_rem``, ``spec/exact-arithmetic.md``). Integer ``* + - // >> &`` are exact
on every device, so CPU and CUDA give the same bits.

Every function takes and returns int64 tensors of raw bits (numpy and CuPy arrays are accepted and
given back in kind), except the float conversions.

On the CPU, the 30-round exp series runs on numpy views of the tensors in cache-sized chunks on
a small thread pool: the same operator-only code as the torch path (``_exp_series``), but fresh
multi-MB int64 temporaries cost page faults and torch's CPU int64 ``where``/division kernels are
several times slower than numpy's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._array import Array, ArrayOrigin, as_tensor
from .._intmath import INT64_MAX, MAX_DIVISOR, bit_length, mul_div_floor_rem
from .._validation import check_finite, check_non_negative, normalize_dim
from .._cpu.threads import chunked_numpy
from ..errors import DTypeError, ValueRangeError

__all__ = [
    "FRAC_BITS",
    "ONE",
    "U16_MAX",
    "I32F32_MAX",
    "I32F32_MIN",
    "fx_from_int",
    "fx_from_u16_proportion",
    "fx_to_u16",
    "fx_from_float",
    "fx_to_float",
    "fx_mul",
    "fx_mul_checked",
    "fx_div",
    "fx_saturating_div",
    "fx_div_checked",
    "fx_round",
    "fx_exp",
    "fx_safe_exp",
    "fx_exp_safe",
    "fx_normalize",
    "fx_row_normalize",
    "fx_col_normalize",
    "fx_col_max_upscale",
    "normalize_i64f64_to_i32f32",
    "fx_bonds_ema_alpha",
]

#: Fraction bits of I32F32.
FRAC_BITS = 32
#: The bits of I32F32 ``1.0``.
ONE = 1 << FRAC_BITS
#: ``u16::MAX``, the scale of the chain's stored proportions.
U16_MAX = 65535
#: Largest and smallest I32F32 bit patterns (``I32F32::max_value()`` / ``min_value()``).
I32F32_MAX = INT64_MAX
I32F32_MIN = -(2**63)

_LOW32 = (1 << 32) - 1
_LOW16 = (1 << 16) - 1
#: ``e`` as substrate_fixed's ``exp`` returns it for an input of exactly 1: the U2F126 constant
#: truncated to I9F23 (``consts::E >> 103``), then widened to I32F32.
_E_BITS = (0xADF85458A2BB4A9AAFDC5620273D3CF1 >> 103) << 9


def _bits(x: Array, name: str) -> tuple[Tensor, ArrayOrigin]:
    """Read raw fixed-point bits: an integer tensor, widened to int64."""
    tensor, origin = as_tensor(x, name)
    if tensor.dtype.is_floating_point or tensor.dtype == torch.bool:
        raise DTypeError(
            f"Expected `{name}` to hold raw fixed-point bits in an integer dtype, but got {tensor.dtype}."
        )
    return tensor.to(torch.int64), origin


# ----------------------------------------------------------------------------- conversions


def fx_from_int(values: Array) -> Array:
    """Integers as I32F32 bits (``I32F32::saturating_from_num``): ``v << 32``, saturated.

    Args:
        values: integers, any shape ``(*)``.

    Returns:
        int64 bits ``(*)``; values outside ``[-2**31, 2**31 - 1]`` saturate to the I32F32 range.

    Example:
        >>> fx_from_int(torch.tensor([0, 1, -2]))
        tensor([          0,  4294967296, -8589934592])
    """
    v, origin = _bits(values, "values")
    high = v > (2**31 - 1)
    low = v < -(2**31)
    out = v.clamp(-(2**31), 2**31 - 1) << FRAC_BITS
    out = out.masked_fill(high, I32F32_MAX).masked_fill(low, I32F32_MIN)
    return origin.wrap(out)


def fx_from_u16_proportion(values: Array, *, validate: bool = True) -> Array:
    """u16 values as I32F32 proportions ``v / 65535`` (the chain's ``u16_proportion_to_fixed``).

    ``I32F32::from_num(v).safe_div(I32F32::from_num(65535))``: ``trunc(v * 2**32 / 65535)``.

    Args:
        values: integers in ``[0, 65535]``, shape ``(*)``.
        validate: check the range (reads the data).

    Returns:
        int64 bits ``(*)``.

    Example:
        >>> fx_from_u16_proportion(torch.tensor([0, 32767, 65535]))
        tensor([         0, 2147450879, 4294967296])
    """
    v, origin = _bits(values, "values")
    if validate:
        _check_u16(v, "values")
    return origin.wrap(torch.div(v << FRAC_BITS, U16_MAX, rounding_mode="trunc"))


def _check_u16(v: Tensor, name: str) -> None:
    from .._validation import check_in_range

    check_in_range(v, name, 0, U16_MAX)


def fx_to_u16(bits: Array) -> Array:
    """I32F32 proportions as stored u16 (the chain's ``fixed_proportion_to_u16``).

    ``saturating_to_num::<u16>(x.saturating_mul(65535))``: ``floor(x * 65535)`` clamped to
    ``[0, 65535]`` (negative values give 0, values above 1 give 65535).

    Args:
        bits: I32F32 bits ``(*)``.

    Returns:
        int64 ``(*)`` in ``[0, 65535]``.

    Example:
        >>> fx_to_u16(fx_from_u16_proportion(torch.tensor([0, 1, 32767, 65535])))
        tensor([    0,     0, 32766, 65535])
    """
    x, origin = _bits(bits, "bits")
    # Clamping first is exact: anything above 2**32 * 65536 / 65535 already saturates to 65535.
    product = x.clamp(0, 2 * ONE) * U16_MAX
    return origin.wrap((product >> FRAC_BITS).clamp_(0, U16_MAX))


def fx_from_float(values: Array, *, validate: bool = True) -> Array:
    """Floats as I32F32 bits, rounded to nearest with ties to even (``from_num`` on f64).

    The scaling by ``2**32`` is exact in float64, so the only rounding is the final one. Values
    outside the I32F32 range saturate (``saturating_from_num``).

    Args:
        values: floats ``(*)``; float32 inputs are widened to float64 first (exactly).
        validate: reject NaN and inf (reads the data).

    Returns:
        int64 bits ``(*)``.

    Example:
        >>> fx_from_float(torch.tensor([0.5, -1.0, 0.1], dtype=torch.float64))
        tensor([ 2147483648, -4294967296,   429496730])
    """
    v, origin = as_tensor(values, "values")
    v = v.to(torch.float64)
    if validate:
        check_finite(v, "values")
    scaled = torch.round(v * float(ONE))  # torch.round: half to even
    too_high = scaled >= 2.0**63
    too_low = scaled < -(2.0**63)
    out = scaled.clamp(-(2.0**63), 2.0**63 - 2048).to(torch.int64)
    out = out.masked_fill(too_high, I32F32_MAX).masked_fill(too_low, I32F32_MIN)
    return origin.wrap(out)


def fx_to_float(bits: Array, dtype: torch.dtype = torch.float64) -> Array:
    """I32F32 bits as floats ``bits / 2**32`` (float64 by default; exact up to 2**53 bits).

    Example:
        >>> fx_to_float(torch.tensor([2147483648, -4294967296]))
        tensor([ 0.5000, -1.0000], dtype=torch.float64)
    """
    x, origin = _bits(bits, "bits")
    return origin.wrap((x.to(torch.float64) / float(ONE)).to(dtype))


# ----------------------------------------------------------------------------- multiply


def _mul_hi_lo(a: Any, b: Any) -> tuple[Any, Any]:
    """``floor(a * b / 2**32)`` as ``high * 2**32 + low`` with ``0 <= low < 2**32``.

    ``a = ah * 2**32 + al`` with ``ah = a >> 32`` (signed) and ``0 <= al < 2**32``; likewise b:

        a*b / 2**32 = ah*bh * 2**32 + ah*bl + al*bh + al*bl / 2**32

    ``ah*bl`` and ``al*bh`` fit int64 (|.| < 2**63); ``al*bl`` can reach 2**64, so its high half
    comes from 16-bit limbs of ``al``. Every partial term is split into 32-bit halves before it
    is added, so nothing overflows. Operators only: works on torch tensors and numpy arrays.
    """
    ah, al = a >> 32, a & _LOW32
    bh, bl = b >> 32, b & _LOW32
    # floor(al*bl / 2**32) = floor((al_hi*bl + floor(al_lo*bl / 2**16)) / 2**16)
    low_product = ((al >> 16) * bl + (((al & _LOW16) * bl) >> 16)) >> 16
    cross1 = ah * bl
    cross2 = al * bh
    low_sum = (cross1 & _LOW32) + (cross2 & _LOW32) + low_product  # < 3 * 2**32
    high = ah * bh + (cross1 >> 32) + (cross2 >> 32) + (low_sum >> 32)
    return high, low_sum & _LOW32


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
    x, origin = _bits(a, "a")
    y, _ = _bits(b, "b")
    x, y = torch.broadcast_tensors(x, y)
    if x.device.type == "cpu":
        product, overflow = chunked_numpy(_mul_parts, x, y)
    else:
        product, overflow = _mul_parts(x, y, torch)
    return origin.wrap(product), origin.wrap(overflow)


def _mul_parts(a: Any, b: Any, xp: Any) -> tuple[Any, Any]:
    """Saturated ``floor(a * b / 2**32)`` and its overflow mask; torch tensors or numpy arrays."""
    high, low = _mul_hi_lo(a, b)
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


# ----------------------------------------------------------------------------- divide


def _frac_quotient(r: Tensor, d: Tensor, d_bits: int) -> Tensor:
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


def _div_parts(a: Tensor, b: Tensor, b_bits: int | None) -> tuple[Tensor, Tensor]:
    """Truncated ``a * 2**32 / b`` and an overflow mask (also true where ``b == 0``)."""
    a, b = torch.broadcast_tensors(a, b)
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
    frac = _frac_quotient(rem, ub, max(b_bits, 1))
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
    x, origin = _bits(a, "a")
    y, _ = _bits(b, "b")
    quotient, failed = _div_parts(x, y, b_bits)
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
    x, origin = _bits(a, "a")
    y, _ = _bits(b, "b")
    quotient, failed = _div_parts(x, y, b_bits)
    overflow = failed & (y != 0)
    negative = (x < 0) != (y < 0)
    saturated = torch.where(negative, torch.full_like(x, I32F32_MIN), torch.full_like(x, I32F32_MAX))
    return origin.wrap(torch.where(overflow, saturated, quotient))


# ----------------------------------------------------------------------------- round, exp


def fx_round(bits: Array) -> Array:
    """I32F32 ``round()``: nearest integer, ties away from zero (saturated at the range ends).

    Example:
        >>> fx_round(torch.tensor([3 << 31, -(3 << 31), (1 << 32) + 1]))  # 1.5, -1.5, 1+ulp
        tensor([ 8589934592, -8589934592,  4294967296])
    """
    x, origin = _bits(bits, "bits")
    floor_part = x >> FRAC_BITS
    frac = x & _LOW32
    half = 1 << (FRAC_BITS - 1)
    up = torch.where(x >= 0, frac >= half, frac > half)
    integer = floor_part + up.to(torch.int64)
    out = (integer.clamp(max=2**31 - 1) << FRAC_BITS).masked_fill(integer >= 2**31, I32F32_MAX)
    return origin.wrap(out)


def _exp_series(operand: Any, xp: Any) -> tuple[Any, Any]:
    """``1 + x + sum_{i=2}^{31} term_i`` for ``x = operand >= 0``, and where anything overflowed.

    Written with operators only, so it runs on torch tensors and, on the CPU, on numpy views of
    them (``xp`` is ``torch`` or ``numpy``): torch's CPU kernels for int64 ``where`` and division
    are several times slower than numpy's, and this loop is 30 rounds of limb products.
    """
    failed = operand < 0  # -(-2**63) wrapped
    result = operand + ONE
    failed = failed | (result < operand)  # the plain add wrapped
    term = operand
    for i in range(2, FRAC_BITS):
        high, low = _mul_hi_lo(term, operand)
        failed = failed | (high >= 2**31) | (high < -(2**31))
        # (term << 32) / (i << 32) is trunc(term / i); term >= 0, so floor division is the same
        term = ((xp.clip(high, -(2**31), 2**31 - 1) << 32) | low) // i
        total = result + term
        failed = failed | ((term > 0) & (total < result))
        result = total
    return result, failed


def _one_over(bits: Tensor) -> Tensor:
    """I32F32 ``1 / x`` for ``x >= 1.0`` (``(1 << 64) // bits``, which never overflows there).

    ``2**64 = 2 * 2**63`` and ``2**63 = INT64_MAX + 1``: divide INT64_MAX, carry the 1 into the
    remainder, then double: one native division instead of a 32-round long division.
    Entries below 1.0 (only where the series already failed) give garbage that is masked.
    """
    divisor = bits.clamp(min=ONE)
    half, rem = torch.div(INT64_MAX, divisor, rounding_mode="floor"), INT64_MAX % divisor + 1
    carry = rem >= divisor
    half = half + carry.to(torch.int64)
    rem = torch.where(carry, rem - divisor, rem)
    return 2 * half + (rem >= divisor - rem).to(torch.int64)  # 2*rem >= divisor, without overflow


def _exp_parts(x: Tensor) -> tuple[Tensor, Tensor]:
    """substrate_fixed ``transcendental::exp::<I32F32, I32F32>`` and its error mask.

    The series ``1 + x + sum_{i=2}^{31} term_i`` with ``term_i = checked_div(checked_mul(term_{i-1},
    |x|), i)`` in I32F32, inverted (``1 / result``) for negative inputs; any overflow is an error.
    ``exp(0) = 1`` and ``exp(1) = e`` (truncated to 23 fraction bits) are special-cased as there.
    """
    negative = x < 0
    operand = torch.where(negative, -x, x)
    if operand.device.type == "cpu":
        result, failed = chunked_numpy(_exp_series, operand)
    else:
        result, failed = _exp_series(operand, torch)
    result = torch.where(negative, _one_over(result), result)
    result = torch.where(x == 0, torch.full_like(result, ONE), result)
    result = torch.where(x == ONE, torch.full_like(result, _E_BITS), result)
    failed = failed & (x != 0) & (x != ONE)
    return result.masked_fill(failed, 0), failed


def fx_exp(bits: Array) -> tuple[Array, Array]:
    """substrate_fixed's fixed-point ``exp`` on I32F32, bit for bit, with its error mask.

    Args:
        bits: I32F32 bits ``(*)``.

    Returns:
        ``(value, failed)``: ``exp(x)`` in I32F32 bits (0 where it failed) and a bool mask that
        is true where the chain's ``exp`` returns ``Err`` (an intermediate overflowed; inputs
        above about 21.5 in magnitude).

    Example:
        >>> value, failed = fx_exp(fx_from_int(torch.tensor([0, 2, -2, 100])))
        >>> fx_to_float(value), failed
        (tensor([1.0000, 7.3891, 0.1353, 0.0000], dtype=torch.float64), tensor([False, False, False,  True]))
    """
    x, origin = _bits(bits, "bits")
    value, failed = _exp_parts(x)
    return origin.wrap(value), origin.wrap(failed)


def fx_safe_exp(bits: Array) -> Array:
    """The chain's ``safe_exp`` (``math.rs``): ``exp(x)``, or 0 where ``exp`` fails.

    This is the variant the liquid-alpha ``alpha_sigmoid`` calls; its input is not clamped, so
    a large positive argument gives 0 (and the sigmoid then gives 1).

    Example:
        >>> fx_to_float(fx_safe_exp(fx_from_int(torch.tensor([1, 30]))))
        tensor([2.7183, 0.0000], dtype=torch.float64)
    """
    x, origin = _bits(bits, "bits")
    return origin.wrap(_exp_parts(x)[0])


def fx_exp_safe(bits: Array) -> Array:
    """The chain's ``exp_safe`` (``math.rs``): input clamped to ``[-20, 20]``, then ``exp``.

    On an error it returns 0 for a non-positive input and ``I32F32::max_value()`` otherwise
    (within the clamp the series does not overflow, so this does not happen in practice).

    Example:
        >>> fx_exp_safe(fx_from_int(torch.tensor([-30, 30])))  # the series stops at i = 31
        tensor([                  8, 2066907302758576256])
    """
    x, origin = _bits(bits, "bits")
    clamped = x.clamp(-20 * ONE, 20 * ONE)
    value, failed = _exp_parts(clamped)
    fallback = torch.where(clamped <= 0, torch.zeros_like(value), torch.full_like(value, I32F32_MAX))
    return origin.wrap(torch.where(failed, fallback, value))


# ----------------------------------------------------------------------------- normalisation


def _normalize_by(x: Tensor, total: Tensor, use: Tensor) -> Tensor:
    quotient, _ = _div_parts(x, total, None)
    return torch.where(use, quotient, x)


def fx_normalize(bits: Array, dim: int = -1) -> Array:
    """The chain's ``inplace_normalize`` along ``dim``: ``x_i.safe_div(sum)``, unless the sum is 0.

    A slice whose sum is 0 is returned unchanged; each element is divided by the sum with the
    truncating I32F32 division (not multiplied by a reciprocal). Also the chain's
    ``inplace_col_normalize`` (``dim=-2``), which uses the same "sum != 0" rule.

    Args:
        bits: I32F32 bits ``(*, N)`` (any shape; reduced along ``dim``).
        dim: the axis to normalise.

    Returns:
        int64 bits, the input's shape.

    Example:
        >>> fx_normalize(fx_from_int(torch.tensor([[1, 1, 1], [0, 0, 0]])))
        tensor([[1431655765, 1431655765, 1431655765],
                [         0,          0,          0]])
    """
    x, origin = _bits(bits, "bits")
    dim = normalize_dim(dim, x.ndim)
    total = x.sum(dim, keepdim=True)
    return origin.wrap(_normalize_by(x, total, total != 0))


def fx_row_normalize(bits: Array) -> Array:
    """The chain's ``inplace_row_normalize(_sparse)``: rows ``(*, V, N)`` divided by their sum
    where the sum is positive (rows with a sum <= 0 stay unchanged).

    Example:
        >>> fx_row_normalize(fx_from_int(torch.tensor([[1, 3], [0, 0]])))
        tensor([[1073741824, 3221225472],
                [         0,          0]])
    """
    x, origin = _bits(bits, "bits")
    total = x.sum(-1, keepdim=True)
    return origin.wrap(_normalize_by(x, total, total > 0))


def fx_col_normalize(bits: Array) -> Array:
    """The chain's ``inplace_col_normalize(_sparse)``: columns of ``(*, V, N)`` divided by their
    sum where the sum is not 0.

    The chain accumulates the column sum with ``saturating_add``; here the sum is a plain int64
    sum, which is the same unless a column sums past 2**31 in I32F32 (never for proportions).

    Example:
        >>> fx_col_normalize(fx_from_int(torch.tensor([[1, 0], [3, 0]])))
        tensor([[1073741824,          0],
                [3221225472,          0]])
    """
    x, origin = _bits(bits, "bits")
    total = x.sum(-2, keepdim=True)
    return origin.wrap(_normalize_by(x, total, total != 0))


def fx_col_max_upscale(bits: Array) -> Array:
    """The chain's ``inplace_col_max_upscale(_sparse)``: each column of ``(*, V, N)`` divided by its
    maximum (the maximum taken from 0 up, so all-negative columns are left alone), where the
    maximum is not 0.

    Example:
        >>> fx_col_max_upscale(fx_from_int(torch.tensor([[1, 0], [4, 0]])))
        tensor([[1073741824,          0],
                [4294967296,          0]])
    """
    x, origin = _bits(bits, "bits")
    col_max = x.amax(-2, keepdim=True).clamp(min=0) if x.shape[-2] else x.sum(-2, keepdim=True)
    return origin.wrap(_normalize_by(x, col_max, col_max != 0))


def normalize_i64f64_to_i32f32(values: Array, dim: int = -1, *, validate: bool = True) -> Array:
    """Normalise non-negative integers in I64F64 and truncate to I32F32, as the epoch does with stake.

    The chain converts each raw stake to I64F64, divides by the I64F64 sum (``inplace_normalize_64``:
    ``floor(S_i * 2**64 / sum)``) and narrows to I32F32 by dropping 32 fraction bits, which is
    ``floor(S_i * 2**32 / sum(S))`` exactly. An all-zero slice gives zeros.

    Args:
        values: non-negative integers (raw stake in rao), ``(*, N)``; the sum along ``dim`` must
            fit int64.
        dim: the axis to normalise.
        validate: check signs and that the sum does not overflow (reads the data).

    Returns:
        I32F32 bits, the input's shape.

    Example:
        >>> normalize_i64f64_to_i32f32(torch.tensor([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]))[0]  # 0.1
        tensor(429496729)
    """
    v, origin = _bits(values, "values")
    dim = normalize_dim(dim, v.ndim)
    if validate:
        check_non_negative(v, "values")
    total = v.sum(dim, keepdim=True)
    if validate and v.numel() and bool((total < v.amax(dim, keepdim=True)).any()):
        raise ValueRangeError(f"Expected the sum of `values` along dim {dim} to fit int64, but it overflows.")
    total_bits = bit_length(total)
    if total_bits <= MAX_DIVISOR.bit_length():
        quotient, _ = mul_div_floor_rem(v, torch.full_like(v, ONE), total, b_bits=33, c_bits=total_bits)
    else:
        safe_total = torch.where(total > 0, total, torch.ones_like(total))
        whole = torch.div(v, safe_total, rounding_mode="floor")  # 0 or 1
        rem = v - whole * safe_total
        quotient = (whole << 32) + _frac_quotient(rem, safe_total.expand_as(v), total_bits)
        quotient = quotient.masked_fill(total == 0, 0)
    return origin.wrap(quotient)


def fx_bonds_ema_alpha(bonds_moving_average: int | Array) -> int | Array:
    """The EMA coefficient of original-Yuma bonds: ``1 - bma / 1e6`` as the chain computes it.

    ``I64F64(bma).safe_div(I64F64(1_000_000))`` truncated to I32F32 is
    ``floor(bma * 2**32 / 1e6)``; alpha is ``I32F32(1).saturating_sub(that)``.

    Args:
        bonds_moving_average: the hyperparameter (per million), an int or an integer tensor
            (one per subnet).

    Returns:
        I32F32 bits of alpha (an int for an int input).

    Example:
        >>> fx_bonds_ema_alpha(900_000)  # 0.1
        429496730
    """
    if isinstance(bonds_moving_average, int):
        ratio = (bonds_moving_average << 64) // 1_000_000 >> 32
        return max(ONE - ratio, I32F32_MIN)
    v, origin = _bits(bonds_moving_average, "bonds_moving_average")
    ratios = torch.div(v << 32, 1_000_000, rounding_mode="floor")
    return origin.wrap(ONE - ratios)
