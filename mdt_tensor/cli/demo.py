"""The built-in demo network of ``mdt-tensor epoch``: a deterministic synthetic batch of subnets.

It needs no data files and no network access, and is the same for a seed on every machine, so
the command, its tests and the Yuma benchmarks (``benchmarks/bench_yuma.py``) share one input.
"""

from __future__ import annotations

import torch

from .._constants import U16_MAX, WEI_PER_MDT
from ..chain import yuma
from ..errors import ShapeError

__all__ = ["demo_network"]


def demo_network(subnets: int, uids: int, seed: int, validators: int | None = None) -> yuma.SubnetState:
    """A deterministic synthetic batch of subnets (the same for a seed on every machine).

    Per subnet: ``validators`` uids (default ``uids // 4``, at most 64) hold stake drawn from a
    heavy-tailed (log-normal) distribution, the rest are miners with little or no stake. Each
    validator scores the miners by a shared latent quality plus its own noise, keeps its top half,
    and stores the row max-upscaled to u16, as ``set_weights`` does.

    Args:
        subnets: number of subnets in the batch.
        uids: uids per subnet (n).
        seed: the generator seed.
        validators: staked uids per subnet.

    Returns:
        A :class:`mdt_tensor.yuma.SubnetState` of shape ``(subnets, uids, uids)``.

    Example:
        >>> state = demo_network(2, 16, seed=0)
        >>> tuple(state.weights.shape), int(state.weights.max())
        ((2, 16, 16), 65535)
    """
    if subnets < 1 or uids < 2:
        raise ShapeError(f"Expected at least 1 subnet of at least 2 uids, but got {subnets} x {uids}.")
    g = torch.Generator().manual_seed(seed)
    v = validators if validators is not None else max(1, min(64, uids // 4))
    is_validator = torch.arange(uids) < v
    stake = torch.exp(torch.randn(subnets, uids, generator=g, dtype=torch.float64) * 1.5 + 9.0)
    stake = torch.where(is_validator, stake, stake * 1e-4 * (torch.rand(subnets, uids, generator=g) < 0.3))
    stake_rao = torch.floor(stake * WEI_PER_MDT).to(torch.int64)
    quality = torch.rand(subnets, 1, uids, generator=g, dtype=torch.float64)
    noise = torch.rand(subnets, uids, uids, generator=g, dtype=torch.float64) * 0.35
    score = (quality + noise) * (~is_validator).to(torch.float64)  # validators score miners only
    cutoff = score.quantile(0.5, dim=-1, keepdim=True)
    score = torch.where(score >= cutoff, score, torch.zeros_like(score)) * is_validator.view(1, -1, 1)
    top = score.amax(-1, keepdim=True)
    weights = torch.where(top > 0, torch.floor(score / torch.where(top > 0, top, 1) * U16_MAX + 0.5), 0)
    block = 1_000_000
    last_update = block - torch.randint(0, 400, (subnets, uids), generator=g)
    registration = torch.randint(0, block - 10_000, (subnets, uids), generator=g)
    return yuma.SubnetState(
        weights=weights.to(torch.int64),
        stake=stake_rao,
        last_update=last_update,
        block_at_registration=registration,
        block=block,
        owner_uid=torch.zeros(subnets, dtype=torch.int64),
    )
