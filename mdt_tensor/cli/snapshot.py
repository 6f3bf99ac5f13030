"""Snapshot files for ``mdt-tensor epoch --snapshot``: one real subnet from an ``.npz``.

The file holds ``S`` (n,) stake and ``W`` (n, n) weights (and optionally ``block``); float
weights are quantised to u16 as the chain stores them, so a metagraph exported from Python runs
through the same exact epoch as the demo network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .._constants import U16_MAX
from ..chain import yuma
from ..errors import ShapeError

__all__ = ["load_snapshot"]


def load_snapshot(path: Path) -> yuma.SubnetState:
    """A snapshot ``.npz`` with ``S`` (n,) stake and ``W`` (n, n) weights as one subnet.

    Float weight rows are quantised to u16 by max-upscaling (``round(w / max(w) * 65535)``, half
    away from zero), as the chain stores them; integer weights are used as they are. An optional
    ``block`` key sets the block.
    """
    with np.load(path) as data:
        missing = {"S", "W"} - set(data.files)
        if missing:
            raise ShapeError(f"Expected keys S and W in {path}, but {sorted(missing)} are missing (found {data.files}).")
        stake, weights = data["S"], data["W"]
        block = int(data["block"]) if "block" in data.files else None
    if weights.ndim != 2 or weights.shape[0] != weights.shape[1] or stake.shape != weights.shape[:1]:
        raise ShapeError(f"Expected S (n,) and W (n, n), but got S {stake.shape} and W {weights.shape}.")
    if np.issubdtype(weights.dtype, np.floating):
        w = weights.astype(np.float64)
        top = w.max(-1, keepdims=True)
        weights = np.where(top > 0, np.floor(w / np.where(top > 0, top, 1) * U16_MAX + 0.5), 0).astype(np.int64)
    return yuma.SubnetState(
        weights=torch.from_numpy(np.ascontiguousarray(weights).astype(np.int64)),
        stake=torch.from_numpy(stake.astype(np.float64 if np.issubdtype(stake.dtype, np.floating) else np.int64)),
        block=block,
    )
