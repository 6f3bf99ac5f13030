"""Stake-weighted median and stack median against the usual recipes.

Baselines, measured in the same run:

* the usual torch recipe for Yuma consensus: transpose, ``torch.sort`` with indices along the
  validator axis, gather the stakes in sorted order, cumulative sum, first index past the
  threshold;
* a per-column numpy loop (``argsort``, ``cumsum``, ``searchsorted`` per column), as simple
  simulators write it;
* ``np.median(axis=0)`` for ``compute_weight_consensus(method="median")``;
* for float64 epoch-shaped batches ``(b, 256, 256)`` with some rows unstaked, the one-sort
  recipe the Yuma epoch used before it called ``weighted_median`` (a -1 sentinel for unstaked
  rows, one descending ``torch.sort`` with indices, gather, cumsum, first index reaching kappa).

Each result is checked against the baseline's before it is timed. Full mode: ``(256, 4096)`` and
``(32, 256, 4096)`` float32 weights for the median, ``(16, 256, 4096)`` float32 for the stack.

The stack median also runs over a grid of shapes, one thread each (the per-core ratio, robust to
a shared machine): stacks of 4, 16, 64 and 256 matrices of 256, 4096 and 65,536 rows, with 1024
columns where the stack stays within 2**26 float32 values (256 MB) and fewer beyond (down to 4
columns for 256 matrices of 65,536 rows: ``np.median`` along the stack axis depends on the count
and the number of medians, not on how they are laid out in rows and columns).
"""

from __future__ import annotations

import numpy as np
import torch

import mdt_tensor as mt
from benchmarks._harness import Comparison, Context, cpu_isa, time_call
from mdt_tensor._cpu.stack_median import stack_median_kernel


def torch_recipe(weights: torch.Tensor, stakes: torch.Tensor, kappa: float) -> torch.Tensor:
    """Sort each column with its indices, gather the stakes, cumsum, first index past the threshold."""
    share = stakes / stakes.sum(-1, keepdim=True)
    sorted_weights, order = torch.sort(weights.transpose(-1, -2), dim=-1)
    sorted_share = torch.gather(share.unsqueeze(-2).expand_as(sorted_weights), -1, order)
    cumulative = sorted_share.cumsum(-1)
    minority = (share.sum(-1) - kappa).view(share.shape[:-1] + (1, 1))
    position = (cumulative <= minority).sum(-1, keepdim=True).clamp(max=weights.shape[-2] - 1)
    return sorted_weights.gather(-1, position).squeeze(-1)


def sentinel_recipe(weights: torch.Tensor, stakes: torch.Tensor, kappa: float) -> torch.Tensor:
    """Yuma's former float consensus: unstaked rows set to -1, one descending sort per column."""
    candidates = stakes > 0
    share = torch.where(candidates, stakes, torch.zeros_like(stakes))
    share = share / share.sum(-1, keepdim=True)
    columns = torch.where(candidates.unsqueeze(-1), weights, -1.0).transpose(-1, -2).contiguous()
    values, order = torch.sort(columns, dim=-1, descending=True)
    cumulative = torch.gather(share.unsqueeze(-2).expand_as(order), -1, order).cumsum(-1)
    first = (cumulative < kappa).sum(-1, keepdim=True)
    count = candidates.sum(-1).view(-1, 1, 1)
    index = torch.where(first < values.shape[-1], first, (count - 1).clamp(min=0))
    return torch.gather(values, -1, index).squeeze(-1)


def numpy_column_loop(weights: np.ndarray, stakes: np.ndarray, kappa: float) -> np.ndarray:
    """One column at a time: argsort, cumulative stake, searchsorted."""
    share = stakes / stakes.sum()
    minority = share.sum() - kappa
    out = np.empty(weights.shape[1], dtype=weights.dtype)
    for j in range(weights.shape[1]):
        column = weights[:, j]
        order = np.argsort(column)
        position = np.searchsorted(np.cumsum(share[order]), minority, side="right")
        out[j] = column[order[min(position, len(column) - 1)]]
    return out


def _inputs(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    weights = torch.rand(shape, generator=generator)
    weights = weights / weights.sum(-1, keepdim=True)  # row-normalised, as the epoch feeds it
    stakes = torch.rand(shape[:-1], generator=generator, dtype=torch.float64) * 1e6 + 1.0
    return weights, stakes


def run(ctx: Context) -> list[Comparison]:
    kappa = mt.DEFAULT_KAPPA
    rows, columns = ctx.size((256, 4096), (256, 2048), (16, 64))
    batch = ctx.size(32, 8, 2)
    stack_count = ctx.size(16, 16, 4)
    comparisons: list[Comparison] = []

    def timed(fn, repeat: int | None = None) -> float:
        return time_call(fn, repeat=repeat or ctx.repeat, device=ctx.device)

    # ---- one matrix
    weights, stakes = _inputs((rows, columns), 0)
    weights, stakes = weights.to(ctx.device), stakes.to(ctx.device)
    ours = mt.weighted_median(weights, stakes, kappa)
    # stakes are random floats: the recipe's normalised sums and ours agree away from ties
    assert torch.equal(ours, torch_recipe(weights, stakes, kappa)), "weighted_median disagrees with the recipe"
    ours_s = timed(lambda: mt.weighted_median(weights, stakes, kappa))
    unchecked_s = timed(lambda: mt.weighted_median(weights, stakes, kappa, validate=False))
    label = f"({rows}, {columns}) float32"
    comparisons.append(Comparison(f"weighted_median {label}", ours_s, "torch recipe (sort + gather + cumsum)",
                                  timed(lambda: torch_recipe(weights, stakes, kappa)), min_speedup=5.0,
                                  extra={"validate=False (ms)": f"{unchecked_s * 1e3:.3f}"}))
    if ctx.device == "cpu":
        # the same pair with one thread each: the algorithmic ratio, robust to a shared machine
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            single_s = timed(lambda: mt.weighted_median(weights, stakes, kappa))
            single_recipe_s = timed(lambda: torch_recipe(weights, stakes, kappa))
        finally:
            torch.set_num_threads(threads)
        comparisons.append(Comparison(f"weighted_median {label}, 1 thread each", single_s,
                                      "torch recipe, 1 thread", single_recipe_s, min_speedup=5.0))
        w_np, s_np = weights.numpy(), stakes.numpy()
        assert np.array_equal(ours.numpy(), numpy_column_loop(w_np, s_np, kappa))
        comparisons.append(Comparison(f"weighted_median {label}", ours_s, "per-column numpy loop",
                                      timed(lambda: numpy_column_loop(w_np, s_np, kappa), repeat=min(ctx.repeat, 3))))

    # ---- a batch of matrices
    weights_b, stakes_b = _inputs((batch, rows, columns), 1)
    weights_b, stakes_b = weights_b.to(ctx.device), stakes_b.to(ctx.device)
    ours_b = mt.weighted_median(weights_b, stakes_b, kappa)
    assert torch.equal(ours_b, torch_recipe(weights_b, stakes_b, kappa))
    label_b = f"({batch}, {rows}, {columns}) float32"
    ours_b_s = timed(lambda: mt.weighted_median(weights_b, stakes_b, kappa), repeat=min(ctx.repeat, 3))
    comparisons.append(Comparison(f"weighted_median {label_b}", ours_b_s, "torch recipe (sort + gather + cumsum)",
                                  timed(lambda: torch_recipe(weights_b, stakes_b, kappa), repeat=min(ctx.repeat, 3)),
                                  min_speedup=5.0))
    if ctx.device == "cpu":
        w_b, s_b = weights_b.numpy(), stakes_b.numpy()

        def loop_over_batch() -> list[np.ndarray]:
            return [numpy_column_loop(w_b[i], s_b[i], kappa) for i in range(batch)]

        comparisons.append(Comparison(f"weighted_median {label_b}", ours_b_s, "per-column numpy loop",
                                      timed(loop_over_batch, repeat=1)))

    # ---- float64, shaped like the epoch's (row-normalised weights, a third of the rows unstaked)
    epoch_batch, epoch_n = ctx.size((64, 256), (16, 256), (2, 16))
    weights_e, stakes_e = _inputs((epoch_batch, epoch_n, epoch_n), 3)
    weights_e, stakes_e = weights_e.double().to(ctx.device), stakes_e.to(ctx.device)
    stakes_e[:, ::3] = 0
    assert torch.equal(mt.weighted_median(weights_e, stakes_e, kappa), sentinel_recipe(weights_e, stakes_e, kappa))
    comparisons.append(Comparison(
        f"weighted_median ({epoch_batch}, {epoch_n}, {epoch_n}) float64, validate=False",
        timed(lambda: mt.weighted_median(weights_e, stakes_e, kappa, validate=False)),
        "one-sort sentinel recipe (Yuma's former copy)",
        timed(lambda: sentinel_recipe(weights_e, stakes_e, kappa)), min_speedup=1.0,
    ))

    # ---- the exact (fixed-point) median, for reference
    bits = mt.fx_from_float(weights.double())
    stake_bits = mt.normalize_i64f64_to_i32f32(stakes.to(torch.int64))
    comparisons.append(Comparison(f"weighted_median_fixed ({rows}, {columns}) I32F32",
                                  timed(lambda: mt.weighted_median_fixed(bits, stake_bits)),
                                  "torch recipe on float32", comparisons[0].baseline_s))

    # ---- the stack median
    generator = torch.Generator().manual_seed(2)
    stack = torch.rand((stack_count, rows, columns), generator=generator).to(ctx.device)
    stack_np = stack.cpu().numpy()
    assert np.array_equal(mt.compute_weight_consensus(stack, "median").cpu().numpy(), np.median(stack_np, axis=0))
    comparisons.append(Comparison(f"compute_weight_consensus median ({stack_count}, {rows}, {columns}) float32",
                                  timed(lambda: mt.compute_weight_consensus(stack, "median")),
                                  "np.median(axis=0)", timed(lambda: np.median(stack_np, axis=0)), min_speedup=3.0))
    if ctx.device == "cpu":
        comparisons += median_grid(ctx)
    return comparisons


def median_grid_shapes(ctx: Context) -> list[tuple[int, int, int]]:
    """``(count, rows, columns)`` of the stack median's grid: columns capped so a stack stays small."""
    counts, row_counts, columns, elements = ctx.size(
        ((4, 16, 64, 256), (256, 4096, 65536), 1024, 1 << 26),
        ((4, 64, 256), (256, 4096), 256, 1 << 22),
        ((4, 100), (16,), 8, 1 << 12),
    )
    return [(k, r, max(1, min(columns, elements // (k * r)))) for k in counts for r in row_counts]


def median_grid(ctx: Context) -> list[Comparison]:
    """``compute_weight_consensus(method="median")`` against ``np.median(axis=0)`` over the grid, one thread each."""
    comparisons = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # (the kernels' thread pool follows torch's thread count)
    try:
        for count, rows, columns in median_grid_shapes(ctx):
            stack = torch.rand((count, rows, columns), generator=torch.Generator().manual_seed(count + rows))
            stack_np = stack.numpy()

            def ours() -> torch.Tensor:
                return mt.compute_weight_consensus(stack, "median")

            def baseline() -> np.ndarray:
                return np.median(stack_np, axis=0)

            assert np.array_equal(ours().numpy(), baseline()), (count, rows, columns)
            repeat = min(ctx.repeat, 3)
            comparisons.append(Comparison(
                f"median grid ({count}, {rows}, {columns}) float32, 1 thread", time_call(ours, repeat=repeat, warmup=0),
                "np.median(axis=0)", time_call(baseline, repeat=repeat, warmup=0), min_speedup=3.0,
                extra={"kernel": stack_median_kernel(count), "isa": cpu_isa()},
            ))
    finally:
        torch.set_num_threads(threads)
    return comparisons
