"""Hostile inputs for the API fuzz test (``tests/test_api_fuzz.py``).

Arrays of every dtype (bool, integers, float16/bfloat16/float32/float64, complex), shapes with
zero-size dims, values from a pool of edge cases (NaN, ±inf, ±0, the float32 and float64 maxima,
subnormals, u16 and int64 edges), as torch tensors, numpy arrays or lists, contiguous or not,
expanded, read-only; plus bad scalars, bad ``dim`` values and bad strings. Every strategy is
small (sides up to 4): the point is the edge, not the size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

#: The edge values arrays are made of (each drawn with equal chance, then cast to the dtype).
HOSTILE_FLOATS = (
    0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, 65535.0, 65536.0,
    math.nan, math.inf, -math.inf,
    1e38, 3e38, -3e38, 1e308, -1e308, 1.7e308,
    1e-45, 1e-310, 5e-324, 1e-7,
    float(2**53 + 1), float(2**63), -float(2**63),
)
#: Values for integer dtypes (cast with wrap-around, as numpy does, only within range).
HOSTILE_INTS = (0, 1, -1, 2, 7, 65535, 65536, 2**31 - 1, -(2**31), 2**62, 2**63 - 1, -(2**63))

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INT_DTYPES = (torch.uint8, torch.int16, torch.int32, torch.int64)
#: Ordered so that hypothesis' simplest examples are ordinary (float32 first), the hostile ones later.
ALL_DTYPES = (torch.float32, torch.float64, torch.int64, torch.float16, torch.bfloat16, torch.uint8, torch.int16, torch.int32, torch.bool, torch.complex64)


@dataclass
class Drawn:
    """A drawn array: what is passed (``value``) and a float64 / int copy for the checkers."""

    value: Any
    tensor: torch.Tensor  # the same data as a torch tensor (never a view of ``value``)
    kind: str  # "torch", "numpy", "list"
    layout: str  # "contiguous", "transposed", "expanded", "read_only", "strided"


def _cast(values: list[Any], dtype: torch.dtype) -> torch.Tensor:
    if dtype.is_floating_point or dtype.is_complex:
        return torch.tensor(values, dtype=torch.float64).to(dtype)
    if dtype == torch.bool:
        return torch.tensor([bool(v) for v in values], dtype=torch.bool)
    info = torch.iinfo(dtype)
    return torch.tensor([min(max(int(v), info.min), info.max) for v in values], dtype=dtype)


@st.composite
def shapes(draw: Any, min_ndim: int = 0, max_ndim: int = 3, max_side: int = 4, min_side: int = 0) -> tuple[int, ...]:
    # sampled in this order so that the simplest examples are 2-D with 3 columns, not 0-d or empty
    ndim = draw(st.sampled_from([n for n in (2, 1, 3, 0) if min_ndim <= n <= max_ndim]))
    sides = [n for n in (3, 2, 1, 4, 0) if min_side <= n <= max_side]
    return tuple(draw(st.sampled_from(sides)) for _ in range(ndim))


@st.composite
def arrays(
    draw: Any,
    *,
    dtypes: tuple[torch.dtype, ...] = ALL_DTYPES,
    shape: tuple[int, ...] | None = None,
    min_ndim: int = 0,
    max_ndim: int = 3,
    min_side: int = 0,
    kinds: tuple[str, ...] = ("torch", "numpy", "list"),
    tame: float = 0.5,
) -> Drawn:
    """A hostile array. With probability ``tame`` the values are ordinary (0..3, u16-ish), so the
    functions get past their checks and their postconditions are exercised too."""
    dtype = draw(st.sampled_from(dtypes))
    if shape is None:
        shape = draw(shapes(min_ndim=min_ndim, max_ndim=max_ndim, min_side=min_side))
    count = math.prod(shape)
    ordinary = draw(st.floats(0, 1)) < tame
    if dtype.is_floating_point or dtype.is_complex:
        pool = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0) if ordinary else HOSTILE_FLOATS
    elif dtype == torch.bool:
        pool = (0, 1)
    else:
        pool = (0, 1, 2, 3, 100, 65535) if ordinary else HOSTILE_INTS
    values = [draw(st.sampled_from(pool)) for _ in range(count)]
    tensor = _cast(values, dtype).reshape(shape)
    kind = draw(st.sampled_from(kinds))  # torch first: the simplest examples are tensors
    if kind == "list" and count == 0 and len(shape) >= 2:
        kind = "numpy"  # a Python list cannot hold an empty (V, N) shape; the empty 1-D list stays
    if kind != "torch" and dtype == torch.bfloat16:
        kind = "torch"  # numpy has no bfloat16
    layouts = ["contiguous"]
    if len(shape) >= 2:
        layouts.append("transposed")
    if len(shape) >= 1 and shape[0] == 1:
        layouts.append("expanded")
    if kind == "numpy":
        layouts.append("read_only")
    if len(shape) >= 1:
        layouts.append("strided")
    layout = draw(st.sampled_from(layouts))
    if layout == "transposed":
        view = tensor.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, F-order
    elif layout == "expanded":
        view = tensor.expand(*shape)  # shape[0] == 1: a stride-0 leading dim of size 1
        if len(shape) >= 1:
            view = tensor[:1].expand(2, *shape[1:]) if draw(st.booleans()) else view
    elif layout == "strided":
        wide = torch.zeros((*shape[:-1], 2 * shape[-1]), dtype=dtype)
        wide[..., ::2] = tensor
        view = wide[..., ::2]
    else:
        view = tensor
    reference = view.clone()
    if kind == "torch":
        value: Any = view
    elif kind == "numpy":
        value = view.numpy()
        if layout == "read_only":
            value = value.copy()
            value.flags.writeable = False
    else:
        value = view.tolist() if view.dtype != torch.float16 else view.to(torch.float64).tolist()
        reference = torch.from_numpy(np.array(value))  # what the library reads (an empty list loses its shape)
    return Drawn(value, reference, kind, layout)


def matrices(**kwargs: Any) -> Any:
    """``(*, V, N)`` hostile weight matrices."""
    return arrays(min_ndim=2, max_ndim=3, **kwargs)


#: Scalars a careless caller might pass where a number is expected.
BAD_SCALARS = (
    math.nan, math.inf, -math.inf, -1, -0.5, 0, 0.0, 1, 0.5, 2, 1e300, 10**30, -(10**30),
    True, False, None, "1", "nan", 1 + 2j, np.float32(0.25), np.int64(3), [1], (),
)


def scalars(*good: Any) -> Any:
    """A good value (one of ``good``) or a hostile one."""
    options = st.sampled_from(BAD_SCALARS)
    return st.one_of(st.sampled_from(good), options) if good else options


def dims() -> Any:
    """A ``dim`` argument: mostly in range for small tensors, sometimes out of range or not an int."""
    return st.one_of(st.sampled_from([-1, 0, 1, -2, 2, -3, 3, -4]), st.sampled_from([5, -7, 1.0, True, None, "0"]))


def strings(*choices: str) -> Any:
    """One of ``choices`` or a bad string / non-string."""
    return st.one_of(st.sampled_from(choices), st.sampled_from(["", "SUM", " sum", "nope", None, 3, b"sum"]))
