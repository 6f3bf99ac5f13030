"""The two arithmetics the epoch's steps run in: the chain's I32F32 bits (``_Exact``) or floats (``_Float``).

Every place where the exact and the fast epoch compute differently is a method of both classes,
so the steps (``steps.py``) are written once. The exact helpers are narrow I32F32 operations on
the epoch's known magnitudes (proportions never exceed a few units of ``2**32``), split into
16-bit limbs with the bound stated next to each; why they are not ``fixed``'s general versions
is in ``docs/design/yuma-epoch.md`` ("Fixed-point helpers").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..._constants import U16_MAX
from ..._intmath import INT64_MAX
from ..._scaling import scale_down_rows
from ...consensus import _select, _select_with_zero_votes
from ...errors import DTypeError
from ...money.apportion import apportion
from ..fixed import (
    fx_bonds_ema_alpha,
    fx_exp_safe,
    fx_from_u16_proportion,
    fx_normalize,
    fx_to_float,
    fx_to_u16,
    normalize_i64f64_to_i32f32,
)
from .types import IntParam

__all__: list[str] = []

_FRAC = 32
_ONE = 1 << _FRAC
_LOW16 = (1 << 16) - 1
#: The largest subnet the exact path accepts: column sums of proportions stay below 2**47,
#: the bound of the limb-split division below.
MAX_EXACT_N = 16384


# ------------------------------------------------------------------------------ I32F32 helpers


def _mul_fx(a: Tensor, b: Tensor | int) -> Tensor:
    """I32F32 ``a * b`` = ``floor(a * b / 2**32)`` on raw bits, without a 128-bit product.

    ``a = ah * 2**16 + al`` with ``0 <= al < 2**16``; then ``floor(a*b / 2**32) =
    floor((ah*b + floor(al*b / 2**16)) / 2**16)``. Valid while ``|ah * b| < 2**62``, i.e. for
    ``|a| < 2**40`` and ``|b| < 2**38`` (every product of the epoch: proportions are <= 2**33).
    ``fixed.fx_mul`` gives the same bits here with four limb products for any int64 pair.
    """
    high = _times(a >> 16, b)
    low = _times(a & _LOW16, b)
    low >>= 16
    high += low
    high >>= 16
    return high


def _times(fresh: Tensor, b: Tensor | int) -> Tensor:
    """``fresh * b``, in place when ``fresh`` already has the result's shape (it is a temporary).

    The exact epoch's helpers run on (b, n, n) int64 tensors, where each fresh temporary costs
    about as much as the arithmetic on the CPU (new pages): they reuse their own temporaries.
    """
    return fresh.mul_(b) if isinstance(b, int) or _fits(b, fresh) else fresh * b


def _fits(operand: Tensor, target: Tensor) -> bool:
    """Whether ``operand`` broadcasts to ``target``'s shape (so ``target`` can take the result in place)."""
    return operand.dim() <= target.dim() and all(
        size == 1 or size == full for size, full in zip(reversed(operand.shape), reversed(target.shape))
    )


def _mul_fx_const(a: Tensor, c: int | Tensor) -> Tensor:
    """I32F32 ``a * c`` for a constant ``0 <= c <= 2**32`` and ``|a| <= 2**33``: ``floor(a * c / 2**32)``.

    One product when ``c < 2**30`` (``|a * c| < 2**63``); otherwise ``c`` is split into 16-bit
    halves, which is cheaper than splitting the tensor. Same bits as ``fixed.fx_mul``. A tensor
    ``c`` (one constant per subnet, broadcast against ``a``) always takes the split, which gives
    the same bits as the single product (``floor(floor(x / 2**16) / 2**16) = floor(x / 2**32)``).
    """
    if isinstance(c, int) and c < 1 << 30:
        product = a * c
        product >>= _FRAC
        return product
    high, low = a * (c >> 16), a * (c & _LOW16)
    low >>= 16
    high += low
    high >>= 16
    return high


def _clamp(x: Tensor, low: float | Tensor, high: float | Tensor) -> Tensor:
    """``x`` clamped to ``[low, high]``, each bound a number or a tensor broadcast against ``x``."""
    if not isinstance(low, Tensor) and not isinstance(high, Tensor):
        return x.clamp(low, high)
    return torch.minimum(torch.maximum(x, torch.as_tensor(low, dtype=x.dtype, device=x.device)),
                         torch.as_tensor(high, dtype=x.dtype, device=x.device))


def _div_fx(a: Tensor, c: Tensor, *, a_small: bool = False) -> Tensor:
    """The chain's ``safe_div`` for non-negative bits: ``floor(a * 2**32 / c)``.

    Callers guarantee ``a == 0`` wherever ``c == 0`` (a normalisation by a zero sum), so the
    divisor is replaced by 1 there and the result is the chain's 0. With ``a_small``
    (``a < 2**31``) one division; otherwise two 16-bit steps of long division, valid for
    ``0 <= a, c < 2**47``. Truncation and floor agree on non-negative operands. Same bits as
    ``fixed.fx_div`` / ``fx_col_max_upscale``, without their host sync and long division.
    """
    safe = c.clamp(min=1)
    if not _fits(safe, a):  # (no caller divides by a larger tensor)
        a = a.expand(torch.broadcast_shapes(a.shape, safe.shape))
    if a_small:
        return (a << _FRAC).div_(safe, rounding_mode="floor")
    rest = a << 16  # the temporaries below are reused in place
    high = torch.div(rest, safe, rounding_mode="floor")
    rest.addcmul_(high, safe, value=-1)  # the remainder, exact on integers
    rest <<= 16
    rest.div_(safe, rounding_mode="floor")
    high <<= 16
    high += rest
    return high


def _mul_wei(share: Tensor, total: Tensor) -> Tensor:
    """``floor(share * total / 2**32)`` for I32F32 ``0 <= share <= 2**32`` and ``0 <= total < 2**63``.

    The chain's ``I96F32::from(share) * I96F32::from(E)`` floored to u64, with ``total`` split
    into 32 + 16 + 16 bits so every partial product stays below 2**63. ``fixed`` has no
    counterpart: its products are I32F32 and saturate far below a wei total.
    """
    high, low = total >> _FRAC, total & (_ONE - 1)
    low_part = (share * (low >> 16) + ((share * (low & _LOW16)) >> 16)) >> 16
    return share * high + low_part


def _reciprocal_one_plus(e: Tensor) -> Tensor:
    """I32F32 ``one.saturating_div(one.saturating_add(e))`` for ``e >= 0``: ``floor(2**64 / d)``.

    ``d = min(2**32 + e, 2**63 - 1)``. One division gives ``floor(2**62 / d)`` and its remainder
    ``r < d``; two doubling steps (``2r >= d`` tested as ``r >= d - r``, never overflowing)
    supply the last two quotient bits. ``fixed.fx_div(ONE, d)`` gives the same bits, but d has
    up to 63 bits, so it runs its 32-round long division.
    """
    den = e.clamp(max=INT64_MAX - _ONE) + _ONE
    quotient = torch.div(1 << 62, den, rounding_mode="floor")
    rest = (1 << 62) - quotient * den
    for _ in range(2):
        bit = rest >= den - rest
        rest = torch.where(bit, rest - (den - rest), rest + rest)
        quotient = 2 * quotient + bit.to(torch.int64)
    return quotient


def _quantize_stake(stake: Tensor, valid: Tensor) -> Tensor:
    """Raw stake as non-negative int64 whose per-subnet sum is below 2**61.

    Integer stake is used as is. Float stake is read as a dyadic fixed point with
    ``60 - ceil(log2 n)`` bits below each subnet's largest stake: ``floor(S * 2**shift)``, the
    power of two built from the largest stake's exponent bits, so the scaling and the floor are
    exact and the same on every device. (``money.apportion`` scales its floats privately with a
    different number of bits, which would change the exact epoch's bits.)
    """
    stake = stake.masked_fill(~valid, 0)
    if not stake.is_floating_point():
        return stake
    top_bits = 60 - max(stake.shape[-1] - 1, 1).bit_length()
    w = stake.to(torch.float64)
    largest = w.amax(-1, keepdim=True)
    exponent = torch.frexp(largest).exponent.to(torch.int64) - 1  # floor(log2(largest)), subnormals too
    shift = top_bits - 1 - exponent  # up to ~1130 for subnormal stakes: applied in two exact halves
    half = shift // 2
    return torch.floor(w * _power_of_two(half) * _power_of_two(shift - half)).to(torch.int64)


def _power_of_two(exponent: Tensor) -> Tensor:
    """``2.0 ** exponent`` exactly, built from the float64 exponent bits (``|exponent| <= 1022``)."""
    return ((exponent + 1023) << 52).view(torch.float64)


def _normalize_exact(x: Tensor, dim: int = -1) -> Tensor:
    """The chain's ``inplace_normalize`` on non-negative bits (a zero sum leaves ``x`` unchanged).

    Same bits as ``fixed.fx_normalize`` / ``fx_col_normalize``, through the narrow division.
    """
    return _div_fx(x, x.sum(dim, keepdim=True))  # a zero sum means x is all zero: 0 stays 0


def _rows_median(weights: Tensor, stake: Tensor, included: Tensor, minority: Tensor, rows: Tensor | None) -> Tensor:
    """The weighted median of the computed rows ``(b, r, n)``; the stake of the uids left out
    (rows of zeros: see ``steps._live_rows``) votes 0 in every column."""
    if rows is None:
        return _select(weights, stake, included, minority)
    left_out = included.scatter(-1, rows, False)
    zero_mass = stake.masked_fill(~left_out, 0).sum(-1)
    return _select_with_zero_votes(
        weights, stake.gather(-1, rows), included.gather(-1, rows), minority, zero_mass, left_out.any(-1)
    )


# ------------------------------------------------------------------------------ payouts


def payout_weights(incentive: Tensor, dividends: Tensor, nothing: Tensor, fallback: Tensor) -> tuple[Tensor, Tensor]:
    """The server and validator weights of the payout (the fallback where nothing is weighted)."""
    return torch.where(nothing, torch.zeros_like(incentive), incentive), torch.where(nothing, fallback, dividends)


def _pairs(server_w: Tensor, validator_w: Tensor) -> Tensor:
    """Server and validator weights ``(b, n)`` interleaved as ``(b, 2n)``: uid 0 server, uid 0 validator, uid 1 ..."""
    return torch.stack((server_w, validator_w), dim=-1).flatten(-2)


def _unpair(parts: Tensor) -> tuple[Tensor, Tensor]:
    """The inverse of ``_pairs``: ``(b, 2n)`` -> server and validator ``(b, n)``."""
    server, validator = parts.unflatten(-1, (-1, 2)).unbind(-1)
    return server, validator


def apportion_payout(totals: Tensor, server_w: Tensor, validator_w: Tensor) -> tuple[Tensor, Tensor]:
    """Whole-wei server and validator payouts summing to ``totals``: largest remainders over
    uid 0 server, uid 0 validator, uid 1 ... (ties to the earlier).

    A subnet without any share (no stake at all) is paid nothing: its emission is dust.
    """
    pairs = _pairs(server_w, validator_w)
    return _unpair(apportion(totals, pairs, method="largest_remainder", zero_weights="dust", validate=False).parts)


# ------------------------------------------------------------------------------ the two strategies


class _Exact:
    """I32F32 on int64 raw bits: the chain's roundings, the same bits on every device."""

    exact = True
    #: whether the steps may overwrite the normalised weights in place (float only).
    in_place = False

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.dtype = torch.int64
        self.one = _ONE

    def const_ratio(self, num: IntParam, den: int) -> IntParam:
        """I32F32 ``from(num) / from(den)`` for non-negative ints (or an int64 tensor): ``floor(num*2**32/den)``."""
        return (num << _FRAC) // den

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        """Put the smaller (broadcast) operand first: the limb split happens on it."""
        return _mul_fx(a, b)

    def mul_const(self, a: Tensor, c: IntParam) -> Tensor:
        return _mul_fx_const(a, c)

    def div(self, a: Tensor, c: Tensor, *, a_small: bool = False) -> Tensor:
        return _div_fx(a, c, a_small=a_small)

    def normalize(self, x: Tensor, dim: int = -1) -> Tensor:
        return _normalize_exact(x, dim)

    def normalize_(self, x: Tensor, dim: int = -1) -> Tensor:
        """As ``_Float.normalize_`` (the division already reuses its own temporaries)."""
        return _normalize_exact(x, dim)

    def mask(self, flags: Tensor) -> Tensor:
        """A bool tensor as 0/1 int64 (through uint8: the direct bool conversion is slow on the CPU)."""
        return flags.view(torch.uint8).to(torch.int64)

    def normalize_u16(self, values: Tensor, keep: Tensor, dim: int) -> Tensor:
        """Stored u16 ``values`` (any integer dtype) times the 0/1 mask ``keep``, normalised along ``dim``."""
        kept = values.to(torch.int64, copy=True).mul_(keep)
        return _div_fx(kept, kept.sum(dim, keepdim=True), a_small=True)

    def stake_proportions(self, raw: Tensor, valid: Tensor) -> Tensor:
        """The chain's I64F64 stake normalisation truncated to I32F32 (float stake quantised first)."""
        return normalize_i64f64_to_i32f32(_quantize_stake(raw, valid), validate=False)

    def descending_order(self, stake: Tensor) -> Tensor:
        """Uids by descending stake, the higher uid first among equal stakes."""
        n = stake.shape[-1]
        uids = torch.arange(n, device=stake.device)
        return torch.argsort(stake * n + uids, dim=-1, descending=True)

    def weighted_median(self, weights: Tensor, stake: Tensor, kappa: IntParam, rows: Tensor | None) -> Tensor:
        """``weighted_median_col_sparse`` on I32F32 bits (``consensus.weighted_median_fixed``'s closed form).

        ``weights``: the computed rows ``(b, r, n)``; ``stake``: every uid's ``(b, n)``;
        ``rows``: the uid of each row (None: all). The chain renormalises the positive stake.
        """
        share = fx_normalize(stake.clamp(min=0))
        return _rows_median(weights, share, stake > 0, share.sum(-1) - kappa, rows)

    def vec_mat(self, v: Tensor, m: Tensor) -> Tensor:
        """``sum_i v_i * m_ij``: ``(b, n)`` x ``(b, n, n)`` -> ``(b, n)``."""
        return _mul_fx(v.unsqueeze(-1), m).sum(-2)

    def mat_vec(self, m: Tensor, v: Tensor) -> Tensor:
        """``sum_j m_ij * v_j``: ``(b, n, n)`` x ``(b, n)`` -> ``(b, n)``."""
        return _mul_fx(v.unsqueeze(-2), m).sum(-1)

    def ema(self, new: Tensor, old: Tensor, alpha: IntParam, *, consume: bool = False) -> Tensor:
        """``alpha * new + (1 - alpha) * old``; ``consume``: the operands may be overwritten."""
        out = _mul_fx_const(new, alpha)
        out += _mul_fx_const(old, _ONE - alpha)
        return out

    def col_max_upscale_(self, x: Tensor) -> Tensor:
        """Each column divided by its maximum (a zero column stays 0)."""
        return _div_fx(x, x.amax(-2, keepdim=True))

    def bonds_ema_alpha(self, bonds_moving_average: IntParam) -> IntParam:
        """``1 - bma / 1e6`` with the I64F64 ratio truncated to I32F32."""
        alpha: IntParam = fx_bonds_ema_alpha(bonds_moving_average)
        return alpha

    def steepness(self, steepness: IntParam) -> IntParam:
        """The sigmoid's ``-steepness / 100`` as I32F32 bits (the magnitude truncated)."""
        if isinstance(steepness, Tensor):
            magnitude = (steepness.abs() << _FRAC) // 100
            return torch.where(steepness > 0, -magnitude, magnitude)
        magnitude_int = (abs(steepness) << _FRAC) // 100
        return -magnitude_int if steepness > 0 else magnitude_int

    def sigmoid_alpha(self, diff: Tensor, steep_div: IntParam, low: IntParam, high: IntParam) -> Tensor:
        """``alpha_low + sigmoid * (alpha_high - alpha_low)``, clamped, exactly as ``alpha_sigmoid``."""
        exponent = _mul_fx(diff - (_ONE >> 1), steep_div)  # |steep_div| < 2**41: fits the split
        e = fx_exp_safe(exponent)  # the chain's exp_safe: input clamped to [-20, 20]
        sigmoid = _reciprocal_one_plus(e)
        alpha = low + _mul_fx_const(sigmoid, high - low)
        return _clamp(alpha, low, high)

    def chain_payout(
        self, incentive: Tensor, dividends: Tensor, combined: Tensor, total: Tensor, nothing: Tensor,
        fallback: Tensor, emission: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Server and validator wei as the chain floors them (each share in I32F32, then
        ``floor(share * E)``), and its ``Emission``: ``normalize(I + D)`` (or the stake) times E.

        ``total``: ``combined``'s row sums ``(b, 1)``.
        """
        server_share = _div_fx(incentive, total)
        validator_share = torch.where(nothing, fallback, _div_fx(dividends, total))
        emission_share = torch.where(nothing, fallback, _div_fx(combined, total))  # normalize(combined)
        return _mul_wei(server_share, emission), _mul_wei(validator_share, emission), _mul_wei(emission_share, emission)

    def to_u16(self, x: Tensor) -> Tensor:
        """``fixed_proportion_to_u16``: ``floor(x * 65535)`` saturated to [0, 65535]."""
        return fx_to_u16(x)

    def to_u16_(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        """As ``_Float.to_u16_``: ``to_u16`` as integers of ``dtype``."""
        return self.to_u16(x).to(dtype)

    def u16_proportion(self, x: Tensor) -> Tensor:
        """``I32F32::from(u16) / I32F32::from(65535)``."""
        return fx_from_u16_proportion(x.to(torch.int64), validate=False)

    def to_float(self, x: Tensor) -> Tensor:
        return fx_to_float(x)


class _Float:
    """The same steps in float32 / float64; money is still apportioned to whole wei."""

    exact = False
    #: whether the steps may overwrite the normalised weights in place (float only).
    in_place = True

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.device = device
        self.dtype = dtype
        self.one = 1.0

    def const_ratio(self, num: IntParam, den: int) -> float | Tensor:
        return self._per_subnet(num, lambda v: v / den)

    def _per_subnet(self, value: IntParam, f: Callable[[Any], Any]) -> float | Tensor:
        """``f(value)`` for an int, or computed in float64 for a tensor and stored in this dtype."""
        if isinstance(value, Tensor):
            return f(value.to(torch.float64)).to(self.dtype)
        return float(f(value))

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return a * b

    def mul_const(self, a: Tensor, c: float | Tensor) -> Tensor:
        return a * c

    def div(self, a: Tensor, c: Tensor, *, a_small: bool = False) -> Tensor:
        return a / torch.where(c > 0, c, torch.ones_like(c))  # callers: a == 0 where c == 0

    def normalize(self, x: Tensor, dim: int = -1) -> Tensor:
        total = x.sum(dim, keepdim=True)
        return x / torch.where(total > 0, total, torch.ones_like(total))  # a zero sum: x is all zero

    def normalize_(self, x: Tensor, dim: int = -1) -> Tensor:
        """``normalize`` in place, for a fresh tensor the caller owns (the same bits)."""
        total = x.sum(dim, keepdim=True)
        return x.div_(torch.where(total > 0, total, torch.ones_like(total)))

    def mask(self, flags: Tensor) -> Tensor:
        """A bool tensor as 0/1 floats (through uint8: the direct bool conversion is slow on the CPU)."""
        return flags.view(torch.uint8).to(self.dtype)

    def normalize_u16(self, values: Tensor, keep: Tensor, dim: int) -> Tensor:
        """One fresh float tensor, times the 0/1 mask ``keep`` and normalised in place (a fresh
        (b, n, n) temporary costs as much as the arithmetic on the CPU: new pages)."""
        return self.normalize_(values.to(self.dtype, copy=True).mul_(keep), dim=dim)

    def stake_proportions(self, raw: Tensor, valid: Tensor) -> Tensor:
        if raw.is_floating_point():  # scaled by a power of two first: a row sum cannot overflow
            raw = scale_down_rows(raw.to(torch.float64))[0]
        return self.normalize(raw.to(self.dtype))

    def descending_order(self, stake: Tensor) -> Tensor:
        # A stable descending sort of the reversed vector puts the higher uid first among ties.
        n = stake.shape[-1]
        return (n - 1) - torch.sort(stake.flip(-1), dim=-1, descending=True, stable=True).indices

    def weighted_median(self, weights: Tensor, stake: Tensor, kappa: float | Tensor, rows: Tensor | None) -> Tensor:
        """As ``consensus.weighted_median``: float64 stake sums, scaled by a power of two first."""
        included = stake > 0
        positive = scale_down_rows(stake.to(torch.float64).masked_fill(~included, 0))[0]
        total = positive.sum(-1)
        return _rows_median(weights, positive, included, total - kappa * total, rows)

    def vec_mat(self, v: Tensor, m: Tensor) -> Tensor:
        return torch.matmul(v.unsqueeze(-2), m).squeeze(-2)

    def mat_vec(self, m: Tensor, v: Tensor) -> Tensor:
        return torch.matmul(m, v.unsqueeze(-1)).squeeze(-1)

    def ema(self, new: Tensor, old: Tensor, alpha: float | Tensor, *, consume: bool = False) -> Tensor:
        if consume:
            return new.mul_(alpha).add_(old.mul_(1.0 - alpha))
        return new * alpha + old * (1.0 - alpha)

    def col_max_upscale_(self, x: Tensor) -> Tensor:
        return x.div_(x.amax(-2, keepdim=True).clamp_(min=1e-300))  # a zero column stays 0

    def bonds_ema_alpha(self, bonds_moving_average: IntParam) -> float | Tensor:
        return self._per_subnet(bonds_moving_average, lambda v: 1.0 - v / 1_000_000)

    def steepness(self, steepness: IntParam) -> float | Tensor:
        return self._per_subnet(steepness, lambda v: -v / 100)

    def sigmoid_alpha(self, diff: Tensor, steep_div: float | Tensor, low: float | Tensor, high: float | Tensor) -> Tensor:
        e = torch.exp((steep_div * (diff - 0.5)).clamp(-20.0, 20.0))  # exp_safe's clamp
        sigmoid = 1.0 / (1.0 + e)
        return _clamp(low + sigmoid * (high - low), low, high)

    def chain_payout(
        self, incentive: Tensor, dividends: Tensor, combined: Tensor, total: Tensor, nothing: Tensor,
        fallback: Tensor, emission: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The float shares of server, validator and ``Emission`` (of ``I + D``), each floored to
        whole wei (the rest is dust): one apportionment whose rows are every subnet's interleaved
        server / validator weights, then its combined weights padded with zeros (the apportionment
        sums each row exactly itself: ``total`` is not read)."""
        b, n = incentive.shape
        pairs = _pairs(*payout_weights(incentive, dividends, nothing, fallback))
        emission_w = torch.nn.functional.pad(torch.where(nothing, fallback, combined), (0, n))
        totals = emission.squeeze(-1)
        parts = apportion(torch.cat((totals, totals)), torch.cat((pairs, emission_w)), method="floor",
                          zero_weights="dust", validate=False).parts
        return *_unpair(parts[:b]), parts[b:, :n]

    def to_u16(self, x: Tensor) -> Tensor:
        return torch.mul(x.to(torch.float64), U16_MAX).floor_().clamp_(0, U16_MAX).to(torch.int64)

    def to_u16_(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        """``to_u16`` of a tensor the caller owns and no longer needs (float64: scaled in place),
        as integers of ``dtype`` (a 32-bit result converts several times faster than int64)."""
        return x.to(torch.float64).mul_(U16_MAX).floor_().clamp_(0, U16_MAX).to(dtype)  # whole numbers: exact

    def u16_proportion(self, x: Tensor) -> Tensor:
        return x.to(self.dtype, copy=True).div_(U16_MAX)

    def to_float(self, x: Tensor) -> Tensor:
        return x


Ops = _Exact | _Float


def ops_for(exact: bool, dtype: torch.dtype | None, device: torch.device) -> Ops:
    """The arithmetic of an epoch: exact I32F32, or floats of ``dtype`` (float64 by default)."""
    if exact:
        if dtype is not None:
            raise DTypeError("`dtype` applies to the fast path only (exact=False); the exact path computes in int64.")
        return _Exact(device)
    dtype = torch.float64 if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64):
        raise DTypeError(f"Expected `dtype` torch.float32 or torch.float64, but got {dtype}.")
    return _Float(device, dtype)
