"""Bittensor-compatible weight helpers, batched over rows, plus the validator's one-call pipeline.

Each function gives, row by row, what the Bittensor SDK (``opentensor/bittensor
bittensor/utils/weight_utils.py``) or the chain gives for a 1-D input, but takes ``(*, N)`` rows,
runs on any device and returns the caller's array type. Where the reference drops data or has a
bug, its behaviour stays reachable under a flag and the default is the correct one. Why these are
hand-written, and the list of flags, is in ``docs/design/compat.md``.
"""

from __future__ import annotations

from .._constants import U16_MAX
from .max_weight import normalize_max_weight
from .process import ProcessedWeights, process_weights
from .scores import ValidatorWeights, scores_to_weights
from .u16 import EmitRows, convert_maybe_split_to_u16, convert_weights_and_uids_for_emit, u16_max_upscale
from .uids import UidRangeError, convert_bond_uids_and_vals_to_tensor, convert_weight_uids_and_vals_to_tensor

__all__ = [
    "U16_MAX",
    "UidRangeError",
    "EmitRows",
    "ProcessedWeights",
    "ValidatorWeights",
    "normalize_max_weight",
    "convert_weights_and_uids_for_emit",
    "u16_max_upscale",
    "process_weights",
    "convert_maybe_split_to_u16",
    "convert_weight_uids_and_vals_to_tensor",
    "convert_bond_uids_and_vals_to_tensor",
    "scores_to_weights",
]
