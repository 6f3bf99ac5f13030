"""Reading a ``SubnetState`` into one flat, checked batch of tensors on one device (and back).

``_prepare`` is table-driven: ``_FIELDS`` holds one spec per ``SubnetState`` field (its shape,
element type and value check), read by one function; the defaults of the optional fields are
filled afterwards, since some depend on each other (``block`` and ``last_update``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from ..._array import ArrayOrigin, as_tensor, check_same_device, is_array
from ..._validation import check_alloc, check_finite, check_in_range, check_non_negative, check_u16, first_index
from ...errors import DTypeError, ShapeError, ValueRangeError
from .types import _INT_FIELDS, SubnetState, YumaParams

__all__: list[str] = []


@dataclass
class _Inputs:
    """A validated, flattened batch: leading dims collapsed to ``b``; everything on one device."""

    batch_shape: tuple[int, ...]
    origin: ArrayOrigin
    weights: Tensor  # (b, n, n) u16 values, int64 (the runner: int16 / int32)
    stake: Tensor  # (b, n) int64 or float64 raw stake
    last_update: Tensor  # (b, n) int64
    block_at_registration: Tensor  # (b, n) int64
    validator_permit: Tensor | None  # (b, n) bool
    bonds: Tensor  # (b, n, n) u16 values in an integer dtype (uint8 zeros when none were given)
    block: Tensor  # (b, 1) int64
    owner_uid: Tensor  # (b, 1) int64
    valid: Tensor  # (b, n) bool
    weights_present: Tensor | None  # (b, n, n) bool
    previous_consensus: Tensor | None  # (b, n) int64 u16
    padded: bool  # n_valid was given: masks for padded uids are needed
    commit_block: Tensor | None = None  # (b, n) int64, -1: no active commit
    bonds_reset: Tensor | None = None  # (b, n) bool

    @property
    def n(self) -> int:
        return self.weights.shape[-1]


# ------------------------------------------------------------------------------ value checks
# Each takes the tensor in the caller's shape (so error indices are the caller's), its name and n.


def _u16(t: Tensor, name: str, n: int) -> None:
    check_u16(t, name)


def _non_negative(t: Tensor, name: str, n: int) -> None:
    check_non_negative(t, name)


def _block_or_none(t: Tensor, name: str, n: int) -> None:
    check_in_range(t, name, -1, 2**62)


def _zero_or_one(t: Tensor, name: str, n: int) -> None:
    if t.dtype != torch.bool:
        check_in_range(t, name, 0, 1)


def _at_most_n(t: Tensor, name: str, n: int) -> None:
    check_in_range(t, name, 0, n)


def _stake_values(t: Tensor, name: str, n: int) -> None:
    check_finite(t, name)
    check_non_negative(t, name)
    if not t.is_floating_point():
        # an exact int64 test in two halves (neither half's sum can overflow for n <= 2**16)
        wide = t.to(torch.int64)
        high, low = (wide >> 32).sum(-1), (wide & 0xFFFFFFFF).sum(-1)
        over = (high >= 2**29) | ((high.clamp(max=2**29) << 32) + low >= 2**61)
        sums = t.to(torch.float64).sum(-1).reshape(-1)  # subnets numbered in the flattened batch
        bad = first_index(over.reshape(-1))
        if bad is not None:
            raise ValueRangeError(
                f"Expected the integer `{name}` of each subnet to sum below 2**61, but subnet {bad} sums to "
                f"{float(sums[bad]):.4g}; pass smaller units or float stake."
            )


@dataclass(frozen=True)
class _Field:
    """How one ``SubnetState`` field is read.

    ``shape``: ``"uid"`` ``(*, n)``, ``"matrix"`` ``(*, n, n)`` or ``"subnet"`` (a scalar or ``(*)``).
    ``kind``: ``"int"`` (integers, or whole floats), ``"bool"`` (a mask) or ``"number"`` (stake:
    integers kept as int64, floats as float64). ``check``: the value check run when validating.
    """

    name: str
    shape: Literal["uid", "matrix", "subnet"]
    kind: Literal["int", "bool", "number"]
    check: Callable[[Tensor, str, int], None] | None = None


_FIELDS = (
    _Field("weights", "matrix", "int", _u16),
    _Field("stake", "uid", "number", _stake_values),
    _Field("last_update", "uid", "int", _non_negative),
    _Field("block_at_registration", "uid", "int", _non_negative),
    _Field("validator_permit", "uid", "bool", _zero_or_one),
    _Field("bonds", "matrix", "int", _u16),
    _Field("block", "subnet", "int", _non_negative),
    _Field("owner_uid", "subnet", "int"),  # checked against n_valid once both are read
    _Field("n_valid", "subnet", "int", _at_most_n),
    _Field("weights_present", "matrix", "bool"),
    _Field("previous_consensus", "uid", "int", _u16),
    _Field("commit_block", "uid", "int", _block_or_none),
    _Field("bonds_reset", "uid", "bool", _zero_or_one),
)


def _as_int_tensor(x: Any, name: str, device: torch.device, validate: bool, narrow: bool = False) -> Tensor:
    """``x`` as int64 on ``device``: integers, or floats holding whole numbers (bool is refused).

    ``narrow``: u16 values (checked by the caller) keep an integer dtype of 16 or 32 bits (uint16
    becomes int32, which every op takes; floats become int32) instead of int64.
    """
    t, _ = as_tensor(x, name)
    if t.dtype == torch.bool:
        raise DTypeError(f"Expected `{name}` to hold integers, but got dtype torch.bool.")
    if t.is_floating_point() and validate:
        check_finite(t, name)
        bad = first_index(t != torch.round(t))
        if bad is not None:
            raise DTypeError(f"Expected `{name}` to hold whole numbers, but found {float(t[bad])!r} at index {bad}.")
    if t.device != device:
        check_same_device(weights=torch.empty(0, device=device), **{name: t})
    if narrow and t.dtype in (torch.int16, torch.int32):
        return t
    return t.to(torch.int32 if narrow else torch.int64)


def _read(spec: _Field, value: Any, batch_shape: tuple[int, ...], n: int, device: torch.device, validate: bool) -> Tensor:
    """One field as a flat tensor: ``(b, n)``, ``(b, n, n)`` or ``(b, 1)``, checked when ``validate``."""
    name = spec.name
    if spec.kind == "int":
        t = _as_int_tensor(value, name, device, validate)
    else:
        t, _ = as_tensor(value, name)
        if spec.kind == "number" and t.dtype == torch.bool:
            raise DTypeError(f"Expected `{name}` to hold numbers, but got dtype torch.bool.")
        if t.device != device:
            check_same_device(weights=torch.empty(0, device=device), **{name: t})
    tail = {"uid": (n,), "matrix": (n, n), "subnet": ()}[spec.shape]
    if spec.shape == "subnet" and t.ndim == 0:
        t = t.expand(batch_shape)
    if tuple(t.shape) != (*batch_shape, *tail):
        expected = f"to be a scalar or of shape {batch_shape}" if spec.shape == "subnet" else (
            f"of shape {(*batch_shape, *tail)} (matching `weights`)")
        raise ShapeError(f"Expected `{name}` {expected}, but got shape {tuple(t.shape)}.")
    if spec.kind == "number":
        t = t.to(torch.float64) if t.is_floating_point() else t.to(torch.int64)
    if validate and spec.check is not None:
        spec.check(t, name, n)
    t = t.reshape(math.prod(batch_shape), *(tail or (1,)))
    return t.to(torch.bool) if spec.kind == "bool" else t


def _per_subnet(x: Any, name: str, batch_shape: tuple[int, ...], device: torch.device, validate: bool) -> Tensor:
    """A scalar or ``(*)`` per-subnet integer, as ``(b, 1)``."""
    return _read(_Field(name, "subnet", "int"), x, batch_shape, 0, device, validate)


def _prepare(state: SubnetState, validate: bool) -> _Inputs:
    """Read, check and flatten every field of ``state``; fill the defaults of the optional ones."""
    if not isinstance(state, SubnetState):
        raise DTypeError(f"Expected `state` to be a mt.yuma.SubnetState, but got {type(state).__name__}.")
    weights_raw, origin = as_tensor(state.weights, "weights")
    if weights_raw.ndim < 2 or weights_raw.shape[-1] != weights_raw.shape[-2]:
        raise ShapeError(f"Expected `weights` of shape (*, n, n), but got shape {tuple(weights_raw.shape)}.")
    batch_shape, n, device = tuple(weights_raw.shape[:-2]), weights_raw.shape[-1], weights_raw.device
    check_alloc((*batch_shape, n, n), torch.int64, device, "weights")  # before any (b, n, n) copy
    given = {spec.name: weights_raw if spec.name == "weights" else getattr(state, spec.name) for spec in _FIELDS}
    t = {
        spec.name: _read(spec, given[spec.name], batch_shape, n, device, validate)
        for spec in _FIELDS
        if given[spec.name] is not None
    }
    _fill_defaults(t, math.prod(batch_shape), n, device)
    owner, n_valid = t["owner_uid"], t["n_valid"]
    if validate:
        bad = first_index((owner < -1) | (owner >= n_valid))
        if bad is not None:
            raise ValueRangeError(
                f"Expected `owner_uid` in [-1, n_valid - 1] (-1: no owner), but got {int(owner[bad])} "
                f"for subnet {bad[0]} of size {int(n_valid[bad])}."
            )
    return _Inputs(
        batch_shape=batch_shape,
        origin=origin,
        weights=t["weights"],
        stake=t["stake"],
        last_update=t["last_update"],
        block_at_registration=t["block_at_registration"],
        validator_permit=t.get("validator_permit"),
        bonds=t["bonds"],
        block=t["block"],
        owner_uid=owner,
        valid=torch.arange(n, device=device) < n_valid,
        weights_present=t.get("weights_present"),
        previous_consensus=t.get("previous_consensus"),
        padded=state.n_valid is not None,
        commit_block=t.get("commit_block"),
        bonds_reset=t.get("bonds_reset"),
    )


def _fill_defaults(t: dict[str, Tensor], b: int, n: int, device: torch.device) -> None:
    """The defaults of the optional fields not given, in place (see ``SubnetState``)."""
    if "block" not in t:
        if "last_update" in t and n > 0:
            t["block"] = t["last_update"].amax(-1, keepdim=True).clamp(min=1)
        else:
            t["block"] = torch.ones(b, 1, dtype=torch.int64, device=device)
    if "last_update" not in t:
        t["last_update"] = t["block"].expand(-1, n).clone()
    if "block_at_registration" not in t:
        t["block_at_registration"] = torch.zeros_like(t["last_update"])
    if "bonds" not in t:  # no bonds: zeros in the narrowest dtype (every step widens what it reads)
        t["bonds"] = torch.zeros(t["weights"].shape, dtype=torch.uint8, device=device)
    if "n_valid" not in t:
        t["n_valid"] = torch.full_like(t["owner_uid"], n)


def _emission_tensor(emission: Any, batch_shape: tuple[int, ...], device: torch.device, validate: bool) -> Tensor:
    """The emission, an int or ``(*)`` ints, as ``(b, 1)`` int64."""
    e = _per_subnet(emission, "emission", batch_shape, device, validate)
    if validate:
        check_non_negative(e, "emission")
    return e


def _updates_array(weight_updates: Any, x: _Inputs, validate: bool) -> Tensor:
    """An array of updates as ``(T, b, n, n)`` in a narrow integer dtype (int16 or int32; no int64 copy)."""
    shape = (*x.batch_shape, x.n, x.n)
    w = _as_int_tensor(weight_updates, "weight_updates", x.weights.device, validate, narrow=True)
    if tuple(w.shape[1:]) != shape:
        raise ShapeError(f"Expected `weight_updates` of shape (T, *{shape}), but got shape {tuple(w.shape)}.")
    if validate:
        check_u16(w, "weight_updates")
    return w.reshape(w.shape[0], math.prod(x.batch_shape), x.n, x.n)


def _iter_updates(weight_updates: Any, x: _Inputs, validate: bool) -> tuple[Iterator[Tensor], int | None]:
    """The weights of each epoch as ``(b, n, n)`` int64, and their count when it is known."""
    shape = (*x.batch_shape, x.n, x.n)
    if is_array(weight_updates):
        flat = _updates_array(weight_updates, x, validate)
        return iter(flat.unbind(0)), int(flat.shape[0])

    def generate() -> Iterator[Tensor]:
        for t, update in enumerate(weight_updates):
            w = _as_int_tensor(update, f"weight_updates[{t}]", x.weights.device, validate)
            if tuple(w.shape) != shape:
                raise ShapeError(f"Expected `weight_updates[{t}]` of shape {shape}, but got shape {tuple(w.shape)}.")
            if validate:
                check_u16(w, f"weight_updates[{t}]")
            yield w.reshape(-1, x.n, x.n)

    total = len(weight_updates) if hasattr(weight_updates, "__len__") else None
    return generate(), total


def _state_from_inputs(x: _Inputs) -> SubnetState:
    """The inverse of ``_prepare``: a ``SubnetState`` in the caller's array type and shapes."""
    batch, n, wrap = x.batch_shape, x.n, x.origin.wrap

    def uid(t: Tensor) -> Any:
        return wrap(t.reshape(*batch, n))

    present = None if x.weights_present is None else wrap(x.weights_present.reshape(*batch, n, n))
    return SubnetState(
        weights=wrap(x.weights.reshape(*batch, n, n)),
        stake=uid(x.stake),
        last_update=uid(x.last_update),
        block_at_registration=uid(x.block_at_registration),
        validator_permit=uid(x.validator_permit) if x.validator_permit is not None else None,
        bonds=wrap(x.bonds.reshape(*batch, n, n)),
        block=wrap(x.block.reshape(batch)) if batch else int(x.block.reshape(())),
        owner_uid=wrap(x.owner_uid.reshape(batch)) if batch else int(x.owner_uid.reshape(())),
        n_valid=wrap(x.valid.sum(-1).reshape(batch)) if x.padded else None,
        weights_present=present,
        previous_consensus=uid(x.previous_consensus) if x.previous_consensus is not None else None,
        commit_block=uid(x.commit_block) if x.commit_block is not None else None,
        bonds_reset=uid(x.bonds_reset) if x.bonds_reset is not None else None,
    )


def _params_for(params: YumaParams, batch_shape: tuple[int, ...], device: torch.device) -> YumaParams:
    """``params`` with every per-element field as a ``(b, 1)`` int64 tensor on ``device``.

    A per-element field must have the batch shape ``(*)`` of the state it runs on.
    """
    if not params.per_element:
        return params
    resolved = copy.copy(params)
    for name, _, _ in _INT_FIELDS:
        value = getattr(params, name)
        if isinstance(value, Tensor):
            if tuple(value.shape) != batch_shape:
                raise ShapeError(
                    f"Expected the per-element `YumaParams.{name}` of the batch shape {batch_shape}, "
                    f"but got shape {tuple(value.shape)}."
                )
            object.__setattr__(resolved, name, value.to(device).reshape(-1, 1))
    return resolved


def _params_rows(params: YumaParams, rows: slice) -> YumaParams:
    """The resolved ``params`` (``_params_for``) of the subnets ``rows`` of the flat batch."""
    if not params.per_element:
        return params
    part = copy.copy(params)
    for name, _, _ in _INT_FIELDS:
        value = getattr(params, name)
        if isinstance(value, Tensor):
            object.__setattr__(part, name, value[rows])
    return part


def _inputs_rows(x: _Inputs, rows: slice) -> _Inputs:
    """The subnets ``rows`` of a flat batch (every per-subnet tensor sliced; views, no copy)."""
    b = math.prod(x.batch_shape)
    sliced: dict[str, Any] = {
        f.name: value[rows]
        for f in dataclasses.fields(x)
        if isinstance(value := getattr(x, f.name), Tensor) and value.ndim and value.shape[0] == b
    }
    return dataclasses.replace(x, batch_shape=(len(range(b)[rows]),), **sliced)


def _inputs_cat(parts: list[_Inputs], batch_shape: tuple[int, ...], **whole: Any) -> _Inputs:
    """The blocks of a flat batch joined again (the inverse of ``_inputs_rows``).

    ``whole``: fields given for the whole batch instead (matrices the caller already holds
    whole, so that they are not copied block by block).
    """
    first = parts[0]
    joined: dict[str, Any] = {
        f.name: torch.cat([getattr(part, f.name) for part in parts])
        for f in dataclasses.fields(first)
        if f.name not in whole and isinstance(getattr(first, f.name), Tensor) and getattr(first, f.name).ndim
    }
    return dataclasses.replace(first, batch_shape=batch_shape, **joined, **whole)
