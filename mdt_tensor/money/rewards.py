"""Exact money on int64 tensors: apportionment, the chain's emission split, overflow guards.

Every function here pays out integer wei and conserves its total exactly (``DESIGN.md`` principle
3). A float never decides who is paid how much: float weights are first turned into exact
integers (``spec/exact-arithmetic.md`` 2.2), and the shares ``total * w_i / sum(w)`` are divided
out with int64 long division (``mdt_tensor._intmath.mul_div_floor_rem``, 2.3), which keeps every
intermediate below 2**63. torch has no 128-bit integers and no exact rational type, and Python's
``fractions.Fraction`` is exact but neither batched nor on a GPU, hence the hand-written method.

The long division is ``mul_div_floor_rem``'s method, specialised here to one total and one
divisor per row and written with in-place operations, because it is the hot loop.

Where a row's float weights carry more bits than one int64 share computation can hold (weights
spanning more than about ``61 - log2(N)`` binary orders of magnitude, ``spec/exact-arithmetic.md``
2.7), the shares are computed in double-double arithmetic (about 104 significant bits, built only
from correctly rounded IEEE float64 ``+ - * /`` and ``floor``, so the bits are the same on CPU and
CUDA) from a multi-limb exact integer sum of the weights. See :func:`apportion` for the precision
each input kind gets.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor

from .._array import Array, as_tensor
from .._intmath import INT64_MAX, bit_length, mul_div_floor_rem
from .._validation import check_finite, check_non_negative, first_index, normalize_dim
from ..errors import DTypeError, ShapeError, ValueRangeError, WeiOverflowError, WeightError

__all__ = [
    "Apportionment",
    "EmissionSplit",
    "apportion",
    "split_emission",
    "distribute_emission",
    "sum_wei",
]

ApportionMethod = Literal["largest_remainder", "floor"]
ZeroWeightPolicy = Literal["error", "dust", "even"]

#: Bits kept below a row's largest float weight in the exact integer path: 2**61 bounds the
#: per-row weight sum that ``mul_div_floor_rem`` divides by, and N < 2**n_bits weights share it.
_SUM_BITS = 61
#: The largest float64 below 2**63 (converting 2**63 itself to int64 overflows).
_MAX_DOUBLE_BELOW_2_63 = float(2**63 - 1024)


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


class EmissionSplit(NamedTuple):
    """What :func:`distribute_emission` returns: int64 wei per uid, shape ``(*, n)`` each.

    Attributes:
        server: the miners' (incentive) part.
        validator: the validators' (dividends) part.
        dust: wei per emission left undistributed, shape ``(*)`` (0 unless ``method="floor"``).
    """

    server: Array
    validator: Array
    dust: Array


# --------------------------------------------------------------------------------------------
# argument handling


def _as_totals(total_wei: Array | int, name: str = "total_wei") -> tuple[Tensor, bool]:
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


def _check_totals(totals: Tensor, name: str) -> None:
    bad = first_index(totals < 0)
    if bad is not None:
        raise ValueRangeError(
            f"Expected `{name}` to be non-negative wei, but found {int(totals[bad])} at index {bad}."
        )


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
# weights -> exact integers


def _power_of_two(exponent: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """2**exponent as a float, built from the exponent bits (exact on every device; no pow)."""
    if dtype == torch.float32:
        return ((exponent.to(torch.int32) + 127) << 23).view(torch.float32)
    return ((exponent.to(torch.int64) + 1023) << 52).view(torch.float64)


def _scaled_float_weights(w: Tensor, row_max: Tensor, top_bits: int) -> Tensor:
    """Float weights scaled per row by a power of two so that the row maximum lies in
    ``[2**(top_bits-1), 2**top_bits)``.

    float32 rows are scaled in float32 where the factor is a normal float32 and integers up to
    the maximum are exact (``top_bits <= 24``); otherwise in float64, in two factors where one
    would leave the float64 range. A power-of-two scaling is exact except where a weight far
    below the row maximum underflows (see :func:`apportion`); such a weight's share is far
    below one wei.
    """
    exponent = torch.frexp(row_max).exponent.to(torch.int64)
    shift = top_bits - torch.where(row_max > 0, exponent, torch.zeros_like(exponent))
    low, high = int(shift.min()), int(shift.max())
    if w.dtype == torch.float32 and top_bits <= 24 and -126 <= low and high <= 127:
        return w * _power_of_two(shift, torch.float32)[:, None]
    # a fresh float64 copy, scaled in place (never write into the caller's weights)
    w64 = w.to(torch.float64, copy=True)
    if -1022 <= low and high <= 1023:
        return w64.mul_(_power_of_two(shift)[:, None])
    half = torch.div(shift, 2, rounding_mode="floor")
    return w64.mul_(_power_of_two(half)[:, None]).mul_(_power_of_two(shift - half)[:, None])


# --------------------------------------------------------------------------------------------
# double-double arithmetic (pairs hi + lo of float64; Dekker / Knuth error-free transformations)

_SPLITTER = float(2**27 + 1)


def _two_sum(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _fast_two_sum(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Requires |a| >= |b| (or a == 0)."""
    s = a + b
    return s, b - (s - a)


def _split(a: Tensor) -> tuple[Tensor, Tensor]:
    c = a * _SPLITTER
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """a * b = p + e exactly (Dekker; no FMA, so the same bits wherever it runs)."""
    p = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    e = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, e


def _dd_add(a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    s, e = _two_sum(a[0], b[0])
    return _fast_two_sum(s, e + (a[1] + b[1]))


def _dd_mul_double(a: tuple[Tensor, Tensor], b: Tensor) -> tuple[Tensor, Tensor]:
    p, e = _two_prod(a[0], b)
    return _fast_two_sum(p, e + a[1] * b)


def _dd_div(a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """a / b to about 104 bits (one correction step of the long-division kind)."""
    q1 = a[0] / b[0]
    prod = _dd_mul_double(b, q1)
    rem = _dd_add(a, (-prod[0], -prod[1]))
    q2 = rem[0] / b[0]
    prod2 = _dd_mul_double(b, q2)
    rem = _dd_add(rem, (-prod2[0], -prod2[1]))
    q3 = rem[0] / b[0]
    hi, lo = _fast_two_sum(q1, q2)
    return _dd_add((hi, lo), (q3, torch.zeros_like(q3)))


def _int_to_dd(x: Tensor) -> tuple[Tensor, Tensor]:
    """An int64 tensor as an exact double-double."""
    high = (x >> 32).to(torch.float64) * float(2**32)
    low = (x & 0xFFFFFFFF).to(torch.float64)
    return _two_sum(high, low)


# --------------------------------------------------------------------------------------------
# the two share computations: floors plus a key that ranks the fractional parts


class _Blocks:
    """Column blocks of a ``(B, N)`` problem and three reusable int64 scratch buffers.

    On CPU each block holds at most ``_CACHE_BLOCK`` elements, so the temporaries of the
    elementwise passes stay in cache and are allocated once (fresh large buffers are
    page-faulted in again on every call, which cost more than the arithmetic). A GPU takes
    one block. The results do not depend on the blocking.
    """

    def __init__(self, like: Tensor) -> None:
        rows, n = like.shape
        cols = n if like.device.type != "cpu" else max(1, min(n, _CACHE_BLOCK // max(rows, 1)))
        self.slices = [slice(start, min(start + cols, n)) for start in range(0, n, cols)]
        self._rows = rows
        self._buffers = [torch.empty(rows * min(cols, n), dtype=torch.int64, device=like.device) for _ in range(3)]

    def scratch(self, block: slice, which: int) -> Tensor:
        """Contiguous ``(B, width)`` int64 scratch buffer number ``which`` (0-2) for ``block``."""
        width = block.stop - block.start
        return self._buffers[which][: self._rows * width].view(self._rows, width)


class _Division(NamedTuple):
    """``floor(T * q / Q)`` as long division: T = whole * Q + part, q in ``steps`` digits of
    ``digit_bits`` bits. The constants are per row ``(B, 1)``, per element ``(K,)``, or Python
    ints for one row on CPU (then ``x - d * Q`` is one scaled add instead of an addcmul)."""

    divisor: Tensor | int
    whole: Tensor | int
    part: Tensor | int
    digit_bits: int
    steps: int


def _plan_division(totals: Tensor, row_sum: Tensor, q_bits: int, as_ints: bool, per_row: bool = True) -> _Division:
    """The long division of ``T * q_i`` by the row sum Q (< 2**61) for q below ``2**q_bits``.

    Constants as Python ints (``as_ints``, one row), ``(B, 1)`` columns (``per_row``) or as given.
    """
    divisor = row_sum.clamp(min=1)
    whole = torch.div(totals, divisor, rounding_mode="floor")
    part = totals - whole * divisor
    digit_bits = 62 - bit_length(row_sum)
    steps = -(-max(q_bits, 1) // digit_bits)
    if as_ints:
        return _Division(int(divisor[0]), int(whole[0]), int(part[0]), digit_bits, steps)
    if per_row:
        return _Division(divisor[:, None], whole[:, None], part[:, None], digit_bits, steps)
    return _Division(divisor, whole, part, digit_bits, steps)


def _add_multiple(target: Tensor, factor: Tensor, scale: Tensor | int, sign: int = 1) -> None:
    """target += sign * factor * scale, in place (exact int64)."""
    if isinstance(scale, int):
        target.add_(factor, alpha=sign * scale)
    else:
        target.addcmul_(factor, scale, value=sign)


def _divide(plan: _Division, q: Tensor, quotient: Tensor, remainder: Tensor, digit: Tensor) -> None:
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


def _float_limbs_sum(scaled: Tensor, limb_bits: int, limbs: int) -> tuple[Tensor, Tensor]:
    """Σ scaled per row, exact to ``limbs * limb_bits`` bits below the units digit, as a double-double."""
    total = (torch.zeros_like(scaled[:, 0]), torch.zeros_like(scaled[:, 0]))
    rest = scaled
    unit = 1.0
    for _ in range(limbs):
        digit = torch.floor(rest)
        limb_sum = _int_to_dd(digit.to(torch.int64).sum(dim=-1))
        total = _dd_add(total, (limb_sum[0] * unit, limb_sum[1] * unit))
        rest = (rest - digit) * float(2**limb_bits)
        unit *= 2.0**-limb_bits
    return total


def _approx_shares(
    totals: Tensor, parts_hi: Tensor, parts_lo: Tensor | None, weight_sum: tuple[Tensor, Tensor]
) -> tuple[Tensor, Tensor]:
    """Floors and fractional parts of ``T * a_i / W`` with a = parts_hi + parts_lo, in double-double."""
    ratio = _dd_div(_int_to_dd(totals), weight_sum)
    ratio = (ratio[0][:, None], ratio[1][:, None])
    x_hi, x_lo = _dd_mul_double(ratio, parts_hi)
    if parts_lo is not None:
        x_hi, x_lo = _dd_add((x_hi, x_lo), _dd_mul_double(ratio, parts_lo))
    # 2**63 itself does not convert to int64: move the excess into the low word (exact).
    over = x_hi > _MAX_DOUBLE_BELOW_2_63
    x_lo = torch.where(over, x_lo + (x_hi - _MAX_DOUBLE_BELOW_2_63), x_lo)
    x_hi = torch.where(over, torch.full_like(x_hi, _MAX_DOUBLE_BELOW_2_63), x_hi)
    whole = torch.floor(x_hi)
    rest = (x_hi - whole) + x_lo
    carry = torch.floor(rest)
    fraction = rest - carry
    # rest just below an integer can round the fraction up to 1.0: that is the next integer
    up = fraction >= 1.0
    carry = carry + up.to(carry.dtype)
    fraction = fraction.masked_fill_(up, 0.0)
    floors = whole.to(torch.int64) + carry.to(torch.int64)
    return floors.clamp_(min=0), fraction


# --------------------------------------------------------------------------------------------
# leftover units to the largest keys


#: Elements per column block on CPU (see :class:`_Blocks`): 1 MiB of int64.
_CACHE_BLOCK = 1 << 17


def _bucket_bits(n: int) -> int:
    """Radix-select bucket bits for rows of n keys: about 16 keys per bucket, at most 2048 buckets."""
    return max(1, min(11, n.bit_length() - 4))


def _cut_buckets(histogram: Tensor, counts: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """The bucket holding each row's ``counts[b]``-th largest key, and how many keys to take there.

    ``histogram`` is ``(B, width)``: keys per bucket, n per row.
    """
    inclusive = histogram.cumsum(-1)
    # buckets >= c hold n - (inclusive - histogram)[c] keys, which does not increase with c
    cut = ((inclusive - histogram) <= (n - counts)[:, None]).sum(-1).sub_(1).clamp_(min=0)
    above = n - inclusive.gather(-1, cut[:, None])[:, 0]  # keys in buckets > cut
    return cut, counts - above


def _take_ties(floors: Tensor, values: Tensor, row_ids: Tensor, col_ids: Tensor, need: Tensor) -> None:
    """Add one to ``floors`` at the ``need[b]`` largest keys ``values`` of the given cut-bucket entries.

    Entries come with the columns of each row ascending; equal keys go to the lower index.
    """
    if not row_ids.numel():
        return
    order = torch.sort(values, descending=True, stable=True).indices  # ties: lower index first
    order = order[torch.sort(row_ids[order], stable=True).indices]
    row_sorted = row_ids[order]
    starts = torch.searchsorted(row_sorted, row_sorted, right=False)
    rank = torch.arange(order.numel(), device=order.device) - starts
    pick = order[rank < need[row_sorted]]
    floors[row_ids[pick], col_ids[pick]] += 1


def _largest_keys(buckets: Tensor, keys: Tensor, counts: Tensor, bucket_bits: int) -> Tensor:
    """One per each of the ``counts[b]`` largest keys of each row, else 0 (int64); equal keys go
    to the lower index.

    A full sort would cost far more than the rest of :func:`apportion`, so this is a one-level
    radix select: ``buckets`` (int64 in ``[0, 2**bucket_bits)``, non-decreasing in the key) are
    histogrammed per row, the bucket holding the cut is found from the cumulative counts,
    everything above it is taken, and only the keys inside that one bucket are sorted (stably,
    so equal keys keep index order). Integer counting is exact, so the result does not depend
    on the order of the (atomic, on CUDA) histogram updates.
    """
    rows, n = buckets.shape
    width = 1 << bucket_bits
    column = buckets if rows == 1 else buckets + (torch.arange(rows, device=buckets.device) * width)[:, None]
    ones = torch.ones(1, dtype=torch.int64, device=buckets.device).expand(rows * n)
    histogram = torch.zeros(rows * width, dtype=torch.int64, device=buckets.device)
    histogram = histogram.scatter_add_(0, column.reshape(-1), ones).reshape(rows, width)
    cut, need = _cut_buckets(histogram, counts, n)
    chosen = (buckets > cut[:, None]).to(torch.int64)
    row_ids, col_ids = (buckets == cut[:, None]).nonzero(as_tuple=True)
    _take_ties(chosen, keys[row_ids, col_ids], row_ids, col_ids, need)
    return chosen


def _row_bits(values: Tensor) -> Tensor:
    """Bit length of each (B,) int64 value below 2**62 (exact: frexp of an exact float64)."""
    return torch.frexp((values >> 10).to(torch.float64)).exponent.to(torch.int64) + 10


def _exact_path(
    totals: Tensor,
    q: Tensor,
    q_bits: int,
    method: ApportionMethod,
    spare: Tensor | None = None,
    out: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Exact shares of integer weights ``q`` (int32 or int64, below ``2**q_bits``), block by block.

    ``spare``: a dead buffer of q's shape and 4-byte elements to keep the buckets in; ``out``:
    a contiguous int64 buffer of q's shape for the parts (fresh memory costs page faults).
    """
    rows, n = q.shape
    blocks = _Blocks(q)
    row_sum = q.sum(dim=-1, dtype=torch.int64)
    single = rows == 1 and q.device.type == "cpu"
    plan = _plan_division(totals, row_sum, q_bits, single)
    floors = out if out is not None else torch.empty(q.shape, dtype=torch.int64, device=q.device)
    largest = method == "largest_remainder"
    # Largest remainders by _largest_keys's radix select, done block by block: the buckets (the
    # remainders' top bits) are kept as int32; the few remainders in each row's cut bucket are
    # computed again at the end rather than keeping all of them.
    bucket_bits = _bucket_bits(n)
    width = 1 << bucket_bits
    row_shift = (_row_bits(row_sum) - bucket_bits).clamp(min=0)
    shift: Tensor | int = int(row_shift[0]) if single else row_shift[:, None]
    offsets = (torch.arange(rows, device=q.device) * width)[:, None] if rows > 1 else None
    histogram = torch.zeros(rows * width, dtype=torch.int64, device=q.device)
    if spare is not None and spare.shape == q.shape and spare.element_size() == 4 and spare.is_contiguous():
        store = spare.view(torch.int32)
    else:
        store = torch.empty(q.shape, dtype=torch.int32, device=q.device)
    for block in blocks.slices:
        # an int64 copy of the block: ops mixing int32 and int64 are several times slower
        q_block = blocks.scratch(block, 0).copy_(q[:, block])
        remainder = blocks.scratch(block, 1)
        _divide(plan, q_block, floors[:, block], remainder, blocks.scratch(block, 2))
        if largest:
            buckets = remainder.bitwise_right_shift_(shift)
            store[:, block] = buckets
            if offsets is not None:
                buckets.add_(offsets)
            # bincount: about twice scatter_add's speed on CPU, the same exact counts
            histogram.add_(torch.bincount(buckets.view(-1), minlength=rows * width))
    left = totals - floors.sum(dim=-1)
    if not largest:
        return floors, left
    # Every unit of `left` goes to a positive remainder (spec 2.4.3), so zero weights, whose
    # remainder is 0, are never chosen and need no mask.
    cut, need = _cut_buckets(histogram.view(rows, width), left, n)
    row_parts, col_parts = [], []
    for block in blocks.slices:
        buckets = blocks.scratch(block, 0).copy_(store[:, block])
        row_ids, col_ids = (buckets == cut[:, None]).nonzero(as_tuple=True)
        row_parts.append(row_ids)
        col_parts.append(col_ids + block.start)
        # above the cut: (cut - bucket) >> 63 is -1, elsewhere 0 (buckets are small)
        floors[:, block].sub_(buckets.neg_().add_(cut[:, None]).bitwise_right_shift_(63))
    row_ids, col_ids = torch.cat(row_parts), torch.cat(col_parts)  # per row, columns ascending
    if row_ids.numel():
        plan_at = _plan_division(totals[row_ids], row_sum[row_ids], q_bits, False, per_row=False)
        q_at = q[row_ids, col_ids].to(torch.int64)
        remainders = torch.empty_like(q_at)
        _divide(plan_at, q_at, torch.empty_like(q_at), remainders, torch.empty_like(q_at))
        _take_ties(floors, remainders, row_ids, col_ids, need)
    return floors, torch.zeros_like(left)


def _approx_path(totals: Tensor, w: Tensor, top_bits: int, method: ApportionMethod) -> tuple[Tensor, Tensor]:
    """Double-double shares for rows whose weights do not fit one exact int64 computation."""
    if w.is_floating_point():
        # enough limbs that the truncated tail of the sum is below 2**-104 of it
        limbs = -(-(105 + w.shape[-1].bit_length()) // top_bits)
        weight_sum = _float_limbs_sum(w, top_bits, limbs)
        floors, fraction = _approx_shares(totals, w, None, weight_sum)
    else:
        high, low = w >> 32, w & 0xFFFFFFFF
        high_sum, low_sum = _int_to_dd(high.sum(dim=-1)), _int_to_dd(low.sum(dim=-1))
        weight_sum = _dd_add((high_sum[0] * float(2**32), high_sum[1] * float(2**32)), low_sum)
        floors, fraction = _approx_shares(totals, high.to(torch.float64) * float(2**32), low.to(torch.float64), weight_sum)
    left = totals - floors.sum(dim=-1)
    if method == "floor":
        return floors, left
    bad = first_index(left < 0)
    if bad is not None:  # pragma: no cover - would be a bug in the share computation
        raise RuntimeError(f"apportion: the floors exceed the total in row {bad}; please report this.")
    # zero weights sit in bucket 0 with key -1: below every positive weight's fraction, and at
    # most as many units as positive weights are left over, so they are never chosen
    bucket_bits = _bucket_bits(w.shape[-1])
    buckets = (fraction * float(1 << bucket_bits)).to(torch.int64)
    floors += _largest_keys(buckets, fraction.masked_fill_(w == 0, -1.0), left, bucket_bits)
    return floors, torch.zeros_like(left)


def _mantissa_bits(dtype: torch.dtype) -> int:
    return {torch.float16: 11, torch.bfloat16: 8, torch.float32: 24}.get(dtype, 53)


#: Elements per block of rows on CPU (see :func:`_apportion_rows`).
_CPU_BLOCK = 1 << 19


def _apportion_rows(
    totals: Tensor, w: Tensor, row_max: Tensor, method: ApportionMethod, mantissa_bits: int
) -> tuple[Tensor, Tensor]:
    """Apportion (B,) totals over (B, N) weights in blocks of rows (each row independent).

    On CPU a block of at most ``_CPU_BLOCK`` elements keeps the int64 temporaries small: the
    allocator recycles them (a fresh 32 MB buffer is page-faulted in again on every call,
    which cost more than the arithmetic) and they stay in cache. Every row's result is the
    same whatever block it is in, so GPUs take all rows at once.
    """
    rows, n = w.shape
    per_block = max(1, _CPU_BLOCK // max(n, 1)) if w.device.type == "cpu" else rows
    if per_block >= rows:
        return _apportion_block(totals, w, row_max, method, mantissa_bits)
    parts = torch.empty(w.shape, dtype=torch.int64, device=w.device)
    dust = torch.empty_like(totals)
    for start in range(0, rows, per_block):
        block = slice(start, start + per_block)
        out = parts[block]
        block_parts, dust[block] = _apportion_block(totals[block], w[block], row_max[block], method, mantissa_bits, out)
        if block_parts.data_ptr() != out.data_ptr():
            out.copy_(block_parts)
    return parts, dust


def _apportion_block(
    totals: Tensor,
    w: Tensor,
    row_max: Tensor,
    method: ApportionMethod,
    mantissa_bits: int,
    out: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Apportion (B,) totals over (B, N) non-negative weights, every row with a positive weight.

    Rows whose weights are exact integers below ``2**top_bits`` after a power-of-two scaling
    take the exact int64 path; the others the double-double path.
    """
    top_bits = _SUM_BITS - w.shape[-1].bit_length()
    if not w.is_floating_point():
        values = w.to(torch.int64)
        if bit_length(row_max) <= top_bits:
            return _exact_path(totals, values, bit_length(row_max), method, out=out)
        return _approx_path(totals, values, top_bits, method)
    # First try as few bits as the dtype's mantissa (small integers: one long-division step).
    for bits in sorted({min(mantissa_bits, top_bits), top_bits}):
        scaled = _scaled_float_weights(w, row_max, bits)
        # truncation: the floor of a non-negative value; int32 where it fits (half the memory)
        q = scaled.to(torch.int32 if bits <= 31 else torch.int64)
        fraction = scaled.frac_()  # a fresh buffer (never the caller's weights)
        if not bool(fraction.amax() > 0):  # fractions are >= 0: one cheap reduction
            return _exact_path(totals, q, bits, method, spare=fraction, out=out)
    lossless = ~(fraction != 0).any(dim=-1)
    scaled = _scaled_float_weights(w, row_max, top_bits).to(torch.float64)
    if not bool(lossless.any()):
        return _approx_path(totals, scaled, top_bits, method)
    parts = torch.empty(w.shape, dtype=torch.int64, device=w.device)
    dust = torch.empty_like(totals)
    exact_rows, approx_rows = lossless.nonzero().squeeze(-1), (~lossless).nonzero().squeeze(-1)
    parts[exact_rows], dust[exact_rows] = _exact_path(totals[exact_rows], q[exact_rows], top_bits, method)
    parts[approx_rows], dust[approx_rows] = _approx_path(totals[approx_rows], scaled[approx_rows], top_bits, method)
    return parts, dust


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
    larger weight never gets less. ``method="floor"`` is the chain's rule (``spec/yuma.md``
    B.3 step 14): the floors only, with the undistributed wei returned as ``dust``.

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
    if method not in ("largest_remainder", "floor"):
        raise ValueRangeError(
            f"Expected `method` to be 'largest_remainder' or 'floor', but got {method!r}."
        )
    if zero_weights not in ("error", "dust", "even"):
        raise ValueRangeError(
            f"Expected `zero_weights` to be 'error', 'dust' or 'even', but got {zero_weights!r}."
        )
    w, origin = as_tensor(weights, "weights")
    if w.dtype == torch.bool:
        raise DTypeError("Expected `weights` to hold numbers, but got dtype torch.bool.")
    if w.ndim == 0:
        raise ShapeError("Expected `weights` to have shape (*, N) (at least 1 dimension), but got a scalar.")
    dim = normalize_dim(dim, w.ndim)
    totals, _ = _as_totals(total_wei)
    if totals.device != w.device:
        if totals.ndim == 0 and totals.device.type == "cpu" and isinstance(total_wei, int):
            totals = totals.to(w.device)
        else:
            from ._array import check_same_device

            check_same_device(total_wei=totals, weights=w)
    mantissa_bits = _mantissa_bits(w.dtype)
    if w.dtype in (torch.float16, torch.bfloat16):
        w = w.to(torch.float32)  # exact widening
    if validate:
        _check_totals(totals, "total_wei")
    rows, row_totals, batch_shape = _flatten_rows(w, totals, dim)
    n = rows.shape[-1]
    parts: Tensor | None = None  # zeros unless a row is paid
    dust = row_totals
    if rows.numel() == 0 and rows.shape[0] and zero_weights == "error":
        raise WeightError(_ALL_ZERO_MESSAGE.format(row="every row", detail="N = 0"))
    if rows.numel():
        # per-row max for the scaling; the checks need only the global extremes (one cheap
        # pass: a per-row aminmax costs ~20x a per-row amax plus a global aminmax on CPU)
        row_max = rows.amax(dim=-1)
        if validate and rows.is_floating_point():
            low, high = torch.aminmax(rows)
            ok = bool((low >= 0) & (high < float("inf")))  # NaN fails both comparisons
        else:
            ok = not validate or bool(rows.min() >= 0)
        if not ok:
            check_finite(w, "weights")  # raise, naming the first bad value
            check_non_negative(w, "weights")
        empty = row_max <= 0
        if bool(empty.any()):
            if zero_weights == "error":
                bad = first_index(empty.reshape(batch_shape))
                where = f"row {bad}" if batch_shape else "the row"
                raise WeightError(_ALL_ZERO_MESSAGE.format(row=where, detail="all zero"))
            if zero_weights == "even":
                rows = torch.where(empty[:, None], torch.ones_like(rows), rows)
                row_max = torch.where(empty, torch.ones_like(row_max), row_max)
                empty = torch.zeros_like(empty)
        if not bool(empty.any()):
            parts, dust = _apportion_rows(row_totals, rows, row_max, method, mantissa_bits)
        elif not bool(empty.all()):
            parts, dust = torch.zeros(rows.shape, dtype=torch.int64, device=rows.device), row_totals.clone()
            live = (~empty).nonzero().squeeze(-1)
            parts[live], dust[live] = _apportion_rows(row_totals[live], rows[live], row_max[live], method, mantissa_bits)
    if parts is None:
        parts = torch.zeros(rows.shape, dtype=torch.int64, device=rows.device)
    parts = parts.reshape(*batch_shape, n).movedim(-1, dim)
    dust = dust.reshape(batch_shape)
    return Apportionment(origin.wrap(parts), origin.wrap(dust))


def split_emission(total_wei: Array | int, split_u16: Array | int, *, validate: bool = True) -> Array:
    """Split emissions over mechanisms exactly as the chain does (``spec/yuma.md`` B.6).

    With a split (u16 shares ``s_m``; the chain requires them to sum to 65535) mechanism m gets
    ``floor(E * s_m / 65535)``; with a count M every mechanism gets ``floor(E / M)``. The
    rounding remainder ``E - sum(e_m)`` goes to mechanism 0, so the parts sum to E. A split
    summing to a little more than 65535 is accepted (the chain's own test vector sums to 65538)
    as long as the floors do not exceed E; otherwise :class:`ValueRangeError`.

    Args:
        total_wei: the emissions E in wei, int64 of shape ``(*)`` or one int.
        split_u16: the u16 shares, shape ``(*, M)`` or ``(M,)``, or an int count M for an even split.
        validate: check the ranges (forces a GPU sync).

    Returns:
        int64 wei of shape ``(*, M)``, in the array type of ``split_u16`` (of ``total_wei`` for a
        count).

    Example:
        >>> split_emission(10, 4)
        tensor([4, 2, 2, 2])
        >>> split_emission(19, torch.tensor([3450, 6899, 10348, 17247, 27594]))
        tensor([1, 2, 3, 5, 8])
    """
    totals, _ = _as_totals(total_wei)
    if isinstance(split_u16, bool):
        raise DTypeError("Expected `split_u16` to be u16 shares or an int count, but got bool.")
    if isinstance(split_u16, int):
        if split_u16 < 1:
            raise ValueRangeError(f"Expected the mechanism count to be at least 1, but got {split_u16}.")
        origin = None if isinstance(total_wei, int) else as_tensor(total_wei, "total_wei")[1]
        if validate:
            _check_totals(totals, "total_wei")
        share = torch.div(totals, split_u16, rounding_mode="floor")
        parts = share[..., None].repeat(*([1] * totals.ndim), split_u16)
    else:
        shares, origin = as_tensor(split_u16, "split_u16")
        if shares.is_floating_point() or shares.dtype == torch.bool:
            raise DTypeError(f"Expected `split_u16` to hold u16 integers, but got dtype {shares.dtype}.")
        if shares.ndim == 0:
            raise ShapeError("Expected `split_u16` to have shape (*, M), but got a scalar.")
        shares = shares.to(torch.int64)
        if totals.device != shares.device and not (totals.ndim == 0 and isinstance(total_wei, int)):
            from ._array import check_same_device

            check_same_device(total_wei=totals, split_u16=shares)
        totals = totals.to(shares.device)
        if validate:
            _check_totals(totals, "total_wei")
            bad = first_index((shares < 0) | (shares > 65535))
            if bad is not None:
                raise ValueRangeError(f"Expected `split_u16` in [0, 65535], but found {int(shares[bad])} at index {bad}.")
        batch = torch.broadcast_shapes(totals.shape, shares.shape[:-1])
        totals = totals.expand(batch)
        shares = shares.expand(*batch, shares.shape[-1])
        parts, _ = mul_div_floor_rem(totals[..., None], shares, torch.full_like(shares, 65535), b_bits=16, c_bits=16)
    parts = parts.clone()
    rounding_error = totals - parts.sum(dim=-1)
    over = first_index(rounding_error < 0)
    if over is not None:
        raise ValueRangeError(
            f"`split_u16` sums to more than 65535 in row {over}: the parts exceed the emission "
            "(the chain only accepts splits summing to 65535)."
        )
    parts[..., 0] += rounding_error
    return parts if origin is None else origin.wrap(parts)


def distribute_emission(
    emission_wei: Array | int,
    incentive: Array,
    dividends: Array,
    *,
    active_stake: Array | None = None,
    stake: Array | None = None,
    method: ApportionMethod = "largest_remainder",
    dim: int = -1,
    validate: bool = True,
) -> EmissionSplit:
    """Turn an epoch's incentive and dividends into wei for miners and validators, exactly.

    As the chain does (``spec/yuma.md`` B.3 step 14), the shares are ``I_i / Σ`` and ``D_i / Σ``
    with ``Σ = sum(I + D)``: about 2 when both are normalised, which is the built-in 50/50
    miner/validator split. The emission is apportioned over the 2n shares at once with
    :func:`apportion`, so ``server + validator`` sums to the emission exactly
    (``method="largest_remainder"``, default); ``method="floor"`` gives the chain's floors and
    returns the dust (the chain computes the ratios in I32F32, so for its exact bits use
    ``mt.yuma``'s exact mode).

    Where ``Σ == 0`` (no valid weights), validators are paid by ``active_stake`` (or by ``stake``
    where the active stake is all zero), servers get 0. Without a usable stake such a row raises
    :class:`WeightError`.

    Args:
        emission_wei: E in wei, int64 ``(*)`` or one int.
        incentive: I, shape ``(*, n)``: floats or u16 integers (the same kind as ``dividends``).
        dividends: D, shape ``(*, n)``.
        active_stake: S^a, shape ``(*, n)``, used where ``Σ == 0``.
        stake: S, shape ``(*, n)``, used where ``Σ == 0`` and S^a is all zero (or not given).
        method: ``"largest_remainder"`` or ``"floor"``.
        dim: the axis holding the uids.
        validate: check NaN, inf, signs (forces a GPU sync).

    Returns:
        ``EmissionSplit(server, validator, dust)``: int64 ``(*, n)``, ``(*, n)`` and ``(*)``.

    Example:
        >>> out = distribute_emission(1000, torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.0, 0.25, 0.75]))
        >>> out.server, out.validator, out.dust
        (tensor([250, 250,   0]), tensor([  0, 125, 375]), tensor(0))
    """
    inc, origin = as_tensor(incentive, "incentive")
    div, _ = as_tensor(dividends, "dividends")
    if inc.shape != div.shape:
        raise ShapeError(f"Expected `incentive` and `dividends` to have the same shape, but got {tuple(inc.shape)} and {tuple(div.shape)}.")
    if inc.is_floating_point() != div.is_floating_point():
        raise DTypeError(
            f"Expected `incentive` and `dividends` of the same kind (both float or both u16), but got {inc.dtype} and {div.dtype}."
        )
    if inc.ndim == 0:
        raise ShapeError("Expected `incentive` to have shape (*, n), but got a scalar.")
    dim = normalize_dim(dim, inc.ndim)
    inc, div = inc.movedim(dim, -1), div.movedim(dim, -1)
    n = inc.shape[-1]
    both = torch.cat([inc, div], dim=-1)
    if both.dtype in (torch.float16, torch.bfloat16):
        both = both.to(torch.float32)
    if validate:
        check_finite(both, "incentive / dividends")
        check_non_negative(both, "incentive / dividends")
    totals, _ = _as_totals(emission_wei, "emission_wei")
    totals = totals.to(both.device).expand(both.shape[:-1]).contiguous()
    live = (both > 0).any(dim=-1)
    parts, dust = apportion(totals, both, method=method, zero_weights="dust", validate=False)
    server, validator = parts[..., :n], parts[..., n:].clone()
    if not bool(live.all()):
        fallback = _stake_fallback(totals, inc.shape, active_stake, stake, dim, validate, both.device)
        if fallback is None:
            bad = first_index(~live)
            raise WeightError(
                f"Incentive and dividends are all zero in row {bad}; pass `active_stake` (and/or `stake`) "
                "to pay validators by stake there, as the chain does."
            )
        stake_parts, stake_dust = apportion(totals, fallback, method=method, zero_weights="dust", validate=False)
        validator = torch.where(live[..., None], validator, stake_parts)
        dust = torch.where(live, dust, stake_dust)
    return EmissionSplit(
        origin.wrap(server.movedim(-1, dim)), origin.wrap(validator.movedim(-1, dim)), origin.wrap(dust)
    )


def _stake_fallback(
    totals: Tensor,
    shape: torch.Size,
    active_stake: Array | None,
    stake: Array | None,
    dim: int,
    validate: bool,
    device: torch.device,
) -> Tensor | None:
    """The chain's stake weights for rows without incentive or dividends: S^a, else S."""
    chosen: Tensor | None = None
    for name, given in (("stake", stake), ("active_stake", active_stake)):
        if given is None:
            continue
        values, _ = as_tensor(given, name)
        values = values.movedim(dim, -1)
        if values.shape != shape:
            raise ShapeError(f"Expected `{name}` to have shape {tuple(shape)}, but got {tuple(values.shape)}.")
        if values.dtype in (torch.float16, torch.bfloat16):
            values = values.to(torch.float32)
        if validate:
            check_finite(values, name)
            check_non_negative(values, name)
        values = values.to(device).to(torch.float64 if values.is_floating_point() else torch.int64)
        if chosen is None:
            chosen = values
        else:
            if chosen.dtype != values.dtype:
                chosen, values = chosen.to(torch.float64), values.to(torch.float64)
            chosen = torch.where((values > 0).any(dim=-1, keepdim=True), values, chosen)
    return chosen


def sum_wei(wei: Array, *, dim: int = -1) -> Array:
    """Sum int64 wei along ``dim``, raising :class:`WeiOverflowError` instead of wrapping.

    torch's int64 sums wrap around silently past 2**63 - 1; this one sums the high and low
    32-bit halves separately (each sum is exact for N < 2**31 terms) and names the first row
    whose total does not fit.

    Args:
        wei: int64 wei, shape ``(*, N)``.
        dim: the axis to sum.

    Returns:
        int64 ``(*)`` in the caller's array type.

    Example:
        >>> sum_wei(torch.tensor([[2**62, 2**62 - 1], [1, 2]]))
        tensor([9223372036854775807,                   3])
    """
    values, origin = as_tensor(wei, "wei")
    if values.is_floating_point() or values.dtype == torch.bool:
        raise DTypeError(f"Expected `wei` to be an integer tensor, but got dtype {values.dtype}.")
    if values.ndim == 0:
        raise ShapeError("Expected `wei` to have shape (*, N), but got a scalar.")
    dim = normalize_dim(dim, values.ndim)
    values = values.to(torch.int64)
    high = (values >> 32).sum(dim=dim)  # arithmetic shift: keeps the sign
    low = (values & 0xFFFFFFFF).sum(dim=dim)
    high = high + (low >> 32)
    low = low & 0xFFFFFFFF
    bad = first_index((high > 2**31 - 1) | (high < -(2**31)))
    if bad is not None:
        raise WeiOverflowError(
            f"The sum of `wei` along dim {dim} overflows int64 (|total| > 2**63 - 1 wei) at index {bad}."
        )
    return origin.wrap((high << 32) | low)
