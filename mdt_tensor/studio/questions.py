"""Two questions validators ask of the exact epoch: what reaches the burn uid, and what trust a row gets.

``burn_share`` sends the weights validators intend through what the SDK and the chain do to them
(the max-weight limit, u16 max-upscaling, the epoch's masks, consensus clipping, the floors of the
payout) and reports what the burn uid is really paid. ``predict_validator_trust`` puts a candidate
weight row in place of a validator's stored row and reports the validator trust and dividends it
would get this epoch. Several candidates run as one batched epoch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..chain.yuma.runner import epoch
from ..chain.yuma.types import SubnetState, YumaParams
from ..compat.max_weight import normalize_max_weight
from ..compat.u16 import max_upscale_float_to_u16
from ..errors import ShapeError, ValueRangeError
from .batch import _canonical

__all__ = ["BurnShare", "TrustPrediction", "burn_share", "predict_validator_trust"]


@dataclass
class BurnShare:
    """What :func:`burn_share` returns; floats, or ``(K,)`` tensors for K weight sets.

    Attributes:
        share: the fraction of the epoch's emission paid to the burn uid (all routes, after floors).
        wei: the wei paid to it (int, or ``(K,)`` int64).
        incentive: its incentive (the share of the miners' half), as the chain computes it.
        intended: the stake-weighted mean of the weight the validators meant to give it.
    """

    share: Any
    wei: Any
    incentive: Any
    intended: Any


@dataclass
class TrustPrediction:
    """What :func:`predict_validator_trust` returns; floats, or ``(K,)`` tensors for K candidate rows.

    Attributes:
        validator_trust: the sum of the row's weights after consensus clipping (1.0: fully in consensus).
        dividends: the validator's dividends share.
        validator_emission: the wei the validator would be paid this epoch.
    """

    validator_trust: Any
    dividends: Any
    validator_emission: Any


def _state_of(metagraph: Any) -> SubnetState:
    if isinstance(metagraph, SubnetState):
        return metagraph
    from ..io.snapshot import Snapshot

    if isinstance(metagraph, Snapshot):
        return metagraph.state
    from ..io.readers import read_snapshot

    return read_snapshot(metagraph).state


def _batch(state: SubnetState, weights: Tensor, last_update: Tensor) -> SubnetState:
    """``state`` repeated along a leading ``K`` with ``(K, n, n)`` weights and ``(K, n)`` updates."""
    k = weights.shape[0]
    full = _canonical(state)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(SubnetState):
        value = getattr(full, f.name)
        fields[f.name] = None if value is None else torch.as_tensor(value).expand(k, *torch.as_tensor(value).shape)
    return SubnetState(**{**fields, "weights": weights, "last_update": last_update})


def _u16_rows(rows: Tensor) -> Tensor:
    """Float rows as stored u16 values (max-upscaled); integer rows are taken as u16 already."""
    if rows.is_floating_point():
        return max_upscale_float_to_u16(rows.to(torch.float64), None, drop_rounded_zeros=True)[0]
    return rows.to(torch.int64)


def _unbatch(value: Tensor, batched: bool, kind: type) -> Any:
    return value if batched else kind(value.reshape(()))


def burn_share(
    weights: Any,
    metagraph: Any,
    burn_uid: int,
    *,
    params: YumaParams = YumaParams(),
    max_weight_limit: float = 1.0,
    emission: int = 1_000_000_000,
) -> BurnShare:
    """The fraction of an epoch's emission that really reaches ``burn_uid`` (exact epoch).

    Args:
        weights: ``(V, n)`` or ``(K, V, n)`` non-negative float weights the validators (uids
            ``0..V-1``) intend to set, K alternative weight sets; ints are taken as stored u16.
        metagraph: the subnet: a ``SubnetState``, an ``mt.io.Snapshot`` or a snapshot path
            (stake, permits, registrations, bonds; its weights are replaced).
        burn_uid: the uid that burns (usually the subnet owner's).
        params: the subnet's hyperparameters.
        max_weight_limit: the subnet's max weight limit as a fraction; float rows go through
            ``normalize_max_weight`` with it first (as the SDK's ``process_weights`` does).
        emission: wei per epoch.

    Example:
        >>> state = SubnetState(weights=[[0] * 3] * 3, stake=[100, 0, 0], owner_uid=1)
        >>> out = burn_share(torch.tensor([[0.0, 0.5, 0.5]]), state, burn_uid=1)
        >>> round(out.share, 4), round(out.intended, 4)
        (0.25, 0.5)
    """
    state = _state_of(metagraph)
    rows = torch.as_tensor(weights)
    n = int(torch.as_tensor(state.stake).shape[-1])
    batched = rows.ndim == 3
    rows = rows if batched else rows.unsqueeze(0)
    if rows.ndim != 3 or rows.shape[-1] != n or rows.shape[-2] > n:
        raise ShapeError(f"Expected `weights` of shape (V, {n}) or (K, V, {n}) with V <= {n}, but got {tuple(torch.as_tensor(weights).shape)}.")
    if not 0 <= burn_uid < n:
        raise ValueRangeError(f"Expected `burn_uid` in [0, {n}), but got {burn_uid}.")
    if rows.is_floating_point():
        limited = torch.as_tensor(normalize_max_weight(rows.to(torch.float64), max_weight_limit)) if max_weight_limit < 1 else rows
        intended_rows = limited / limited.sum(-1, keepdim=True).clamp(min=1e-300)
    else:
        intended_rows = rows.to(torch.float64) / rows.sum(-1, keepdim=True).clamp(min=1)
    k, v = rows.shape[0], rows.shape[1]
    stored = torch.zeros(k, n, n, dtype=torch.int64)
    stored[:, :v] = _u16_rows(limited if rows.is_floating_point() else rows)
    block = int(torch.as_tensor(_canonical(state).block).reshape(()))
    last_update = torch.as_tensor(_canonical(state).last_update).expand(k, n).clone()
    last_update[:, :v] = block
    result = epoch(_batch(state, stored, last_update), params, emission)
    paid = torch.as_tensor(result.server_emission)[:, burn_uid] + torch.as_tensor(result.validator_emission)[:, burn_uid]
    stake = torch.as_tensor(state.stake).to(torch.float64)[:v]
    intended = (stake * intended_rows[:, :, burn_uid]).sum(-1) / stake.sum().clamp(min=1e-300)
    return BurnShare(
        share=_unbatch(paid.to(torch.float64) / emission if emission else paid.to(torch.float64) * 0, batched, float),
        wei=_unbatch(paid, batched, int),
        incentive=_unbatch(torch.as_tensor(result.incentive_float)[:, burn_uid], batched, float),
        intended=_unbatch(intended, batched, float),
    )


def predict_validator_trust(
    weights_row: Any,
    state: Any,
    *,
    uid: int,
    params: YumaParams = YumaParams(),
    emission: int = 1_000_000_000,
    exact: bool = True,
) -> TrustPrediction:
    """The validator trust and dividends ``uid`` would get this epoch if it set ``weights_row``.

    Args:
        weights_row: ``(n,)`` or ``(K, n)`` candidate rows: floats (max-upscaled to u16 as
            ``set_weights`` stores them) or u16 ints.
        state: the subnet as it stands (``SubnetState``, ``mt.io.Snapshot`` or a snapshot path).
        uid: the validator.
        params, emission, exact: as in :func:`mdt_tensor.yuma.epoch`.

    Example:
        >>> W = [[0, 0, 65535, 0], [0, 0, 65535, 0], [0] * 4, [0] * 4]
        >>> state = SubnetState(weights=W, stake=[100, 300, 0, 0])
        >>> out = predict_validator_trust(torch.tensor([[0., 0., 1., 0.], [0., 0., 0., 1.]]), state, uid=0)
        >>> out.validator_trust.tolist()
        [1.0, 0.0]
    """
    state = _state_of(state)
    full = _canonical(state)
    rows = torch.as_tensor(weights_row)
    n = int(torch.as_tensor(full.stake).shape[-1])
    batched = rows.ndim == 2
    rows = rows if batched else rows.unsqueeze(0)
    if rows.ndim != 2 or rows.shape[-1] != n:
        raise ShapeError(f"Expected `weights_row` of shape ({n},) or (K, {n}), but got {tuple(torch.as_tensor(weights_row).shape)}.")
    if not 0 <= uid < n:
        raise ValueRangeError(f"Expected `uid` in [0, {n}), but got {uid}.")
    k = rows.shape[0]
    weights = torch.as_tensor(full.weights).expand(k, n, n).clone()
    weights[:, uid] = _u16_rows(rows)
    last_update = torch.as_tensor(full.last_update).expand(k, n).clone()
    last_update[:, uid] = int(torch.as_tensor(full.block).reshape(()))
    result = epoch(_batch(full, weights, last_update), params, emission, exact=exact)
    return TrustPrediction(
        validator_trust=_unbatch(torch.as_tensor(result.validator_trust_float)[:, uid], batched, float),
        dividends=_unbatch(torch.as_tensor(result.dividends_float)[:, uid], batched, float),
        validator_emission=_unbatch(torch.as_tensor(result.validator_emission)[:, uid], batched, int),
    )
