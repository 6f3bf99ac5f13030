"""The Yuma epoch of the reference chain, batched over subnets and epochs, exact or fast.

``epoch(state, params, emission)`` runs every step of subtensor's sparse ``epoch_mechanism``
(``pallets/subtensor/src/epoch/run_epoch.rs``) for a batch of subnets at once, in one of two
arithmetics: ``exact=True``, the chain's I32F32 fixed point on int64 raw bits (integer operations
only, so the bits are the chain's and the same on CPU and CUDA); ``exact=False``, float64 (or
float32), with money still apportioned to whole wei. Padded batches (``n_valid``) give each
subnet exactly what it gets alone. Modules: ``types`` (parameters, state, result), ``inputs``,
``arith`` (the two arithmetics), ``steps`` (the epoch's steps), ``runner`` (the public functions).
"""

from __future__ import annotations

from .runner import epoch, next_state, run_epochs
from .types import EpochResult, SubnetState, YumaParams

__all__ = ["YumaParams", "SubnetState", "EpochResult", "epoch", "next_state", "run_epochs"]
