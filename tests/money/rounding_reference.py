"""An obviously correct rounding of a Fraction to an int, the reference for the money tests."""

from __future__ import annotations

from fractions import Fraction

MODES = ["floor", "ceil", "down", "up", "half_even", "half_up", "half_down"]


def reference_round(value: Fraction, mode: str) -> int:
    """Slow, obvious rounding of a Fraction to an int."""
    lower = value.numerator // value.denominator
    if value == lower:
        return lower
    upper = lower + 1
    toward_zero, away = (lower, upper) if value > 0 else (upper, lower)
    if mode == "floor":
        return lower
    if mode == "ceil":
        return upper
    if mode == "down":
        return toward_zero
    if mode == "up":
        return away
    distance = value - lower
    if distance != Fraction(1, 2):
        return lower if distance < Fraction(1, 2) else upper
    return {"half_even": lower if lower % 2 == 0 else upper, "half_up": away, "half_down": toward_zero}[mode]
