"""``clip_weights`` and ``apply_weight_decay``: streaming element-wise updates, ``out=`` allowed.

Both check the input before writing anything (so ``out=weights`` is safe) and run as a few whole
torch calls: on a busy machine each extra call waits for torch's threads.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._array import Array, as_tensor, check_same_device
from .._validation import (
    check_finite,
    check_fits_dtype,
    check_float_or_int,
    check_non_negative,
    check_number,
    normalize_dim,
)
from ..errors import ShapeError, ValueRangeError
from ._common import BlockChecker, empty_like, finish, out_buffer, read_weights, result_dtype

__all__ = ["clip_weights", "apply_weight_decay"]


def clip_weights(
    weights: Array,
    min_weight: float = 0.0,
    max_weight: float = 1.0,
    *,
    out: Array | None = None,
    validate: bool = True,
) -> Array:
    """Clamp every weight into ``[min_weight, max_weight]``.

    Args:
        weights: ``(*, N)`` weights.
        min_weight: lower bound (may be ``-inf``).
        max_weight: upper bound (may be ``inf``); must be ``>= min_weight``.
        out: optional buffer of the result's shape and dtype (may be ``weights`` itself).
        validate: check that ``weights`` is finite.

    Returns:
        ``(*, N)`` clipped weights (float32 for integer input).

    Raises:
        ValueRangeError: ``min_weight > max_weight``, a NaN bound, a finite bound beyond the
            result dtype's range, or non-finite weights.
        DTypeError: bool, string or object input, or a non-numeric bound.

    Example:
        >>> clip_weights(torch.tensor([-0.5, 0.25, 3.0]))
        tensor([0.0000, 0.2500, 1.0000])
    """
    low = check_number(min_weight, "min_weight", finite=False)
    high = check_number(max_weight, "max_weight", finite=False)
    if low > high:
        raise ValueRangeError(f"Expected `min_weight` <= `max_weight`, but got {low} > {high}.")
    w, origin = read_weights(weights, "weights")
    result, out_target = out_buffer(out, w, origin)
    dtype = result_dtype(origin, w.dtype)
    # A bound beyond the dtype's range: an upper one clips nothing (inf), a lower one would make
    # every weight unrepresentable (and torch.clamp raises a bare RuntimeError for both).
    check_fits_dtype(low, "min_weight", dtype)
    check_fits_dtype(high, "max_weight", dtype)
    BlockChecker(w, validate).finite(w)
    torch.clamp(w, low, high, out=result)
    return finish(result, origin, out, out_target)


def apply_weight_decay(
    weights: Array,
    decay_factor: float,
    steps: Array | float = 1,
    min_weight: float = 0.0,
    *,
    dim: int = -1,
    out: Array | None = None,
    validate: bool = True,
) -> Array:
    """Multiplicative decay: ``weights * decay_factor ** steps``, with a floor for surviving weights.

    ``steps`` is a number or a ``(*)`` tensor of per-row ages (the weights' shape with ``dim``
    removed, or anything that broadcasts to it), applied along ``dim``.

    The floor: a weight that was non-zero and decays below ``min_weight`` is **raised to**
    ``min_weight``, so a weight that is present never falls below the floor; a zero weight stays
    exactly zero (the original turned zeros into ``min_weight``).

    Args:
        weights: ``(*, N)`` non-negative weights.
        decay_factor: the factor per step, in ``[0, 1]`` (``0 ** 0 == 1``).
        steps: number of steps, ``>= 0``; a number or a ``(*)`` array of per-row steps (may be
            fractional).
        min_weight: the floor, ``>= 0``.
        dim: the neuron axis along which ``steps`` is broadcast.
        out: optional buffer of the result's shape and dtype (may be ``weights`` itself).
        validate: check that ``weights`` and ``steps`` are finite and non-negative.

    Returns:
        ``(*, N)`` decayed weights (float32 for integer input).

    Raises:
        ValueRangeError: ``decay_factor`` outside ``[0, 1]``, negative or non-finite
            ``min_weight``, negative/NaN/inf weights or steps (``validate=True``).
        ShapeError: ``steps`` does not broadcast to the row shape; bad ``dim``.
        DTypeError: bool, string or object input.

    Example:
        >>> apply_weight_decay(torch.tensor([[0.8, 0.0, 0.1]]), 0.5, steps=2, min_weight=0.05)
        tensor([[0.2000, 0.0000, 0.0500]])
        >>> apply_weight_decay(torch.ones(2, 2), 0.5, steps=torch.tensor([0, 1]))
        tensor([[1.0000, 1.0000],
                [0.5000, 0.5000]])
    """
    factor = check_number(decay_factor, "decay_factor", low=0.0, high=1.0)
    floor = check_number(min_weight, "min_weight", low=0.0)
    w, origin = read_weights(weights, "weights")
    check_fits_dtype(floor, "min_weight", result_dtype(origin, w.dtype))
    dim = normalize_dim(dim, w.ndim)
    result, out_target = out_buffer(out, w, origin)
    checker = BlockChecker(w, validate)
    checker.finite(w)
    checker.non_negative(w)
    scale = _decay_scale(steps, factor, w, dim, validate)
    if floor > 0:
        # max(w * factor ** steps, floor * sign(w)): the floor for w > 0, and zero stays zero
        # (w >= 0). Arithmetic, not a boolean mask (torch's masked ops are several times slower on
        # CPU); sign(w) is taken before `result`, which may be `w` itself, is written.
        lifted = torch.sign(w, out=empty_like(w)).mul_(floor)
        torch.maximum(torch.mul(w, scale, out=result), lifted, out=result)
    else:
        torch.mul(w, scale, out=result)
    return finish(result, origin, out, out_target)


def _decay_scale(steps: Array | float, factor: float, w: Tensor, dim: int, validate: bool) -> float | Tensor:
    """``factor ** steps``: a float for a number of steps, else a tensor that broadcasts against ``w`` along ``dim``."""
    if isinstance(steps, (bool, int, float, np.bool_, np.integer, np.floating)):
        return factor ** check_number(steps, "steps", low=0.0)
    count, _ = as_tensor(steps, "steps")
    check_float_or_int(count, "steps")
    check_same_device(weights=w, steps=count)
    rows_shape = tuple(w.shape[:dim] + w.shape[dim + 1 :])
    try:
        fits = torch.broadcast_shapes(tuple(count.shape), rows_shape) == torch.Size(rows_shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise ShapeError(
            f"Expected `steps` to broadcast to the row shape {rows_shape} (weights {tuple(w.shape)} "
            f"without dim {dim}), but got shape {tuple(count.shape)}."
        )
    count = count.to(torch.float64)
    if validate:
        check_finite(count, "steps")
        check_non_negative(count, "steps")
    scale = torch.pow(torch.tensor(factor, dtype=torch.float64, device=w.device), count).to(w.dtype)
    return scale.expand(rows_shape).unsqueeze(dim)
