"""A subnet's epoch hyperparameters from the Bittensor SDK's field names.

``subtensor.get_subnet_hyperparameters(netuid)`` returns a ``SubnetHyperparameters`` dataclass
(``kappa``, ``bonds_moving_avg``, ``alpha_high``, ``alpha_low``, ``liquid_alpha_enabled``,
``alpha_sigmoid_steepness``, ``yuma_version``, ``activity_cutoff``, ``max_validators``,
``tempo``, ...); dumped to JSON (``dataclasses.asdict``) it is what ``--hyperparameters`` reads.
:func:`params_from_chain` maps those names to :class:`mdt_tensor.yuma.YumaParams` (the lead
binds it as ``YumaParams.from_chain``), with a clear error for each bad value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import mdt_tensor as mt
from mdt_tensor.errors import DTypeError, ValueRangeError

__all__ = ["params_from_chain", "chain_fields", "SDK_UNUSED_FIELDS"]

#: SDK name -> (YumaParams field, low, high); bounds are the chain's storage types.
_INT_FIELDS: dict[str, tuple[str, int, int]] = {
    "kappa": ("kappa", 0, 65535),
    "bonds_penalty": ("bonds_penalty", 0, 65535),
    "bonds_moving_avg": ("bonds_moving_average", 0, 1_000_000),
    "alpha_high": ("alpha_high", 0, 65535),
    "alpha_low": ("alpha_low", 0, 65535),
    "alpha_sigmoid_steepness": ("alpha_sigmoid_steepness", -(2**15), 2**15 - 1),
    "activity_cutoff": ("activity_cutoff", 0, 2**62),
    "max_validators": ("max_allowed_validators", 0, 65535),
    "tempo": ("tempo", 0, 65535),
    "stake_threshold": ("stake_threshold", 0, 2**62),
}
_BOOL_FIELDS = {"liquid_alpha_enabled": "liquid_alpha"}

#: SDK fields the epoch does not use: accepted and ignored.
SDK_UNUSED_FIELDS = frozenset({
    "rho", "immunity_period", "min_allowed_weights", "max_weight_limit", "min_difficulty", "max_difficulty",
    "weights_version", "weights_rate_limit", "adjustment_interval", "registration_allowed",
    "target_regs_per_interval", "min_burn", "max_burn", "max_regs_per_block", "serving_rate_limit",
    "adjustment_alpha", "difficulty", "commit_reveal_period", "commit_reveal_weights_interval",
    "commit_reveal_weights_enabled", "subnet_is_active", "transfers_enabled", "bonds_reset_enabled",
    "user_liquidity_enabled",
})


def chain_fields(mapping: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """Split ``mapping``'s names into (used by the epoch, known SDK fields ignored, unknown)."""
    used, ignored, unknown = [], [], []
    for name in mapping:
        if name in _INT_FIELDS or name in _BOOL_FIELDS or name == "yuma_version":
            used.append(name)
        elif name in SDK_UNUSED_FIELDS:
            ignored.append(name)
        else:
            unknown.append(str(name))
    return used, ignored, unknown


def _int_value(name: str, value: Any, low: int, high: int) -> int:
    """An integer field; a float must be whole (the SDK decodes the steepness to a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DTypeError(f"Expected hyperparameter `{name}` to be an integer, but got {type(value).__name__} {value!r}.")
    if isinstance(value, float):
        if not math.isfinite(value) or value != math.floor(value):
            raise ValueRangeError(f"Expected hyperparameter `{name}` to be a whole number, but got {value!r}.")
        value = int(value)
    if not low <= value <= high:
        raise ValueRangeError(f"Expected hyperparameter `{name}` in [{low}, {high}], but got {value}.")
    return int(value)


def params_from_chain(
    mapping: Mapping[str, Any], *, base: mt.yuma.YumaParams | None = None, strict: bool = False
) -> mt.yuma.YumaParams:
    """:class:`YumaParams` from the SDK's ``SubnetHyperparameters`` names.

    Mapping: ``kappa``, ``alpha_high``, ``alpha_low``, ``tempo`` (u16 as stored);
    ``bonds_moving_avg`` (per million) -> ``bonds_moving_average``; ``liquid_alpha_enabled`` ->
    ``liquid_alpha``; ``alpha_sigmoid_steepness`` (the chain's i16; the SDK decodes it to a
    float such as ``1000.0``, which must be whole); ``yuma_version`` (2 or 3) -> ``yuma3``;
    ``activity_cutoff`` (blocks); ``max_validators`` -> ``max_allowed_validators``; and, though
    the SDK's dataclass lacks them, ``bonds_penalty`` and ``stake_threshold``. Fields not given
    keep ``base``'s values (default: the chain's defaults). The SDK's other fields
    (:data:`SDK_UNUSED_FIELDS`) do not enter the epoch and are ignored, as are unknown names
    unless ``strict``. An SDK ``SubnetHyperparameters`` dataclass is accepted as it is.

    Raises:
        DTypeError: a value of the wrong type (a bool for an integer, text for a number, ...).
        ValueRangeError: a value out of its storage range, ``alpha_low > alpha_high``, a
            ``yuma_version`` other than 2 or 3, or (with ``strict``) an unknown name.

    Example:
        >>> p = params_from_chain({"kappa": 32767, "bonds_moving_avg": 975000, "yuma_version": 3,
        ...                        "alpha_sigmoid_steepness": 1000.0, "rho": 10})
        >>> p.bonds_moving_average, p.yuma3, p.alpha_sigmoid_steepness
        (975000, True, 1000)
    """
    if dataclasses.is_dataclass(mapping) and not isinstance(mapping, type):
        mapping = dataclasses.asdict(mapping)
    if not isinstance(mapping, Mapping):
        raise DTypeError(f"Expected the hyperparameters as a mapping of SDK names, but got {type(mapping).__name__}.")
    _, _, unknown = chain_fields(mapping)
    if strict and unknown:
        raise ValueRangeError(f"Unknown hyperparameter name(s): {', '.join(sorted(unknown))}.")
    changes: dict[str, Any] = {}
    for name, (target, low, high) in _INT_FIELDS.items():
        if name in mapping:
            changes[target] = _int_value(name, mapping[name], low, high)
    for name, target in _BOOL_FIELDS.items():
        if name in mapping:
            value = mapping[name]
            if not isinstance(value, bool):
                raise DTypeError(f"Expected hyperparameter `{name}` to be true or false, but got {value!r}.")
            changes[target] = value
    if "yuma_version" in mapping:
        version = _int_value("yuma_version", mapping["yuma_version"], 0, 2**31)
        if version not in (2, 3):
            raise ValueRangeError(f"Expected hyperparameter `yuma_version` to be 2 or 3, but got {version}.")
        changes["yuma3"] = version == 3
    params = dataclasses.replace(base or mt.yuma.YumaParams(), **changes)  # re-checks every field
    return params
