"""Argument checks shared by every tensor function.

Cheap checks (ndim, shape, dtype, device, ``dim``) always run. Value checks (NaN, inf, sign,
range) read the data, which forces a GPU sync; public functions run them only when their
``validate`` argument is true (the default).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._constants import U16_MAX
from .errors import DTypeError, ShapeError, ValueRangeError

__all__: list[str] = []


def first_index(mask: Tensor) -> tuple[int, ...] | None:
    """The index (row-major first) of the first true element of ``mask``, or None."""
    flat = mask.reshape(-1)
    hits = flat.nonzero()
    if hits.numel() == 0:
        return None
    position = int(hits[0, 0])
    index = []
    for size in reversed(mask.shape):  # plain divmod: torch.unravel_index's first call costs seconds
        position, coordinate = divmod(position, size)
        index.append(coordinate)
    return tuple(reversed(index))


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


# ------------------------------------------------------------------------------------------------
# scalar arguments: one helper per kind, so that the same mistake raises the same error everywhere
# (a wrong type is a DTypeError, a wrong value a ValueRangeError; bool is never taken for a number)

_INT_TYPES = (int, np.integer)
_REAL_TYPES = (int, float, np.integer, np.floating)


def _span(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    return f"{'<' if high_open else '<='} {high}"


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as a Python int inside ``[low, high]`` (either bound optional).

    Raises:
        DTypeError: ``value`` is not an int (numpy integers are ints; bool is not).
        ValueRangeError: ``value`` is outside the bounds.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _INT_TYPES):
        raise DTypeError(f"Expected `{name}` to be an int, but got {type(value).__name__}.")
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueRangeError(f"Expected `{name}` {_span(low, high, False, False)}, but got {number}.")
    return number


def check_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a Python float, not NaN, finite unless ``finite=False``, inside the bounds.

    ``low_open`` / ``high_open`` make a bound strict (``> low`` instead of ``>= low``).

    Raises:
        DTypeError: ``value`` is not a real number (bool is not).
        ValueRangeError: NaN, an infinity where ``finite``, or outside the bounds.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _REAL_TYPES):
        raise DTypeError(f"Expected `{name}` to be a real number, but got {type(value).__name__}.")
    number = float(value)
    if math.isnan(number) or (finite and math.isinf(number)):
        raise ValueRangeError(f"Expected `{name}` to be a finite number, but got {number}.")
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        raise ValueRangeError(f"Expected `{name}` {_span(low, high, low_open, high_open)}, but got {value!r}.")
    return number


def check_seconds(value: Any, name: str, *, allow_none: bool = False, positive: bool = False) -> float | None:
    """A duration in seconds: finite, ``>= 0`` (``> 0`` if ``positive``), or None if ``allow_none``."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _REAL_TYPES):
        raise DTypeError(f"Expected `{name}` to be a number of seconds, but got {type(value).__name__}.")
    return check_number(value, name, low=0.0, low_open=positive)


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``; else a ValueRangeError listing them."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueRangeError(f"Expected `{name}` to be one of {listed}, but got {value!r}.")
    return value


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is a bool (numpy's included); else a DTypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise DTypeError(f"Expected `{name}` to be a bool, but got {type(value).__name__}.")
    return bool(value)


def check_callable(value: Any, name: str) -> None:
    """Raise DTypeError unless ``value`` is callable."""
    if not callable(value):
        raise DTypeError(f"Expected `{name}` to be callable, but got {type(value).__name__}.")


def check_u16(tensor: Tensor, name: str) -> None:
    """Raise :class:`ValueRangeError` naming the first element of ``tensor`` outside ``[0, 65535]``."""
    check_in_range(tensor, name, 0, U16_MAX)


def check_finite_non_negative(tensor: Tensor, name: str) -> None:
    """Raise :class:`ValueRangeError` naming the first NaN or inf element, else the first negative one.

    One min/max reduction when the data is fine (numpy's on the CPU, see ``_cpu.ufuncs``); the
    indexed searches run only when it fails.
    """
    from ._cpu.engine import use_numpy_kernel  # here: _cpu imports this module
    from ._cpu.ufuncs import min_max

    if tensor.numel() == 0:
        return
    if not tensor.is_floating_point():
        check_non_negative(tensor, name)
        return
    numpy_kernel = tensor.dtype != torch.bfloat16 and use_numpy_kernel(tensor)
    low, high = min_max(tensor) if numpy_kernel else torch.aminmax(tensor)
    if bool(low >= 0) and bool(high < math.inf):  # NaN fails both comparisons
        return
    check_finite(tensor, name)
    check_non_negative(tensor, name)


def check_timeout(value: Any, name: str, *, positive: bool = False) -> float | None:
    """A timeout in seconds: None or ``inf`` (wait forever, returned as None), else finite and
    ``>= 0`` (``> 0`` if ``positive``). NaN, negative values and non-numbers are refused."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _REAL_TYPES):
        raise DTypeError(f"Expected `{name}` to be a number of seconds or None, but got {type(value).__name__}.")
    if float(value) == math.inf:
        return None
    return check_seconds(value, name, positive=positive)


def _device_memory(device: torch.device) -> int | None:
    """Bytes of memory on ``device`` (physical RAM for the CPU), or None where unknown."""
    try:
        if device.type == "cpu":
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        if device.type == "cuda":
            return int(torch.cuda.get_device_properties(device).total_memory)
    except (ValueError, OSError, AttributeError, RuntimeError):
        return None
    return None


def check_alloc(shape: Sequence[int], dtype: torch.dtype, device: torch.device, name: str) -> None:
    """Raise :class:`ValueRangeError` before allocating a ``shape`` result that cannot fit ``device``.

    A size argument (``n``, ``num_neurons``, ``shape``) that asks for more bytes than the device
    has would otherwise fail deep in torch's allocator (a ``RuntimeError``), or on an
    overcommitting system be granted and then kill the process when written.

    Args:
        name: the argument that decided the size, quoted in the message.
    """
    size = math.prod(int(s) for s in shape) * torch.empty((), dtype=dtype).element_size()
    limit = _device_memory(device)
    if limit is not None and size > limit:
        raise ValueRangeError(
            f"`{name}` asks for a result of shape {tuple(int(s) for s in shape)} ({size} bytes), more than "
            f"the {limit} bytes of memory on {device}."
        )


def check_fits_dtype(value: float, name: str, dtype: torch.dtype) -> None:
    """Raise :class:`ValueRangeError` for a finite ``value`` beyond the finite range of float ``dtype``.

    A bound or fill value of ``1e300`` cannot be written into float32 (torch raises a bare
    ``RuntimeError``, or the result silently becomes inf); ``±inf`` are fine.
    """
    largest = torch.finfo(dtype).max
    if math.isfinite(value) and abs(value) > largest:
        raise ValueRangeError(
            f"Expected `{name}` within the range of {dtype} (|x| <= {largest:.4g}) or infinite, but got {value!r}."
        )
