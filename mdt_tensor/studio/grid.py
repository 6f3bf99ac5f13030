"""Parameter grids: the cartesian product of a few YumaParams fields, in the units people think in.

A grid maps a name to a list of values: ``{"kappa": [0.4, 0.5], "bonds_moving_avg": [0.9, 0.975],
"liquid_alpha": [False, (0.7, 0.9)]}``. Fractions are read as the chain's u16 / per-million units
(integers are taken as already in those units); ``liquid_alpha`` takes a bool or a ``(low, high)``
pair, which turns it on with those bounds. Any other ``YumaParams`` field may be named directly.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._constants import U16_MAX
from ..chain.yuma.types import YumaParams
from ..errors import DTypeError, ValueRangeError

__all__ = ["GridPoint", "expand_grid"]

#: Names people use (the SDK's) for the fields of YumaParams.
ALIASES = {"bonds_moving_avg": "bonds_moving_average", "liquid_alpha_enabled": "liquid_alpha",
           "yuma_version": "yuma3", "max_validators": "max_allowed_validators"}

_U16_FRACTIONS = ("kappa", "bonds_penalty", "alpha_low", "alpha_high")


@dataclass(frozen=True)
class GridPoint:
    """One point of a grid: its index, the values as the caller gave them, and the parameters they give."""

    index: int
    values: dict[str, Any]
    params: YumaParams


def _fraction(name: str, value: Any, scale: int) -> int:
    """A fraction in [0, 1] (a float) as ``round(value * scale)``; an int is taken as already scaled."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DTypeError(f"Expected grid values of `{name}` to be numbers, but got {value!r}.")
    if isinstance(value, int):
        return value
    if not 0.0 <= value <= 1.0:
        raise ValueRangeError(f"Expected grid values of `{name}` as fractions in [0, 1] (or integers in chain units), but got {value!r}.")
    return round(value * scale)


def _liquid_alpha(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"liquid_alpha": value}
    if isinstance(value, Sequence) and len(value) == 2:
        low, high = (_fraction("liquid_alpha", v, U16_MAX) for v in value)
        return {"liquid_alpha": True, "alpha_low": low, "alpha_high": high}
    raise DTypeError(f"Expected grid values of `liquid_alpha` to be bools or (low, high) pairs, but got {value!r}.")


def _fields(name: str, value: Any) -> dict[str, Any]:
    """The YumaParams fields one grid value sets."""
    field = ALIASES.get(name, name)
    if field == "liquid_alpha":
        return _liquid_alpha(value)
    if field in _U16_FRACTIONS:
        return {field: _fraction(name, value, U16_MAX)}
    if field == "bonds_moving_average":
        return {field: _fraction(name, value, 1_000_000)}
    if field == "yuma3" and name == "yuma_version":
        return {field: value == 3}
    return {field: value}


def expand_grid(grid: Mapping[str, Sequence[Any]], base: YumaParams = YumaParams()) -> list[GridPoint]:
    """Every combination of the grid's values (the last name varies fastest), as parameters over ``base``.

    Raises:
        ValueRangeError: an unknown name, an empty list, or a value out of the field's range.
        DTypeError: a value of the wrong type.

    Example:
        >>> points = expand_grid({"kappa": [0.5, 0.6], "bonds_moving_avg": [0.9]})
        >>> [(p.params.kappa, p.params.bonds_moving_average) for p in points]
        [(32768, 900000), (39321, 900000)]
    """
    known = {f.name for f in dataclasses.fields(YumaParams)}
    for name, values in grid.items():
        if ALIASES.get(name, name) not in known:
            raise ValueRangeError(f"Unknown grid parameter {name!r}; expected a YumaParams field or one of {sorted(ALIASES)}.")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueRangeError(f"Expected a non-empty list of values for grid parameter {name!r}, but got {values!r}.")
    names = list(grid)
    points = []
    for index, combo in enumerate(itertools.product(*(grid[name] for name in names))):
        changes: dict[str, Any] = {}
        for name, value in zip(names, combo):
            changes.update(_fields(name, value))
        points.append(GridPoint(index, dict(zip(names, combo)), dataclasses.replace(base, **changes)))
    return points
