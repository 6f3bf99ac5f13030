"""Split totals of wei over rows of weights into int64 parts that sum to each total exactly.

:func:`apportion` reads and checks its arguments, handles rows without a positive weight, and
hands the rest to the share computations in :mod:`._shares` (exact int64 long division, or
double-double arithmetic for weights too wide for it). A float never decides who is paid how
much (``DESIGN.md`` principle 3); ``docs/design/apportion.md`` says why the arithmetic is
hand-written and what precision each input kind gets.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor

from .._array import Array, ArrayOrigin, as_tensor, check_same_device
from .._intmath import INT64_MAX
from .._validation import (
    check_choice,
    check_finite,
    check_float_or_int,
    check_non_negative,
    first_index,
    normalize_dim,
)
from ..errors import DTypeError, ShapeError, ValueRangeError, WeiOverflowError, WeightError
from ._shares import ApportionMethod, apportion_rows

__all__ = ["Apportionment", "apportion"]

ZeroWeightPolicy = Literal["error", "dust", "even"]

_METHODS = ("largest_remainder", "floor")
_ZERO_WEIGHT_POLICIES = ("error", "dust", "even")

_ALL_ZERO_MESSAGE = (
    "Expected every row of `weights` to have a positive weight, but {row} is {detail}. Pass "
    "zero_weights='dust' to pay nothing there and return the total as dust, or "
    "zero_weights='even' to split it evenly."
)


class Apportionment(NamedTuple):
    """What :func:`apportion` returns.

    Attributes:
        parts: int64 wei per recipient, shape ``(*, N)`` (the caller's array type).
        dust: int64 wei per total left undistributed, shape ``(*)``: always 0 for
            ``method="largest_remainder"``; the floor dust for ``method="floor"``.
    """

    parts: Array
    dust: Array


def apportion(
    total_wei: Array | int,
    weights: Array,
    *,
    dim: int = -1,
    method: ApportionMethod = "largest_remainder",
    zero_weights: ZeroWeightPolicy = "error",
    validate: bool = True,
) -> Apportionment:
    """Split each total of wei over a row of weights into int64 parts, exactly.

    ``method="largest_remainder"`` (Hamilton): every part is ``floor(T * w_i / W)`` (W the row
    sum) and the ``L = T - sum(floors)`` leftover wei go, one each, to the L largest remainders
    (equal remainders: the lower index first). So the parts sum to T exactly, each is within one
    wei of its exact share ``T * w_i / W`` (the quota property), a zero weight gets 0, and a
    larger weight never gets less. ``method="floor"`` is the chain's rule (the emission step of
    ``opentensor/subtensor`` ``pallets/subtensor/src/epoch/run_epoch.rs``): the floors only,
    with the undistributed wei returned as ``dust``.

    Precision per input kind:

    * integer weights (any int dtype, incl. u16) whose largest value has at most
      ``61 - bit_length(N)`` bits, and float weights whose values are all multiples of
      ``2**-(61 - bit_length(N))`` times the row's power-of-two ceiling (e.g. float32 weights
      spanning less than ~2**17 for N = 10**6, or ~2**25 for N = 4096, all u16-derived and
      integer-valued floats): exact, computed with int64 long division only.
    * other float weights (float32 / float64 over a wider dynamic range, subnormals included):
      the shares of the float values themselves are computed in double-double arithmetic
      (relative error below 2**-100; the weight sum is accumulated exactly in int64 limbs down
      to 2**-104 of itself); the parts are Hamilton's for those shares, so the parts still sum
      to T exactly, zero weights still get 0, and the quota property holds to within
      ``1 + T * 2**-100 < 1 + 2**-37`` wei. Only a share lying within that distance below an
      integer can have its floor rounded up to the integer (``method="floor"``: one wei less
      dust). Weights more than ``2**170`` (float32) or ``2**1000`` (float64) times smaller than
      the row maximum may count as zero: their shares are below ``2**-100`` wei.
    * int64 weights with more bits: the same double-double path with the weights split into
      two exact 32-bit halves.

    All arithmetic is integer or correctly rounded float64, so the result has the same bits on
    CPU and CUDA. Values are read back to the host to size the long division (a GPU sync).

    Args:
        total_wei: the totals in wei, non-negative int64 of shape ``(*)`` (the weights' shape
            without ``dim``), or one Python int / 0-d tensor for every row; up to 2**63 - 1.
        weights: non-negative float or int weights, shape ``(*, N)`` along ``dim``.
        dim: the axis of ``weights`` holding the recipients.
        method: ``"largest_remainder"`` (default, conserves the total) or ``"floor"`` (the chain).
        zero_weights: what an all-zero row (or N = 0) gets: ``"error"`` (default) raises
            :class:`WeightError`; ``"dust"`` pays nothing and returns the whole total as dust;
            ``"even"`` apportions the total as if all weights were equal.
        validate: check for NaN, inf and negative values (forces a GPU sync).

    Returns:
        ``Apportionment(parts, dust)``: ``parts`` int64 ``(*, N)`` in the caller's array type and
        on its device, ``dust`` int64 ``(*)`` (0 for largest remainder).

    Raises:
        ValueRangeError: a negative total, or NaN / inf / negative weights.
        WeiOverflowError: a Python-int total beyond int64.
        WeightError: an all-zero row with ``zero_weights="error"``.
        DTypeError: float totals (wei are integers) or bool weights.

    Example:
        >>> parts, dust = apportion(10, torch.tensor([1.0, 1.0, 1.0]))
        >>> parts, dust
        (tensor([4, 3, 3]), tensor(0))
        >>> apportion(10, torch.tensor([1.0, 1.0, 1.0]), method="floor")
        Apportionment(parts=tensor([3, 3, 3]), dust=tensor(1))
    """
    check_choice(method, "method", _METHODS)
    check_choice(zero_weights, "zero_weights", _ZERO_WEIGHT_POLICIES)
    w, origin, dim = _read_weights(weights, dim)
    totals = _totals_beside(total_wei, w)
    if validate:
        check_totals(totals, "total_wei")
    rows, row_totals, batch_shape = _flatten_rows(w, totals, dim)
    parts, dust = _apportion_flat(row_totals, rows, w, batch_shape, method, zero_weights, validate)
    parts = parts.reshape(*batch_shape, rows.shape[-1]).movedim(-1, dim)
    return Apportionment(origin.wrap(parts), origin.wrap(dust.reshape(batch_shape)))


# --------------------------------------------------------------------------------------------
# reading the arguments (the totals' readers serve the emission functions too)


def read_totals(total_wei: Array | int, name: str = "total_wei") -> tuple[Tensor, bool]:
    """Totals as an int64 tensor; True when they came as a Python int."""
    if isinstance(total_wei, bool):
        raise DTypeError(f"Expected `{name}` to be an int number of wei, but got bool.")
    if isinstance(total_wei, int):
        if total_wei > INT64_MAX or total_wei < -INT64_MAX - 1:
            raise WeiOverflowError(
                f"Expected `{name}` to fit int64 (|x| <= 2**63 - 1 wei), but got {total_wei}."
            )
        return torch.tensor(total_wei, dtype=torch.int64), True
    tensor, _ = as_tensor(total_wei, name)
    if tensor.is_floating_point() or tensor.dtype == torch.bool:
        raise DTypeError(
            f"Expected `{name}` to be an integer tensor of wei, but got dtype {tensor.dtype}. "
            "Convert amounts first with mt.mdt_to_wei (exact) and pass int64 wei."
        )
    return tensor.to(torch.int64), False


def check_totals(totals: Tensor, name: str) -> None:
    """Raise :class:`ValueRangeError` naming the first negative total."""
    bad = first_index(totals < 0)
    if bad is not None:
        raise ValueRangeError(
            f"Expected `{name}` to be non-negative wei, but found {int(totals[bad])} at index {bad}."
        )


def _read_weights(weights: Array, dim: int) -> tuple[Tensor, ArrayOrigin, int]:
    """``(w, origin, dim)``: half floats widened (exactly) to float32, ``dim`` made non-negative."""
    w, origin = as_tensor(weights, "weights")
    check_float_or_int(w, "weights")
    if w.ndim == 0:
        raise ShapeError("Expected `weights` to have shape (*, N) (at least 1 dimension), but got a scalar.")
    dim = normalize_dim(dim, w.ndim)
    return widen_half(w), origin, dim


def widen_half(tensor: Tensor) -> Tensor:
    """float16 / bfloat16 as float32 (exact); any other dtype unchanged."""
    return tensor.to(torch.float32) if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def _totals_beside(total_wei: Array | int, w: Tensor) -> Tensor:
    """The totals as int64 on the weights' device: a Python int moves there, a tensor must be there."""
    totals, from_int = read_totals(total_wei)
    if totals.device != w.device:
        if from_int:
            totals = totals.to(w.device)
        else:
            check_same_device(total_wei=totals, weights=w)
    return totals


def _flatten_rows(weights: Tensor, totals: Tensor, dim: int) -> tuple[Tensor, Tensor, tuple[int, ...]]:
    """Move ``dim`` last and flatten the leading dims: ``(B, N)`` weights, ``(B,)`` totals."""
    moved = weights.movedim(dim, -1)
    batch_shape = tuple(moved.shape[:-1])
    if totals.ndim and tuple(totals.shape) != batch_shape:
        raise ShapeError(
            f"Expected `total_wei` to have shape (*) = {batch_shape} (the weights' shape without "
            f"`dim`) or to be a scalar, but got shape {tuple(totals.shape)}."
        )
    totals = totals.to(moved.device).expand(batch_shape)
    n = moved.shape[-1]
    rows = 1
    for size in batch_shape:
        rows *= size
    return moved.reshape(rows, n), totals.reshape(rows), batch_shape


# --------------------------------------------------------------------------------------------
# the cases: no recipients, bad values, rows without a positive weight


def _apportion_flat(
    row_totals: Tensor,
    rows: Tensor,
    w: Tensor,
    batch_shape: tuple[int, ...],
    method: ApportionMethod,
    zero_weights: str,
    validate: bool,
) -> tuple[Tensor, Tensor]:
    """Parts ``(B, N)`` and dust ``(B,)`` of the flattened rows (``w``: the weights as given, to
    name a bad value by its own index)."""
    if rows.numel() == 0:
        if rows.shape[0] and zero_weights == "error":
            raise WeightError(_ALL_ZERO_MESSAGE.format(row="every row", detail="N = 0"))
        return _nothing_paid(rows), row_totals
    row_max = rows.amax(dim=-1)  # per row, for the scaling
    if validate:
        _check_weight_values(rows, w)
    rows, row_max, empty = _rows_without_weight(rows, row_max, batch_shape, zero_weights)
    if not bool(empty.any()):
        return apportion_rows(row_totals, rows, row_max, method)
    if bool(empty.all()):
        return _nothing_paid(rows), row_totals
    parts, dust = _nothing_paid(rows), row_totals.clone()
    live = (~empty).nonzero().squeeze(-1)
    parts[live], dust[live] = apportion_rows(row_totals[live], rows[live], row_max[live], method)
    return parts, dust


def _nothing_paid(rows: Tensor) -> Tensor:
    return torch.zeros(rows.shape, dtype=torch.int64, device=rows.device)


def _check_weight_values(rows: Tensor, w: Tensor) -> None:
    """Raise for NaN, inf or negative weights, naming the first one in ``w``'s own indexing.

    Only the global extremes are needed: one ``aminmax`` over everything, cheaper on CPU than a
    per-row ``aminmax`` in place of the per-row ``amax`` the scaling needs anyway.
    """
    if rows.is_floating_point():
        low, high = torch.aminmax(rows)
        ok = bool((low >= 0) & (high < float("inf")))  # NaN fails both comparisons
    else:
        ok = bool(rows.min() >= 0)
    if not ok:
        check_finite(w, "weights")  # raise, naming the first bad value
        check_non_negative(w, "weights")


def _rows_without_weight(
    rows: Tensor, row_max: Tensor, batch_shape: tuple[int, ...], zero_weights: str
) -> tuple[Tensor, Tensor, Tensor]:
    """Apply the ``zero_weights`` policy to rows without a positive weight: raise (``"error"``),
    give them equal weights (``"even"``) or leave them unpaid (``"dust"``).

    Returns the rows, their maxima and the mask of rows left unpaid.
    """
    empty = row_max <= 0
    if not bool(empty.any()):
        return rows, row_max, empty
    if zero_weights == "error":
        bad = first_index(empty.reshape(batch_shape))
        where = f"row {bad}" if batch_shape else "the row"
        raise WeightError(_ALL_ZERO_MESSAGE.format(row=where, detail="all zero"))
    if zero_weights == "even":
        rows = torch.where(empty[:, None], torch.ones_like(rows), rows)
        row_max = torch.where(empty, torch.ones_like(row_max), row_max)
        empty = torch.zeros_like(empty)
    return rows, row_max, empty
