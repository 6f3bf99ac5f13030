"""I32F32 bits: the constants, reading raw bits, and the conversions from and to ints, u16 and floats.

A value ``v`` is held as the int64 ``floor(v * 2**32)``; the conversions follow ``substrate_fixed``'s
rules (narrowing truncates toward -inf, ``round`` breaks ties away from zero, float -> fixed rounds
to nearest, ties to even) and the chain's u16 storage helpers.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._array import Array, ArrayOrigin, as_tensor
from ..._constants import U16_MAX
from ..._intmath import INT64_MAX
from ..._validation import check_finite, check_u16
from ...errors import DTypeError, ShapeError

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
    "fx_round",
]

#: Fraction bits of I32F32.
FRAC_BITS = 32
#: The bits of I32F32 ``1.0``.
ONE = 1 << FRAC_BITS
#: Largest and smallest I32F32 bit patterns (``I32F32::max_value()`` / ``min_value()``).
I32F32_MAX = INT64_MAX
I32F32_MIN = -(2**63)

LOW32 = (1 << 32) - 1
LOW16 = (1 << 16) - 1


def bits_of(x: Array, name: str) -> tuple[Tensor, ArrayOrigin]:
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
    v, origin = bits_of(values, "values")
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
    v, origin = bits_of(values, "values")
    if validate:
        check_u16(v, "values")
    return origin.wrap(torch.div(v << FRAC_BITS, U16_MAX, rounding_mode="trunc"))


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
    x, origin = bits_of(bits, "bits")
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
    x, origin = bits_of(bits, "bits")
    return origin.wrap((x.to(torch.float64) / float(ONE)).to(dtype))


def fx_round(bits: Array) -> Array:
    """I32F32 ``round()``: nearest integer, ties away from zero (saturated at the range ends).

    Example:
        >>> fx_round(torch.tensor([3 << 31, -(3 << 31), (1 << 32) + 1]))  # 1.5, -1.5, 1+ulp
        tensor([ 8589934592, -8589934592,  4294967296])
    """
    x, origin = bits_of(bits, "bits")
    floor_part = x >> FRAC_BITS
    frac = x & LOW32
    half = 1 << (FRAC_BITS - 1)
    up = torch.where(x >= 0, frac >= half, frac > half)
    integer = floor_part + up.to(torch.int64)
    out = (integer.clamp(max=2**31 - 1) << FRAC_BITS).masked_fill(integer >= 2**31, I32F32_MAX)
    return origin.wrap(out)


def broadcast_bits(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """``x`` and ``y`` broadcast to one shape; a :class:`ShapeError` naming both shapes if they cannot be."""
    try:
        return tuple(torch.broadcast_tensors(x, y))  # type: ignore[return-value]
    except RuntimeError:
        raise ShapeError(
            f"Expected `a` and `b` to broadcast, but got shapes {tuple(x.shape)} and {tuple(y.shape)}."
        ) from None
