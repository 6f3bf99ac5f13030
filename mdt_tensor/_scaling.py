"""Exact power-of-two scaling: the overflow-free form of float reductions.

A sum, a mean, a norm or a window average of finite floats can overflow although every input
and the answer are representable (``4 x 1e38`` in float32). Every such reduction in the package
is scale-invariant or linear, so it can run on the values multiplied by a power of two that
brings the largest ``|x|`` of its row below 1, and be scaled back where it is linear. Scaling by
a power of two is exact (it only moves the exponent), except for values that fall below the
smallest normal float, which are then at least ``2**-126`` (float32) or ``2**-1022`` (float64)
times smaller than the largest value of their row: below the rounding of any sum they enter.
So the scaled computation gives the same bits as the plain one wherever the plain one does not
overflow.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__: list[str] = []


def row_exponent(x: Tensor, dim: int) -> Tensor:
    """``e`` (keepdim along ``dim``, int) with ``max |x| * 2**-e`` in ``[0.5, 1)`` for rows whose
    largest ``|x|`` is at least 1 and finite; 0 for every other row (nothing to scale down)."""
    low, high = torch.aminmax(x, dim=dim, keepdim=True)
    largest = torch.maximum(high, low.neg())
    exponent = torch.frexp(largest).exponent
    return torch.where(torch.isfinite(largest), exponent.clamp(min=0), torch.zeros_like(exponent))


def _multiply_by_power_of_two(x: Tensor, exponent: Tensor) -> Tensor:
    """``x * 2**exponent`` in place, in two factors: ``2**128`` (float32) or ``2**1024`` (float64)
    is not a float, while ``2**64`` and its reciprocal are, so each factor and each product is exact."""
    exponent = exponent.to(x.device)
    half = torch.div(exponent, 2, rounding_mode="floor")
    ones = torch.ones(exponent.shape, dtype=x.dtype, device=x.device)
    return x.mul_(torch.ldexp(ones, half)).mul_(torch.ldexp(ones, exponent - half))


def scale_down_rows(x: Tensor, dim: int = -1) -> tuple[Tensor, Tensor]:
    """``(x * 2**-e, e)`` per row along ``dim`` (see :func:`row_exponent`): a new tensor whose rows
    have ``max |x| < 1``, and the exponent to scale a linear result back with (``* 2**e``).

    ``x`` must be a float tensor with at least one element along ``dim``.
    """
    exponent = row_exponent(x, dim)
    return _multiply_by_power_of_two(x.clone(), exponent.neg()), exponent


def scale_back(y: Tensor, exponent: Tensor) -> Tensor:
    """``y * 2**exponent`` in place (undoes :func:`scale_down_rows` for a linear result)."""
    return _multiply_by_power_of_two(y, exponent)
