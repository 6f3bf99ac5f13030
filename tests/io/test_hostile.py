"""Broken and hostile input: each kind exits 2 with one line naming what was wrong, and runs nothing.

Every case goes through ``mdt-tensor replay`` (its parser and ``run_replay``); the pickles that
would run code write a marker file when executed, and the tests check it never appears.
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mdt_tensor.io import SnapshotError, read_snapshot

from .conftest import NPZ, SDK_SAVE, replay_cli


class _RunsCode:
    """Pickles as a call of ``function(*args)``: what a hostile snapshot would carry."""

    def __init__(self, function: Any, *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.function, self.args


def _npz(tmp: Path, **arrays: Any) -> Path:
    path = tmp / "bad.npz"
    np.savez(path, **arrays)
    return path


def _good(n: int = 3) -> dict[str, np.ndarray]:
    return {"S": np.arange(1, n + 1, dtype=np.float32), "W": np.eye(n, dtype=np.float32)[::-1].copy()}


def _with(**changes: Any) -> dict[str, Any]:
    arrays: dict[str, Any] = _good()
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def _weights(**cell: Any) -> np.ndarray:
    w = np.eye(3, dtype=np.float32)[::-1].copy()
    for key, value in cell.items():
        i, j = (int(c) for c in key[1:])
        w = w.astype(np.result_type(w, np.asarray(value)))
        w[i, j] = value
    return w


def _marker_pickle(tmp: Path) -> Path:
    path = tmp / "block-1.pt"
    marker = tmp / "ran"
    path.write_bytes(pickle.dumps({"weights": _RunsCode(os.system, f"touch {marker}"), "stake": [1.0]}))
    return path


def _eval_pickle(tmp: Path) -> Path:
    path = tmp / "eval.pkl"
    path.write_bytes(pickle.dumps({"stake": _RunsCode(eval, f"open({str(tmp / 'ran')!r}, 'w')")}))
    return path


def _torch_zip_with_code(tmp: Path, sdk_like: bool) -> Path:
    path = tmp / ("meta.pt" if sdk_like else "sim.pt")
    payload: dict[str, Any] = {"S": np.ones(2, np.float32), "W": _RunsCode(os.system, f"touch {tmp / 'ran'}")}
    if sdk_like:
        payload["validator_permit"] = np.ones(2, bool)
    torch.save(payload, path)
    return path


class _Storage:
    pass


class _Tensor:
    def __init__(self, storage: _Storage, size: tuple[int, ...]) -> None:
        self.storage, self.size = storage, size

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return torch._utils._rebuild_tensor_v2, (self.storage, 0, self.size, (1,), False, collections.OrderedDict())


def _torch_zip_reading_past_its_storage(tmp: Path) -> Path:
    """A torch.save-format zip whose tensor claims 10**6 elements of a 4-element storage."""
    storage = _Storage()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            return ("storage", torch.FloatStorage, "0", "cpu", 4) if obj is storage else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"weights": _Tensor(storage, (10**6,)), "stake": _Tensor(storage, (4,)), "validator_permit": []})
    path = tmp / "oob.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", np.zeros(4, np.float32).tobytes())
    return path


def _json(tmp: Path, text: str) -> Path:
    path = tmp / "bad.json"
    path.write_text(text)
    return path


def _sdk_save_with(tmp: Path, **changes: Any) -> Path:
    from mdt_tensor.io.unpickle import load_pickle

    state = load_pickle(SDK_SAVE.read_bytes(), "sdk")
    state = {k: v for k, v in state.items() if k not in ("axons", "neurons")}
    state.update(changes)
    path = tmp / "block-4769998.pt"
    path.write_bytes(pickle.dumps(state))
    return path


def _series_same_block(tmp: Path) -> Path:
    folder = tmp / "series"
    folder.mkdir()
    for name in ("a.npz", "b.npz"):
        np.savez(folder / name, block=np.int64(7), **_good())
    return folder


def _series_shrinking(tmp: Path) -> Path:
    folder = tmp / "series"
    folder.mkdir()
    np.savez(folder / "a.npz", block=np.int64(1), **_good(4))
    np.savez(folder / "b.npz", block=np.int64(2), **_good(3))
    return folder


Case = tuple[str, Callable[[Path], list[Any]], str]

CASES: list[Case] = [
    ("empty file", lambda t: [(t / "e.npz", (t / "e.npz").write_bytes(b""))[0]], r"is empty"),
    ("missing file", lambda t: [t / "nope.npz"], r"nope\.npz: no such file"),
    ("truncated zip", lambda t: [(t / "cut.npz", (t / "cut.npz").write_bytes(NPZ.read_bytes()[:3000]))[0]],
     r"cut\.npz: not a readable \.npz archive"),
    ("a .npy", lambda t: [(t / "w.npy", np.save(t / "w.npy", np.eye(3)))[0]], r"single \.npy array"),
    ("garbage bytes", lambda t: [(t / "g.bin", (t / "g.bin").write_bytes(b"\x07junk" * 50))[0]], r"not a recognised snapshot"),
    ("string array", lambda t: [_npz(t, **_with(W=np.array([["a", "b"], ["c", "d"]])))], r"field `weights`: holds text"),
    ("object array", lambda t: [_npz(t, **_with(S=np.array([1, "x", None], dtype=object)))], r"not a readable \.npz archive .*[Oo]bject arrays"),
    ("NaN weight", lambda t: [_npz(t, **_with(W=_weights(w01=np.nan)))], r"field `weights`: holds nan at index \(0, 1\)"),
    ("negative weight", lambda t: [_npz(t, **_with(W=_weights(w10=-0.5)))], r"field `weights`: holds -0\.5 at index \(1, 0\)"),
    ("complex weights", lambda t: [_npz(t, **_with(W=_weights(w11=1 + 2j)))], r"field `weights`: holds complex numbers"),
    ("inf stake", lambda t: [_npz(t, **_with(S=np.array([1, 2, np.inf])))], r"field `stake`: holds inf at index \(2,\)"),
    ("u16 overflow", lambda t: [_npz(t, **_with(W=np.array([[0, 70000, 0], [1, 0, 0], [0, 0, 1]])))],
     r"field `weights`: holds 70000 at index \(0, 1\); expected values in \[0, 65535\]"),
    ("inconsistent n", lambda t: [_npz(t, S=np.ones(3), W=np.eye(4))], r"field `stake`: has 3 entries .*inconsistent n"),
    ("missing W", lambda t: [_npz(t, S=np.ones(3))], r"missing the required field `weights` \(found: stake\)"),
    ("non-square W", lambda t: [_npz(t, S=np.ones(2), W=np.ones((2, 3)))], r"square \(n, n\)"),
    ("pickle running os.system", lambda t: [_marker_pickle(t)], r"refused to load `(posix|nt)\.system`"),
    ("pickle running eval", lambda t: [_eval_pickle(t)], r"refused to load `builtins\.eval`"),
    ("torch zip running code", lambda t: [_torch_zip_with_code(t, False)], r"refused by torch\.load\(weights_only=True\): .*GLOBAL (posix|nt)\.system"),
    ("SDK-like torch zip running code", lambda t: [_torch_zip_with_code(t, True)], r"refused to load `(posix|nt)\.system`"),
    ("tensor past its storage", lambda t: [_torch_zip_reading_past_its_storage(t)], r"reads past its storage"),
    ("JSON NaN", lambda t: [_json(t, '{"weights": [[NaN]], "stake": [1]}')], r"not valid JSON .*NaN"),
    ("JSON ragged", lambda t: [_json(t, '{"weights": [[1, 2], [3]], "stake": [1, 2]}')], r"field `weights`: is not a regular array"),
    ("JSON hotkeys", lambda t: [_json(t, '{"weights": [[1]], "stake": [1], "hotkeys": ["a", "b"]}')], r"expected 1 hotkeys"),
    ("JSON list", lambda t: [_json(t, "[1, 2, 3]")], r"expected a dict of fields, but the file holds a list"),
    ("SDK save with wrong n", lambda t: [_sdk_save_with(t, n=np.array(255))], r"field `n`: says 255 uids .*inconsistent n"),
    ("SDK save with fractional bonds", lambda t: [_sdk_save_with(t, bonds=np.full((256, 256), 0.5, np.float32))],
     r"field `bonds`: holds 0\.5 at index \(0, 0\); expected whole numbers"),
    ("empty folder", lambda t: [(t / "d", (t / "d").mkdir())[0]], r"holds no snapshot"),
    ("two files of one block", lambda t: [_series_same_block(t)], r"are both block 7"),
    ("shrinking subnet", lambda t: [_series_shrinking(t)], r"has 3 uids but the snapshot before it .* had 4"),
    ("emission without unit", lambda t: [NPZ, "--emission", "1"], r"--emission '1': .*no unit"),
    ("negative emission", lambda t: [NPZ, "--emission", "-1 MDT"], r"--emission '-1 MDT'"),
    ("sub-wei emission", lambda t: [NPZ, "--emission", "0.5 wei"], r"--emission '0\.5 wei'"),
    ("bad payout", lambda t: [NPZ, "--payout", "all"], r"--payout all: expected chain or exact"),
    ("bad device", lambda t: [NPZ, "--device", "xyz"], r"--device xyz: not a torch device"),
    ("bad hyperparameter", lambda t: [NPZ, "--hyperparameters", _json(t, '{"kappa": 70000}')], r"kappa.*\[0, 65535\].*70000"),
    ("hyperparameters not JSON", lambda t: [NPZ, "--hyperparameters", _json(t, "{kappa")], r"--hyperparameters .*not valid JSON"),
    ("unknown table format", lambda t: [NPZ, "--out", t / "r.xlsx"], r"--out .*r\.xlsx: unknown table format"),
    ("missing output folder", lambda t: [NPZ, "--out", t / "no" / "r.csv"], r"the folder .*no does not exist"),
    ("plot not PNG", lambda t: [NPZ, "--plot", t / "p.jpg"], r"--plot .*p\.jpg: .*\*\.png"),
]


@pytest.mark.parametrize("name, build, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line(name: str, build: Callable[[Path], list[Any]], message: str, tmp_path: Path) -> None:
    code, out, err = replay_cli(*build(tmp_path))
    assert code == 2, (name, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mdt-tensor replay: error: "), err
    assert "Traceback" not in err and out == ""
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "ran").exists(), "a file's code ran"
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".csv", ".png", ".tmp", ".xlsx", ".jpg")]


def test_the_planted_pickle_would_run_code_with_plain_pickle(tmp_path: Path) -> None:
    """The control: the same file through ``pickle.loads`` does run its code; through us it does not."""
    path = _marker_pickle(tmp_path)
    with pytest.raises(SnapshotError, match="refused"):
        read_snapshot(path)
    assert not (tmp_path / "ran").exists()
    pickle.loads(path.read_bytes())  # noqa: S301 (the control, on a file this test made)
    assert (tmp_path / "ran").exists()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = tmp_path / "e.npz"
    path.write_bytes(b"")
    with pytest.raises(SnapshotError, match="is empty"):
        replay_cli(path, "--debug")


def test_reader_errors_are_value_errors(tmp_path: Path) -> None:
    path = _json(tmp_path, json.dumps({"weights": [[1, 2], [3, 4]], "stake": [1, -2]}))
    with pytest.raises(ValueError, match=r"field `stake`: holds -2 at index \(1,\)"):
        read_snapshot(path)
