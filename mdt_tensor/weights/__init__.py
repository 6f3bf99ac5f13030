"""Weight operations on ``(*, V, N)`` stacks: normalize, validate, clip, decay, smooth, top-k, entropy, sparse.

Every function takes weights of shape ``(*, N)`` (usually ``(*, V, N)``: V validators, N
neurons) and works along ``dim`` (default ``-1``, the neuron axis), independently for every row
and every leading batch index. numpy, torch and CuPy arrays come in; the same kind comes back on
the same device. float32/float64 keep their precision, float16/bfloat16 compute in float32 and
come back in their own dtype, integer weights are promoted to float32. ``validate=True`` (the
default) runs the value checks (NaN, inf, sign), which read the data and so synchronise a GPU;
with ``validate=False`` the results for inputs that would fail them are unspecified. How the
hand-written parts work and why: ``docs/design/weights.md``.
"""

from __future__ import annotations

from .clip import apply_weight_decay, clip_weights
from .entropy import compute_weight_entropy
from .normalize import normalize_weights
from .select import top_k_weights
from .smooth import smooth_weights
from .sparse import dense_to_sparse_weights, sparse_to_dense_weights
from .validate import WeightReport, check_weights, validate_weight_matrix

__all__ = [
    "WeightReport",
    "normalize_weights",
    "validate_weight_matrix",
    "check_weights",
    "clip_weights",
    "apply_weight_decay",
    "smooth_weights",
    "top_k_weights",
    "compute_weight_entropy",
    "sparse_to_dense_weights",
    "dense_to_sparse_weights",
]
