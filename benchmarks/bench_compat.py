"""Bittensor-compatible helpers against the Bittensor SDK's own code paths (``weight_utils.py``).

The baselines re-create what a validator does with the SDK today (``bittensor/utils/weight_utils.py``):
one Python call per row, each ``normalize_max_weight`` with its interpreted ``t_i`` list
comprehension, ``process_weights`` per row, then ``convert_weights_and_uids_for_emit`` with its
per-entry Python rounding. Ours runs every row at once. Rows are float32 scores, 256 rows of
4096 uids in full mode (a validator with many subnets, or a batch of models).
"""

from __future__ import annotations

import numpy as np
import torch

import mdt_tensor as mt
from benchmarks._harness import Comparison, Context, time_call

U16_MAX = 65535


def sdk_normalize_max_weight(x: np.ndarray, limit: float) -> np.ndarray:
    """The SDK's numpy ``normalize_max_weight`` (1-D)."""
    epsilon = 1e-7
    weights = x.copy()
    values = np.sort(weights)
    if x.sum() == 0 or x.shape[0] * limit <= 1:
        return np.ones_like(x) / x.shape[0]
    estimation = values / values.sum()
    if estimation.max() <= limit:
        return weights / weights.sum()
    cumsum = np.cumsum(estimation, 0)
    estimation_sum = np.array([(len(values) - i - 1) * estimation[i] for i in range(len(values))])
    n_values = (estimation / (estimation_sum + cumsum + epsilon) < limit).sum()
    cutoff_scale = (limit * cumsum[n_values - 1] - epsilon) / (1 - (limit * (len(estimation) - n_values)))
    weights[weights > cutoff_scale * values.sum()] = cutoff_scale * values.sum()
    return weights / weights.sum()


def sdk_emit(uids: np.ndarray, weights: np.ndarray) -> tuple[list[int], list[int]]:
    """The SDK's ``convert_weights_and_uids_for_emit`` (1-D)."""
    weights_list, uids_list = weights.tolist(), uids.tolist()
    if sum(weights_list) == 0:
        return [], []
    max_weight = float(max(weights_list))
    out_uids, out_vals = [], []
    for w, u in zip(weights_list, uids_list):
        value = round(float(w) / max_weight * U16_MAX)
        if value != 0:
            out_uids.append(u)
            out_vals.append(value)
    return out_uids, out_vals


def sdk_validator_rows(scores: np.ndarray, limit: float) -> list[tuple[list[int], list[int]]]:
    """Per row: keep the nonzero scores, cap them, quantise them (the SDK's process + emit path)."""
    out = []
    uids = np.arange(scores.shape[-1])
    for row in scores:
        nonzero = row > 0
        capped = sdk_normalize_max_weight(row[nonzero], limit)
        out.append(sdk_emit(uids[nonzero], capped))
    return out


def run(ctx: Context) -> list[Comparison]:
    rows, n = ctx.size((256, 4096), (64, 1024), (4, 64))
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(rows, n, generator=gen) ** 4
    scores[:, :: max(1, n // 20)] *= 50  # a few dominant uids: the caps bind, the SDK's capping path runs
    scores_np = scores.numpy()
    limit = 0.01 if n >= 1024 else 0.1
    repeat = ctx.repeat
    results = []

    ours = time_call(lambda: mt.normalize_max_weight(scores, limit), repeat=repeat)
    sdk = time_call(lambda: [sdk_normalize_max_weight(r, limit) for r in scores_np], repeat=repeat, warmup=0)
    results.append(
        Comparison(f"normalize_max_weight ({rows}, {n}) f32", ours, "SDK, loop of rows", sdk, min_speedup=2.0)
    )

    ours = time_call(lambda: mt.normalize_max_weight(scores, limit, strict=True), repeat=repeat)
    results.append(
        Comparison(f"normalize_max_weight strict ({rows}, {n}) f32", ours, "SDK, loop of rows", sdk, min_speedup=2.0)
    )

    capped = mt.normalize_max_weight(scores, limit)
    uids = torch.arange(n)
    capped_np = capped.numpy()
    ours = time_call(lambda: mt.convert_weights_and_uids_for_emit(uids, capped), repeat=repeat)
    sdk = time_call(lambda: [sdk_emit(uids.numpy(), r) for r in capped_np], repeat=repeat, warmup=0)
    results.append(
        Comparison(f"convert_weights_and_uids_for_emit ({rows}, {n})", ours, "SDK, loop of rows", sdk, min_speedup=2.0)
    )

    ours = time_call(lambda: mt.scores_to_weights(scores, max_weight_limit=limit), repeat=repeat)
    sdk = time_call(lambda: sdk_validator_rows(scores_np, limit), repeat=repeat, warmup=0)
    results.append(
        Comparison(f"scores_to_weights ({rows}, {n}) f32", ours, "SDK cap + emit, loop of rows", sdk, min_speedup=2.0)
    )

    values = torch.randint(0, U16_MAX + 1, (rows, n), generator=gen)
    ours = time_call(lambda: mt.u16_max_upscale(values), repeat=repeat)
    loop = time_call(lambda: [mt.u16_max_upscale(r) for r in values], repeat=repeat)
    results.append(Comparison(f"u16_max_upscale ({rows}, {n})", ours, "ours, loop of rows", loop, min_speedup=2.0))
    return results
