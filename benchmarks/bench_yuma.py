"""The Yuma epoch: exact against fast, and the multi-epoch runner against simulator-style loops.

Measured in the same run:

* one exact epoch (I32F32 on int64) on a ``(64, 256, 256)`` batch against the fast float64 epoch
  on the same batch (target: at most 4x its time);
* ``mt.yuma.run_epochs`` (fast path, all subnets batched) against a loop over epochs and subnets
  of a single-subnet float epoch written the way the open-source Python Yuma simulators write it
  (per-subnet torch tensors, a Python loop over columns for the stake-weighted median, the bonds
  EMA, dividends and the 50/50 split; target: at least 20x faster). The exact runner is reported
  beside it.

The inputs are the CLI's deterministic demo network (log-normal stakes, validators scoring miners,
rows max-upscaled to u16). Results are checked for agreement before timing: the baseline's
incentive must match ours (to the bisection's 1e-5 resolution), so the answers compared are equal.
"""

from __future__ import annotations

import torch

from benchmarks._harness import Comparison, Context, time_call
from mdt_tensor import yuma
from mdt_tensor.cli.demo import demo_network


def simulator_weighted_median(stake: torch.Tensor, weights: torch.Tensor, kappa: float,
                              precision: int = 100_000) -> torch.Tensor:
    """Per-column consensus by bisection on the weight value, one column at a time.

    This is how the open-source Python Yuma simulators compute it (e.g. bactensor/yuma-simulation
    ``_internal/yumas.py``: for each miner column, halve ``[c_low, c_high]`` until it is narrower
    than ``1 / consensus_precision``, testing whether the stake above the midpoint exceeds kappa).
    """
    consensus = torch.zeros(weights.shape[1], dtype=torch.float64)
    for j, column in enumerate(weights.T):
        low, high = 0.0, 1.0
        while high - low > 1 / precision:
            middle = (high + low) / 2.0
            if ((column > middle) * stake).sum() > kappa:
                low = middle
            else:
                high = middle
        consensus[j] = high
    return consensus


def simulator_epoch(
    weights: torch.Tensor, stake: torch.Tensor, bonds: torch.Tensor, active: torch.Tensor, permit: torch.Tensor,
    kappa: float = 32767 / 65535, bonds_alpha: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One subnet, one epoch, in float64: what a Python Yuma simulator computes.

    Returns ``(incentive, dividends, new_bonds)``; ``bonds`` are column-normalised floats.
    """
    n = weights.shape[0]
    s = stake / stake.sum()
    s_active = torch.where(active & permit, s, torch.zeros_like(s))
    s_active = s_active / s_active.sum()
    w = weights.to(torch.float64) * permit.unsqueeze(1)
    w = w * (1 - torch.eye(n, dtype=torch.float64))
    w[0, 0] = weights[0, 0]  # the owner (uid 0) keeps its self-weight
    w = w / w.sum(1, keepdim=True).clamp(min=1e-300)
    consensus = simulator_weighted_median(s_active, w, kappa)
    clipped = torch.minimum(w, consensus)
    ranks = s_active @ clipped
    incentive = ranks / ranks.sum()
    delta = clipped * s_active.unsqueeze(1)
    delta = delta / delta.sum(0).clamp(min=1e-300)
    new_bonds = bonds_alpha * delta + (1 - bonds_alpha) * bonds
    new_bonds = new_bonds / new_bonds.sum(0).clamp(min=1e-300)
    dividends = new_bonds @ incentive
    dividends = dividends / dividends.sum()
    return incentive, dividends, new_bonds


def simulator_run(state: yuma.SubnetState, updates: torch.Tensor) -> list[list[torch.Tensor]]:
    """Loop over epochs and subnets, carrying each subnet's bonds, as the simulators do."""
    epochs, subnets, n = updates.shape[0], updates.shape[1], updates.shape[-1]
    stake = torch.as_tensor(state.stake).to(torch.float64)
    active = torch.ones(subnets, n, dtype=torch.bool)
    permit = stake > 0
    bonds = [torch.zeros(n, n, dtype=torch.float64) for _ in range(subnets)]
    incentives: list[list[torch.Tensor]] = []
    for t in range(epochs):
        row = []
        for b in range(subnets):
            incentive, _, bonds[b] = simulator_epoch(updates[t, b], stake[b], bonds[b], active[b], permit[b])
            row.append(incentive)
        incentives.append(row)
    return incentives


def _runner_inputs(subnets: int, uids: int, epochs: int) -> tuple[yuma.SubnetState, torch.Tensor]:
    state = demo_network(subnets, uids, seed=1, validators=min(64, uids // 4))
    state.validator_permit = torch.as_tensor(state.stake) > 0  # everyone staked is a validator in both
    state.last_update = None  # all active, in both
    state.block_at_registration = None
    g = torch.Generator().manual_seed(2)
    weights = torch.as_tensor(state.weights).to(torch.float64)
    jitter = 1 + 0.05 * (2 * torch.rand((epochs, *weights.shape), generator=g, dtype=torch.float64) - 1)
    updates = torch.floor(weights * jitter).clamp(0, 65535).to(torch.int64)
    return state, updates


def run(ctx: Context) -> list[Comparison]:
    comparisons = []

    # ---- one exact epoch vs one fast epoch on the same batch
    subnets, uids = ctx.size((64, 256), (16, 256), (2, 16))
    state = demo_network(subnets, uids, seed=0)
    exact = yuma.epoch(state, validate=False)
    fast = yuma.epoch(state, exact=False, validate=False)
    gap = float((torch.as_tensor(exact.incentive_float) - torch.as_tensor(fast.incentive_float)).abs().max())
    assert gap < 1e-6, f"exact and fast epochs disagree by {gap}"
    exact_s = time_call(lambda: yuma.epoch(state, validate=False), repeat=ctx.repeat, device=ctx.device)
    fast_s = time_call(lambda: yuma.epoch(state, exact=False, validate=False), repeat=ctx.repeat, device=ctx.device)
    comparisons.append(Comparison(
        name=f"exact epoch ({subnets}, {uids}, {uids})",
        ours_s=exact_s,
        baseline="fast epoch (float64), same batch",
        baseline_s=fast_s,
        max_slowdown=4.0,
        extra={"exact/fast": f"{exact_s / fast_s:.2f}x", "per subnet (exact)": f"{exact_s / subnets * 1e3:.2f} ms"},
    ))

    # ---- the multi-epoch runner vs a simulator-style loop over epochs and subnets
    subnets, uids, epochs = ctx.size((16, 256, 5), (8, 128, 3), (2, 16, 2))
    state, updates = _runner_inputs(subnets, uids, epochs)
    params = yuma.YumaParams(max_allowed_validators=uids)  # every staked uid validates, as in the loop
    ours, _ = yuma.run_epochs(state, updates, params, exact=False, validate=False)
    reference = simulator_run(state, updates)
    ours_incentive = torch.as_tensor(ours.incentive_float)
    gap = max(float((ours_incentive[t, b] - reference[t][b]).abs().max()) for t in range(epochs) for b in range(subnets))
    assert gap < 1e-3, f"run_epochs and the simulator loop disagree by {gap}"  # bisection to 1e-5
    runner_s = time_call(lambda: yuma.run_epochs(state, updates, params, exact=False, validate=False),
                         repeat=ctx.repeat, device=ctx.device)
    runner_exact_s = time_call(lambda: yuma.run_epochs(state, updates, params, validate=False),
                               repeat=ctx.repeat, device=ctx.device)
    loop_s = time_call(lambda: simulator_run(state, updates), repeat=max(1, ctx.repeat // 3), device=ctx.device, warmup=0)
    comparisons.append(Comparison(
        name=f"run_epochs fast ({epochs} epochs x {subnets} subnets x {uids} uids)",
        ours_s=runner_s,
        baseline="simulator-style loop over epochs and subnets (float64)",
        baseline_s=loop_s,
        min_speedup=20.0,
        extra={
            "run_epochs exact": f"{runner_exact_s:.3f} s ({loop_s / runner_exact_s:.1f}x the loop)",
            "per subnet-epoch (fast)": f"{runner_s / (epochs * subnets) * 1e3:.2f} ms",
        },
    ))
    return comparisons
