"""The consensus-guarantee study: does an honest majority keep its share when a minority favours itself?

A subnet is split in two: a major group (validators holding ``major_stake`` of the stake, and as
large a share of the miners) and a minor group (the rest). Each group's validators put
``self_weight`` of their weight on their own group's miners and the rest on the other group's.
The study asks, over a grid of major stake and minor self-weight, what share of the emission
(and of the validators' dividends) the major group keeps. The chain's team maps this from a Rust
test printed and parsed by a script; here every grid point is one element of one batched run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..chain.yuma.runner import run_epochs
from ..chain.yuma.types import SubnetState, YumaParams
from ..errors import ValueRangeError

__all__ = ["RetentionMap", "retention_map"]

_SELF_WEIGHTS = tuple(step / 20 for step in range(21))


@dataclass
class RetentionMap:
    """What :func:`retention_map` returns (``S`` major stakes by ``W`` minor self-weights).

    Attributes:
        major_stake: ``(S,)`` the major group's stake share.
        minor_self_weight: ``(W,)`` the weight the minor validators put on their own miners.
        major_share: ``(S, W)`` the major group's (validators and miners) share of the emission
            paid over the run.
        major_dividends_share: ``(S, W)`` the major validators' share of the validators' emission.
        retained: ``(S, W)`` ``major_share / major_stake`` (>= 1: the major group keeps at least
            its stake share).
    """

    major_stake: Tensor
    minor_self_weight: Tensor
    major_share: Tensor
    major_dividends_share: Tensor
    retained: Tensor


def _split(count: int, share: Tensor) -> Tensor:
    """``(S,)`` how many of ``count`` belong to the major group: ``round(share * count)`` within [1, count - 1]."""
    return (share * count).round().clamp(1, count - 1).to(torch.int64)


def _weights(major_v: Tensor, major_m: Tensor, self_major: Tensor, self_minor: Tensor, validators: int,
             miners: int, noise: float, seed: int) -> Tensor:
    """``(S, W, n, n)`` u16 weights: each validator's self-weight on its group's miners, the rest on the other's."""
    s, w = major_v.shape[0], self_minor.shape[0]
    n = validators + miners
    v_idx, m_idx = torch.arange(validators), torch.arange(miners)
    v_major = (v_idx < major_v.view(s, 1)).view(s, 1, validators, 1)  # (S, 1, V, 1)
    m_major = (m_idx < major_m.view(s, 1)).view(s, 1, 1, miners)  # (S, 1, 1, M)
    own = v_major == m_major  # (S, 1, V, M): the miner is in the validator's group
    self_w = torch.where(v_major, self_major.view(s, 1, 1, 1), self_minor.view(1, w, 1, 1))
    count_major = major_m.view(s, 1, 1, 1).to(torch.float64)
    count_own = torch.where(v_major, count_major, miners - count_major)
    rows = torch.where(own, self_w / count_own, (1 - self_w) / (miners - count_own))  # (S, W, V, M)
    if noise > 0:
        g = torch.Generator().manual_seed(seed)
        rows = rows * (1 + noise * torch.randn(rows.shape, generator=g, dtype=torch.float64)).clamp(min=0)
    top = rows.amax(-1, keepdim=True)
    u16 = torch.round(rows / torch.where(top > 0, top, 1) * 65535).to(torch.int64)
    weights = torch.zeros(s, w, n, n, dtype=torch.int64)
    weights[..., :validators, validators:] = u16
    return weights


def retention_map(
    major_stakes: Sequence[float] = (0.51, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99),
    minor_self_weights: Sequence[float] = _SELF_WEIGHTS,
    *,
    major_self_weight: float | None = None,
    validators: int = 16,
    miners: int = 48,
    epochs: int = 4,
    params: YumaParams = YumaParams(),
    exact: bool = True,
    noise: float = 0.0,
    seed: int = 0,
) -> RetentionMap:
    """The major group's retained share over a grid of major stake and minor self-weight, as one batched run.

    Args:
        major_stakes: the major group's stake shares, in (0, 1).
        minor_self_weights: the minor validators' weights on their own miners, in [0, 1].
        major_self_weight: the major validators' weight on their own miners; default: the major
            group's share of the miners (they score every miner alike: honest when miners are equal).
        validators, miners: subnet size (uids ``0..V-1`` validate; groups are split by stake share).
        epochs: epochs run (bonds build up over them; the chain's study runs one).
        params, exact: as in :func:`mdt_tensor.yuma.epoch`.
        noise: relative Gaussian noise on each weight (0: every weight of a group is equal).
        seed: the noise's seed.

    Example:
        >>> m = retention_map([0.6], [0.0, 1.0], validators=4, miners=8, epochs=2)
        >>> m.retained.shape, bool(m.retained[0, 0] >= 1.0)
        (torch.Size([1, 2]), True)
    """
    stake_share = torch.tensor(list(major_stakes), dtype=torch.float64)
    self_minor = torch.tensor(list(minor_self_weights), dtype=torch.float64)
    if stake_share.numel() == 0 or self_minor.numel() == 0:
        raise ValueRangeError("Expected at least one major stake and one minor self-weight.")
    if not bool(((stake_share > 0) & (stake_share < 1)).all()) or not bool(((self_minor >= 0) & (self_minor <= 1)).all()):
        raise ValueRangeError("Expected major stakes in (0, 1) and self-weights in [0, 1].")
    if validators < 2 or miners < 2 or epochs < 1:
        raise ValueRangeError(f"Expected validators >= 2, miners >= 2 and epochs >= 1, but got {validators}, {miners}, {epochs}.")
    s, w, n = stake_share.numel(), self_minor.numel(), validators + miners
    major_v, major_m = _split(validators, stake_share), _split(miners, stake_share)
    self_major = major_m / miners if major_self_weight is None else torch.full((s,), float(major_self_weight))
    weights = _weights(major_v, major_m, self_major.to(torch.float64), self_minor, validators, miners, noise, seed)
    v_major = torch.arange(validators) < major_v.view(s, 1)  # (S, V)
    per_validator = torch.where(v_major, stake_share.view(s, 1) / major_v.view(s, 1),
                                (1 - stake_share.view(s, 1)) / (validators - major_v.view(s, 1)))
    stake = torch.zeros(s, w, n, dtype=torch.int64)
    stake[..., :validators] = (per_validator * 10**15).round().to(torch.int64).view(s, 1, validators)
    state = SubnetState(weights=weights, stake=stake, validator_permit=torch.arange(n).expand(s, w, n) < validators,
                        block=10_000)
    results, _ = run_epochs(state, weights.expand(epochs, *weights.shape), params, exact=exact, payout="exact")
    server = torch.as_tensor(results.server_emission).sum(0).to(torch.float64)  # (S, W, n)
    validator = torch.as_tensor(results.validator_emission).sum(0).to(torch.float64)
    is_major = torch.cat([v_major, torch.arange(miners) < major_m.view(s, 1)], dim=-1).view(s, 1, n)
    total = (server + validator).sum(-1)
    major_share = ((server + validator) * is_major).sum(-1) / total
    major_dividends = (validator * is_major).sum(-1) / validator.sum(-1).clamp(min=1)
    return RetentionMap(stake_share, self_minor, major_share, major_dividends, major_share / stake_share.view(s, 1))
