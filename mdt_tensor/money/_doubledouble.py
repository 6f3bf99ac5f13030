"""Double-double arithmetic on float64 tensors: a value is a pair ``hi + lo`` (about 104 bits).

Built only from correctly rounded IEEE float64 ``+ - * /`` (Dekker's and Knuth's error-free
transformations, no fused multiply-add), so the bits are the same on CPU and CUDA. The
apportionment's wide-range path uses it for shares that one int64 computation cannot hold
(``docs/design/apportion.md``).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__: list[str] = []

#: A double-double: ``(hi, lo)`` float64 tensors of one shape with ``|lo| <= ulp(hi) / 2``.
DoubleDouble = tuple[Tensor, Tensor]

_SPLITTER = float(2**27 + 1)


def two_sum(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """a + b = s + e exactly (Knuth; no condition on the magnitudes)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def fast_two_sum(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """a + b = s + e exactly (Dekker); requires |a| >= |b| (or a == 0)."""
    s = a + b
    return s, b - (s - a)


def split(a: Tensor) -> tuple[Tensor, Tensor]:
    """a = hi + lo with each half holding at most 26 significant bits (Veltkamp)."""
    c = a * _SPLITTER
    hi = c - (c - a)
    return hi, a - hi


def two_prod(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """a * b = p + e exactly (Dekker; no FMA, so the same bits wherever it runs)."""
    p = a * b
    a_hi, a_lo = split(a)
    b_hi, b_lo = split(b)
    e = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, e


def dd_add(a: DoubleDouble, b: DoubleDouble) -> DoubleDouble:
    """The double-double sum a + b."""
    s, e = two_sum(a[0], b[0])
    return fast_two_sum(s, e + (a[1] + b[1]))


def dd_mul_double(a: DoubleDouble, b: Tensor) -> DoubleDouble:
    """The double-double product of a double-double and a float64."""
    p, e = two_prod(a[0], b)
    return fast_two_sum(p, e + a[1] * b)


def dd_div(a: DoubleDouble, b: DoubleDouble) -> DoubleDouble:
    """a / b to about 104 bits (one correction step of the long-division kind)."""
    q1 = a[0] / b[0]
    prod = dd_mul_double(b, q1)
    rem = dd_add(a, (-prod[0], -prod[1]))
    q2 = rem[0] / b[0]
    prod2 = dd_mul_double(b, q2)
    rem = dd_add(rem, (-prod2[0], -prod2[1]))
    q3 = rem[0] / b[0]
    hi, lo = fast_two_sum(q1, q2)
    return dd_add((hi, lo), (q3, torch.zeros_like(q3)))


def int_to_dd(x: Tensor) -> DoubleDouble:
    """An int64 tensor as an exact double-double."""
    high = (x >> 32).to(torch.float64) * float(2**32)
    low = (x & 0xFFFFFFFF).to(torch.float64)
    return two_sum(high, low)
