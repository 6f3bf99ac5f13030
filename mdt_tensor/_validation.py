"""Argument checks shared by every tensor function.

Cheap checks (ndim, shape, dtype, device, ``dim``) always run. Value checks (NaN, inf, sign,
range) read the data, which forces a GPU sync; public functions run them only when their
``validate`` argument is true (the default).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .errors import DTypeError, ShapeError, ValueRangeError

__all__: list[str] = []


def first_index(mask: Tensor) -> tuple[int, ...] | None:
    """The index (row-major first) of the first true element of ``mask``, or None."""
    flat = mask.reshape(-1)
    hits = flat.nonzero()
    if hits.numel() == 0:
        return None
    position = int(hits[0, 0])
    return tuple(int(i) for i in torch.unravel_index(torch.tensor(position), mask.shape)) if mask.ndim else ()


def _describe(value: float) -> str:
    return "nan" if math.isnan(value) else repr(value)


def check_finite(tensor: Tensor, name: str) -> None:
    """Raise :class:`ValueRangeError` naming the first NaN or infinite element of ``tensor``."""
    if not tensor.is_floating_point():
        return
    bad = first_index(~torch.isfinite(tensor))
    if bad is not None:
        value = float(tensor[bad])
        raise ValueRangeError(f"Expected `{name}` to be finite, but found {_describe(value)} at index {bad}.")


def check_not_nan(tensor: Tensor, name: str) -> None:
    """Raise :class:`ValueRangeError` naming the first NaN element of ``tensor``."""
    if not tensor.is_floating_point():
        return
    bad = first_index(torch.isnan(tensor))
    if bad is not None:
        raise ValueRangeError(f"Expected `{name}` to contain no NaN, but found nan at index {bad}.")


def check_non_negative(tensor: Tensor, name: str) -> None:
    """Raise :class:`ValueRangeError` naming the first negative (or NaN) element of ``tensor``."""
    bad = first_index(~(tensor >= 0))
    if bad is not None:
        raise ValueRangeError(
            f"Expected `{name}` to be non-negative, but found {_describe(float(tensor[bad]))} at index {bad}."
        )


def check_in_range(tensor: Tensor, name: str, low: float, high: float) -> None:
    """Raise :class:`ValueRangeError` naming the first element outside ``[low, high]``."""
    bad = first_index(~((tensor >= low) & (tensor <= high)))
    if bad is not None:
        raise ValueRangeError(
            f"Expected `{name}` in [{low}, {high}], but found {_describe(float(tensor[bad]))} at index {bad}."
        )


def check_ndim(tensor: Tensor, name: str, min_ndim: int, layout: str) -> None:
    """Raise :class:`ShapeError` unless ``tensor`` has at least ``min_ndim`` dimensions.

    Args:
        layout: the documented shape, e.g. ``"(*, V, N)"``, quoted in the message.
    """
    if tensor.ndim < min_ndim:
        raise ShapeError(
            f"Expected `{name}` to have shape {layout} (at least {min_ndim} dimension(s)), "
            f"but got shape {tuple(tensor.shape)}."
        )


def normalize_dim(dim: int, ndim: int, name: str = "dim") -> int:
    """Return ``dim`` as a non-negative axis of a tensor with ``ndim`` dimensions.

    Raises:
        ShapeError: ``dim`` is outside ``[-ndim, ndim - 1]`` (or the tensor is 0-d).
        DTypeError: ``dim`` is not an int.
    """
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise DTypeError(f"Expected `{name}` to be an int, but got {type(dim).__name__}.")
    if not -ndim <= dim < ndim:
        raise ShapeError(
            f"Expected `{name}` in [{-ndim}, {ndim - 1}] for a {ndim}-d input, but got {dim}."
        )
    return dim % ndim


def check_float_or_int(tensor: Tensor, name: str) -> None:
    """Raise :class:`DTypeError` for bool tensors where numbers are expected."""
    if tensor.dtype == torch.bool:
        raise DTypeError(f"Expected `{name}` to hold numbers, but got dtype torch.bool.")
