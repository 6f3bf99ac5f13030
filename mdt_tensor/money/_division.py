"""Exact ``floor(T * q / Q)`` and ``(T * q) mod Q`` on int64 tensors: the apportionment's hot loop.

It is :func:`mdt_tensor._intmath.mul_div_floor_rem`'s long division specialised to one total T
and one divisor Q (a row sum below 2**61) per row, planned once per row and run with in-place
operations into reusable buffers, so that every intermediate stays below 2**63
(``docs/design/apportion.md``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .._intmath import bit_length

__all__: list[str] = []

#: Elements per column block on CPU (see :class:`Blocks`): 1 MiB of int64.
CACHE_BLOCK = 1 << 17


class Blocks:
    """Column blocks of a ``(B, N)`` problem and three reusable int64 scratch buffers.

    On CPU each block holds at most ``CACHE_BLOCK`` elements, so the temporaries of the
    elementwise passes stay in cache and are allocated once (fresh large buffers are
    page-faulted in again on every call, which cost more than the arithmetic). A GPU takes
    one block. The results do not depend on the blocking.
    """

    def __init__(self, like: Tensor) -> None:
        rows, n = like.shape
        cols = n if like.device.type != "cpu" else max(1, min(n, CACHE_BLOCK // max(rows, 1)))
        self.slices = [slice(start, min(start + cols, n)) for start in range(0, n, cols)]
        self._rows = rows
        self._buffers = [torch.empty(rows * min(cols, n), dtype=torch.int64, device=like.device) for _ in range(3)]

    def scratch(self, block: slice, which: int) -> Tensor:
        """Contiguous ``(B, width)`` int64 scratch buffer number ``which`` (0-2) for ``block``."""
        width = block.stop - block.start
        return self._buffers[which][: self._rows * width].view(self._rows, width)


class Division(NamedTuple):
    """``floor(T * q / Q)`` as long division: T = whole * Q + part, q in ``steps`` digits of
    ``digit_bits`` bits. The constants are per row ``(B, 1)``, per element ``(K,)``, or Python
    ints for one row on CPU (then ``x - d * Q`` is one scaled add instead of an addcmul)."""

    divisor: Tensor | int
    whole: Tensor | int
    part: Tensor | int
    digit_bits: int
    steps: int


def plan_division(totals: Tensor, row_sum: Tensor, q_bits: int, as_ints: bool, per_row: bool = True) -> Division:
    """The long division of ``T * q_i`` by the row sum Q (< 2**61) for q below ``2**q_bits``.

    Constants as Python ints (``as_ints``, one row), ``(B, 1)`` columns (``per_row``) or as given.
    """
    divisor = row_sum.clamp(min=1)
    whole = torch.div(totals, divisor, rounding_mode="floor")
    part = totals - whole * divisor
    digit_bits = 62 - bit_length(row_sum)
    steps = -(-max(q_bits, 1) // digit_bits)
    if as_ints:
        return Division(int(divisor[0]), int(whole[0]), int(part[0]), digit_bits, steps)
    if per_row:
        return Division(divisor[:, None], whole[:, None], part[:, None], digit_bits, steps)
    return Division(divisor, whole, part, digit_bits, steps)


def _add_multiple(target: Tensor, factor: Tensor, scale: Tensor | int, sign: int = 1) -> None:
    """target += sign * factor * scale, in place (exact int64)."""
    if isinstance(scale, int):
        target.add_(factor, alpha=sign * scale)
    else:
        target.addcmul_(factor, scale, value=sign)


def divide(plan: Division, q: Tensor, quotient: Tensor, remainder: Tensor, digit: Tensor) -> None:
    """``quotient = floor(T * q / Q)`` and ``remainder = (T * q) mod Q`` for int64 ``q``, exactly.

    This is ``mul_div_floor_rem``'s long division specialised to one total and divisor per row
    and written with in-place operations into the given buffers (it is the hot loop): ``part *
    q`` is divided by Q over k-bit digits of q, most significant first, so that every
    intermediate stays below 2**63.
    """
    digit_bits, mask = plan.digit_bits, (1 << plan.digit_bits) - 1
    top_shift = (plan.steps - 1) * digit_bits
    # the most significant digit needs no mask because q < 2**q_bits
    if top_shift:
        torch.bitwise_right_shift(q, top_shift, out=remainder).mul_(plan.part)
    else:
        torch.mul(q, plan.part, out=remainder)
    torch.div(remainder, plan.divisor, rounding_mode="floor", out=quotient)
    _add_multiple(remainder, quotient, plan.divisor, -1)  # in [0, Q)
    for step in reversed(range(plan.steps - 1)):
        shift = step * digit_bits
        torch.bitwise_right_shift(q, shift, out=digit).bitwise_and_(mask)
        # remainder * 2**k + digit * part < Q * 2**k + Q * 2**k <= 2**63
        _add_multiple(remainder.bitwise_left_shift_(digit_bits), digit, plan.part)
        torch.div(remainder, plan.divisor, rounding_mode="floor", out=digit)
        _add_multiple(remainder, digit, plan.divisor, -1)
        quotient.bitwise_left_shift_(digit_bits).add_(digit)
    _add_multiple(quotient, q, plan.whole)


def row_bit_lengths(values: Tensor) -> Tensor:
    """Bit length of each (B,) int64 value below 2**62 (exact: frexp of an exact float64)."""
    return torch.frexp((values >> 10).to(torch.float64)).exponent.to(torch.int64) + 10
