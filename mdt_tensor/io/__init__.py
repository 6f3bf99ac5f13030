"""Snapshots in, results out: readers for what people have on disk, a replay over many blocks, exports.

``read_snapshot`` reads an ``.npz``, a Yuma simulator ``torch.save`` dict, the SDK's
``Metagraph.save()`` (numpy or torch mode, without the SDK, never running code from the file) or
JSON; ``read_series`` orders a folder of them by block and ``replay`` runs the epochs, carrying
bonds, and compares with the chain's stored outputs; ``write_table`` and ``plot_replay`` export.
"""

from __future__ import annotations

from .errors import MissingExtraError, SnapshotError
from .readers import read_json, read_metagraph_save, read_npz, read_simulator_pt, read_snapshot, save_npz
from .snapshot import Snapshot, bonds_to_u16, build_snapshot, stake_to_rao, unit_to_u16, weights_to_u16
from .unpickle import ForeignObject

__all__ = [
    "SnapshotError",
    "MissingExtraError",
    "Snapshot",
    "ForeignObject",
    "build_snapshot",
    "weights_to_u16",
    "bonds_to_u16",
    "stake_to_rao",
    "unit_to_u16",
    "read_npz",
    "read_simulator_pt",
    "read_metagraph_save",
    "read_json",
    "read_snapshot",
    "save_npz",
]
