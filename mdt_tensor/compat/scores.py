"""``scores_to_weights``: from per-uid scores to the ``set_weights`` call a validator submits.

The SDK's pipeline (``process_weights`` then the emit conversion) can produce rows that the chain
refuses after u16 rounding; this one smooths, picks the top ``k``, water-fills under a cap
tightened for the rounding, pads up to ``MinAllowedWeights`` and quantises, for many rows at once.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .._array import Array, ArrayOrigin, as_tensor, check_same_device, float_compute_dtype
from .._constants import U16_MAX
from .._scaling import scale_down_rows
from .._validation import check_finite_non_negative, check_float_or_int, check_int, check_ndim, check_number
from ..errors import ShapeError, ValueRangeError
from ..weights.select import top_k_weights
from ._rows import compact
from .max_weight import water_fill_rows
from .u16 import max_upscale_float_to_u16

__all__ = ["ValidatorWeights", "scores_to_weights"]


class ValidatorWeights(NamedTuple):
    """What :func:`scores_to_weights` returns: one ``set_weights`` call per row.

    Attributes:
        uids: ``(*, K)`` int64, ascending uids to submit, padded with -1.
        values: ``(*, K)`` int64 u16 values to submit (row maximum 65535), padded with 0.
        count: ``(*)`` int64, how many entries of each row are real (0: nothing to submit).
        ema: ``(*, N)`` the smoothed scores to pass as ``previous`` next time, or None when
            ``ema_alpha`` was not given.
    """

    uids: Array
    values: Array
    count: Array
    ema: Array | None


# ----------------------------------------------------------------------------------------------
# reading the inputs


def _read_scores(scores: Array) -> tuple[Tensor, ArrayOrigin]:
    """``scores`` as float64 ``(*, N)`` rows with ``N >= 1``."""
    s, origin = as_tensor(scores, "scores")
    check_float_or_int(s, "scores")
    check_ndim(s, "scores", 1, "(*, N)")
    if s.shape[-1] == 0:
        raise ShapeError("Expected at least one score per row, but got an empty last dimension.")
    return s.to(torch.float64), origin


def _read_sizes(k: int | None, min_allowed_weights: int, width: int) -> tuple[int, int]:
    """``(size, required)``: how many uids a row may submit and must submit (``min(k, N)``, ``min(min_allowed, N)``)."""
    min_allowed = check_int(min_allowed_weights, "min_allowed_weights", low=0)
    size = width if k is None else min(check_int(k, "k", low=1), width)
    required = min(min_allowed, width)
    if size < required:
        raise ValueRangeError(
            f"Expected `k` >= min(min_allowed_weights, N) = {required}, but got k={k}: the chain "
            "would refuse the submission."
        )
    return size, required


def _smooth(s: Tensor, ema_alpha: float | None, previous: Array | None, validate: bool) -> Tensor | None:
    """Step 1: ``ema_alpha * s + (1 - ema_alpha) * previous`` (``previous`` defaults to zeros), or None."""
    if ema_alpha is None:
        if previous is not None:
            raise ValueRangeError("`previous` was given without `ema_alpha`: pass the smoothing factor too.")
        return None
    alpha = check_number(ema_alpha, "ema_alpha", low=0, high=1, low_open=True)
    if previous is None:
        return alpha * s
    p, _ = as_tensor(previous, "previous")
    check_float_or_int(p, "previous")
    check_same_device(scores=s, previous=p)
    if p.shape != s.shape:
        raise ShapeError(f"Expected `previous` of shape {tuple(s.shape)}, but got {tuple(p.shape)}.")
    p = p.to(torch.float64)
    if validate:
        check_finite_non_negative(p, "previous")
    ema = alpha * s + (1 - alpha) * p
    # Near the float64 maximum the sum of the two terms overflows; p + alpha (s - p) cannot
    # (s, p >= 0) and lies between them.
    return torch.where(torch.isinf(ema) & torch.isfinite(s) & torch.isfinite(p), p + alpha * (s - p), ema)


# ----------------------------------------------------------------------------------------------
# the steps


def _top_k_mask(scores: Tensor, k: int) -> Tensor | None:
    """The ``k`` largest entries of each row (ties to the lower index: ``top_k_weights``' rule), or None when all are in.

    Scores are finite and ``>= 0`` here, so an entry is kept exactly where ``top_k_weights``
    leaves it above the ``-inf`` fill.
    """
    if k >= scores.shape[-1]:
        return None
    return top_k_weights(scores, k, other_value=-math.inf, validate=False) > -math.inf


def _chain_safe_limit(limit: float, entries: Tensor) -> Tensor:
    """A cap below ``limit`` that survives the u16 quantisation and the chain's check.

    After max-upscaling, each of the ``K`` entries is rounded by at most 1/2, so the row's
    normalised maximum is at most ``1 / (1/cap - K/131070)``; choosing
    ``1/cap = 1/limit + (K + 2)/131070`` keeps it below ``limit`` with room for the chain's
    I32F32 truncation (2**-32) and float64 rounding.
    """
    return 1 / (1 / limit + (entries.to(torch.float64) + 2) / (2 * U16_MAX))


def _select(s: Tensor, size: int, required: int) -> tuple[Tensor, Tensor, Tensor]:
    """Steps 2 and 4: ``(submit, n_submit, chosen)``, the entries to submit, their count per row,
    and the scores of the positive top-``size`` entries (0 elsewhere)."""
    selected = _top_k_mask(s, size)
    positive = s > 0 if selected is None else selected & (s > 0)
    n_positive = positive.sum(-1, keepdim=True)
    chosen = s if selected is None else s.masked_fill(~positive, 0)  # scores are >= 0
    if required == 0:
        return positive, n_positive, chosen
    # Zero scores tie; the lowest uids among them fill up to `required` (rows with no positive
    # score submit nothing).
    zero = ~positive if selected is None else selected & ~positive
    missing = torch.where(n_positive > 0, (required - n_positive).clamp(min=0), 0)
    submit = positive | (zero & (zero.cumsum(-1) <= missing))
    return submit, submit.sum(-1, keepdim=True), chosen


def _capped(chosen: Tensor, limit: float, n_submit: Tensor, size: int) -> Tensor:
    """Step 3: water-filling under the chain-safe cap, or plain normalisation when ``limit >= 1``."""
    if limit < 1:
        cap = _chain_safe_limit(limit, n_submit)
        return water_fill_rows(chosen, cap, _chain_safe_limit(limit, torch.tensor(size)).item())
    return chosen / chosen.sum(-1, keepdim=True).clamp(min=torch.finfo(chosen.dtype).tiny)


def scores_to_weights(
    scores: Array,
    *,
    k: int | None = None,
    max_weight_limit: float = 1.0,
    min_allowed_weights: int = 0,
    ema_alpha: float | None = None,
    previous: Array | None = None,
    validate: bool = True,
) -> ValidatorWeights:
    """From per-uid scores to the ``set_weights`` call a validator submits, for many rows at once.

    Per row ``(*, N)`` (uid = position):

    1. optional smoothing: ``ema = ema_alpha * scores + (1 - ema_alpha) * previous`` (``previous``
       defaults to zeros, the usual validator's fresh state; the scale does not change the
       weights, only the next step's mix);
    2. top-``k`` uids by score (ties: lower uid first), keeping those with a positive score;
    3. exact water-filling (:func:`normalize_max_weight` with ``strict=True``) under
       ``max_weight_limit``, tightened by ``(K+2)/131070`` in ``1/limit`` so that the chain's
       ``max_weight_limited`` check still passes after u16 rounding (not applied when the limit
       is 1, which the chain does not check);
    4. when fewer than ``min(min_allowed_weights, N)`` uids have a positive score, the next uids
       in score order (lowest uid first) are added with the smallest value, 1, so the chain's
       length check passes (the reference adds ``1e-5`` to every uid for the same reason);
    5. u16 quantisation by max-upscaling (``round(w / max * 65535)``, ties to even; positive
       weights keep at least 1), which the chain's own max-upscale leaves unchanged.

    A row whose scores are all zero submits nothing (``count == 0``). A row with fewer than
    ``1/max_weight_limit`` positive scores cannot meet the cap; it gets equal values on its
    positive entries, which the chain's check refuses (as it refuses the reference's result).

    Args:
        scores: ``(*, N)`` non-negative, finite scores.
        k: how many uids to weight at most (default: all N).
        max_weight_limit: the subnet's max weight as a fraction (``MaxWeightsLimit / 65535``).
        min_allowed_weights: the subnet's ``MinAllowedWeights``; must not exceed ``k``.
        ema_alpha: smoothing factor in (0, 1], or None for no smoothing.
        previous: ``(*, N)`` the ``ema`` of the last call (requires ``ema_alpha``).
        validate: check values (NaN, inf, negative scores) and raise on the first bad one.

    Returns:
        :class:`ValidatorWeights` in the caller's array type: ``uids``, ``values`` ``(*, K)``
        with ``K = min(k, N)``, ``count`` ``(*)``, and ``ema``.

    Example:
        >>> out = scores_to_weights(torch.tensor([[0.1, 0.7, 0.0, 0.2], [0.0, 0.0, 0.0, 0.0]]), k=3)
        >>> out.uids, out.values, out.count
        (tensor([[ 0,  1,  3],
                [-1, -1, -1]]), tensor([[ 9362, 65535, 18724],
                [    0,     0,     0]]), tensor([3, 0]))
    """
    s, origin = _read_scores(scores)
    width = s.shape[-1]
    limit = check_number(max_weight_limit, "max_weight_limit", low=0, low_open=True)
    size, required = _read_sizes(k, min_allowed_weights, width)
    if validate:
        check_finite_non_negative(s, "scores")
    ema = _smooth(s, ema_alpha, previous, validate)
    if ema is not None:
        s = ema
    submit, n_submit, chosen = _select(s, size, required)
    chosen, _ = scale_down_rows(chosen)  # exact; the weights are shares of the row: no overflowing sum
    weights = _capped(chosen, limit, n_submit, size)
    values, _ = max_upscale_float_to_u16(weights, submit, drop_rounded_zeros=False)
    uids = torch.arange(width, device=s.device).expand_as(submit)
    uids_out, values_out = compact(submit, uids, values, fills=(-1, 0), width=size)
    result_ema = None
    if ema is not None:
        result_ema = origin.wrap(ema.to(float_compute_dtype(origin.dtype)))
    return ValidatorWeights(origin.wrap(uids_out), origin.wrap(values_out), origin.wrap(n_submit.squeeze(-1)), result_ema)
