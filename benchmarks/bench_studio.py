"""The what-if studio: a parameter grid swept as one batch against a loop of single runs.

Measured in the same run, on the CLI's deterministic demo subnet (64 uids) for 50 epochs:

* ``mt.studio.sweep`` over a 10 x 10 grid (kappa x bonds moving average) against looping
  ``mt.yuma.run_epochs`` over the 100 grid points, exact mode (target: at least 10x faster).
  The sweep runs the whole grid as one batch, kappa and the bonds moving average given per
  element (``studio.batch._run_grid``);
* one batched ``run_epochs`` of 100 subnets with shared parameters, against the same loop: what
  the per-element parameters cost on top of the batch.
The sweep's results are checked equal, bit for bit, to the loop's before timing.
"""

from __future__ import annotations

import time

import torch

from benchmarks._harness import Comparison, Context
from mdt_tensor import yuma
from mdt_tensor.cli.demo import demo_network
from mdt_tensor.studio import expand_grid, sweep


def _once(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """The fastest of ``repeat`` single calls (each call is seconds long: no inner loop)."""
    return min(_once(fn) for _ in range(repeat))


def run(ctx: Context) -> list[Comparison]:
    side, uids, epochs = ctx.size((10, 64, 50), (4, 64, 10), (2, 8, 2))
    state = demo_network(1, uids, seed=0)
    state = yuma.SubnetState(weights=torch.as_tensor(state.weights)[0], stake=torch.as_tensor(state.stake)[0])
    grid = {"kappa": [0.3 + 0.4 * i / max(1, side - 1) for i in range(side)],
            "bonds_moving_avg": [0.5 + 0.49 * i / max(1, side - 1) for i in range(side)]}
    points = expand_grid(grid)
    w = torch.as_tensor(state.weights)
    updates = w.expand(epochs, *w.shape)

    def loop() -> list[yuma.EpochResult]:
        return [yuma.run_epochs(state, updates, p.params)[0] for p in points]

    def swept() -> object:
        return sweep(state, grid, epochs=epochs)

    ours, reference = sweep(state, grid, epochs=epochs), loop()
    for got, want in zip(ours.results, reference):
        assert torch.equal(torch.as_tensor(got.emission), torch.as_tensor(want.emission)), "sweep != loop of run_epochs"

    batch = len(points)
    stacked = yuma.SubnetState(weights=w.expand(batch, *w.shape).clone(),
                               stake=torch.as_tensor(state.stake).expand(batch, uids).clone())
    batched_updates = w.expand(epochs, batch, *w.shape).clone()

    def one_batch() -> object:
        return yuma.run_epochs(stacked, batched_updates, yuma.YumaParams())

    repeat = 1 if ctx.mode == "full" else 2  # the full loop runs for minutes: one round, best of one
    loop_s = _best(loop, repeat)
    sweep_s = _best(swept, repeat)
    batch_s = _best(one_batch, repeat)
    label = f"{side} x {side} grid, {uids} uids, {epochs} epochs, exact"
    return [
        Comparison(
            name=f"studio.sweep ({label})",
            ours_s=sweep_s,
            baseline=f"loop of run_epochs over the {batch} grid points",
            baseline_s=loop_s,
            min_speedup=10.0,
            extra={"grid points": str(batch), "batches run": "1"},
        ),
        Comparison(
            name=f"one batched run_epochs of {batch} subnets ({label})",
            ours_s=batch_s,
            baseline=f"loop of run_epochs over the {batch} grid points",
            baseline_s=loop_s,
            extra={"what": "the same batch with shared parameters"},
        ),
    ]
