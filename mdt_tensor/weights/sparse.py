"""``sparse_to_dense_weights`` and ``dense_to_sparse_weights``: COO pairs, torch sparse, dicts.

Indices are checked for range and duplicates in batched passes (a loop over axes, never over
entries); the original's ``{(i, j): weight}`` dict form is kept for compatibility.
"""

from __future__ import annotations

import numbers
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from .._array import Array, ArrayOrigin, as_tensor, check_same_device, float_compute_dtype
from .._intmath import INT64_MAX
from .._validation import check_alloc, check_choice, check_fits_dtype, check_finite, check_int, check_number, first_index
from ..errors import DTypeError, ShapeError, WeightError
from ._common import BlockChecker, read_weights

__all__ = ["sparse_to_dense_weights", "dense_to_sparse_weights"]

SparseFormat = Literal["coo", "torch", "dict"]
_FORMATS = ("coo", "torch", "dict")


def sparse_to_dense_weights(
    sparse_weights: Any,
    num_neurons: int | None = None,
    default_weight: float = 0.0,
    *,
    shape: tuple[int, ...] | None = None,
    validate: bool = True,
) -> Array:
    """Build a dense weight tensor from sparse entries.

    Accepted forms:

    * ``(indices, values)``: COO arrays, ``indices`` an integer ``(ndim, nnz)`` array (``(2, nnz)``
      for a matrix) and ``values`` an ``(nnz,)`` array. The result is ``values``' array kind and
      float dtype (float32 for integer values). Duplicate positions are an error.
    * a torch sparse COO tensor: its shape; duplicates are summed (torch's coalesce semantics).
    * the original's dict ``{(i, j): weight}``: a float64 torch tensor.

    The shape is ``shape`` if given, else ``(num_neurons,) * ndim`` (``n x n`` for a matrix, as
    in the original); a torch sparse tensor brings its own. Positions not listed hold
    ``default_weight``.

    Args:
        sparse_weights: the entries, in one of the forms above.
        num_neurons: the size of every axis when ``shape`` is not given (and, with a sparse
            tensor, a check of its last axis).
        default_weight: the value of unlisted positions.
        shape: the dense shape.
        validate: check that the values are finite.

    Returns:
        The dense ``shape`` tensor / array.

    Raises:
        WeightError: an index out of range (negative ones included) or a duplicate position.
        ShapeError: malformed ``indices``/``values`` shapes, or no way to know the shape.
        DTypeError: non-integer indices, non-numeric values.
        ValueRangeError: NaN or inf values, non-finite ``default_weight``, a shape that does
            not fit the device's memory.

    Example:
        >>> sparse_to_dense_weights({(0, 1): 0.5, (1, 0): 1.0}, num_neurons=2)
        tensor([[0.0000, 0.5000],
                [1.0000, 0.0000]], dtype=torch.float64)
        >>> idx = torch.tensor([[0, 1], [2, 0]])
        >>> sparse_to_dense_weights((idx, torch.tensor([0.25, 0.75])), shape=(2, 3))
        tensor([[0.0000, 0.0000, 0.2500],
                [0.7500, 0.0000, 0.0000]])
    """
    default = check_number(default_weight, "default_weight")
    if num_neurons is not None:
        num_neurons = check_int(num_neurons, "num_neurons", low=0, high=INT64_MAX)
    if isinstance(sparse_weights, Tensor) and sparse_weights.layout == torch.sparse_coo:
        return _dense_from_torch_sparse(sparse_weights, num_neurons, default, shape, validate)
    if isinstance(sparse_weights, dict):
        indices, values, origin = _coo_from_dict(sparse_weights)
    elif isinstance(sparse_weights, (tuple, list)) and len(sparse_weights) == 2:
        indices, _ = as_tensor(sparse_weights[0], "indices")
        values, origin = read_weights(sparse_weights[1], "values")
    else:
        raise DTypeError(
            "Expected `sparse_weights` to be (indices, values), a torch sparse COO tensor or a "
            f"{{(i, j): weight}} dict, but got {type(sparse_weights).__name__}."
        )
    if indices.dtype.is_floating_point or indices.dtype == torch.bool:
        raise DTypeError(f"Expected `indices` to hold integers, but got dtype {indices.dtype}.")
    if indices.ndim != 2:
        raise ShapeError(f"Expected `indices` to have shape (ndim, nnz), but got {tuple(indices.shape)}.")
    if values.ndim != 1 or values.shape[0] != indices.shape[1]:
        raise ShapeError(
            f"Expected `values` to have shape ({indices.shape[1]},) to match indices {tuple(indices.shape)}, "
            f"but got {tuple(values.shape)}."
        )
    check_same_device(indices=indices, values=values)
    dense_shape = _dense_shape(shape, num_neurons, indices.shape[0])
    if validate:
        check_finite(values, "values")
    indices = indices.to(torch.int64)
    _check_coo_indices(indices, dense_shape)
    check_alloc(dense_shape, values.dtype, values.device, "shape" if shape is not None else "num_neurons")
    check_fits_dtype(default, "default_weight", values.dtype)
    dense = torch.full(dense_shape, default, dtype=values.dtype, device=values.device)
    dense[tuple(indices)] = values
    return origin.wrap(origin.restore_float(dense))


def _coo_from_dict(entries: dict) -> tuple[Tensor, Tensor, ArrayOrigin]:
    keys = list(entries)
    if not all(isinstance(key, tuple) for key in keys):
        raise DTypeError("Expected the keys of `sparse_weights` to be index tuples such as (i, j).")
    ndim = len(keys[0]) if keys else 2
    if any(len(key) != ndim for key in keys):
        raise ShapeError(f"Expected every key of `sparse_weights` to have {ndim} indices.")
    if any(isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) for key in keys for i in key):
        raise DTypeError("Expected the keys of `sparse_weights` to be tuples of ints such as (0, 1).")
    for key in keys:  # (indices beyond int64 are out of range of any shape)
        for i in key:
            check_int(i, "sparse_weights key", low=-INT64_MAX - 1, high=INT64_MAX)
    index_array = np.array(keys, dtype=np.int64).reshape(len(keys), ndim).T
    indices, _ = as_tensor(np.ascontiguousarray(index_array), "indices")
    given = [entries[key] for key in keys]
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, Decimal)) for v in given):
        raise DTypeError("Expected the values of `sparse_weights` to be real numbers.")
    values, origin = read_weights(np.array([float(v) for v in given], dtype=np.float64), "values")
    return indices, values, ArrayOrigin("python", origin.dtype)


def _dense_shape(shape: tuple[int, ...] | None, num_neurons: int | None, ndim: int) -> tuple[int, ...]:
    if shape is not None:
        dense_shape = tuple(check_int(size, "shape", low=0, high=INT64_MAX) for size in shape)
        if len(dense_shape) != ndim:
            raise ShapeError(f"Expected `shape` to have {ndim} entries (the rows of `indices`), but got {dense_shape}.")
        if num_neurons is not None and dense_shape[-1] != num_neurons:
            raise ShapeError(f"Expected `shape[-1]` == num_neurons ({num_neurons}), but got {dense_shape}.")
        return dense_shape
    if num_neurons is None:
        raise ShapeError("Expected `shape` or `num_neurons` to size the dense result, but got neither.")
    return (num_neurons,) * ndim


def _check_coo_indices(indices: Tensor, dense_shape: tuple[int, ...]) -> None:
    """Raise WeightError for the first entry whose index is negative or out of range, or repeated."""
    if indices.shape[1] == 0:
        return
    limits = torch.tensor(dense_shape, dtype=torch.int64, device=indices.device).unsqueeze(1)
    bad = first_index(((indices < 0) | (indices >= limits)).any(0))
    if bad is not None:
        entry = bad[0]
        position = tuple(int(i) for i in indices[:, entry])
        raise WeightError(f"Index {position} of entry {entry} is out of range for shape {dense_shape}.")
    flat = torch.zeros(indices.shape[1], dtype=torch.int64, device=indices.device)
    for axis, size in enumerate(dense_shape):  # loop over axes (ndim), not over entries
        flat = flat * size + indices[axis]
    unique, counts = torch.unique(flat, return_counts=True)
    if bool((counts > 1).any()):
        repeated = unique[counts > 1][0]
        entry = int((flat == repeated).nonzero()[1, 0])
        position = tuple(int(i) for i in indices[:, entry])
        raise WeightError(f"Index {position} appears more than once (again at entry {entry}).")


def _dense_from_torch_sparse(
    sparse: Tensor, num_neurons: int | None, default: float, shape: tuple[int, ...] | None, validate: bool
) -> Tensor:
    if shape is not None and tuple(shape) != tuple(sparse.shape):
        raise ShapeError(f"Expected `shape` {tuple(shape)} to equal the sparse tensor's {tuple(sparse.shape)}.")
    if sparse.ndim == 0 or (num_neurons is not None and sparse.shape[-1] != num_neurons):
        raise ShapeError(
            f"Expected a sparse tensor with {num_neurons} neurons on its last axis, but got {tuple(sparse.shape)}."
        )
    if sparse.dtype == torch.bool:
        raise DTypeError("Expected `sparse_weights` to hold numbers, but got dtype torch.bool.")
    sparse = sparse.coalesce()
    values = sparse.values().to(float_compute_dtype(sparse.dtype))
    if validate:
        check_finite(values, "values")
    check_alloc(tuple(sparse.shape), values.dtype, values.device, "sparse_weights")
    check_fits_dtype(default, "default_weight", values.dtype)
    dense = torch.full(tuple(sparse.shape), default, dtype=values.dtype, device=values.device)
    dense[tuple(sparse.indices())] = values
    return dense.to(sparse.dtype) if sparse.dtype in (torch.float16, torch.bfloat16) else dense


def dense_to_sparse_weights(
    weights: Array,
    threshold: float = 0.0,
    *,
    format: SparseFormat = "coo",
    validate: bool = True,
) -> Any:
    """The entries of ``weights`` **strictly greater than** ``threshold``, in a sparse form.

    With the default threshold 0, zeros and negative weights are dropped. Entries come in
    row-major order.

    Args:
        weights: ``(*, N)`` weights, at least 1-D.
        threshold: keep entries ``> threshold``.
        format: ``"coo"``: ``(indices, values)`` with ``indices`` int64 ``(ndim, nnz)`` and
            ``values`` ``(nnz,)``, both the caller's array kind; ``"torch"``: a coalesced torch
            sparse COO tensor (on the input's device, also for numpy/CuPy input); ``"dict"``:
            the original's ``{(i, j): float}`` (index tuples of length ndim).
        validate: check that ``weights`` is finite.

    Returns:
        The kept entries in the requested form.

    Raises:
        ValueRangeError: NaN threshold; NaN or inf in ``weights``.
        ShapeError: 0-d input. ValueRangeError: unknown ``format``. DTypeError: bool/string input.

    Example:
        >>> dense_to_sparse_weights(torch.tensor([[0.0, 0.5], [0.25, -1.0]]), format="dict")
        {(0, 1): 0.5, (1, 0): 0.25}
        >>> indices, values = dense_to_sparse_weights(np.array([[0.0, 0.5], [0.25, 0.0]]))
        >>> indices.tolist(), values.tolist()
        ([[0, 1], [1, 0]], [0.5, 0.25])
    """
    check_choice(format, "format", _FORMATS)
    cut = check_number(threshold, "threshold", finite=False)
    w, origin = read_weights(weights, "weights")
    if w.ndim == 0:
        raise ShapeError("Expected `weights` to have shape (*, N) with at least one dimension, but got a 0-d value.")
    BlockChecker(w, validate).finite(w)
    indices = (w > cut).nonzero().T.contiguous()
    values = w[tuple(indices)]
    if format == "dict":
        return {tuple(key): value for key, value in zip(indices.T.tolist(), values.double().tolist(), strict=True)}
    values = origin.restore_float(values)
    if format == "torch":
        return torch.sparse_coo_tensor(indices, values, tuple(w.shape), is_coalesced=True, check_invariants=False)
    return origin.wrap(indices), origin.wrap(values)
