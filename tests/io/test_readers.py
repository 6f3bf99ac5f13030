"""The readers on the three real files (tests/data/) and on the SDK's torch-mode save.

References are written here, independently: the u16 recovery and the token -> rao conversion
are recomputed per element with Python fractions.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import mdt_tensor as mt
from mdt_tensor.io import (
    SnapshotError,
    bonds_to_u16,
    read_json,
    read_metagraph_save,
    read_npz,
    read_simulator_pt,
    read_snapshot,
    save_npz,
    stake_to_rao,
    unit_to_u16,
    weights_to_u16,
)
from mdt_tensor.io.unpickle import load_pickle

from .conftest import NPZ, SDK_SAVE, SIMULATOR


def _u16_reference(row: list[float]) -> list[int]:
    top = max(Fraction(v) for v in row)
    if top == 0:
        return [0] * len(row)
    return [int(Fraction(v) / top * 65535 + Fraction(1, 2)) for v in row]


def _rao_reference(tokens: float) -> int:
    exact = Fraction(tokens) * 10**9
    return int(exact + Fraction(1, 2))  # non-negative: int() floors


def _raw_npz() -> dict[str, np.ndarray]:
    with np.load(NPZ) as data:
        return {k: data[k] for k in data.files}


def test_npz_reads_the_real_subnet() -> None:
    snap = read_npz(NPZ)
    raw = _raw_npz()
    assert (snap.netuid, snap.block, snap.n) == (15, 4769998, 256)
    assert snap.hotkeys is None and snap.chain_outputs == {}
    weights = snap.state.weights.tolist()
    for i in (0, 1, 2, 3, 100):  # a few rows, checked element by element against fractions
        assert weights[i] == _u16_reference(raw["W"][i].astype(np.float64).tolist())
    rows_with_weights = raw["W"].max(1) > 0
    assert (snap.state.weights.max(1).values[torch.from_numpy(rows_with_weights)] == 65535).all()
    assert snap.state.stake.tolist() == [_rao_reference(float(s)) for s in raw["S"]]


def test_simulator_file_equals_the_npz_plus_hotkeys() -> None:
    sim, npz = read_simulator_pt(SIMULATOR), read_npz(NPZ)
    assert torch.equal(sim.state.weights, npz.state.weights)
    assert torch.equal(sim.state.stake, npz.state.stake)
    assert (sim.netuid, sim.block) == (15, 4769998)
    assert sim.hotkeys is not None and len(sim.hotkeys) == 256 and sim.hotkeys[0].startswith("5F")


def test_sdk_save_is_read_without_the_sdk_and_its_fields_converted() -> None:
    had_sdk = "bittensor" in sys.modules
    snap = read_metagraph_save(SDK_SAVE)
    assert had_sdk or "bittensor" not in sys.modules  # nothing imported the SDK
    if importlib.util.find_spec("bittensor") is None:
        assert "bittensor" not in sys.modules
    npz = read_npz(NPZ)
    assert torch.equal(snap.state.weights, npz.state.weights)
    assert snap.hotkeys == [f"hk{uid}" for uid in range(256)]  # from the inert AxonInfo records
    assert (snap.netuid, snap.block) == (15, 4769998)
    permit = snap.state.validator_permit
    assert permit is not None and int(permit.sum()) == 64
    raw_s = _raw_npz()["S"]
    stored = (raw_s.astype(np.float64) * 1e-9).astype(np.float32)  # what the file holds, in tokens
    assert snap.state.stake.tolist() == [_rao_reference(float(s)) for s in stored]
    assert snap.state.last_update is not None and set(snap.state.last_update.tolist()) == {4769990}
    assert snap.state.bonds is not None and int(snap.state.bonds.abs().sum()) == 0
    assert snap.chain_outputs == {}  # the file's outputs are all zeros: not recorded
    lost = int(((stored > 0) & (snap.state.stake.numpy() == 0)).sum())
    assert lost > 0 and any(f"{lost} non-zero stake" in note for note in snap.notes)


def test_read_snapshot_dispatches_by_content(tmp_path: Path) -> None:
    for source, reader in ((NPZ, read_npz), (SIMULATOR, read_simulator_pt), (SDK_SAVE, read_metagraph_save)):
        renamed = tmp_path / f"{source.stem}.data"  # the extension says nothing
        renamed.write_bytes(source.read_bytes())
        auto, direct = read_snapshot(renamed), reader(source)
        assert torch.equal(auto.state.weights, direct.state.weights) and auto.hotkeys == direct.hotkeys


def _fake_sdk_modules() -> dict[str, types.ModuleType]:
    """Stand-ins for the SDK's modules, only so that torch.save can name its classes."""
    modules = {}
    for name in ("bittensor", "bittensor.core", "bittensor.core.chain_data", "bittensor.core.chain_data.axon_info"):
        modules[name] = types.ModuleType(name)

    class AxonInfo:
        def __init__(self, hotkey: str) -> None:
            self.hotkey, self.ip, self.port = hotkey, "0.0.0.0", 0

    AxonInfo.__module__ = "bittensor.core.chain_data.axon_info"
    AxonInfo.__qualname__ = "AxonInfo"
    modules["bittensor.core.chain_data.axon_info"].AxonInfo = AxonInfo  # type: ignore[attr-defined]
    return modules


def test_sdk_torch_mode_save_reads_like_the_numpy_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = load_pickle(SDK_SAVE.read_bytes(), str(SDK_SAVE))
    fakes = _fake_sdk_modules()
    for name, module in fakes.items():
        monkeypatch.setitem(sys.modules, name, module)
    axon = fakes["bittensor.core.chain_data.axon_info"].AxonInfo  # type: ignore[attr-defined]
    torch_state = {
        key: torch.nn.Parameter(torch.from_numpy(np.array(value)), requires_grad=False)
        for key, value in state.items()
        if isinstance(value, np.ndarray)
    }
    torch_state.update(netuid=15, network="finney", axons=[axon(f"hk{u}") for u in range(256)], neurons=[])
    path = tmp_path / "block-4769998.pt"
    torch.save(torch_state, path)
    for name in fakes:
        monkeypatch.delitem(sys.modules, name)
    snap, numpy_mode = read_metagraph_save(path), read_metagraph_save(SDK_SAVE)
    assert torch.equal(snap.state.weights, numpy_mode.state.weights)
    assert torch.equal(snap.state.stake, numpy_mode.state.stake)
    assert snap.hotkeys == numpy_mode.hotkeys and snap.block == 4769998
    assert read_snapshot(path).hotkeys == snap.hotkeys


def test_json_schema_round_trip(tmp_path: Path) -> None:
    doc = {
        "format": "mdt-tensor.snapshot", "version": 1, "netuid": 3, "block": 500, "owner_uid": 0,
        "weights": [[0, 65535, 0], [0, 0, 65535], [0.0, 0.25, 0.75]], "stake": [10, 0, 30],
        "hotkeys": ["a", "b", "c"], "last_update": [499, 400, 450], "validator_permit": [True, False, True],
        "bonds": [[0, 3, 0], [0, 0, 0], [0, 0, 7]], "chain": {"incentive": [0, 1.0, 0.5], "dividends": [65535, 0, 0]},
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    snap = read_json(path)
    assert snap.state.weights.tolist() == [[0, 65535, 0], [0, 0, 65535], [0, 21845, 65535]]
    assert snap.state.stake.tolist() == [10, 0, 30]  # integers are rao
    assert snap.chain_outputs["incentive"].tolist() == [0, 65535, 32768]
    assert snap.chain_outputs["dividends"].tolist() == [65535, 0, 0]
    assert (snap.netuid, snap.block, snap.state.owner_uid, snap.hotkeys) == (3, 500, 0, ["a", "b", "c"])
    again = read_npz(save_npz(snap, tmp_path / "s.npz"))
    for name in ("weights", "stake", "last_update", "validator_permit", "bonds"):
        assert torch.equal(torch.as_tensor(getattr(again.state, name)), torch.as_tensor(getattr(snap.state, name)))
    assert again.hotkeys == snap.hotkeys and again.chain_outputs.keys() == snap.chain_outputs.keys()


@given(st.lists(st.floats(0, 2e7, width=32, allow_subnormal=False), min_size=1, max_size=20))
def test_stake_to_rao_matches_fractions(tokens: list[float]) -> None:
    rao, lost = stake_to_rao(np.array(tokens, dtype=np.float32))
    expected = [_rao_reference(t) for t in tokens]
    assert rao.tolist() == expected
    assert lost == sum(1 for t, r in zip(tokens, expected) if t > 0 and r == 0)


@given(st.lists(st.integers(0, 65535), min_size=2, max_size=300))
def test_float32_rows_come_back_as_the_stored_u16(values: list[int]) -> None:
    """The SDK's row = float32(v) / float32(sum v); max-upscaling recovers v when max(v) = 65535."""
    values[0] = 65535
    row = np.array(values, dtype=np.float32)
    normalised = (row / row.sum()).astype(np.float32)
    assert weights_to_u16(normalised[None, :]).tolist() == [values]


def test_conversions_refuse_what_they_cannot_represent() -> None:
    with pytest.raises(SnapshotError, match=r"`bonds`.*0\.5 at index \(0, 1\)"):
        bonds_to_u16(np.array([[0.0, 0.5]]))
    with pytest.raises(SnapshotError, match=r"`incentive`.*1\.5 at index \(1,\)"):
        unit_to_u16(np.array([0.5, 1.5]))
    with pytest.raises(SnapshotError, match=r"-1 at index \(0, 0\)"):
        weights_to_u16(np.array([[-1, 2], [0, 0]]))
    with pytest.raises(SnapshotError, match="too large for int64"):
        stake_to_rao(np.array([1e12]))
    with pytest.raises(SnapshotError, match="complex"):
        weights_to_u16(np.ones((2, 2), dtype=np.complex64))


def test_epoch_on_the_real_snapshot_runs_and_pays_the_emission() -> None:
    snap = read_simulator_pt(SIMULATOR)
    result = mt.yuma.epoch(snap.state, emission=10**9, exact=False, payout="exact")
    assert int(torch.as_tensor(result.emission).sum()) == 10**9
