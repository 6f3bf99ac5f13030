"""Row plumbing the compat helpers share: reading inputs, matching uids to rows, compaction.

Every helper of the package works on ``(*, N)`` rows at once; these few pieces read the caller's
arrays into such rows and move the kept entries of each row to its front without a sort.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._array import Array, ArrayOrigin, as_tensor, check_same_device, float_compute_dtype
from .._validation import check_float_or_int, check_ndim, normalize_dim
from ..errors import DTypeError, ShapeError

__all__: list[str] = []


def check_integer_dtype(t: Tensor, name: str) -> None:
    """Raise :class:`DTypeError` unless ``t`` holds integers (bool is not an integer)."""
    if t.is_floating_point() or t.dtype == torch.bool:
        raise DTypeError(f"Expected `{name}` to hold integers, but got dtype {t.dtype}.")


def float_rows(x: Array, name: str, dim: int) -> tuple[Tensor, ArrayOrigin, int]:
    """``x`` as a float tensor with the reduced axis last; returns the normalised ``dim`` too."""
    t, origin = as_tensor(x, name)
    check_float_or_int(t, name)
    check_ndim(t, name, 1, "(*, N)")
    dim = normalize_dim(dim, t.ndim)
    return t.to(float_compute_dtype(t.dtype)).movedim(dim, -1), origin, dim


def read_uids_and_weights(uids: Array, weights: Array) -> tuple[Tensor, ArrayOrigin, Tensor, ArrayOrigin]:
    """Read a ``(uids, weights)`` pair: numeric weights, integer uids, each ``(*, N)``, one device."""
    w, origin = as_tensor(weights, "weights")
    u, uids_origin = as_tensor(uids, "uids")
    check_float_or_int(w, "weights")
    check_integer_dtype(u, "uids")
    check_ndim(w, "weights", 1, "(*, N)")
    check_ndim(u, "uids", 1, "(*, N)")
    check_same_device(weights=w, uids=u)
    return w, origin, u, uids_origin


def match_uids(uids: Tensor, weights: Tensor) -> Tensor:
    """``uids`` expanded to ``weights``' shape: it must be ``(N,)`` or the same ``(*, N)``."""
    if uids.shape == weights.shape:
        return uids
    if uids.ndim == 1 and uids.shape[0] == weights.shape[-1]:
        return uids.expand(weights.shape)
    raise ShapeError(
        f"Expected `uids` and `weights` to have the same length: `uids` of shape ({weights.shape[-1]},) "
        f"or {tuple(weights.shape)}, but got {tuple(uids.shape)} for `weights` of shape {tuple(weights.shape)}."
    )


def arange_like(t: Tensor) -> Tensor:
    """Positions 0..N-1 of the last axis of ``t``, shaped to broadcast against it."""
    return torch.arange(t.shape[-1], device=t.device)


def compact(keep: Tensor, *rows: Tensor, fills: tuple[float, ...], width: int | None = None) -> tuple[Tensor, ...]:
    """Move the kept entries of each row to the front, in their order; fill the rest.

    A cumulative count gives each kept entry its slot (no sort). Rows with more than ``width``
    kept entries would lose the excess: callers size ``width`` to the largest possible count.

    Args:
        keep: ``(*, N)`` bool.
        rows: ``(*, N)`` tensors to compact alike.
        fills: one fill value per row tensor.
        width: the output width (default ``N``).
    """
    width = keep.shape[-1] if width is None else width
    slot = torch.where(keep, keep.cumsum(-1) - 1, width)  # slot `width` is a discarded column
    out = []
    for row, fill in zip(rows, fills):
        target = torch.full((*row.shape[:-1], width + 1), fill, dtype=row.dtype, device=row.device)
        out.append(target.scatter(-1, slot, row)[..., :width])
    return tuple(out)
