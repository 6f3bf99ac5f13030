"""Array-type dispatch: numpy, torch and CuPy in; torch computes; the caller's type comes out.

Public functions call :func:`as_tensor` on each array argument and :meth:`ArrayOrigin.wrap` on
each result. Conversions share memory wherever the libraries allow (``torch.from_numpy``,
DLPack for CuPy, ``Tensor.numpy()``); ``mdt_tensor`` never writes into an input. Python lists and
scalars are read through ``numpy.asarray`` and come back as torch tensors. CuPy is detected by
the array's module name and never imported unless the caller passed a CuPy array.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from .errors import DeviceMismatchError, DTypeError

__all__: list[str] = []

ArrayKind = Literal["torch", "numpy", "cupy", "python"]

#: What public functions accept and return: a torch tensor, a numpy array or a CuPy array
#: (spelled ``Any`` so that neither numpy's nor CuPy's stubs are required by type checkers).
Array = Any

_HALF_DTYPES = (torch.float16, torch.bfloat16)


def is_cupy_array(x: object) -> bool:
    """True for a ``cupy.ndarray``, without importing CuPy."""
    return type(x).__module__.split(".", 1)[0] == "cupy" and hasattr(x, "__dlpack__")


@dataclass(frozen=True)
class ArrayOrigin:
    """Where an argument came from, so results can be handed back in the same form.

    Attributes:
        kind: the caller's array library ("python" for lists, tuples and scalars).
        dtype: the torch dtype of the argument as received.
    """

    kind: ArrayKind
    dtype: torch.dtype

    def wrap(self, result: Tensor) -> Any:
        """Return ``result`` as the caller's array type, on the device it is on.

        A numpy caller gets a numpy array (a view of ``result`` on CPU), a CuPy caller a CuPy
        array (DLPack, same GPU), torch and Python callers get the tensor itself.
        """
        if self.kind == "numpy":
            return result.detach().cpu().numpy() if result.device.type != "cpu" else result.detach().numpy()
        if self.kind == "cupy":
            import cupy  # the caller passed a CuPy array, so CuPy is importable

            return cupy.from_dlpack(result.detach())
        return result

    def restore_float(self, result: Tensor) -> Tensor:
        """Cast a float result back to a half-precision input dtype (float16 / bfloat16).

        Float32/float64 results of float32/float64 inputs and float results of integer inputs
        are returned unchanged.
        """
        if self.dtype in _HALF_DTYPES and result.dtype != self.dtype:
            return result.to(self.dtype)
        return result


def as_tensor(x: Any, name: str) -> tuple[Tensor, ArrayOrigin]:
    """Read ``x`` as a torch tensor without copying where possible.

    Args:
        x: a torch tensor, numpy array or scalar, CuPy array, or a (nested) Python list/tuple
            or number.
        name: the argument's name, used in error messages.

    Returns:
        ``(tensor, origin)``: the tensor on the input's device and where it came from.

    Raises:
        DTypeError: ``x`` is not an array, or holds strings, objects or complex numbers.
    """
    if isinstance(x, Tensor):
        tensor, kind = x, "torch"
    elif isinstance(x, (np.ndarray, np.generic)):
        tensor, kind = _from_numpy(np.asarray(x), name), "numpy"
    elif is_cupy_array(x):
        tensor, kind = torch.from_dlpack(x), "cupy"
    elif isinstance(x, (list, tuple, int, float, bool)):
        try:
            array = np.asarray(x)
        except ValueError as exc:  # ragged nesting
            raise DTypeError(f"Expected `{name}` to be a rectangular array, but got {type(x).__name__}: {exc}") from None
        tensor, kind = _from_numpy(array, name), "python"
    else:
        raise DTypeError(
            f"Expected `{name}` to be a torch tensor, numpy array, CuPy array or Python list, "
            f"but got {type(x).__name__}."
        )
    if tensor.dtype.is_complex:
        raise DTypeError(f"Expected `{name}` to be real, but got dtype {tensor.dtype}.")
    return tensor, ArrayOrigin(kind, tensor.dtype)  # type: ignore[arg-type]


def _from_numpy(array: np.ndarray, name: str) -> Tensor:
    if array.dtype.kind not in "biuf":
        raise DTypeError(f"Expected `{name}` to hold numbers, but got numpy dtype {array.dtype}.")
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype == np.uint16 or array.dtype == np.uint32 or array.dtype == np.uint64:
        # torch's support for these is partial; widen losslessly (uint64 beyond int64 is refused).
        if array.dtype == np.uint64 and array.size and int(array.max()) > np.iinfo(np.int64).max:
            raise DTypeError(f"Expected `{name}` to fit int64, but a uint64 value exceeds 2**63 - 1.")
        array = array.astype(np.int64 if array.dtype != np.uint16 else np.int32)
    with warnings.catch_warnings():
        # torch warns that a read-only array gives a writable tensor; we never write into inputs.
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def float_compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a float operation computes in for an input of ``dtype``.

    float32 and float64 stay; float16 and bfloat16 compute in float32 (and are cast back by
    :meth:`ArrayOrigin.restore_float`); integer and bool inputs are promoted to float32.
    """
    if dtype in (torch.float32, torch.float64):
        return dtype
    return torch.float32


def as_float_tensor(x: Any, name: str) -> tuple[Tensor, ArrayOrigin]:
    """:func:`as_tensor` followed by the cast to the float compute dtype."""
    tensor, origin = as_tensor(x, name)
    return tensor.to(float_compute_dtype(tensor.dtype)), origin


def check_same_device(**tensors: Tensor) -> None:
    """Raise :class:`DeviceMismatchError` unless every tensor is on the same device.

    Example:
        >>> check_same_device(weights=torch.zeros(2), stakes=torch.zeros(2))
    """
    items = list(tensors.items())
    first_name, first = items[0]
    for other_name, other in items[1:]:
        if other.device != first.device:
            raise DeviceMismatchError(
                f"Expected `{first_name}` and `{other_name}` on the same device, but got "
                f"{first.device} and {other.device}. mdt_tensor never moves data between devices."
            )


def is_array(x: object) -> bool:
    """True for a torch tensor, a numpy array or a CuPy array (anything with array buffers), without importing CuPy."""
    return isinstance(x, (Tensor, np.ndarray)) or is_cupy_array(x)
