"""The chain's emission arithmetic on int64 wei: mechanism split, miner / validator payout, safe sums.

:func:`split_emission` splits an emission over a subnet's mechanisms with the chain's u16
shares; :func:`distribute_emission` turns an epoch's incentive and dividends into wei per uid
with :func:`~mdt_tensor.money.apportion.apportion`, so the parts sum to the emission exactly;
:func:`sum_wei` sums wei without int64 wrap-around.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .._array import Array, ArrayOrigin, as_tensor, check_same_device
from .._constants import U16_MAX
from .._intmath import mul_div_floor_rem
from .._validation import check_alloc, check_finite, check_int, check_non_negative, check_u16, first_index, normalize_dim
from ..errors import DTypeError, ShapeError, ValueRangeError, WeiOverflowError, WeightError
from ._shares import ApportionMethod
from .apportion import apportion, check_totals, read_totals, widen_half

__all__ = ["EmissionSplit", "split_emission", "distribute_emission", "sum_wei"]


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


def split_emission(total_wei: Array | int, split_u16: Array | int, *, validate: bool = True) -> Array:
    """Split emissions over mechanisms exactly as the chain does (``opentensor/subtensor``
    ``pallets/subtensor/src/subnets/mechanism.rs``, ``split_emissions``).

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

    Raises:
        DTypeError: float or bool shares, or a bool count.
        ValueRangeError: a negative total, a share outside ``[0, 65535]``, a count below 1, or
            shares whose floors exceed the emission.
        ShapeError: a scalar or empty ``split_u16`` (no mechanism), or shapes that do not broadcast.

    Example:
        >>> split_emission(10, 4)
        tensor([4, 2, 2, 2])
        >>> split_emission(19, torch.tensor([3450, 6899, 10348, 17247, 27594]))
        tensor([1, 2, 3, 5, 8])
    """
    totals, from_int = read_totals(total_wei)
    origin: ArrayOrigin | None
    if isinstance(split_u16, (bool, int)):
        count = check_int(split_u16, "split_u16", low=1)
        origin = None if from_int else as_tensor(total_wei, "total_wei")[1]
        if validate:
            check_totals(totals, "total_wei")
        check_alloc((*totals.shape, count), torch.int64, totals.device, "split_u16")
        share = torch.div(totals, count, rounding_mode="floor")
        parts = share[..., None].repeat(*([1] * totals.ndim), count)
    else:
        shares, origin = _read_shares(split_u16)
        if totals.device != shares.device and not from_int:
            check_same_device(total_wei=totals, split_u16=shares)
        totals = totals.to(shares.device)
        if validate:
            check_totals(totals, "total_wei")
            check_u16(shares, "split_u16")
        try:
            batch = torch.broadcast_shapes(totals.shape, shares.shape[:-1])
        except RuntimeError:
            raise ShapeError(
                f"Expected `total_wei` {tuple(totals.shape)} to broadcast against the rows of `split_u16` "
                f"{tuple(shares.shape)}, but they do not."
            ) from None
        totals = totals.expand(batch)
        shares = shares.expand(*batch, shares.shape[-1])
        parts, _ = mul_div_floor_rem(totals[..., None], shares, torch.full_like(shares, U16_MAX), b_bits=16, c_bits=16)
    parts = _rounding_to_first(totals, parts)
    return parts if origin is None else origin.wrap(parts)


def _read_shares(split_u16: Array) -> tuple[Tensor, ArrayOrigin]:
    """The u16 shares as int64 ``(*, M)``."""
    shares, origin = as_tensor(split_u16, "split_u16")
    if shares.is_floating_point() or shares.dtype == torch.bool:
        raise DTypeError(f"Expected `split_u16` to hold u16 integers, but got dtype {shares.dtype}.")
    if shares.ndim == 0:
        raise ShapeError("Expected `split_u16` to have shape (*, M), but got a scalar.")
    if shares.shape[-1] == 0:
        raise ShapeError(
            f"Expected `split_u16` to have at least one mechanism (M >= 1), but got shape {tuple(shares.shape)}."
        )
    return shares.to(torch.int64), origin


def _rounding_to_first(totals: Tensor, parts: Tensor) -> Tensor:
    """A copy of ``parts`` with each row's rounding remainder credited to mechanism 0, as the chain does."""
    parts = parts.clone()
    rounding_error = totals - parts.sum(dim=-1)
    over = first_index(rounding_error < 0)
    if over is not None:
        raise ValueRangeError(
            f"`split_u16` sums to more than 65535 in row {over}: the parts exceed the emission "
            "(the chain only accepts splits summing to 65535)."
        )
    parts[..., 0] += rounding_error
    return parts


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

    As the chain does (the emission step of ``opentensor/subtensor``
    ``pallets/subtensor/src/epoch/run_epoch.rs``), the shares are ``I_i / Σ`` and ``D_i / Σ``
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
    both, shape, origin, dim = _read_scores(incentive, dividends, dim, validate)
    n = shape[-1]
    totals, _ = read_totals(emission_wei, "emission_wei")
    if validate:
        check_totals(totals, "emission_wei")  # (a negative total broke apportion's invariants)
    totals = totals.to(both.device).expand(both.shape[:-1]).contiguous()
    live = (both > 0).any(dim=-1)
    parts, dust = apportion(totals, both, method=method, zero_weights="dust", validate=False)
    server, validator = parts[..., :n], parts[..., n:].clone()
    if not bool(live.all()):
        fallback = _stake_weights(shape, active_stake, stake, dim, validate, both.device)
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


def _read_scores(
    incentive: Array, dividends: Array, dim: int, validate: bool
) -> tuple[Tensor, torch.Size, ArrayOrigin, int]:
    """``(both, shape, origin, dim)``: I and D with ``dim`` moved last, concatenated to ``(*, 2n)``
    (half floats widened to float32); ``shape`` is I's moved shape ``(*, n)``."""
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
    both = widen_half(torch.cat([inc, div], dim=-1))
    if validate:
        check_finite(both, "incentive / dividends")
        check_non_negative(both, "incentive / dividends")
    return both, inc.shape, origin, dim


def _stake_weights(
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
        values = widen_half(values)
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
