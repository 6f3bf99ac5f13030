"""Small deterministic epoch jobs for the distributed tests (the same on every rank and in the parent)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

import mdt_tensor as mt

BLOCK = 100_000


def make_state(jobs: int, n: int, seed: int) -> mt.yuma.SubnetState:
    """``jobs`` subnets of ``n`` uids: a third validators with log-normal stake, sparse u16 weights,
    stored bonds, some stale updates and fresh registrations, owner uid 0."""
    g = torch.Generator().manual_seed(seed)
    validators = max(2, n // 3)
    is_validator = torch.arange(n) < validators
    stake = torch.exp(torch.randn(jobs, n, generator=g, dtype=torch.float64) * 1.5 + 20).floor().to(torch.int64)
    stake = torch.where(is_validator, stake, stake // 10_000 * (torch.rand(jobs, n, generator=g) < 0.3))
    weights = torch.randint(0, 65536, (jobs, n, n), generator=g) * (torch.rand(jobs, n, n, generator=g) < 0.6)
    weights = weights * is_validator.view(1, n, 1)
    bonds = torch.randint(0, 65536, (jobs, n, n), generator=g) * (torch.rand(jobs, n, n, generator=g) < 0.5)
    last_update = BLOCK - torch.randint(0, 6000, (jobs, n), generator=g)
    registration = torch.where(torch.rand(jobs, n, generator=g) < 0.1, BLOCK - 100, 1000)
    return mt.yuma.SubnetState(
        weights=weights, stake=stake, last_update=last_update, block_at_registration=registration,
        bonds=bonds, block=BLOCK, owner_uid=torch.zeros(jobs, dtype=torch.int64),
    )


def make_updates(state: mt.yuma.SubnetState, epochs: int, seed: int) -> torch.Tensor:
    """``(epochs, jobs, n, n)`` u16 weights: the state's weights re-scored with +-10% noise."""
    g = torch.Generator().manual_seed(seed)
    w = torch.as_tensor(state.weights).to(torch.float64)
    noise = 1 + 0.2 * (torch.rand((epochs, *w.shape), generator=g, dtype=torch.float64) - 0.5)
    return torch.floor(w * noise).clamp(0, 65535).to(torch.int64)


def one_subnet(state: mt.yuma.SubnetState, job: int) -> mt.yuma.SubnetState:
    """Job ``job`` of a batch as a single subnet (ints for block and owner)."""
    def pick(x: Any) -> Any:
        return x[job] if isinstance(x, torch.Tensor) and x.ndim >= 1 else x

    single = mt.yuma.SubnetState(**{k: pick(v) for k, v in vars(state).items()})
    return dataclasses.replace(single, owner_uid=int(single.owner_uid))


def select(state: mt.yuma.SubnetState, jobs: range) -> mt.yuma.SubnetState:
    def pick(x: Any) -> Any:
        return x[jobs.start:jobs.stop] if isinstance(x, torch.Tensor) and x.ndim >= 1 else x

    return mt.yuma.SubnetState(**{k: pick(v) for k, v in vars(state).items()})
