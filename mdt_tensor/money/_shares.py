"""The two share computations behind :func:`~mdt_tensor.money.apportion.apportion`.

``_exact_path``: weights that are exact integers below ``2**(61 - bit_length(N))`` after a
power-of-two scaling, divided out with int64 long division. ``_approx_path``: wider float (or
int64) weights, whose shares are computed in double-double arithmetic from an exact multi-limb
sum. Both return floors plus the leftover units handed to the largest remainders; the choice
between them and its precision are explained in ``docs/design/apportion.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
from torch import Tensor

from .._intmath import bit_length
from .._validation import first_index
from ._division import Blocks, divide, plan_division, row_bit_lengths
from ._doubledouble import DoubleDouble, dd_add, dd_div, dd_mul_double, int_to_dd
from ._select import bucket_bits_for, cut_buckets, largest_keys, take_ties

__all__: list[str] = []

ApportionMethod = Literal["largest_remainder", "floor"]

#: Bits kept below a row's largest float weight in the exact integer path: 2**61 bounds the
#: per-row weight sum that ``mul_div_floor_rem`` divides by, and N < 2**n_bits weights share it.
_SUM_BITS = 61
#: The largest float64 below 2**63 (converting 2**63 itself to int64 overflows).
_MAX_DOUBLE_BELOW_2_63 = float(2**63 - 1024)


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


#: Per float dtype: the integer dtype of its bits, its stored mantissa bits and exponent bias.
_FLOAT_LAYOUT = {torch.float32: (torch.int32, 23, 127), torch.float64: (torch.int64, 52, 1023)}


def _exact_integer_bits(w: Tensor, row_max: Tensor, limit: int) -> int:
    """The fewest bits ``b`` that hold the non-negative float weights ``w (B, N)`` as whole numbers
    once each row is scaled by the power of two that puts its maximum ``row_max (B,)`` (positive)
    in ``[2**(b - 1), 2**b)``: the widest span over the rows from the maximum's leading bit down
    to the lowest set bit of any of its weights. Read from the floats' bits (exact, subnormals too).

    Where the exponents alone show that more than ``limit`` bits are needed, a lower bound above
    ``limit`` is returned without reading the significands: the result exceeds ``limit`` exactly
    when ``b`` does, and is ``b`` otherwise.
    """
    int_dtype, mantissa_bits, bias = _FLOAT_LAYOUT[w.dtype]
    bits = w.view(int_dtype)
    # the stored exponent e: w's leading bit is 2**(e - bias) (subnormals: e = 1, their bits below)
    exponent = (bits >> mantissa_bits).clamp_(min=1).masked_fill_(bits == 0, 1 << 20)  # zeros need no bits
    top = torch.frexp(row_max).exponent.to(torch.int64)  # row_max < 2**top
    at_least = int((top - (exponent.amin(dim=-1) - bias)).max())  # a lowest bit is at most the leading one
    if at_least > limit:
        return at_least
    # the significand's lowest set bit (bit `mantissa_bits` stands in for the implicit leading one;
    # a subnormal's bits all lie below it), a power of two read back through its own float's exponent
    significand = bits | (1 << mantissa_bits)
    lowest_digit = (significand & -significand).to(w.dtype).view(int_dtype) >> mantissa_bits
    # w's lowest set bit: 2**(e - bias - mantissa_bits + lowest_digit - bias)
    lowest = exponent.add_(lowest_digit).amin(dim=-1) - (2 * bias + mantissa_bits)
    return max(1, int((top - lowest).max()))


def _bits_to_try(w: Tensor, row_max: Tensor, top_bits: int) -> Iterator[int]:
    """The scalings ``_apportion_block`` tries, fewest bits first (the fewer bits, the fewer
    long-division steps): the dtype's significand (small integers, weights on a grid such as
    ``torch.rand``'s 2**-24: one cheap check), then where that fails the fewest bits that hold
    every weight whole (``_exact_integer_bits``, about ten passes over the weights), and last
    the most the row sum allows (its scaling also serves the rows that are not whole)."""
    first = min(_FLOAT_LAYOUT[w.dtype][1] + 1, top_bits)  # the significand, its leading bit included
    yield first
    if first < top_bits:
        fewest = _exact_integer_bits(w, row_max, top_bits)
        if first < fewest < top_bits:
            yield fewest
        yield top_bits


def _float_limbs_sum(scaled: Tensor, limb_bits: int, limbs: int) -> DoubleDouble:
    """Σ scaled per row, exact to ``limbs * limb_bits`` bits below the units digit, as a double-double."""
    total = (torch.zeros_like(scaled[:, 0]), torch.zeros_like(scaled[:, 0]))
    rest = scaled
    unit = 1.0
    for _ in range(limbs):
        digit = torch.floor(rest)
        limb_sum = int_to_dd(digit.to(torch.int64).sum(dim=-1))
        total = dd_add(total, (limb_sum[0] * unit, limb_sum[1] * unit))
        rest = (rest - digit) * float(2**limb_bits)
        unit *= 2.0**-limb_bits
    return total


def _approx_shares(
    totals: Tensor, parts_hi: Tensor, parts_lo: Tensor | None, weight_sum: DoubleDouble
) -> tuple[Tensor, Tensor]:
    """Floors and fractional parts of ``T * a_i / W`` with a = parts_hi + parts_lo, in double-double."""
    ratio = dd_div(int_to_dd(totals), weight_sum)
    ratio = (ratio[0][:, None], ratio[1][:, None])
    x_hi, x_lo = dd_mul_double(ratio, parts_hi)
    if parts_lo is not None:
        x_hi, x_lo = dd_add((x_hi, x_lo), dd_mul_double(ratio, parts_lo))
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
    blocks = Blocks(q)
    row_sum = q.sum(dim=-1, dtype=torch.int64)
    single = rows == 1 and q.device.type == "cpu"
    plan = plan_division(totals, row_sum, q_bits, single)
    floors = out if out is not None else torch.empty(q.shape, dtype=torch.int64, device=q.device)
    largest = method == "largest_remainder"
    # Largest remainders by largest_keys's radix select, done block by block: the buckets (the
    # remainders' top bits) are kept as int32; the few remainders in each row's cut bucket are
    # computed again at the end rather than keeping all of them.
    bucket_bits = bucket_bits_for(n)
    width = 1 << bucket_bits
    row_shift = (row_bit_lengths(row_sum) - bucket_bits).clamp(min=0)
    shift: Tensor | int = int(row_shift[0]) if single else row_shift[:, None]
    offsets = (torch.arange(rows, device=q.device) * width)[:, None] if rows > 1 else None
    histogram = torch.zeros(rows * width, dtype=torch.int64, device=q.device)
    if spare is not None and spare.shape == q.shape and spare.element_size() == 4 and spare.is_contiguous():
        store = spare.view(torch.int32)
    else:
        store = torch.empty(q.shape, dtype=torch.int32, device=q.device)
    for block in blocks.slices:
        # an int64 copy of the block: ops mixing int32 and int64 are slower
        q_block = blocks.scratch(block, 0).copy_(q[:, block])
        remainder = blocks.scratch(block, 1)
        divide(plan, q_block, floors[:, block], remainder, blocks.scratch(block, 2))
        if largest:
            buckets = remainder.bitwise_right_shift_(shift)
            store[:, block] = buckets
            if offsets is not None:
                buckets.add_(offsets)
            # bincount rather than scatter_add: faster on CPU, the same exact counts
            histogram.add_(torch.bincount(buckets.view(-1), minlength=rows * width))
    left = totals - floors.sum(dim=-1)
    if not largest:
        return floors, left
    # Every unit of `left` goes to a positive remainder (docs/design/apportion.md, "Why the
    # leftover never reaches a zero weight"), so zero weights, whose
    # remainder is 0, are never chosen and need no mask.
    cut, need = cut_buckets(histogram.view(rows, width), left, n)
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
        plan_at = plan_division(totals[row_ids], row_sum[row_ids], q_bits, False, per_row=False)
        q_at = q[row_ids, col_ids].to(torch.int64)
        remainders = torch.empty_like(q_at)
        divide(plan_at, q_at, torch.empty_like(q_at), remainders, torch.empty_like(q_at))
        take_ties(floors, remainders, row_ids, col_ids, need)
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
        high_sum, low_sum = int_to_dd(high.sum(dim=-1)), int_to_dd(low.sum(dim=-1))
        weight_sum = dd_add((high_sum[0] * float(2**32), high_sum[1] * float(2**32)), low_sum)
        floors, fraction = _approx_shares(totals, high.to(torch.float64) * float(2**32), low.to(torch.float64), weight_sum)
    left = totals - floors.sum(dim=-1)
    if method == "floor":
        return floors, left
    bad = first_index(left < 0)
    if bad is not None:  # pragma: no cover - would be a bug in the share computation
        raise RuntimeError(f"apportion: the floors exceed the total in row {bad}; please report this.")
    # zero weights sit in bucket 0 with key -1: below every positive weight's fraction, and at
    # most as many units as positive weights are left over, so they are never chosen
    bucket_bits = bucket_bits_for(w.shape[-1])
    buckets = (fraction * float(1 << bucket_bits)).to(torch.int64)
    floors += largest_keys(buckets, fraction.masked_fill_(w == 0, -1.0), left, bucket_bits)
    return floors, torch.zeros_like(left)


#: Elements per block of rows on CPU (see :func:`apportion_rows`).
_CPU_BLOCK = 1 << 19


def apportion_rows(totals: Tensor, w: Tensor, row_max: Tensor, method: ApportionMethod) -> tuple[Tensor, Tensor]:
    """Apportion (B,) totals over (B, N) weights in blocks of rows (each row independent).

    On CPU a block of at most ``_CPU_BLOCK`` elements keeps the int64 temporaries small: the
    allocator recycles them (a fresh 32 MB buffer is page-faulted in again on every call,
    which cost more than the arithmetic) and they stay in cache. Every row's result is the
    same whatever block it is in, so GPUs take all rows at once.
    """
    rows, n = w.shape
    per_block = max(1, _CPU_BLOCK // max(n, 1)) if w.device.type == "cpu" else rows
    if per_block >= rows:
        return _apportion_block(totals, w, row_max, method)
    parts = torch.empty(w.shape, dtype=torch.int64, device=w.device)
    dust = torch.empty_like(totals)
    for start in range(0, rows, per_block):
        block = slice(start, start + per_block)
        out = parts[block]
        block_parts, dust[block] = _apportion_block(totals[block], w[block], row_max[block], method, out)
        if block_parts.data_ptr() != out.data_ptr():
            out.copy_(block_parts)
    return parts, dust


def _apportion_block(
    totals: Tensor,
    w: Tensor,
    row_max: Tensor,
    method: ApportionMethod,
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
    for bits in _bits_to_try(w, row_max, top_bits):
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
