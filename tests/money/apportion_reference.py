"""Slow, obviously correct Python Fraction / int references for the apportionment tests."""

from __future__ import annotations

from fractions import Fraction


def exact_shares(total: int, weights: list) -> list[Fraction]:
    values = [Fraction(w) for w in weights]
    weight_sum = sum(values)
    return [total * v / weight_sum for v in values]


def hamilton(total: int, weights: list) -> tuple[list[int], int]:
    """Largest remainder, slowly and obviously: floors, then +1 by remainder, ties to the lower index."""
    shares = exact_shares(total, weights)
    parts = [s.numerator // s.denominator for s in shares]
    left = total - sum(parts)
    order = sorted(range(len(parts)), key=lambda i: (-(shares[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return parts, 0


def floors(total: int, weights: list) -> tuple[list[int], int]:
    parts = [s.numerator // s.denominator for s in exact_shares(total, weights)]
    return parts, total - sum(parts)


def assert_quota(total: int, weights: list, parts: list[int], slack: Fraction = Fraction(0)) -> None:
    assert sum(parts) == total
    for i, (p, share) in enumerate(zip(parts, exact_shares(total, weights))):
        assert abs(p - share) < 1 + slack, (i, p, float(share))
        if weights[i] == 0:
            assert p == 0
    order = sorted(range(len(weights)), key=lambda i: Fraction(weights[i]))
    for lo, hi in zip(order, order[1:]):  # a larger weight never gets less
        if Fraction(weights[hi]) > Fraction(weights[lo]):
            assert parts[hi] >= parts[lo]


def integer_hamilton(total: int, q: list[int]) -> list[int]:
    """Largest remainder for integer weights in Python ints: floors, then +1 by remainder, ties to the lower index."""
    q_sum = sum(q)
    parts = [total * x // q_sum for x in q]
    remainders = [total * x % q_sum for x in q]
    order = sorted(range(len(q)), key=lambda i: (-remainders[i], i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts
