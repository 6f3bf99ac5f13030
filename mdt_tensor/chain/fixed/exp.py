"""substrate_fixed's ``exp`` on I32F32, bit for bit, and the chain's two safe wrappers.

The 30-round series is written with operators only, so on the CPU it runs on numpy views of the
tensors in cache-sized chunks on the shared thread pool (``_cpu.threads``), the same code as the
torch path; ``docs/design/fixed-point.md`` says why.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..._array import Array
from ..._cpu.threads import chunked_numpy
from ..._intmath import INT64_MAX
from .core import FRAC_BITS, I32F32_MAX, ONE, bits_of
from .muldiv import mul_hi_lo

__all__ = ["fx_exp", "fx_safe_exp", "fx_exp_safe"]

#: ``e`` as substrate_fixed's ``exp`` returns it for an input of exactly 1: the U2F126 constant
#: truncated to I9F23 (``consts::E >> 103``), then widened to I32F32.
_E_BITS = (0xADF85458A2BB4A9AAFDC5620273D3CF1 >> 103) << 9


def _exp_series(operand: Any, xp: Any) -> tuple[Any, Any]:
    """``1 + x + sum_{i=2}^{31} term_i`` for ``x = operand >= 0``, and where anything overflowed.

    Written with operators only, so it runs on torch tensors and, on the CPU, on numpy views of
    them (``xp`` is ``torch`` or ``numpy``; why: ``docs/design/fixed-point.md``).
    """
    failed = operand < 0  # -(-2**63) wrapped
    result = operand + ONE
    failed = failed | (result < operand)  # the plain add wrapped
    term = operand
    for i in range(2, FRAC_BITS):
        high, low = mul_hi_lo(term, operand)
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
        >>> from mdt_tensor.chain.fixed import fx_from_int, fx_to_float
        >>> value, failed = fx_exp(fx_from_int(torch.tensor([0, 2, -2, 100])))
        >>> fx_to_float(value), failed
        (tensor([1.0000, 7.3891, 0.1353, 0.0000], dtype=torch.float64), tensor([False, False, False,  True]))
    """
    x, origin = bits_of(bits, "bits")
    value, failed = _exp_parts(x)
    return origin.wrap(value), origin.wrap(failed)


def fx_safe_exp(bits: Array) -> Array:
    """The chain's ``safe_exp`` (``math.rs``): ``exp(x)``, or 0 where ``exp`` fails.

    This is the variant the liquid-alpha ``alpha_sigmoid`` calls; its input is not clamped, so
    a large positive argument gives 0 (and the sigmoid then gives 1).

    Example:
        >>> from mdt_tensor.chain.fixed import fx_from_int, fx_to_float
        >>> fx_to_float(fx_safe_exp(fx_from_int(torch.tensor([1, 30]))))
        tensor([2.7183, 0.0000], dtype=torch.float64)
    """
    x, origin = bits_of(bits, "bits")
    return origin.wrap(_exp_parts(x)[0])


def fx_exp_safe(bits: Array) -> Array:
    """The chain's ``exp_safe`` (``math.rs``): input clamped to ``[-20, 20]``, then ``exp``.

    On an error it returns 0 for a non-positive input and ``I32F32::max_value()`` otherwise
    (within the clamp the series does not overflow, so this does not happen in practice).

    Example:
        >>> from mdt_tensor.chain.fixed import fx_from_int
        >>> fx_exp_safe(fx_from_int(torch.tensor([-30, 30])))  # the series stops at i = 31
        tensor([                  8, 2066907302758576256])
    """
    x, origin = bits_of(bits, "bits")
    clamped = x.clamp(-20 * ONE, 20 * ONE)
    value, failed = _exp_parts(clamped)
    fallback = torch.where(clamped <= 0, torch.zeros_like(value), torch.full_like(value, I32F32_MAX))
    return origin.wrap(torch.where(failed, fallback, value))
