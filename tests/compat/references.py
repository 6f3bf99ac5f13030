"""Slow 1-D transcriptions of the references that the compat tests compare against.

They follow the Bittensor SDK's ``weight_utils`` (``opentensor/bittensor
bittensor/utils/weight_utils.py``) and the chain's ``vec_u16_max_upscale_to_u16`` and
``check_vec_max_limited`` (``opentensor/subtensor pallets/subtensor/src/epoch/math.rs``), one row
at a time, in numpy, Python floats, Python ints or Fractions. They never call the code under test.
The SDK's ``normalize_max_weight`` is the benchmark's transcription.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from benchmarks.bench_compat import sdk_normalize_max_weight as ref_normalize_max_weight  # the SDK's algorithm

__all__ = [
    "U16_MAX",
    "ref_normalize_max_weight",
    "ref_water_fill",
    "ref_emit",
    "ref_u16_max_upscale",
    "ref_maybe_split",
    "ref_process_weights",
    "chain_max_weight_ok",
    "ref_scores_to_weights",
]

U16_MAX = 65535


# ------------------------------------------------------------------------------------------------
# slow references, one row at a time


def ref_water_fill(x: list[Fraction], limit: Fraction) -> list[Fraction]:
    """Exact water-filling in Fractions: find the common cap C with sum(min(x, C)) = C / limit."""
    nonzero = [v for v in x if v > 0]
    if not nonzero:
        return [Fraction(0)] * len(x)
    if len(nonzero) * limit <= 1:
        return [Fraction(1, len(nonzero)) if v > 0 else Fraction(0) for v in x]
    total = sum(x)
    if max(x) / total <= limit:
        return [v / total for v in x]
    ordered = sorted(x)
    n = len(x)
    for capped in range(1, n + 1):  # the `capped` largest entries sit at the cap
        rest = sum(ordered[: n - capped])
        cap = limit * rest / (1 - capped * limit)
        if ordered[n - capped - 1] <= cap if capped < n else True:
            scale = (1 - capped * limit) / rest
            return [min(v * scale, limit) for v in x]
    raise AssertionError("unreachable")


def ref_emit(uids: list[int], weights: list[float], drop_rounded_zeros: bool) -> tuple[list[int], list[int]]:
    """The SDK's emit conversion; ``drop_rounded_zeros=False`` is our default (tiny -> 1)."""
    if sum(weights) == 0:
        return [], []
    max_weight = float(max(weights))
    out_uids, out_vals = [], []
    for w, u in zip(weights, uids):
        value = round(float(w) / max_weight * U16_MAX)
        if value == 0 and not drop_rounded_zeros and w > 0:
            value = 1
        if value != 0:
            out_uids.append(u)
            out_vals.append(value)
    return out_uids, out_vals


def ref_u16_max_upscale(values: list[int]) -> list[int]:
    """The chain's vec_u16_max_upscale_to_u16 with I32F32 as Python ints (bits = value * 2**32)."""
    one = 1 << 32
    bits = [v * one for v in values]
    u16_max = U16_MAX * one
    top = max(bits)

    def mul(a: int, b: int) -> int:
        return (a * b) >> 32

    def div(a: int, b: int) -> int:
        return (a << 32) // b  # both non-negative: truncation == floor

    def round_to_u16(x: int) -> int:
        return min(U16_MAX, (x + (one >> 1)) >> 32)  # ties away from zero, saturate

    if top == 0:
        return [mul(b, u16_max) >> 32 for b in bits]
    if top > 32768 * one:
        ratio = div(u16_max, top)
        return [round_to_u16(mul(b, ratio)) for b in bits]
    return [round_to_u16(div(mul(b, u16_max), top)) for b in bits]


def ref_maybe_split(split: list[float]) -> list[int]:
    values = [float(x) for x in split]
    total = sum(values)
    u16 = [round(v / total * U16_MAX) for v in values]
    diff = sum(u16) - U16_MAX
    if diff:
        u16[u16.index(max(u16))] -= diff
    return u16


def ref_process_weights(uids, weights, num_neurons, min_allowed, limit, exclude_quantile=0):
    """The SDK's numpy branch (index by position in step 4)."""
    weights = weights.astype(np.float32)
    quantile = exclude_quantile / U16_MAX
    nz_idx = np.argwhere(weights > 0).squeeze(axis=1)
    nz_uids, nz_weights = uids[nz_idx], weights[nz_idx]
    if nz_weights.size == 0 or num_neurons < min_allowed:
        return np.arange(num_neurons), np.ones(num_neurons, dtype=np.int64) / num_neurons
    if nz_weights.size < min_allowed:
        w = np.ones(num_neurons, dtype=np.int64) * 1e-5
        w[nz_idx] += nz_weights
        out = ref_normalize_max_weight(w, limit)
        return np.arange(len(out)), out
    max_exclude = max(0, len(nz_weights) - min_allowed) / len(nz_weights)
    q = min([quantile, max_exclude])
    lowest = np.quantile(nz_weights, q)
    keep = lowest <= nz_weights
    return nz_uids[keep], ref_normalize_max_weight(nz_weights[keep], limit)


def chain_max_weight_ok(values: list[int], limit_u16: int) -> bool:
    """The chain's check_vec_max_limited in I32F32 (Python ints)."""
    if limit_u16 == U16_MAX:
        return True
    total = sum(values)
    if total == 0:
        return True
    limit_bits = (limit_u16 << 32) // U16_MAX
    return max((v << 32) // total for v in values) <= limit_bits


def ref_scores_to_weights(scores: list[float], k: int | None, limit: float, min_allowed: int) -> dict[int, int]:
    """The documented pipeline for one row, in Fractions: {uid: u16 value}."""
    n = len(scores)
    size = n if k is None else min(k, n)
    required = min(min_allowed, n)
    order = sorted(range(n), key=lambda i: (-scores[i], i))[:size]
    positive = [i for i in order if scores[i] > 0]
    if not positive:
        return {}
    submit = order[: max(len(positive), required)]
    chosen = [Fraction(scores[i]) for i in submit]
    if limit < 1:
        cap = 1 / (1 / Fraction(limit) + Fraction(len(submit) + 2, 2 * U16_MAX))
        weights = ref_water_fill(chosen, cap)
    else:
        weights = [c / sum(chosen) for c in chosen]
    top = max(weights)
    values = {}
    for uid, w in zip(submit, weights):
        values[uid] = max(1, round(w / top * U16_MAX))
    return values
