"""Readers: the snapshot formats people have on disk, each to a :class:`Snapshot`.

``.npz`` (``S`` and ``W``, numpy without pickle), the Yuma simulator's ``torch.save`` dicts
(``torch.load(weights_only=True)`` with the smallest numpy allow-list), the SDK's
``Metagraph.save()`` (a plain pickle in numpy mode, a torch zip in ``USE_TORCH`` mode; both read
by the restricted unpickler of :mod:`.unpickle`, without the SDK) and JSON (the schema of
:func:`read_json`). :func:`read_snapshot` picks the reader from the file's first bytes.
Any failure is a :class:`SnapshotError` naming the file; nothing in a file is ever run.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import SnapshotError
from .snapshot import OUTPUT_FIELDS, Snapshot, build_snapshot
from .unpickle import ForeignObject, is_torch_zip, load_pickle, load_torch_zip

__all__ = ["read_npz", "read_simulator_pt", "read_metagraph_save", "read_json", "read_snapshot", "save_npz"]

#: Other names a file may use for a canonical field (the simulator's and the old CLI's).
_ALIASES = {"weights": ("W",), "stake": ("S",), "bonds": ("B",)}
_CANONICAL = (
    "weights", "stake", "last_update", "block_at_registration", "validator_permit", "bonds", "block",
    "owner_uid", "netuid", "hotkeys", "n", *OUTPUT_FIELDS,
)


def _canonical(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical fields of ``raw`` (aliases resolved; unknown keys dropped)."""
    fields = {name: raw[name] for name in _CANONICAL if name in raw}
    for name, aliases in _ALIASES.items():
        for alias in aliases:
            if name not in fields and alias in raw:
                fields[name] = raw[alias]
    return fields


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise SnapshotError(f"{path}: is a folder, not a snapshot file") from None
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such file") from None
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _require_dict(obj: Any, source: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise SnapshotError(f"{source}: expected a dict of fields, but the file holds a {type(obj).__name__}")
    bad = [k for k in obj if not isinstance(k, str)]
    if bad:
        raise SnapshotError(f"{source}: expected text keys, but found the key {str(bad[0])[:40]!r}")
    return obj


# =============================================================================== .npz


def read_npz(path: str | Path) -> Snapshot:
    """A numpy ``.npz`` archive: ``S`` (or ``stake``) ``(n,)`` and ``W`` (or ``weights``) ``(n, n)``.

    Optional keys, by their :class:`SubnetState` / metadata names: ``last_update``,
    ``block_at_registration``, ``validator_permit``, ``bonds`` (or ``B``), ``block``,
    ``owner_uid``, ``netuid``, ``hotkeys`` (a text array), ``n`` and the chain's outputs
    (``incentive``, ``dividends``, ``consensus``, ``validator_trust``, ``trust``, ``ranks``).
    Pickled object arrays are refused (``allow_pickle=False``). Conversions: see
    :func:`weights_to_u16`, :func:`stake_to_rao` (float stake is whole tokens, integer stake rao).
    """
    path = Path(path)
    data = _read_bytes(path)
    if data.startswith(b"\x93NUMPY"):
        raise SnapshotError(f"{path}: is a single .npy array, not an .npz archive with keys S and W")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            raw = {name: archive[name] for name in archive.files}
    except SnapshotError:
        raise
    except Exception as exc:  # BadZipFile, a truncated member, an object array, ...
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise SnapshotError(f"{path}: not a readable .npz archive ({detail})") from None
    return build_snapshot(_canonical(raw), source=str(path), path=path)


def save_npz(snapshot: Snapshot, path: str | Path) -> Path:
    """Write ``snapshot`` as an ``.npz`` that :func:`read_npz` reads back unchanged (integer stake in rao)."""
    path = Path(path)
    state = snapshot.state
    arrays: dict[str, Any] = {"W": np.asarray(state.weights), "S": np.asarray(state.stake)}
    for name in ("last_update", "block_at_registration", "validator_permit", "bonds"):
        if getattr(state, name) is not None:
            arrays[name] = np.asarray(getattr(state, name))
    for name, value in (("block", snapshot.block), ("netuid", snapshot.netuid)):
        if value is not None:
            arrays[name] = np.int64(value)
    if not isinstance(state.owner_uid, int) or state.owner_uid != -1:
        arrays["owner_uid"] = np.int64(int(torch.as_tensor(state.owner_uid)))
    if snapshot.hotkeys is not None:
        arrays["hotkeys"] = np.array(snapshot.hotkeys, dtype=str)
    arrays.update({name: np.asarray(values) for name, values in snapshot.chain_outputs.items()})
    from .export import atomic_path  # the writer's helper: a failed save leaves no file behind

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    return path


# =============================================================================== simulator .pt


def _simulator_allow_list() -> list[Any]:
    """What ``torch.load(weights_only=True)`` must accept for a dict of numpy arrays, and no more.

    numpy's array reconstructor, ``ndarray``, ``dtype`` and the dtype classes of the numbers a
    snapshot holds (numpy >= 1.25 pickles a dtype's class; ``weights_only`` checks each).
    """
    reconstruct = np.zeros(0).__reduce__()[0]
    allowed: list[Any] = [reconstruct, np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        for name in ("Float32DType", "Float64DType", "Float16DType", "Int64DType", "Int32DType", "Int16DType",
                     "Int8DType", "UInt64DType", "UInt32DType", "UInt16DType", "UInt8DType", "BoolDType", "StrDType"):
            if hasattr(dtypes, name):
                allowed.append(getattr(dtypes, name))
    return allowed


def _weights_only_reason(text: str) -> str:
    """The line of torch's long ``weights_only`` message that names what was refused (it varies by version)."""
    boilerplate = ("Weights only load failed", "Check the documentation", "(1)", "(2)", "Please file an issue")
    lines = [line.strip() for line in text.splitlines()]
    useful = [line for line in lines if line and not line.startswith(boilerplate)]
    reason = (useful or lines or ["unreadable"])[0].removeprefix("WeightsUnpickler error: ")
    return re.split(r" was not an allowed global|\. Please use", reason)[0].rstrip(".")[:200]


def read_simulator_pt(path: str | Path) -> Snapshot:
    """The open-source Yuma simulator's ``torch.save`` dict ``{netuid, block, S, W, hotkeys}``.

    Read with ``torch.load(weights_only=True)`` and an allow-list of numpy's array reconstructor,
    ``ndarray``, ``dtype`` and the numeric dtype classes only; ``S`` is float32 whole tokens and
    ``W`` float32 rows normalised to sum 1 (converted as in :func:`build_snapshot`). Tensors in
    place of arrays are read too; other keys follow :func:`read_npz`.
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        with torch.serialization.safe_globals(_simulator_allow_list()):
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise SnapshotError(
            f"{path}: refused by torch.load(weights_only=True): {_weights_only_reason(str(exc))}; a snapshot may hold "
            "only numpy arrays and plain data, and nothing from the file is run"
        ) from None
    except Exception as exc:  # a truncated zip, not a torch file, ...
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise SnapshotError(f"{path}: not a readable torch.save file ({detail})") from None
    return build_snapshot(_canonical(_require_dict(obj, str(path))), source=str(path), path=path)


# =============================================================================== SDK metagraph save


def _metagraph_fields(state: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The SDK's ``state_dict()`` keys as canonical fields; hotkeys from the inert ``AxonInfo``s."""
    fields = _canonical(state)
    if "weights" not in fields and "stake" not in state:
        return fields
    axons = state.get("axons")
    if isinstance(axons, list) and axons and all(isinstance(a, ForeignObject) for a in axons):
        hotkeys = [a.field("hotkey") for a in axons]
        if all(isinstance(h, str) for h in hotkeys):
            fields["hotkeys"] = hotkeys
    return fields


def read_metagraph_save(path: str | Path) -> Snapshot:
    """A file written by the Bittensor SDK's ``Metagraph.save()``, read without the SDK.

    Numpy mode (the default) is a plain pickle of ``state_dict()``; ``USE_TORCH=1`` mode is a
    ``torch.save`` zip of the same keys as tensors. Both are read by the restricted unpickler
    (:mod:`mdt_tensor.io.unpickle`): arrays and tensors come out, the SDK's ``AxonInfo`` and
    ``NeuronInfo`` objects become inert records (the hotkeys are taken from the axons), and any
    other class the file names is refused. Fields: ``weights`` float32 rows normalised to sum 1,
    ``bonds`` u16 as float32, ``stake`` float32 whole tokens, ``last_update``,
    ``validator_permit``, ``block``, ``n``, ``netuid`` and the outputs ``incentive``,
    ``dividends``, ``consensus``, ``validator_trust``, ``trust``, ``ranks`` as ``u16 / 65535``;
    conversions as in :func:`build_snapshot`.
    """
    path = Path(path)
    data = _read_bytes(path)
    if data.startswith(b"PK"):
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError, EOFError) as exc:
            raise SnapshotError(f"{path}: not a readable zip ({exc})") from None
        with archive:
            obj = load_torch_zip(archive, str(path))
    else:
        obj = load_pickle(data, str(path))
    state = _require_dict(obj, str(path))
    return build_snapshot(_metagraph_fields(state, str(path)), source=str(path), path=path)


# =============================================================================== JSON


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path: str | Path) -> Snapshot:
    """A JSON snapshot: one object with these keys (``weights`` and ``stake`` required).

    - ``weights`` (or ``W``): ``n`` rows of ``n`` numbers; integers are u16 values, floats rows
      to be max-upscaled (:func:`weights_to_u16`).
    - ``stake`` (or ``S``): ``n`` numbers; integers are rao/wei, floats whole tokens.
    - optional: ``netuid``, ``block``, ``owner_uid`` (integers); ``hotkeys`` (``n`` strings);
      ``last_update``, ``block_at_registration`` (``n`` integers); ``validator_permit`` (``n``
      booleans); ``bonds`` (``n`` x ``n`` u16); ``chain`` (an object with any of ``incentive``,
      ``dividends``, ``consensus``, ``validator_trust``, ``trust``, ``ranks``: ``n`` u16 integers
      or floats in [0, 1]); ``format`` and ``version`` (ignored).
    - ``NaN`` and ``Infinity`` are refused.

    Example file: ``{"netuid": 1, "block": 100, "weights": [[0, 65535], [65535, 0]], "stake": [10, 30]}``.
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SnapshotError(f"{path}: not valid JSON ({str(exc)[:160]})") from None
    raw = dict(_require_dict(obj, str(path)))
    chain = raw.pop("chain", None)
    if chain is not None:
        for name, values in _require_dict(chain, f"{path} (key `chain`)").items():
            if name in OUTPUT_FIELDS:
                raw[name] = values
    return build_snapshot(_canonical(raw), source=str(path), path=path)


# =============================================================================== dispatch


def _torch_zip_reader(data: bytes, path: Path) -> Callable[[Path], Snapshot]:
    """A torch zip naming SDK classes or SDK keys is a metagraph save; otherwise a simulator dict."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            prefix = is_torch_zip(archive)
            if prefix is None:
                return read_npz
            pickled = archive.read(prefix + "data.pkl")
    except Exception:
        return read_npz  # it reports the broken zip
    return read_metagraph_save if (b"bittensor" in pickled or b"validator_permit" in pickled) else read_simulator_pt


def read_snapshot(path: str | Path) -> Snapshot:
    """Read any supported snapshot, choosing the reader from the file's first bytes.

    A zip holding ``.npy`` members is an ``.npz`` (:func:`read_npz`); a zip with ``data.pkl`` is a
    ``torch.save`` file: the SDK's metagraph save when it names SDK classes or holds
    ``validator_permit`` (:func:`read_metagraph_save`), else a simulator dict
    (:func:`read_simulator_pt`); a pickle is a numpy-mode metagraph save; text starting with
    ``{`` is JSON (:func:`read_json`). Anything else (empty, a ``.npy``, ...) is refused.

    Raises:
        SnapshotError: missing, unreadable, unrecognised, corrupt, unsafe or bad values.
    """
    path = Path(path)
    data = _read_bytes(path)
    if not data:
        raise SnapshotError(f"{path}: is empty")
    if data.startswith(b"\x93NUMPY"):
        raise SnapshotError(f"{path}: is a single .npy array, not an .npz archive with keys S and W")
    if data.startswith(b"PK"):
        return _torch_zip_reader(data, path)(path)
    if data[:1] == b"\x80" or path.suffix in (".pkl", ".pickle"):
        return read_metagraph_save(path)
    if data.lstrip()[:1] in (b"{", b"["):
        return read_json(path)
    raise SnapshotError(
        f"{path}: not a recognised snapshot (expected .npz, a torch.save or pickle metagraph save, or JSON)"
    )
