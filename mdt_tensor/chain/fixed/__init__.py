"""The chain's fixed point (``substrate_fixed`` I32F32 / I64F64) on int64 tensors of raw bits.

The chain computes its epoch in I32F32: a signed 64-bit ``bits`` standing for ``bits / 2**32``.
These functions reproduce its rules bit for bit, batched, on any device: ``a * b`` is the floor
of the 128-bit product over ``2**32``, ``a / b`` truncates toward zero, ``safe_div`` gives 0 on a
zero divisor or an overflow. Every function takes and returns int64 tensors of raw bits (numpy and
CuPy arrays are given back in kind), except the float conversions. Modules: ``core`` (constants,
conversions), ``muldiv``, ``exp``, ``normalize``; why limb arithmetic: ``docs/design/fixed-point.md``.
"""

from __future__ import annotations

from .core import (
    FRAC_BITS,
    I32F32_MAX,
    I32F32_MIN,
    ONE,
    U16_MAX,
    fx_from_float,
    fx_from_int,
    fx_from_u16_proportion,
    fx_round,
    fx_to_float,
    fx_to_u16,
)
from .exp import fx_exp, fx_exp_safe, fx_safe_exp
from .muldiv import fx_div, fx_div_checked, fx_mul, fx_mul_checked, fx_saturating_div
from .normalize import (
    fx_bonds_ema_alpha,
    fx_col_max_upscale,
    fx_col_normalize,
    fx_normalize,
    fx_row_normalize,
    normalize_i64f64_to_i32f32,
)

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
