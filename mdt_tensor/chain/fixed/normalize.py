"""The chain's normalisations on I32F32 bits (row, column, max-upscale) and the I64F64 stake normalisation.

Each divides with the chain's truncating ``safe_div`` (not a multiply by a reciprocal) and keeps
the chain's rule for a zero (or non-positive) sum; ``fx_bonds_ema_alpha`` is the original bonds'
EMA coefficient, computed through I64F64 as the chain does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._array import Array
from ..._intmath import MAX_DIVISOR, bit_length, mul_div_floor_rem
from ..._validation import check_ndim, check_non_negative, normalize_dim
from ...errors import ValueRangeError
from .core import I32F32_MIN, ONE, bits_of
from .muldiv import div_parts, frac_quotient

__all__ = [
    "fx_normalize",
    "fx_row_normalize",
    "fx_col_normalize",
    "fx_col_max_upscale",
    "normalize_i64f64_to_i32f32",
    "fx_bonds_ema_alpha",
]


def _normalize_by(x: Tensor, total: Tensor, use: Tensor) -> Tensor:
    quotient, _ = div_parts(x, total, None)
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
        >>> from mdt_tensor.chain.fixed import fx_from_int
        >>> fx_normalize(fx_from_int(torch.tensor([[1, 1, 1], [0, 0, 0]])))
        tensor([[1431655765, 1431655765, 1431655765],
                [         0,          0,          0]])
    """
    x, origin = bits_of(bits, "bits")
    dim = normalize_dim(dim, x.ndim)
    total = x.sum(dim, keepdim=True)
    return origin.wrap(_normalize_by(x, total, total != 0))


def fx_row_normalize(bits: Array) -> Array:
    """The chain's ``inplace_row_normalize(_sparse)``: rows ``(*, V, N)`` divided by their sum
    where the sum is positive (rows with a sum <= 0 stay unchanged).

    Example:
        >>> from mdt_tensor.chain.fixed import fx_from_int
        >>> fx_row_normalize(fx_from_int(torch.tensor([[1, 3], [0, 0]])))
        tensor([[1073741824, 3221225472],
                [         0,          0]])
    """
    x, origin = bits_of(bits, "bits")
    total = x.sum(-1, keepdim=True)
    return origin.wrap(_normalize_by(x, total, total > 0))


def fx_col_normalize(bits: Array) -> Array:
    """The chain's ``inplace_col_normalize(_sparse)``: columns of ``(*, V, N)`` divided by their
    sum where the sum is not 0.

    The chain accumulates the column sum with ``saturating_add``; here the sum is a plain int64
    sum, which is the same unless a column sums past 2**31 in I32F32 (never for proportions).

    Example:
        >>> from mdt_tensor.chain.fixed import fx_from_int
        >>> fx_col_normalize(fx_from_int(torch.tensor([[1, 0], [3, 0]])))
        tensor([[1073741824,          0],
                [3221225472,          0]])
    """
    x, origin = bits_of(bits, "bits")
    check_ndim(x, "bits", 2, "(*, V, N)")
    total = x.sum(-2, keepdim=True)
    return origin.wrap(_normalize_by(x, total, total != 0))


def fx_col_max_upscale(bits: Array) -> Array:
    """The chain's ``inplace_col_max_upscale(_sparse)``: each column of ``(*, V, N)`` divided by its
    maximum (the maximum taken from 0 up, so all-negative columns are left alone), where the
    maximum is not 0.

    Example:
        >>> from mdt_tensor.chain.fixed import fx_from_int
        >>> fx_col_max_upscale(fx_from_int(torch.tensor([[1, 0], [4, 0]])))
        tensor([[1073741824,          0],
                [4294967296,          0]])
    """
    x, origin = bits_of(bits, "bits")
    check_ndim(x, "bits", 2, "(*, V, N)")
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
    v, origin = bits_of(values, "values")
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
        quotient = (whole << 32) + frac_quotient(rem, safe_total.expand_as(v), total_bits)
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
    v, origin = bits_of(bonds_moving_average, "bonds_moving_average")
    ratios = torch.div(v << 32, 1_000_000, rounding_mode="floor")
    return origin.wrap(ONE - ratios)
