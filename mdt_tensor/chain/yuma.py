"""The Yuma epoch of the reference chain, batched over subnets and epochs, exact or fast.

``epoch(state, params, emission)`` runs every step of the chain's sparse ``epoch_mechanism``
(``spec/yuma.md`` B.3-B.5) for a whole batch of subnets at once: activity and outdated masks,
stake threshold, validator permits, active stake, weight masks and row normalisation, the
stake-weighted median consensus, clipping, validator trust, incentive, the bonds (original Yuma
or Yuma 3, with or without liquid alpha) and dividends, and the emission with the chain's floor.

Two arithmetics run the same steps:

* ``exact=True``: the chain's I32F32 fixed point on int64 tensors of raw bits (a value ``v`` is
  held as ``floor(v * 2**32)``), with its floor multiply, truncating divide, ``safe_div`` and
  u16 storage rules. Only integer ``+ - * // >> &``, comparisons, sorts and cumulative sums are
  used, so the bits are the chain's and the same on CPU and CUDA.
* ``exact=False``: float64 (or float32 with ``dtype=``), the same algorithm; money still goes
  through exact integer apportionment (``rewards.apportion``), so amounts are whole wei.

Why hand-written: the chain's epoch is a sequence of per-element fixed-point roundings that no
tensor library reproduces; the few wide products and quotients it needs are done here with
16-bit limb splits whose bounds are stated next to each helper. The u16 conversions, the bonds
EMA alpha, ``exp`` and the I64F64 stake normalisation are ``fixed.py``'s; its general multiply,
divide and normalisations give the same bits here but cost 2-14x these narrower ones (each
helper says how much), which trade generality for speed on the epoch's known magnitudes:
proportions never exceed a few units of ``2**32``.

Padded batches: subnets of different sizes share one ``(*, n, n)`` batch through ``n_valid``;
uids at or beyond ``n_valid`` have no stake, no weights and no bonds and come out as zeros, and a
padded subnet gives exactly the results it gives alone.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from .._array import Array, ArrayOrigin, as_tensor, check_same_device
from .._intmath import INT64_MAX
from .._validation import check_finite, check_in_range, check_non_negative, first_index
from ..consensus import weighted_median, weighted_median_fixed
from ..errors import DTypeError, ShapeError, ValueRangeError
from .fixed import (
    fx_bonds_ema_alpha,
    fx_exp_safe,
    fx_from_u16_proportion,
    fx_to_float,
    fx_to_u16,
    normalize_i64f64_to_i32f32,
)
from ..money.apportion import apportion

__all__ = ["YumaParams", "SubnetState", "EpochResult", "epoch", "next_state", "run_epochs"]

_FRAC = 32
_ONE = 1 << _FRAC
_U16_MAX = 65535
_LOW16 = (1 << 16) - 1
#: The largest subnet the exact path accepts: column sums of proportions stay below 2**47,
#: the bound of the limb-split division below.
_MAX_EXACT_N = 16384

Path = Literal["sparse", "dense"]
ConsensusMode = Literal["current", "previous", "auto"]
Payout = Literal["chain", "exact"]


# =============================================================================== parameters


def _check_int_field(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DTypeError(f"Expected YumaParams.{name} to be an int, but got {type(value).__name__}.")
    if not low <= value <= high:
        raise ValueRangeError(f"Expected YumaParams.{name} in [{low}, {high}], but got {value}.")


@dataclass(frozen=True)
class YumaParams:
    """A subnet's epoch hyperparameters, in the chain's storage units, with its defaults (B.1).

    Attributes:
        kappa: consensus majority as u16 (``kappa / 65535``; 32767 is 0.49999).
        bonds_penalty: u16; ``beta = bonds_penalty / 65535`` (65535: bonds use clipped weights).
        bonds_moving_average: per million; the bonds EMA uses ``alpha = 1 - bma / 1e6``.
        yuma3: Yuma 3 bonds (absolute proportions per validator-miner pair) instead of the original.
        liquid_alpha: Yuma 3 only: a per-cell EMA alpha from the sigmoid of B.5.
        alpha_low, alpha_high: liquid-alpha bounds as u16 (45875, 58982 are 0.7 and 0.9).
        alpha_sigmoid_steepness: i16; the sigmoid uses ``steepness / 100``.
        liquid_alpha_consensus_mode: which consensus the liquid alpha compares against:
            ``"current"`` (this epoch's), ``"previous"`` (``SubnetState.previous_consensus``) or
            ``"auto"`` (previous when ``bonds_penalty == 65535``, else current).
        activity_cutoff: blocks after the last weight update before a validator is inactive.
        max_allowed_validators: k of the top-k stake validator permits.
        stake_threshold: minimum raw stake (in the stake's unit) to count; the owner is exempt.
        tempo: blocks per epoch; the bonds of uids registered within the last ``tempo`` blocks
            are dropped (``last_tempo = block - tempo``, spec B.7).
        path: ``"sparse"`` is the chain's production ``epoch_mechanism`` (the default);
            ``"dense"`` is its test-only ``epoch_dense_mechanism``, which masks the owner's
            self-weight too, does not exempt or force the owner, keeps the bonds rows of uids
            that never had a permit, and runs the Yuma 3 EMA over every cell (spec B.7).

    Example:
        >>> YumaParams().kappa, YumaParams(yuma3=True).bonds_moving_average
        (32767, 900000)
    """

    kappa: int = 32767
    bonds_penalty: int = 65535
    bonds_moving_average: int = 900_000
    yuma3: bool = False
    liquid_alpha: bool = False
    alpha_low: int = 45875
    alpha_high: int = 58982
    alpha_sigmoid_steepness: int = 1000
    liquid_alpha_consensus_mode: ConsensusMode = "current"
    activity_cutoff: int = 5000
    max_allowed_validators: int = 128
    stake_threshold: int = 0
    tempo: int = 360
    path: Path = "sparse"

    def __post_init__(self) -> None:
        for name in ("kappa", "bonds_penalty", "alpha_low", "alpha_high"):
            _check_int_field(name, getattr(self, name), 0, _U16_MAX)
        _check_int_field("bonds_moving_average", self.bonds_moving_average, 0, 1_000_000)
        _check_int_field("alpha_sigmoid_steepness", self.alpha_sigmoid_steepness, -(2**15), 2**15 - 1)
        _check_int_field("activity_cutoff", self.activity_cutoff, 0, 2**62)
        _check_int_field("max_allowed_validators", self.max_allowed_validators, 0, _U16_MAX)
        _check_int_field("stake_threshold", self.stake_threshold, 0, 2**62)
        _check_int_field("tempo", self.tempo, 0, _U16_MAX)
        if self.alpha_low > self.alpha_high:
            raise ValueRangeError(
                f"Expected YumaParams.alpha_low <= alpha_high, but got {self.alpha_low} > {self.alpha_high}."
            )
        for name in ("yuma3", "liquid_alpha"):
            if not isinstance(getattr(self, name), bool):
                raise DTypeError(f"Expected YumaParams.{name} to be a bool, but got {getattr(self, name)!r}.")
        for name, allowed in (("liquid_alpha_consensus_mode", ("current", "previous", "auto")), ("path", ("sparse", "dense"))):
            if getattr(self, name) not in allowed:
                raise ValueRangeError(f"Expected YumaParams.{name} in {allowed}, but got {getattr(self, name)!r}.")


# =============================================================================== state and result


@dataclass
class SubnetState:
    """What the chain holds for a subnet at the start of an epoch (optionally a batch of subnets).

    Leading batch dimensions ``*`` are subnets (or any grouping); ``n`` is the (padded) size.
    Arrays may be torch tensors, numpy arrays, CuPy arrays or Python lists.

    Attributes:
        weights: ``(*, n, n)`` integer u16 values; row i is what validator i stored.
        stake: ``(*, n)`` raw stake per uid, >= 0 (integer rao: exact; float: see :func:`epoch`).
        last_update: ``(*, n)`` block of each uid's last weight update; default: ``block``.
        block_at_registration: ``(*, n)`` block each uid was (re)registered; default: 0.
        validator_permit: ``(*, n)`` bool, the permits stored by the previous epoch. Default:
            the permits this stake earns (the steady state; a subnet whose permits have never
            been computed should pass all-False explicitly).
        bonds: ``(*, n, n)`` integer u16 stored bonds; default: zeros (no bonds yet).
        block: current block, an int or ``(*)``; default: the largest ``last_update`` (or 1).
        owner_uid: the subnet owner's uid, an int or ``(*)``; -1 means no owner.
        n_valid: ``(*)`` number of real uids per subnet (the rest is padding); default: n.
        weights_present: ``(*, n, n)`` bool, which cells the chain stores (B.7); default: all.
            Matters only for the sparse Yuma 3 liquid-alpha EMA, which drops absent cells.
        previous_consensus: ``(*, n)`` u16 consensus of the previous epoch, for
            ``liquid_alpha_consensus_mode`` previous/auto; default: none stored, and then the
            current consensus is used (as the chain does when nothing is stored).

    Example:
        >>> state = SubnetState(weights=[[0, 65535], [65535, 0]], stake=[10, 30])
        >>> state.owner_uid
        -1
    """

    weights: Array
    stake: Array
    last_update: Array | None = None
    block_at_registration: Array | None = None
    validator_permit: Array | None = None
    bonds: Array | None = None
    block: Array | int | None = None
    owner_uid: Array | int = -1
    n_valid: Array | None = None
    weights_present: Array | None = None
    previous_consensus: Array | None = None


@dataclass
class EpochResult:
    """The outputs of one epoch, per uid, as the caller's array type.

    u16 fields are integer arrays holding ``floor(x * 65535)`` as the chain stores them; the
    ``*_float`` fields hold the same quantities as floats (exact mode: the I32F32 value).

    Attributes:
        server_emission, validator_emission: ``(*, n)`` int64 wei paid to uids as miners / validators.
        emission: ``(*, n)`` int64 per-uid total. With ``payout="chain"`` it is the chain's
            ``Emission`` storage item, ``floor(normalize(I + D) * E)``, which floors the combined
            share once and so can differ by 1 wei from ``server_emission + validator_emission``;
            with ``payout="exact"`` it is ``server_emission + validator_emission``.
        dust: ``(*)`` int64, the wei never paid: ``E - sum(server_emission + validator_emission)``
            (0 with ``payout="exact"``).
        consensus, incentive, dividends, validator_trust, stake_weight: ``(*, n)`` u16 values.
        consensus_float, incentive_float, dividends_float, validator_trust_float,
            stake_weight_float, active_stake_float: ``(*, n)`` floats.
        bonds: ``(*, n, n)`` u16 values stored for the next epoch.
        validator_permit: ``(*, n)`` bool, the new permits (stored for the next epoch).
        active: ``(*, n)`` bool, uids whose last update is within the activity cutoff.
    """

    server_emission: Array
    validator_emission: Array
    emission: Array
    dust: Array
    consensus: Array
    incentive: Array
    dividends: Array
    validator_trust: Array
    stake_weight: Array
    consensus_float: Array
    incentive_float: Array
    dividends_float: Array
    validator_trust_float: Array
    stake_weight_float: Array
    active_stake_float: Array
    bonds: Array
    validator_permit: Array
    active: Array


# =============================================================================== arithmetic


def _mul_fx(a: Tensor, b: Tensor | int) -> Tensor:
    """I32F32 ``a * b`` = ``floor(a * b / 2**32)`` on raw bits, without a 128-bit product.

    ``a = ah * 2**16 + al`` with ``0 <= al < 2**16``; then ``floor(a*b / 2**32) =
    floor((ah*b + floor(al*b / 2**16)) / 2**16)``. Valid while ``|ah * b| < 2**62``, i.e. for
    ``|a| < 2**40`` and ``|b| < 2**38`` (every product of the epoch: proportions are <= 2**33).
    Not ``fixed.fx_mul`` (same bits here; any int64 pair, saturated, four limb products): that
    took the exact (16, 256, 256) epoch of the quick benchmark from ~58 to ~100 ms.
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


def _mul_fx_const(a: Tensor, c: int) -> Tensor:
    """I32F32 ``a * c`` for a constant ``0 <= c <= 2**32`` and ``|a| <= 2**33``: ``floor(a * c / 2**32)``.

    One product when ``c < 2**30`` (``|a * c| < 2**63``); otherwise ``c`` is split into 16-bit
    halves, which is cheaper than splitting the tensor. Not ``fixed.fx_mul`` (same bits): ~58 ->
    ~95 ms per exact epoch; with ``_mul_fx`` swapped too ~125 ms, 3.7-3.8x the fast epoch (target 4x).
    """
    if c < 1 << 30:
        product = a * c
        product >>= _FRAC
        return product
    high, low = a * (c >> 16), a * (c & _LOW16)
    low >>= 16
    high += low
    high >>= 16
    return high


def _div_fx(a: Tensor, c: Tensor, *, a_small: bool = False) -> Tensor:
    """The chain's ``safe_div`` for non-negative bits: ``floor(a * 2**32 / c)``.

    Callers guarantee ``a == 0`` wherever ``c == 0`` (a normalisation by a zero sum), so the
    divisor is replaced by 1 there and the result is the chain's 0. With ``a_small``
    (``a < 2**31``) one division; otherwise two 16-bit steps of long division, valid for
    ``0 <= a, c < 2**47``. Truncation and floor agree on non-negative operands. Not
    ``fixed.fx_div`` / ``fx_col_max_upscale`` (same bits; any sign and magnitude: a host sync for
    the divisor's bit length, then long division): exact epoch ~58 -> ~172 ms, 4.5x the fast one.
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
    into 32 + 16 + 16 bits so every partial product stays below 2**63. ``fixed.py`` has no
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
    up to 63 bits, so it runs its 32-round long division: ~14x this on a (16, 256, 256) tensor.
    """
    den = e.clamp(max=INT64_MAX - _ONE) + _ONE
    quotient = torch.div(1 << 62, den, rounding_mode="floor")
    rest = (1 << 62) - quotient * den
    for _ in range(2):
        bit = rest >= den - rest
        rest = torch.where(bit, rest - (den - rest), rest + rest)
        quotient = 2 * quotient + bit.to(torch.int64)
    return quotient


def _quantize_float(weights: Tensor, top_bits: int) -> Tensor:
    """Non-negative floats as int64 ``floor(w * 2**shift)``, the largest of each row below ``2**top_bits``.

    The power of two is built from the row maximum's exponent bits, so the scaling and the
    floor are exact and device-independent (``spec/exact-arithmetic.md`` 2.2). Only the exact
    path's float stake uses it (money goes through ``rewards.apportion``); that one's scaling is
    private and keeps a different number of bits, which would change the exact epoch's bits.
    """
    w = weights.to(torch.float64)
    largest = w.amax(-1, keepdim=True).contiguous()
    exponent = ((largest.view(torch.int64) >> 52) & 0x7FF) - 1023  # floor(log2(largest))
    shift = (top_bits - 1 - exponent).clamp(-1000, 1000)
    scale = ((shift + 1023) << 52).view(torch.float64)
    return torch.floor(w * scale).to(torch.int64)


def _normalize_exact(x: Tensor, dim: int = -1) -> Tensor:
    """The chain's ``inplace_normalize`` on non-negative bits (a zero sum leaves ``x`` unchanged).

    Not ``fixed.fx_normalize`` / ``fx_col_normalize`` (same bits, through ``fx_div``'s general
    division): exact epoch ~58 -> ~185 ms, 4.9x the fast one (target 4x).
    """
    return _div_fx(x, x.sum(dim, keepdim=True))  # a zero sum means x is all zero: 0 stays 0


def _normalize_float(x: Tensor, dim: int = -1) -> Tensor:
    total = x.sum(dim, keepdim=True)
    return x / torch.where(total > 0, total, torch.ones_like(total))  # a zero sum: x is all zero


class _Exact:
    """I32F32 on int64 raw bits."""

    exact = True

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.dtype = torch.int64
        self.one = _ONE

    def const_ratio(self, num: int, den: int) -> int:
        """I32F32 ``from(num) / from(den)`` for non-negative Python ints: ``floor(num*2**32/den)``."""
        return (num << _FRAC) // den

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        """Put the smaller (broadcast) operand first: the limb split happens on it."""
        return _mul_fx(a, b)

    def mul_const(self, a: Tensor, c: int) -> Tensor:
        return _mul_fx_const(a, c)

    def div(self, a: Tensor, c: Tensor, *, a_small: bool = False) -> Tensor:
        return _div_fx(a, c, a_small=a_small)

    def normalize(self, x: Tensor, dim: int = -1) -> Tensor:
        return _normalize_exact(x, dim)

    def normalize_(self, x: Tensor, dim: int = -1) -> Tensor:
        """As ``_Float.normalize_`` (the division already reuses its own temporaries)."""
        return _normalize_exact(x, dim)

    def bonds_ema_alpha(self, bonds_moving_average: int) -> int:
        """``1 - bma / 1e6`` with the I64F64 ratio truncated to I32F32."""
        return fx_bonds_ema_alpha(bonds_moving_average)

    def to_u16(self, x: Tensor) -> Tensor:
        """``fixed_proportion_to_u16``: ``floor(x * 65535)`` saturated to [0, 65535]."""
        return fx_to_u16(x)

    def to_u16_(self, x: Tensor, out: Tensor | None = None) -> Tensor:
        """As ``_Float.to_u16_``: ``to_u16``, into ``out`` when given."""
        bits = fx_to_u16(x)
        return bits if out is None else out.copy_(bits)

    def u16_proportion(self, x: Tensor) -> Tensor:
        """``I32F32::from(u16) / I32F32::from(65535)``."""
        return fx_from_u16_proportion(x, validate=False)

    def to_float(self, x: Tensor) -> Tensor:
        return fx_to_float(x)

    def sigmoid_alpha(self, diff: Tensor, steep_div: int, low: int, high: int) -> Tensor:
        """``alpha_low + sigmoid * (alpha_high - alpha_low)``, clamped, exactly as ``alpha_sigmoid``."""
        exponent = _mul_fx(diff - (_ONE >> 1), steep_div)  # |steep_div| < 2**41: fits the split
        e = fx_exp_safe(exponent)  # the chain's exp_safe: input clamped to [-20, 20]
        sigmoid = _reciprocal_one_plus(e)
        alpha = low + _mul_fx_const(sigmoid, high - low)
        return alpha.clamp(low, high)


class _Float:
    """The same steps in float32 / float64."""

    exact = False

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.device = device
        self.dtype = dtype
        self.one = 1.0

    def const_ratio(self, num: int, den: int) -> float:
        return num / den

    def bonds_ema_alpha(self, bonds_moving_average: int) -> float:
        return 1.0 - bonds_moving_average / 1_000_000

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return a * b

    def mul_const(self, a: Tensor, c: float) -> Tensor:
        return a * c

    def div(self, a: Tensor, c: Tensor, *, a_small: bool = False) -> Tensor:
        return a / torch.where(c > 0, c, torch.ones_like(c))  # callers: a == 0 where c == 0

    def normalize(self, x: Tensor, dim: int = -1) -> Tensor:
        return _normalize_float(x, dim)

    def normalize_(self, x: Tensor, dim: int = -1) -> Tensor:
        """``normalize`` in place, for a fresh tensor the caller owns (the same bits)."""
        total = x.sum(dim, keepdim=True)
        return x.div_(torch.where(total > 0, total, torch.ones_like(total)))

    def to_u16(self, x: Tensor) -> Tensor:
        return torch.mul(x.to(torch.float64), _U16_MAX).floor_().clamp_(0, _U16_MAX).to(torch.int64)

    def to_u16_(self, x: Tensor, out: Tensor | None = None) -> Tensor:
        """``to_u16`` of a tensor the caller owns and no longer needs (float64: scaled in place),
        into ``out`` (int64, x's shape) when given."""
        scaled = x.to(torch.float64).mul_(_U16_MAX).floor_().clamp_(0, _U16_MAX)
        return scaled.to(torch.int64) if out is None else out.copy_(scaled)  # whole numbers: exact

    def u16_proportion(self, x: Tensor) -> Tensor:
        return x.to(self.dtype, copy=True).div_(_U16_MAX)

    def to_float(self, x: Tensor) -> Tensor:
        return x

    def sigmoid_alpha(self, diff: Tensor, steep_div: float, low: float, high: float) -> Tensor:
        e = torch.exp((steep_div * (diff - 0.5)).clamp(-20.0, 20.0))  # exp_safe's clamp
        sigmoid = 1.0 / (1.0 + e)
        return (low + sigmoid * (high - low)).clamp(low, high)


# =============================================================================== inputs


@dataclass
class _Inputs:
    """A validated, flattened batch: leading dims collapsed to ``b``; everything on one device."""

    batch_shape: tuple[int, ...]
    origin: ArrayOrigin
    weights: Tensor  # (b, n, n) int64 u16
    stake: Tensor  # (b, n) int64 or float64 raw stake
    last_update: Tensor  # (b, n) int64
    block_at_registration: Tensor  # (b, n) int64
    validator_permit: Tensor | None  # (b, n) bool
    bonds: Tensor  # (b, n, n) int64 u16
    block: Tensor  # (b, 1) int64
    owner_uid: Tensor  # (b, 1) int64
    valid: Tensor  # (b, n) bool
    weights_present: Tensor | None  # (b, n, n) bool
    previous_consensus: Tensor | None  # (b, n) int64 u16
    padded: bool  # n_valid was given: masks for padded uids are needed

    @property
    def n(self) -> int:
        return self.weights.shape[-1]


def _as_int_tensor(x: Any, name: str, device: torch.device, validate: bool) -> Tensor:
    t, _ = as_tensor(x, name)
    if t.dtype == torch.bool or t.is_floating_point():
        if t.dtype == torch.bool:
            raise DTypeError(f"Expected `{name}` to hold integers, but got dtype torch.bool.")
        if validate:
            check_finite(t, name)
            bad = first_index(t != torch.round(t))
            if bad is not None:
                raise DTypeError(f"Expected `{name}` to hold whole numbers, but found {float(t[bad])!r} at index {bad}.")
    if t.device != device:
        check_same_device(weights=torch.empty(0, device=device), **{name: t})
    return t.to(torch.int64)


def _per_subnet(x: Any, name: str, batch_shape: tuple[int, ...], device: torch.device, validate: bool) -> Tensor:
    """A scalar or ``(*)`` per-subnet integer, as ``(b, 1)``."""
    t = _as_int_tensor(x, name, device, validate)
    if t.ndim == 0:
        t = t.expand(batch_shape)
    if tuple(t.shape) != batch_shape:
        raise ShapeError(f"Expected `{name}` to be a scalar or of shape {batch_shape}, but got shape {tuple(t.shape)}.")
    return t.reshape(-1, 1)


def _per_uid(t: Tensor, name: str, shape: tuple[int, ...]) -> Tensor:
    if tuple(t.shape) != shape:
        raise ShapeError(f"Expected `{name}` of shape {shape} (matching `weights`), but got shape {tuple(t.shape)}.")
    return t.reshape(-1, shape[-1])


def _check_u16(t: Tensor, name: str) -> None:
    check_in_range(t, name, 0, _U16_MAX)


def _prepare(state: SubnetState, validate: bool) -> _Inputs:
    if not isinstance(state, SubnetState):
        raise DTypeError(f"Expected `state` to be a mt.yuma.SubnetState, but got {type(state).__name__}.")
    weights_raw, origin = as_tensor(state.weights, "weights")
    device = weights_raw.device
    if weights_raw.ndim < 2 or weights_raw.shape[-1] != weights_raw.shape[-2]:
        raise ShapeError(f"Expected `weights` of shape (*, n, n), but got shape {tuple(weights_raw.shape)}.")
    weights = _as_int_tensor(weights_raw, "weights", device, validate)
    batch_shape, n = tuple(weights.shape[:-2]), weights.shape[-1]
    uid_shape, mat_shape = (*batch_shape, n), (*batch_shape, n, n)
    if validate:
        _check_u16(weights, "weights")

    stake_t, _ = as_tensor(state.stake, "stake")
    if stake_t.dtype == torch.bool:
        raise DTypeError("Expected `stake` to hold numbers, but got dtype torch.bool.")
    check_same_device(weights=weights, stake=stake_t)
    stake = _per_uid(stake_t, "stake", uid_shape)
    stake = stake.to(torch.float64) if stake.is_floating_point() else stake.to(torch.int64)
    if validate:
        check_finite(stake, "stake")
        check_non_negative(stake, "stake")
        if not stake.is_floating_point():
            bad = first_index(stake.to(torch.float64).sum(-1) >= 2.0**61)
            if bad is not None:
                raise ValueRangeError(
                    f"Expected the integer `stake` of each subnet to sum below 2**61, but subnet {bad} sums to "
                    f"{float(stake.to(torch.float64).sum(-1)[bad]):.4g}; pass smaller units or float stake."
                )

    block_given = state.block is not None
    if state.last_update is not None:
        last_update = _per_uid(_as_int_tensor(state.last_update, "last_update", device, validate), "last_update", uid_shape)
    else:
        last_update = None
    if block_given:
        block = _per_subnet(state.block, "block", batch_shape, device, validate)
    elif last_update is not None and n > 0:
        block = last_update.amax(-1, keepdim=True).clamp(min=1)
    else:
        block = torch.ones(weights.reshape(-1, n, n).shape[0], 1, dtype=torch.int64, device=device)
    if last_update is None:
        last_update = block.expand(-1, n).clone()
    if state.block_at_registration is not None:
        registration = _per_uid(
            _as_int_tensor(state.block_at_registration, "block_at_registration", device, validate),
            "block_at_registration", uid_shape,
        )
    else:
        registration = torch.zeros_like(last_update)
    if validate:
        for name, t in (("last_update", last_update), ("block_at_registration", registration), ("block", block)):
            check_non_negative(t, name)

    permit = None
    if state.validator_permit is not None:
        p, _ = as_tensor(state.validator_permit, "validator_permit")
        check_same_device(weights=weights, validator_permit=p)
        if validate and p.dtype != torch.bool:
            check_in_range(p, "validator_permit", 0, 1)
        permit = _per_uid(p, "validator_permit", uid_shape).to(torch.bool)

    if state.bonds is not None:
        bonds_t = _as_int_tensor(state.bonds, "bonds", device, validate)
        if tuple(bonds_t.shape) != mat_shape:
            raise ShapeError(f"Expected `bonds` of shape {mat_shape} (matching `weights`), but got shape {tuple(bonds_t.shape)}.")
        if validate:
            _check_u16(bonds_t, "bonds")
        bonds = bonds_t.reshape(-1, n, n)
    else:
        bonds = torch.zeros_like(weights.reshape(-1, n, n))

    owner = _per_subnet(state.owner_uid, "owner_uid", batch_shape, device, validate)
    uids = torch.arange(n, device=device)
    if state.n_valid is not None:
        n_valid = _per_subnet(state.n_valid, "n_valid", batch_shape, device, validate)
        if validate:
            check_in_range(n_valid, "n_valid", 0, n)
    else:
        n_valid = torch.full_like(owner, n)
    if validate:
        bad = first_index((owner < -1) | (owner >= n_valid))
        if bad is not None:
            raise ValueRangeError(
                f"Expected `owner_uid` in [-1, n_valid - 1] (-1: no owner), but got {int(owner[bad])} "
                f"for subnet {bad[0]} of size {int(n_valid[bad])}."
            )
    valid = uids < n_valid

    present = None
    if state.weights_present is not None:
        wp, _ = as_tensor(state.weights_present, "weights_present")
        check_same_device(weights=weights, weights_present=wp)
        if tuple(wp.shape) != mat_shape:
            raise ShapeError(f"Expected `weights_present` of shape {mat_shape}, but got shape {tuple(wp.shape)}.")
        present = wp.reshape(-1, n, n).to(torch.bool)

    if state.previous_consensus is not None:
        pc = _as_int_tensor(state.previous_consensus, "previous_consensus", device, validate)
        pc = _per_uid(pc, "previous_consensus", uid_shape)
        if validate:
            _check_u16(pc, "previous_consensus")
    else:
        pc = None

    return _Inputs(
        batch_shape=batch_shape,
        origin=origin,
        weights=weights.reshape(-1, n, n),
        stake=stake,
        last_update=last_update,
        block_at_registration=registration,
        validator_permit=permit,
        bonds=bonds,
        block=block,
        owner_uid=owner,
        valid=valid,
        weights_present=present,
        previous_consensus=pc,
        padded=state.n_valid is not None,
    )


# =============================================================================== epoch steps


def _quantize_stake(stake: Tensor, valid: Tensor) -> Tensor:
    """Raw stake as non-negative int64 whose per-subnet sum is below 2**61.

    Integer stake is used as is. Float stake is read as a dyadic fixed point with
    ``60 - ceil(log2 n)`` bits below each subnet's largest stake: ``floor(S * 2**shift)`` with the
    power of two built from its exponent bits (exact, and the same on every device).
    """
    stake = stake.masked_fill(~valid, 0)
    if not stake.is_floating_point():
        return stake
    return _quantize_float(stake, 60 - max(stake.shape[-1] - 1, 1).bit_length())


def _topk_permits(stake: Tensor, k: int, exact: bool) -> Tensor:
    """``is_topk_nonzero``: the k largest stakes, higher uid first among equal stakes, never zero stake."""
    n = stake.shape[-1]
    if exact:
        uids = torch.arange(n, device=stake.device)
        order = torch.argsort(stake * n + uids, dim=-1, descending=True)
    else:
        # A stable descending sort of the reversed vector puts the higher uid first among ties.
        order = (n - 1) - torch.sort(stake.flip(-1), dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(n, device=stake.device).expand_as(order))
    return (rank < k) & (stake > 0)


def _weighted_median_cols(weights: Tensor, stake: Tensor, kappa: int | float, ops: _Exact | _Float) -> Tensor:
    """``weighted_median_col_sparse`` (spec B.4), batched: the consensus module's closed form.

    For each column: the largest value p among the rows with positive stake such that the
    (renormalised) stake of the rows with ``W_ij >= p`` reaches kappa; the smallest such value
    when none does; 0 when no row has stake. Exact mode runs it on I32F32 bits (the chain's
    bits), fast mode in float (stake sums in float64).

    Args:
        weights: ``(b, n, n)`` row-normalised weights (bits or floats).
        stake: ``(b, n)`` active stake.
    """
    if ops.exact:
        return weighted_median_fixed(weights, stake, kappa, validate=False)
    return weighted_median(weights, stake, kappa, validate=False)


@dataclass
class _Core:
    """Internal results of one epoch, flattened (b, ...), as torch tensors."""

    server: Tensor
    validator: Tensor
    chain_emission: Tensor
    dust: Tensor
    stake_weight: Tensor
    active_stake: Tensor
    consensus: Tensor
    incentive: Tensor
    dividends: Tensor
    validator_trust: Tensor
    bonds_u16: Tensor
    new_permit: Tensor
    active: Tensor
    ops: Any = field(repr=False)


def _epoch_core(
    x: _Inputs, p: YumaParams, emission: Tensor, ops: _Exact | _Float, payout: Payout, bonds_out: Tensor | None = None
) -> _Core:
    """Every step of spec B.3-B.5 on a prepared batch (no Python loop over subnets or uids).

    ``bonds_out``: where the fast path writes the new u16 bonds ``(b, n, n)`` (the runner's
    stacked result), instead of a fresh tensor.
    """
    n, dev = x.n, x.weights.device
    sparse = p.path == "sparse"
    uids = torch.arange(n, device=dev)
    valid = x.valid
    is_owner = uids == x.owner_uid  # (b, n); -1 matches nobody
    zero = torch.zeros((), dtype=ops.dtype, device=dev)

    # 1-2. activity; the outdated mask is applied with the weights below.
    active = (x.last_update + p.activity_cutoff >= x.block) & valid

    # 3-4. stake threshold (owner exempt on the sparse path), I64F64 normalisation truncated to I32F32.
    raw = x.stake.masked_fill(~valid, 0)
    below = raw < p.stake_threshold
    if sparse:
        below = below & ~is_owner
    raw = raw.masked_fill(below, 0)
    if ops.exact:
        quantized = _quantize_stake(raw, valid)
        stake = normalize_i64f64_to_i32f32(quantized, validate=False)
    else:
        stake = ops.normalize(raw.to(ops.dtype))

    # 5. permits: stored ones (owner forced on the sparse path) and the new top-k.
    new_permit = _topk_permits(stake, p.max_allowed_validators, ops.exact) & valid
    old_permit = x.validator_permit if x.validator_permit is not None else new_permit
    old_permit = old_permit & valid
    if sparse:
        new_permit = new_permit | (is_owner & valid)
        old_permit = old_permit | (is_owner & valid)

    # 6. active stake.
    active_stake = ops.normalize(torch.where(active & old_permit, stake, zero))

    # 7. weights: permit rows, diagonal (except the owner's on the sparse path), outdated cells.
    # (old_permit already excludes padded rows; padded columns are masked where padding exists)
    keep = old_permit.unsqueeze(-1) & (x.last_update.unsqueeze(-1) > x.block_at_registration.unsqueeze(-2))
    if x.padded:
        keep &= valid.unsqueeze(-2)
    diagonal = keep.diagonal(dim1=-2, dim2=-1)  # a view: the rule is applied in place
    if sparse:
        diagonal &= is_owner
    else:
        diagonal.fill_(False)
    present = keep if x.weights_present is None else keep & x.weights_present
    if ops.exact:
        w_int = x.weights.masked_fill(~present, 0)
        weights = ops.div(w_int, w_int.sum(-1, keepdim=True), a_small=True)
    else:
        # One fresh (b, n, n) tensor, masked and normalised in place (each temporary of that size
        # costs as much as the arithmetic on the CPU: fresh pages).
        weights = ops.normalize_(x.weights.to(ops.dtype, copy=True).masked_fill_(~present, 0))

    # 8-10. consensus, clipping, validator trust.
    kappa = ops.const_ratio(p.kappa, _U16_MAX)
    consensus = _weighted_median_cols(weights, active_stake, kappa, ops)
    beta: Any = ops.const_ratio(p.bonds_penalty, _U16_MAX)  # int bits (exact) or float
    # The fast path's original bonds with beta = 1 never read W after clipping, nor W-bar after
    # weighing it by stake: both steps then run in place on the weights' own tensor.
    in_place = not ops.exact and not p.yuma3 and beta == ops.one
    if in_place:
        clipped = torch.minimum(weights, consensus.unsqueeze(-2), out=weights)
    else:
        clipped = torch.minimum(weights, consensus.unsqueeze(-2))
    validator_trust = clipped.sum(-1)

    # 11. ranks and incentive.
    if ops.exact:
        ranks = ops.mul(active_stake.unsqueeze(-1), clipped).sum(-2)
    else:
        ranks = torch.matmul(active_stake.unsqueeze(-2), clipped).squeeze(-2)
    incentive = ops.normalize(ranks)

    # 12. weights for bonds: W + beta * (clipped - W).
    if beta == 0:
        bond_weights = weights
    elif beta == ops.one:
        bond_weights = clipped
    else:
        bond_weights = weights + ops.mul_const(clipped - weights, beta)

    def bond_present() -> Tensor:
        """The cells the sparse path keeps in W-tilde (only the liquid-alpha EMA can tell)."""
        if not sparse:
            return torch.ones_like(present)
        if beta == 0:
            return present
        if beta == ops.one:  # col_clip_sparse drops W > C where C <= 0
            return present & ~((weights > consensus.unsqueeze(-2)) & (consensus.unsqueeze(-2) <= 0))
        return bond_weights > 0  # interpolate_sparse keeps positive cells only

    # 13. bonds and dividends.
    last_tempo = (x.block - p.tempo).clamp(min=0)
    fresh_columns = (last_tempo <= x.block_at_registration).unsqueeze(-2)  # (b, 1, n)
    drop_bonds = fresh_columns | ~(valid.unsqueeze(-1) & valid.unsqueeze(-2)) if x.padded else fresh_columns
    ema_alpha: Any = ops.bonds_ema_alpha(p.bonds_moving_average)
    if p.yuma3:
        bonds = ops.u16_proportion(x.bonds.masked_fill(drop_bonds, 0))
        ema = _yuma3_ema(bond_weights, bond_present, bonds, consensus, x, p, ops, ema_alpha)
        ema_norm = ops.normalize(ema, dim=-2)
        per_validator = ops.mul(incentive.unsqueeze(-2), ema_norm).sum(-1)
        dividends = ops.normalize(ops.mul(per_validator, active_stake))
        stored = ema
    else:
        if ops.exact:
            stored_bonds = x.bonds.masked_fill(drop_bonds, 0)
            bonds = ops.div(stored_bonds, stored_bonds.sum(-2, keepdim=True), a_small=True)
            delta = ops.normalize(ops.mul(active_stake.unsqueeze(-1), bond_weights), dim=-2)
            ema = ops.mul_const(delta, ema_alpha)
            ema += ops.mul_const(bonds, ops.one - ema_alpha)
            ema = ops.normalize(ema, dim=-2)  # both terms are >= 0: nothing to drop
            dividends = ops.normalize(ops.mul(incentive.unsqueeze(-2), ema).sum(-1))
            stored = ops.div(ema, ema.amax(-2, keepdim=True))
        else:
            # The same steps on fresh tensors, in place (bit for bit the out-of-place ones).
            bonds = ops.normalize_(x.bonds.to(ops.dtype, copy=True).masked_fill_(drop_bonds, 0), dim=-2)
            weighed = bond_weights.mul_(active_stake.unsqueeze(-1)) if in_place else active_stake.unsqueeze(-1) * bond_weights
            delta = ops.normalize_(weighed, dim=-2)
            ema = ops.normalize_(delta.mul_(ema_alpha).add_(bonds.mul_(1.0 - ema_alpha)), dim=-2)
            dividends = ops.normalize(torch.matmul(ema, incentive.unsqueeze(-1)).squeeze(-1))
            stored = ema.div_(ema.amax(-2, keepdim=True).clamp_(min=1e-300))  # a zero column stays 0

    # 14. emission.
    server, validator, chain_emission, dust = _emission(incentive, dividends, active_stake, stake, emission, ops, payout)

    # 16. bonds rows: kept for new permits, emptied otherwise (the dense path leaves rows of
    # uids that never had a permit untouched).
    bonds_u16 = ops.to_u16_(stored, out=bonds_out)  # stored is not read again
    bonds_u16.masked_fill_(~new_permit.unsqueeze(-1), 0)
    if not sparse:
        untouched = (~new_permit & ~old_permit).unsqueeze(-1)
        torch.where(untouched, x.bonds, bonds_u16, out=bonds_u16)
    if x.padded:
        bonds_u16.masked_fill_(~(valid.unsqueeze(-1) & valid.unsqueeze(-2)), 0)

    return _Core(
        server=server,
        validator=validator,
        chain_emission=chain_emission,
        dust=dust,
        stake_weight=stake,
        active_stake=active_stake,
        consensus=consensus,
        incentive=incentive,
        dividends=dividends,
        validator_trust=validator_trust,
        bonds_u16=bonds_u16,
        new_permit=new_permit,
        active=active,
        ops=ops,
    )


def _yuma3_ema(
    weights: Tensor,
    present: Callable[[], Tensor],
    bonds: Tensor,
    consensus: Tensor,
    x: _Inputs,
    p: YumaParams,
    ops: _Exact | _Float,
    ema_alpha: Any,
) -> Tensor:
    """Yuma 3 bonds EMA (``compute_bonds_sparse``): scalar alpha, or liquid alpha per cell."""
    plain = ops.mul_const(weights, ema_alpha) + ops.mul_const(bonds, ops.one - ema_alpha)  # both >= 0
    if not p.liquid_alpha:
        return plain
    mode = p.liquid_alpha_consensus_mode
    if x.previous_consensus is not None and (mode == "previous" or (mode == "auto" and p.bonds_penalty == _U16_MAX)):
        reference = ops.u16_proportion(x.previous_consensus)
    else:
        reference = consensus
    reference = reference.masked_fill(~x.valid, 0)
    low: Any = ops.const_ratio(p.alpha_low, _U16_MAX)  # int bits (exact) or float
    high: Any = ops.const_ratio(p.alpha_high, _U16_MAX)
    steep_div: Any
    if ops.exact:
        steep = p.alpha_sigmoid_steepness
        steep_div = -((abs(steep) << _FRAC) // 100) if steep > 0 else (abs(steep) << _FRAC) // 100
    else:
        steep_div = -p.alpha_sigmoid_steepness / 100
    one = ops.one
    buy = (weights - reference.unsqueeze(-2)).clamp(0, one)
    sell = (bonds - weights).clamp(0, one)
    alpha = ops.sigmoid_alpha(torch.where(weights >= bonds, buy, sell), steep_div, low, high)
    decayed = ops.mul(one - alpha, bonds)
    liquid = (decayed + ops.mul(alpha, weights).clamp(min=0)).clamp(max=one)
    liquid = torch.where(present(), liquid, 0).clamp(min=0)
    use_liquid = (reference != 0).any(-1).view(-1, 1, 1)
    return torch.where(use_liquid, liquid, plain)


def _interleave(server_share: Tensor, validator_share: Tensor) -> Tensor:
    """``(b, n)`` x2 -> ``(b, 2n)`` ordered uid 0 server, uid 0 validator, uid 1 server, ..."""
    return torch.stack((server_share, validator_share), dim=-1).flatten(-2)


def _emission(
    incentive: Tensor,
    dividends: Tensor,
    active_stake: Tensor,
    stake: Tensor,
    emission: Tensor,
    ops: _Exact | _Float,
    payout: Payout,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Step 14: shares of ``I + D`` (or of the stake when nothing is weighted), floored or apportioned."""
    combined = incentive + dividends
    total = combined.sum(-1, keepdim=True)
    nothing = total <= 0
    fallback = torch.where(active_stake.sum(-1, keepdim=True) > 0, active_stake, stake)
    server_w = torch.where(nothing, torch.zeros_like(incentive), incentive)
    validator_w = torch.where(nothing, fallback, dividends)
    totals = emission.squeeze(-1)  # (b,)
    if ops.exact:
        # The chain: each share normalised in I32F32 (by the combined sum, or the stake as is
        # when nothing is weighted), then floor(share * E) in I96F32.
        chain_emission = _mul_wei(torch.where(nothing, fallback, ops.normalize(combined)), emission)
        server_share = ops.div(incentive, total)
        validator_share = torch.where(nothing, fallback, ops.div(dividends, total))
    else:
        chain_emission = apportion(totals, torch.where(nothing, fallback, combined), method="floor",
                                   zero_weights="dust", validate=False).parts
    if payout == "chain" and ops.exact:
        server, validator = _mul_wei(server_share, emission), _mul_wei(validator_share, emission)
    else:
        # A subnet without any share (no stake at all) is paid nothing: its emission is dust.
        method: Literal["largest_remainder", "floor"] = "largest_remainder" if payout == "exact" else "floor"
        parts = apportion(totals, _interleave(server_w, validator_w), method=method,
                          zero_weights="dust", validate=False).parts
        parts = parts.reshape(*parts.shape[:-1], -1, 2)
        server, validator = parts[..., 0], parts[..., 1]
    dust = totals - (server + validator).sum(-1)
    return server, validator, chain_emission, dust


# =============================================================================== public API


def _ops_for(exact: bool, dtype: torch.dtype | None, device: torch.device) -> _Exact | _Float:
    if exact:
        if dtype is not None:
            raise DTypeError("`dtype` applies to the fast path only (exact=False); the exact path computes in int64.")
        return _Exact(device)
    dtype = torch.float64 if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64):
        raise DTypeError(f"Expected `dtype` torch.float32 or torch.float64, but got {dtype}.")
    return _Float(device, dtype)


def _emission_tensor(emission: Any, batch_shape: tuple[int, ...], device: torch.device, validate: bool) -> Tensor:
    e = _per_subnet(emission, "emission", batch_shape, device, validate)
    if validate:
        check_non_negative(e, "emission")
    return e


def _check_args(params: YumaParams, payout: str, n: int, exact: bool) -> None:
    if not isinstance(params, YumaParams):
        raise DTypeError(f"Expected `params` to be a mt.yuma.YumaParams, but got {type(params).__name__}.")
    if payout not in ("chain", "exact"):
        raise ValueRangeError(f"Expected `payout` to be 'chain' or 'exact', but got {payout!r}.")
    if exact and n > _MAX_EXACT_N:
        raise ShapeError(f"The exact epoch supports subnets of up to {_MAX_EXACT_N} uids, but got n = {n}.")


def _wrap_result(core: _Core, x: _Inputs, payout_chain: bool) -> EpochResult:
    ops, origin = core.ops, x.origin
    batch, n = x.batch_shape, x.n

    def out(t: Tensor, matrix: bool = False) -> Any:
        return origin.wrap(t.reshape(*batch, n, n) if matrix else t.reshape(*batch, n))

    def u16(t: Tensor) -> Any:
        return out(ops.to_u16(t))

    def flt(t: Tensor) -> Any:
        return out(ops.to_float(t))

    return EpochResult(
        server_emission=out(core.server),
        validator_emission=out(core.validator),
        emission=out(core.chain_emission if payout_chain else core.server + core.validator),
        dust=origin.wrap(core.dust.reshape(batch)),
        consensus=u16(core.consensus),
        incentive=u16(core.incentive),
        dividends=u16(core.dividends),
        validator_trust=u16(core.validator_trust),
        stake_weight=u16(core.stake_weight),
        consensus_float=flt(core.consensus),
        incentive_float=flt(core.incentive),
        dividends_float=flt(core.dividends),
        validator_trust_float=flt(core.validator_trust),
        stake_weight_float=flt(core.stake_weight),
        active_stake_float=flt(core.active_stake),
        bonds=out(core.bonds_u16, matrix=True),
        validator_permit=out(core.new_permit),
        active=out(core.active),
    )


def epoch(
    state: SubnetState,
    params: YumaParams = YumaParams(),
    emission: Array | int = 1_000_000_000,
    *,
    exact: bool = True,
    payout: Payout = "chain",
    dtype: torch.dtype | None = None,
    validate: bool = True,
) -> EpochResult:
    """Run one Yuma epoch for a subnet or a batch of subnets (spec B.3-B.5).

    Args:
        state: the subnet(s): weights ``(*, n, n)``, stake ``(*, n)`` and the optional fields of
            :class:`SubnetState`.
        params: hyperparameters (scalars shared by the batch).
        emission: wei to distribute this epoch, an int or ``(*)`` ints in ``[0, 2**63)``.
        exact: True: the chain's fixed point on int64, bit for bit. False: float (``dtype``).
            Exact mode reads integer stake exactly; float stake is read with ``60 - ceil(log2 n)``
            bits below each subnet's largest stake (then normalised exactly).
        payout: ``"chain"``: ``floor`` of each share like the chain, the rest is ``dust``;
            ``"exact"``: the same shares apportioned so that every subnet's emissions sum to
            ``emission`` exactly (largest remainder; ties to the lower uid, server before
            validator). The fast path apportions its float shares exactly in both modes.
            A subnet with no stake at all has no share to follow: it pays nothing and reports
            the whole emission as dust.
        dtype: float dtype of the fast path (default float64).
        validate: run the value checks (ranges, NaN, signs; they sync a GPU).

    Returns:
        :class:`EpochResult`, in the array type of ``state.weights``. The exact path gives the same
        bits on every device; the fast path's float sums may differ in the last bits between
        devices (its payouts are still whole wei that sum as stated).

    Raises:
        ShapeError, DTypeError, ValueRangeError: bad shapes, dtypes or values (first offender named).

    Example:
        >>> W = [[0, 65535, 0], [0, 0, 65535], [0, 65535, 0]]
        >>> state = SubnetState(weights=W, stake=[100, 0, 200])
        >>> result = epoch(state, emission=1000)
        >>> result.incentive.tolist(), result.emission.tolist(), int(result.dust)
        ([0, 65535, 0], [166, 500, 333], 1)
        >>> epoch(state, emission=1000, payout="exact").emission.tolist()
        [167, 500, 333]
    """
    x = _prepare(state, validate)
    ops = _ops_for(exact, dtype, x.weights.device)
    _check_args(params, payout, x.n, exact)
    e = _emission_tensor(emission, x.batch_shape, x.weights.device, validate)
    if x.weights.shape[0] == 0 or x.n == 0:
        shape = (*x.batch_shape, x.n, x.n)
        raise ShapeError(f"Expected a non-empty batch of subnets with n >= 1, but got weights of shape {shape}.")
    return _wrap_result(_epoch_core(x, params, e, ops, payout), x, payout == "chain")


def next_state(
    state: SubnetState,
    result: EpochResult,
    weights: Array | None = None,
    block: Array | int | None = None,
    *,
    blocks_per_epoch: int = 360,
    stake: Array | None = None,
    last_update: Array | None = None,
) -> SubnetState:
    """The state of the next epoch: the new bonds, permits and consensus carried over.

    Args:
        state: the state the epoch ran on.
        result: what :func:`epoch` returned for it.
        weights: the next epoch's weights ``(*, n, n)``; default: unchanged.
        block: the next epoch's block; default: ``state.block + blocks_per_epoch``.
        blocks_per_epoch: the block step when ``block`` is not given (the chain's tempo).
        stake: the next epoch's stake; default: unchanged.
        last_update: the next epoch's ``last_update``; default: the old one moved forward by
            the same number of blocks (every validator keeps its update rhythm, so activity
            does not decay over a long run).

    Returns:
        A new :class:`SubnetState` (the input is not modified).

    Example:
        >>> s = SubnetState(weights=[[0, 65535], [65535, 0]], stake=[1, 3], block=1000)
        >>> s2 = next_state(s, epoch(s))
        >>> int(s2.block), s2.validator_permit.tolist()
        (1360, [True, True])
    """
    x = _prepare(state, validate=False)
    if block is None:
        new_block = x.block + blocks_per_epoch
    else:
        new_block = _per_subnet(block, "block", x.batch_shape, x.weights.device, True)
    if last_update is None:
        last_update = x.origin.wrap((x.last_update + (new_block - x.block)).reshape(*x.batch_shape, x.n))
    wrapped_block: Any = x.origin.wrap(new_block.reshape(x.batch_shape)) if x.batch_shape else int(new_block.reshape(()))
    return dataclasses.replace(
        state,
        weights=state.weights if weights is None else weights,
        stake=state.stake if stake is None else stake,
        last_update=last_update,
        block=wrapped_block,
        validator_permit=result.validator_permit,
        bonds=result.bonds,
        previous_consensus=result.consensus,
    )


def _progress(total: int | None, enabled: bool) -> Any:
    """A tqdm bar when tqdm is installed (the ``progress`` extra), else a plain stderr counter."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _StderrProgress(total)
    return tqdm(total=total, desc="epochs", unit="epoch")


class _StderrProgress:
    def __init__(self, total: int | None) -> None:
        self.total, self.count = total, 0

    def update(self, steps: int = 1) -> None:
        self.count += steps
        if self.total is None or self.count == self.total or self.count % max(1, (self.total or 1) // 20) == 0:
            sys.stderr.write(f"\repochs: {self.count}/{self.total if self.total is not None else '?'}")
            sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


def _stack_results(cores: list[_Core], x: _Inputs, payout_chain: bool, bonds: Tensor | None = None) -> EpochResult:
    """Stack per-epoch results into one :class:`EpochResult` with a leading epoch dimension.

    ``bonds``: ``(T, b, n, n)`` when the epochs already wrote their bonds there.
    """
    t = len(cores)
    names = [f.name for f in dataclasses.fields(_Core) if f.name != "ops" and not (bonds is not None and f.name == "bonds_u16")]
    fields = {name: torch.stack([getattr(c, name) for c in cores]).flatten(0, 1) for name in names}
    if bonds is not None:
        fields["bonds_u16"] = bonds.flatten(0, 1)
    stacked = _Core(**fields, ops=cores[0].ops)
    batch = (t, *x.batch_shape)
    return _wrap_result(stacked, dataclasses.replace(x, batch_shape=batch), payout_chain)


def run_epochs(
    state: SubnetState,
    weight_updates: Array | Iterable[Array],
    params: YumaParams = YumaParams(),
    emission: Array | int = 1_000_000_000,
    *,
    exact: bool = True,
    payout: Payout = "chain",
    dtype: torch.dtype | None = None,
    progress: bool = False,
    validate: bool = True,
) -> tuple[EpochResult, SubnetState]:
    """Run consecutive epochs, carrying bonds, permits and consensus from one to the next.

    Epoch t runs on ``weight_updates[t]``; between epochs the block advances by ``params.tempo``
    and everything else follows :func:`next_state`. The loop over epochs is inherent (each needs
    the previous bonds); subnets are batched. The consensus and the apportionment read a few
    values back to size their integer arithmetic, so each epoch syncs a GPU a few times.

    Args:
        state: the starting state (its ``weights`` are replaced by ``weight_updates[0]``).
        weight_updates: ``(T, *, n, n)`` u16 weights, or an iterable of ``(*, n, n)`` arrays.
        params, emission, exact, payout, dtype, validate: as in :func:`epoch`.
        progress: show a progress bar (tqdm when installed, the ``progress`` extra; otherwise a
            one-line counter on stderr).

    Returns:
        ``(results, final_state)``: results stacked with a leading epoch dimension ``T``, and the
        state after the last epoch (ready for the next one).

    Example:
        >>> W = torch.tensor([[[0, 65535, 0], [0, 0, 65535], [0, 65535, 0]]] * 3)  # (T, n, n)
        >>> results, final = run_epochs(SubnetState(W[0], [100, 0, 200]), W, emission=1000)
        >>> results.emission.shape, results.dust.tolist(), final.validator_permit.tolist()
        (torch.Size([3, 3]), [1, 1, 1], [True, False, True])
    """
    x = _prepare(state, validate)
    ops = _ops_for(exact, dtype, x.weights.device)
    _check_args(params, payout, x.n, exact)
    e = _emission_tensor(emission, x.batch_shape, x.weights.device, validate)
    updates, total = _iter_updates(weight_updates, x, validate)
    bar = _progress(total, progress)
    cores: list[_Core] = []
    # The fast path writes each epoch's bonds straight into the stacked result (a (T, b, n, n)
    # copy less). Only for an array of updates, whose count is certain.
    bonds = None
    if not ops.exact and _is_array(weight_updates) and total:
        bonds = torch.empty((total, *x.bonds.shape), dtype=torch.int64, device=x.bonds.device)
    try:
        for weights in updates:
            x = dataclasses.replace(x, weights=weights)
            core = _epoch_core(x, params, e, ops, payout, None if bonds is None else bonds[len(cores)])
            cores.append(core)
            x = _advance(x, core, params.tempo)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if not cores:
        raise ShapeError("Expected at least one weight update, but got none.")
    if bonds is not None:
        x = dataclasses.replace(x, bonds=x.bonds.clone())  # the final state does not share the results' memory
    final = _state_from_inputs(x)
    return _stack_results(cores, x, payout == "chain", bonds), final


def _is_array(x: Any) -> bool:
    return isinstance(x, Tensor) or hasattr(x, "__array__") or hasattr(x, "__dlpack__")


def _iter_updates(weight_updates: Any, x: _Inputs, validate: bool) -> tuple[Iterator[Tensor], int | None]:
    shape = (*x.batch_shape, x.n, x.n)
    if _is_array(weight_updates):
        w = _as_int_tensor(weight_updates, "weight_updates", x.weights.device, validate)
        if tuple(w.shape[1:]) != shape:
            raise ShapeError(f"Expected `weight_updates` of shape (T, *{shape}), but got shape {tuple(w.shape)}.")
        if validate:
            _check_u16(w, "weight_updates")
        flat = w.reshape(w.shape[0], -1, x.n, x.n)
        return iter(flat.unbind(0)), int(w.shape[0])

    def generate() -> Iterator[Tensor]:
        for t, update in enumerate(weight_updates):
            w = _as_int_tensor(update, f"weight_updates[{t}]", x.weights.device, validate)
            if tuple(w.shape) != shape:
                raise ShapeError(f"Expected `weight_updates[{t}]` of shape {shape}, but got shape {tuple(w.shape)}.")
            if validate:
                _check_u16(w, f"weight_updates[{t}]")
            yield w.reshape(-1, x.n, x.n)

    total = len(weight_updates) if hasattr(weight_updates, "__len__") else None
    return generate(), total


def _advance(x: _Inputs, core: _Core, blocks: int) -> _Inputs:
    return dataclasses.replace(
        x,
        block=x.block + blocks,
        last_update=x.last_update + blocks,
        validator_permit=core.new_permit,
        bonds=core.bonds_u16,
        previous_consensus=core.ops.to_u16(core.consensus),
    )


def _state_from_inputs(x: _Inputs) -> SubnetState:
    batch, n, wrap = x.batch_shape, x.n, x.origin.wrap

    def uid(t: Tensor) -> Any:
        return wrap(t.reshape(*batch, n))

    present = None if x.weights_present is None else wrap(x.weights_present.reshape(*batch, n, n))
    return SubnetState(
        weights=wrap(x.weights.reshape(*batch, n, n)),
        stake=uid(x.stake),
        last_update=uid(x.last_update),
        block_at_registration=uid(x.block_at_registration),
        validator_permit=uid(x.validator_permit) if x.validator_permit is not None else None,
        bonds=wrap(x.bonds.reshape(*batch, n, n)),
        block=wrap(x.block.reshape(batch)) if batch else int(x.block.reshape(())),
        owner_uid=wrap(x.owner_uid.reshape(batch)) if batch else int(x.owner_uid.reshape(())),
        n_valid=wrap(x.valid.sum(-1).reshape(batch)) if x.padded else None,
        weights_present=present,
        previous_consensus=uid(x.previous_consensus) if x.previous_consensus is not None else None,
    )
