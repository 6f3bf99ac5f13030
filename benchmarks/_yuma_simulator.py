"""The baseline of ``bench_yuma``: a Yuma epoch the way the open-source Python simulator runs it.

bactensor/yuma-simulation (``_internal/yumas.py``) calls one epoch function per subnet and
epoch, on float32 torch tensors, carrying the bonds by hand. By default its consensus is the
sort recipe (each miner's column sorted descending, the stakes gathered in that order, summed,
and the first weight whose running stake passes kappa); the older per-column bisection runs only
when asked for, and is kept here as a labelled extra row. Written in our own words: the steps
and their order follow that project's description, the code is ours.
"""

from __future__ import annotations

import torch
from torch import Tensor

_EPS = 1e-6


def sort_consensus(weights: Tensor, stake: Tensor, kappa: float) -> Tensor:
    """Per miner, the largest weight that validators holding more than ``kappa`` of the stake reach.

    ``weights``: ``(v, m)``; ``stake``: ``(v,)`` summing to 1. Returns ``(m,)``.
    """
    ordered, order = torch.sort(weights.T, dim=1, descending=True)  # (m, v)
    running = torch.cumsum(stake[order], dim=1)
    first = (running > kappa).to(torch.int8).argmax(dim=1, keepdim=True)  # first index past kappa
    return ordered.gather(1, first).squeeze(1)


def bisection_consensus(weights: Tensor, stake: Tensor, kappa: float, precision: int = 100_000) -> Tensor:
    """The simulator's legacy consensus: per column, halve ``[0, 1]`` until narrower than ``1 / precision``."""
    consensus = torch.zeros(weights.shape[1], dtype=weights.dtype)
    for j, column in enumerate(weights.T):
        low, high = 0.0, 1.0
        while high - low > 1 / precision:
            middle = (low + high) / 2
            if ((column > middle) * stake).sum() > kappa:
                low = middle
            else:
                high = middle
        consensus[j] = high
    return consensus


def simulator_epoch(
    weights: Tensor, stake: Tensor, bonds: Tensor | None, *, yuma3: bool, kappa: float = 0.5,
    bond_penalty: float = 1.0, bond_alpha: float = 0.1, legacy_consensus: bool = False,
    quantise_consensus: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """One subnet, one epoch: ``(incentive, dividends, bonds)``, float32 ``(n,)``, ``(n,)``, ``(n, n)``.

    ``weights`` ``(n, n)`` float (raw u16 values or any scale), ``stake`` ``(n,)``, ``bonds``
    the previous epoch's or None. Original Yuma: the EMA of the stake-weighted, column-normalised
    bond weights. Yuma 3: bonds decay by ``1 - alpha`` and buy at most ``alpha * W`` of each
    miner, capped by the remaining capacity (1 per validator-miner pair); dividends weigh the
    column-normalised bonds by incentive and then by stake.
    ``quantise_consensus``: the simulator rescales the consensus to sum 1 and floors it to u16.
    """
    w = weights / (weights.sum(1, keepdim=True) + _EPS)
    s = stake / stake.sum()
    median = bisection_consensus if legacy_consensus else sort_consensus
    consensus = median(w, s, kappa)
    if quantise_consensus:
        consensus = (consensus / consensus.sum() * 65_535).int() / 65_535
    clipped = torch.minimum(w, consensus)
    ranks = (s.unsqueeze(1) * clipped).sum(0)
    incentive = (ranks / ranks.sum()).nan_to_num(0)
    bond_weights = (1 - bond_penalty) * w + bond_penalty * clipped
    if yuma3:
        old = torch.zeros_like(w) if bonds is None else bonds
        decayed = old * (1 - bond_alpha)
        room = torch.clamp(1.0 - decayed, min=0.0)
        new_bonds = torch.clamp(decayed + torch.minimum(bond_alpha * bond_weights, room), max=1.0)
        per_validator = (new_bonds / (new_bonds.sum(0, keepdim=True) + _EPS) * incentive).sum(1)
        dividends = s * per_validator
    else:
        weighed = s.unsqueeze(1) * bond_weights
        weighed = (weighed / weighed.sum(0)).nan_to_num(0)
        new_bonds = weighed if bonds is None else bond_alpha * weighed + (1 - bond_alpha) * bonds
        dividends = (new_bonds * incentive).sum(1)
    return incentive, dividends / (dividends.sum() + _EPS), new_bonds


def simulator_run(weights: Tensor, stake: Tensor, *, yuma3: bool, legacy_consensus: bool = False,
                  quantise_consensus: bool = True) -> list[list[Tensor]]:
    """Every subnet and epoch in turn, bonds carried per subnet: incentives ``[t][b]``.

    ``weights``: ``(T, b, n, n)`` float32; ``stake``: ``(b, n)`` float32.
    """
    epochs, subnets = weights.shape[0], weights.shape[1]
    bonds: list[Tensor | None] = [None] * subnets
    incentives = []
    for t in range(epochs):
        row = []
        for b in range(subnets):
            incentive, _, bonds[b] = simulator_epoch(weights[t, b], stake[b], bonds[b], yuma3=yuma3,
                                                     legacy_consensus=legacy_consensus,
                                                     quantise_consensus=quantise_consensus)
            row.append(incentive)
        incentives.append(row)
    return incentives
