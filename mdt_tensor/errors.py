"""The error family.

Every error raised on purpose by ``mdt_tensor`` derives from :class:`MdtError` *and* from the
builtin a caller would catch anyway (``ValueError``, ``TypeError``, ``RuntimeError``,
``TimeoutError``), so ``except ValueError`` keeps working. Messages name the argument, what was
expected, what arrived and, for value problems, the first offending index.
"""

from __future__ import annotations

__all__ = [
    "MdtError",
    "ShapeError",
    "DTypeError",
    "ValueRangeError",
    "DeviceMismatchError",
    "WeightError",
    "BalanceError",
    "WeiOverflowError",
    "NetworkError",
    "CircuitOpenError",
    "PoolTimeoutError",
    "PoolClosedError",
]


class MdtError(Exception):
    """Base of every error ``mdt_tensor`` raises on purpose."""


class ShapeError(MdtError, ValueError):
    """An argument has the wrong number of dimensions, the wrong size, or a bad ``dim``."""


class DTypeError(MdtError, TypeError):
    """An argument has a dtype or Python type the operation does not accept."""


class ValueRangeError(MdtError, ValueError):
    """An argument holds a value outside its valid set (NaN, inf, negative, out of range)."""


class DeviceMismatchError(MdtError, ValueError):
    """Tensors that must live on one device live on different devices."""


class WeightError(MdtError, ValueError):
    """A weight operation was asked for something it cannot do (the original library's name)."""


class BalanceError(MdtError, ValueError):
    """A balance is malformed, out of range, or mixes units."""


class WeiOverflowError(ValueRangeError):
    """An amount of wei does not fit the int64 range (|x| > 2**63 - 1)."""


class NetworkError(MdtError, RuntimeError):
    """A network operation failed in a way the caller asked to hear about."""


class CircuitOpenError(NetworkError):
    """A circuit breaker refused a call; ``retry_after`` says how many seconds until it may pass."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PoolTimeoutError(MdtError, TimeoutError):
    """No pooled resource became free within the timeout."""


class PoolClosedError(MdtError, RuntimeError):
    """The pool was used after ``close()``."""
