"""Argument checks the async layer shares that are not scalar (those live in ``_validation``).

``exception_types`` reads the "which exceptions" option that both :class:`~.retry.RetryOptions`
(``retry_on``) and :class:`~.breaker.CircuitBreaker` (``expected_exceptions``) take.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import DTypeError, ValueRangeError

__all__: list[str] = []


def exception_types(value: object, name: str) -> tuple[type[BaseException], ...]:
    """``value`` (None, one exception class, or several) as a non-empty tuple of classes."""
    if value is None:
        return (Exception,)
    if isinstance(value, type):
        types: tuple[object, ...] = (value,)
    elif isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise DTypeError(
            f"`{name}` must be an exception class or a collection of them (or None), got {value!r}"
        )
    else:
        types = tuple(value)
    if not types:
        raise ValueRangeError(
            f"`{name}` is empty; name at least one exception type, or pass None for every "
            f"Exception"
        )
    for item in types:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise DTypeError(f"`{name}` must hold exception classes, got {item!r}")
    return types  # type: ignore[return-value]
