"""One subnet at one block as read from a file, and the conversions every reader shares.

Every reader maps its format to the same field names (``weights``, ``stake``, ``last_update``,
``block_at_registration``, ``validator_permit``, ``bonds``, ``block``, ``owner_uid``, ``netuid``,
``hotkeys``, ``n`` and the chain's outputs) and hands them to :func:`build_snapshot`, which
checks each one (type, shape, NaN, inf, sign, range, a consistent ``n``) and converts the
SDK's float storage back to the chain's integers with the documented rules below. An error
names the file, the field and the first bad index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import mdt_tensor as mt
from mdt_tensor._constants import U16_MAX

from .errors import SnapshotError

__all__ = [
    "Snapshot",
    "OUTPUT_FIELDS",
    "build_snapshot",
    "weights_to_u16",
    "bonds_to_u16",
    "stake_to_rao",
    "unit_to_u16",
]

_INT64_MAX = 2**63 - 1

#: The chain's per-uid outputs a file may hold (u16 values, or floats ``u16 / 65535``).
OUTPUT_FIELDS = ("incentive", "dividends", "consensus", "validator_trust", "trust", "ranks")


@dataclass
class Snapshot:
    """A subnet at one block: the epoch's inputs plus what the file says about it.

    Attributes:
        state: the epoch's inputs (``weights`` ``(n, n)`` int64 u16, ``stake`` ``(n,)`` int64
            rao/wei, and whichever of ``last_update``, ``block_at_registration``,
            ``validator_permit``, ``bonds``, ``block``, ``owner_uid`` the file has).
        netuid, block: from the file, or None.
        hotkeys: ``n`` hotkeys (ss58 text) when the file has them, else None.
        path: the file read (None for snapshots built in memory).
        chain_outputs: the chain's stored outputs as ``(n,)`` int64 u16 tensors, by name
            (``incentive``, ``dividends``, ``consensus``, ``validator_trust``, ``trust``,
            ``ranks``); a field that is all zeros counts as not recorded and is left out.
        notes: what a conversion lost, one sentence each (e.g. stake below half a rao).
    """

    state: mt.yuma.SubnetState
    netuid: int | None = None
    block: int | None = None
    hotkeys: list[str] | None = None
    path: Path | None = None
    chain_outputs: dict[str, Tensor] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of uids."""
        return int(torch.as_tensor(self.state.weights).shape[-1])


# =============================================================================== checks


def _fail(source: str, name: str, message: str) -> SnapshotError:
    return SnapshotError(f"{source}: field `{name}`: {message}")


def _show(value: Any) -> str:
    """A numpy scalar as plain Python text (``0.5``, ``nan``), not ``np.float64(0.5)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _first(mask: np.ndarray) -> tuple[int, ...]:
    """Row-major index of the first true element of a non-empty ``mask`` that has one."""
    flat = int(np.argmax(mask.reshape(-1)))
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


def numeric_array(value: Any, source: str, name: str, shape: tuple[int | None, ...], *, allow_bool: bool = False) -> np.ndarray:
    """``value`` as a real-valued numpy array of ``shape`` (None: any size), finite.

    Refuses text, Python objects, complex numbers, bool (unless ``allow_bool``), ragged lists,
    NaN and infinities, naming ``source``, ``name`` and the first bad index.
    """
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise _fail(source, name, f"is not a regular array of numbers ({str(exc).split('.')[0][:100]})") from None
    kind = value.dtype.kind
    if kind == "c":
        raise _fail(source, name, f"holds complex numbers (dtype {value.dtype}); expected real numbers")
    if kind in "USa":
        raise _fail(source, name, f"holds text (dtype {value.dtype}); expected numbers")
    if kind == "O":
        raise _fail(source, name, "holds Python objects (dtype object); expected numbers")
    if kind == "b" and not allow_bool:
        raise _fail(source, name, "holds booleans; expected numbers")
    if kind not in "biuf":
        raise _fail(source, name, f"has the unsupported dtype {value.dtype}")
    if value.ndim != len(shape) or any(want is not None and got != want for got, want in zip(value.shape, shape)):
        layout = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise _fail(source, name, f"expected shape {layout}, but got {tuple(value.shape)}")
    if kind == "f":
        bad = ~np.isfinite(value)
        if bad.any():
            index = _first(bad)
            raise _fail(source, name, f"holds {_show(value[index])} at index {index}; expected finite numbers")
    return value


def _check_range(values: np.ndarray, source: str, name: str, low: float, high: float) -> None:
    bad = (values < low) | (values > high)
    if bad.any():
        index = _first(bad)
        wanted = "non-negative values" if low == 0 and high == np.inf else f"values in [{low}, {high}]"
        raise _fail(source, name, f"holds {_show(values[index])} at index {index}; expected {wanted}")


def _whole(values: np.ndarray, source: str, name: str) -> np.ndarray:
    """Float values that must be whole numbers, as int64 (integers pass through)."""
    if values.dtype.kind == "f":
        bad = values != np.floor(values)
        if bad.any():
            index = _first(bad)
            raise _fail(source, name, f"holds {_show(values[index])} at index {index}; expected whole numbers")
        if values.size and np.abs(values).max() >= 2.0**63:
            index = _first(np.abs(values) >= 2.0**63)
            raise _fail(source, name, f"holds {_show(values[index])} at index {index}; too large for int64")
    return values.astype(np.int64)


def _scalar_int(value: Any, source: str, name: str, low: int, high: int) -> int:
    """An int from a Python int, a numpy integer or a one-element integer array."""
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iu":
        value = value.reshape(()).item()
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(source, name, f"expected an integer, but got {type(value).__name__} {str(value)[:40]!r}")
    if not low <= value <= high:
        raise _fail(source, name, f"expected an integer in [{low}, {high}], but got {value}")
    return value


# =============================================================================== conversions


def weights_to_u16(weights: np.ndarray, source: str = "<array>", name: str = "weights") -> np.ndarray:
    """Stored weights ``(n, n)`` as the chain's u16 values (int64).

    Integer weights are the chain's values and must lie in ``[0, 65535]``. Float weights are
    rows as the SDK's metagraph holds them (each row divided by its sum, float32): every row
    is scaled back so that its maximum becomes 65535, ``u16 = floor(w / max(row) * 65535 + 0.5)``
    in float64 (round half up); an all-zero row stays zero. The chain stores every row
    max-upscaled (its maximum is 65535), and float32 keeps 24 bits, so each value comes
    back within about 0.01 of the stored integer and the rounding recovers it exactly. A row
    whose largest entry was removed on chain (a deregistered uid) no longer has 65535 as its
    maximum; it comes back scaled up, with the same proportions up to the u16 rounding.

    Example:
        >>> weights_to_u16(np.array([[0.2, 0.8], [0.0, 0.0]], dtype=np.float32)).tolist()
        [[16384, 65535], [0, 0]]
    """
    weights = numeric_array(weights, source, name, (None, None))
    if weights.dtype.kind in "iu":
        _check_range(weights, source, name, 0, U16_MAX)
        return weights.astype(np.int64)
    _check_range(weights, source, name, 0, np.inf)
    w = weights.astype(np.float64)
    top = w.max(axis=-1, keepdims=True) if w.size else np.zeros((*w.shape[:-1], 1))
    scaled = np.floor(w / np.where(top > 0, top, 1.0) * U16_MAX + 0.5)
    return np.where(top > 0, scaled, 0.0).astype(np.int64)


def bonds_to_u16(bonds: np.ndarray, source: str = "<array>", name: str = "bonds") -> np.ndarray:
    """Stored bonds ``(n, n)`` as u16 (int64): the SDK keeps the chain's u16 values as float32.

    Float bonds must be whole numbers (float32 holds every u16 exactly); all values must lie in
    ``[0, 65535]``.

    Example:
        >>> bonds_to_u16(np.array([[0.0, 65535.0], [12.0, 0.0]], dtype=np.float32)).tolist()
        [[0, 65535], [12, 0]]
    """
    bonds = numeric_array(bonds, source, name, (None, None))
    values = _whole(bonds, source, name)
    _check_range(values, source, name, 0, U16_MAX)
    return values


def stake_to_rao(stake: np.ndarray, source: str = "<array>", name: str = "stake") -> tuple[np.ndarray, int]:
    """Stake ``(n,)`` as int64 rao (= wei, 10**9 per token), and how many non-zero stakes became 0.

    Integer stake is taken as rao already. Float stake is whole tokens (TAO / MDT), as the SDK
    stores it: each value is a binary fraction, converted exactly (``as_integer_ratio``) to
    ``value * 10**9`` and rounded to the nearest rao, half up; a positive stake below half a rao
    becomes 0 (the count is returned so a reader can say so).

    Precision: float32 keeps 24 significant bits, so a stake of ``s`` tokens is known only to
    ``s * 2**-24`` (6e-8 relative; for 1,894,367 tokens a step of 0.125 token, 125,000,000 rao).
    An exact replay is then bit-exact for the float32-rounded stake, not for the chain's u64 rao:
    stake shares can differ from the chain's by about 6e-8 relative, which moves a u16 output
    (steps of 1.5e-5) only when it lies that close to a rounding boundary, and a payout by about
    6e-8 of itself. Integer rao (``.npz`` or JSON) replays the chain's stake exactly.

    Example:
        >>> rao, lost = stake_to_rao(np.array([1.5, 0.0, 2e-10], dtype=np.float64))
        >>> rao.tolist(), lost
        ([1500000000, 0, 0], 1)
    """
    stake = numeric_array(stake, source, name, (None,))
    _check_range(stake, source, name, 0, np.inf)
    if stake.dtype.kind in "iu":
        if stake.dtype == np.uint64 and stake.size and int(stake.max()) > _INT64_MAX:
            raise _fail(source, name, f"holds {int(stake.max())} rao; too large for int64")
        return stake.astype(np.int64), 0
    rao = []
    for value in stake.astype(np.float64).tolist():  # float32 -> float64 is exact
        num, den = value.as_integer_ratio()
        rao.append((2 * num * 10**9 + den) // (2 * den))
    if rao and max(rao) > _INT64_MAX:
        index = int(np.argmax(np.array([r > _INT64_MAX for r in rao])))
        raise _fail(source, name, f"holds {_show(stake[index])} tokens at index {index}; too large for int64 rao")
    result = np.array(rao, dtype=np.int64)
    return result, int(((stake > 0) & (result == 0)).sum())


def unit_to_u16(values: np.ndarray, source: str = "<array>", name: str = "incentive") -> np.ndarray:
    """A chain output ``(n,)`` as u16 (int64): integers as stored, floats in ``[0, 1]`` as ``u16 / 65535``.

    The SDK stores these as float32 ``u16 / 65535``; ``floor(x * 65535 + 0.5)`` recovers the
    integer exactly (float32's error is far below half a step).

    Example:
        >>> unit_to_u16(np.array([1.0, 0.5, 0.0], dtype=np.float32)).tolist()
        [65535, 32768, 0]
    """
    values = numeric_array(values, source, name, (None,))
    if values.dtype.kind in "iu":
        _check_range(values, source, name, 0, U16_MAX)
        return values.astype(np.int64)
    _check_range(values, source, name, 0, 1)
    return np.floor(values.astype(np.float64) * U16_MAX + 0.5).astype(np.int64)


def _uid_ints(value: Any, source: str, name: str, n: int, low: int, high: int) -> np.ndarray:
    values = _whole(numeric_array(value, source, name, (n,)), source, name)
    _check_range(values, source, name, low, high)
    return values


def _permits(value: Any, source: str, name: str, n: int) -> np.ndarray:
    values = numeric_array(value, source, name, (n,), allow_bool=True)
    if values.dtype.kind != "b":
        values = _whole(values, source, name)
        _check_range(values, source, name, 0, 1)
    return values.astype(bool)


def _hotkeys(value: Any, source: str, n: int) -> list[str]:
    if isinstance(value, np.ndarray) and value.dtype.kind in "UO":
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise _fail(source, "hotkeys", f"expected a list of {n} strings, but got {type(value).__name__}")
    if len(value) != n:
        raise _fail(source, "hotkeys", f"expected {n} hotkeys (one per uid), but got {len(value)}")
    for uid, hotkey in enumerate(value):
        if not isinstance(hotkey, str):
            raise _fail(source, "hotkeys", f"holds {type(hotkey).__name__} at index {uid}; expected a string")
    return list(value)


# =============================================================================== assembly


def build_snapshot(fields: Mapping[str, Any], *, source: str, path: Path | None = None) -> Snapshot:
    """Check and convert a reader's fields (canonical names, see the module docstring).

    ``weights`` and ``stake`` are required; everything else is optional. ``source`` names the
    file in messages.

    Raises:
        SnapshotError: a missing required field, or any bad value (named with its first index).
    """
    for required in ("weights", "stake"):
        if fields.get(required) is None:
            found = ", ".join(sorted(str(k) for k in fields)[:16]) or "nothing"
            raise SnapshotError(f"{source}: missing the required field `{required}` (found: {found})")
    weights_raw = numeric_array(fields["weights"], source, "weights", (None, None))
    n = weights_raw.shape[0]
    if weights_raw.shape != (n, n) or n == 0:
        raise _fail(source, "weights", f"expected a square (n, n) matrix with n >= 1, but got {weights_raw.shape}")
    weights = weights_to_u16(weights_raw, source)
    stake_raw = numeric_array(fields["stake"], source, "stake", (None,))
    if stake_raw.shape[0] != n:
        raise _fail(source, "stake", f"has {stake_raw.shape[0]} entries but `weights` is {n} x {n} (inconsistent n)")
    stake, lost = stake_to_rao(stake_raw, source)
    notes = [f"{source}: {lost} non-zero stake(s) below half a rao became 0"] if lost else []
    if fields.get("n") is not None:
        declared = _scalar_int(fields["n"], source, "n", 0, 2**31)
        if declared != n:
            raise _fail(source, "n", f"says {declared} uids but `weights` is {n} x {n} (inconsistent n)")

    state: dict[str, Any] = {"weights": torch.from_numpy(weights), "stake": torch.from_numpy(stake)}
    for name, high in (("last_update", 2**62), ("block_at_registration", 2**62)):
        if fields.get(name) is not None:
            state[name] = torch.from_numpy(_uid_ints(fields[name], source, name, n, 0, high))
    if fields.get("validator_permit") is not None:
        state["validator_permit"] = torch.from_numpy(_permits(fields["validator_permit"], source, "validator_permit", n))
    if fields.get("bonds") is not None:
        bonds = numeric_array(fields["bonds"], source, "bonds", (n, n))
        state["bonds"] = torch.from_numpy(bonds_to_u16(bonds, source))
    block = _scalar_int(fields["block"], source, "block", 0, 2**62) if fields.get("block") is not None else None
    if block is not None:
        state["block"] = block
    if fields.get("owner_uid") is not None:
        state["owner_uid"] = _scalar_int(fields["owner_uid"], source, "owner_uid", -1, n - 1)
    netuid = _scalar_int(fields["netuid"], source, "netuid", 0, U16_MAX) if fields.get("netuid") is not None else None
    hotkeys = _hotkeys(fields["hotkeys"], source, n) if fields.get("hotkeys") is not None else None

    outputs: dict[str, Tensor] = {}
    for name in OUTPUT_FIELDS:
        if fields.get(name) is not None:
            values = unit_to_u16(numeric_array(fields[name], source, name, (n,)), source, name)
            if values.any():
                outputs[name] = torch.from_numpy(values)
    return Snapshot(
        state=mt.yuma.SubnetState(**state),
        netuid=netuid,
        block=block,
        hotkeys=hotkeys,
        path=path,
        chain_outputs=outputs,
        notes=notes,
    )
