"""A thread-safe pool of reusable objects of any type (dicts and lists included).

The original tracked borrowed objects in a ``weakref.WeakSet``, so dicts, lists and tuples raised
``TypeError``; it had no double-release guard and no lock. Here borrowed objects are tracked by
identity, a second release (or the release of a stranger) raises, and ``borrowed()`` gives the
object back even when the block raises.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .._validation import check_callable, check_int
from ..errors import ValueRangeError

__all__ = ["ObjectPool", "ObjectPoolStats"]

T = TypeVar("T")


@dataclass(frozen=True)
class ObjectPoolStats:
    """Counters of an :class:`ObjectPool`: idle (``available``), borrowed (``active``), ever created."""

    available: int
    active: int
    created: int
    max_size: int


def _default_reset(obj: Any) -> None:
    """``obj.reset()`` if it has one, else ``obj.clear()`` (dict, list, set, ...), else nothing."""
    for name in ("reset", "clear"):
        method = getattr(obj, name, None)
        if callable(method):
            method()
            return


class ObjectPool(Generic[T]):
    """Reuse objects that are costly to create (buffers, dicts of scratch state, parsers).

    ``acquire()`` hands out an idle object (last released, first out) or a new ``factory()``;
    ``release(obj)`` resets it and keeps it if fewer than ``max_size`` are idle, else drops it.
    Every method takes one lock, so threads may share a pool; ``reset`` and ``factory`` run
    outside it.

    Args:
        factory: makes a new object, called without arguments.
        max_size: idle objects kept at most (>= 0; 0 keeps none).
        reset: ``reset(obj)`` prepares a released object for its next user. Default: call
            ``obj.reset()`` if the object has it, else ``obj.clear()`` if it has that (so a pooled
            dict or list comes back empty), else nothing. If ``reset`` raises, the object is
            dropped and the exception propagates.

    Example:
        >>> pool = ObjectPool(dict, max_size=2)
        >>> with pool.borrowed() as scratch:
        ...     scratch["uid"] = 7
        >>> with pool.borrowed() as again:
        ...     again is scratch, again
        (True, {})
    """

    def __init__(self, factory: Callable[[], T], max_size: int = 100, reset: Callable[[T], Any] | None = None) -> None:
        check_callable(factory, "factory")
        if reset is not None:
            check_callable(reset, "reset")
        self.factory = factory
        self.max_size = check_int(max_size, "max_size", low=0)
        self._reset: Callable[[T], Any] = reset if reset is not None else _default_reset
        self._lock = threading.Lock()
        self._idle: list[T] = []
        self._active: dict[int, T] = {}  # id -> object; the strong reference keeps ids unique
        self._created = 0

    def acquire(self) -> T:
        """An idle object, or a new one from ``factory``."""
        with self._lock:
            if self._idle:
                reused = self._idle.pop()
                self._active[id(reused)] = reused
                return reused
        obj = self.factory()
        with self._lock:
            self._created += 1
            self._active[id(obj)] = obj
        return obj

    def release(self, obj: T) -> None:
        """Give ``obj`` back: reset it and keep it for reuse if there is room.

        Raises:
            ValueRangeError: ``obj`` is not currently borrowed from this pool (released twice,
                or never acquired here).
        """
        with self._lock:
            if self._active.get(id(obj)) is not obj:
                raise ValueRangeError(
                    f"Expected `obj` to be borrowed from this pool, but {type(obj).__name__} at "
                    f"{id(obj):#x} is not (released twice, or never acquired here)."
                )
            del self._active[id(obj)]
            keep = len(self._idle) < self.max_size
        if not keep:
            return
        self._reset(obj)
        with self._lock:
            if len(self._idle) < self.max_size:
                self._idle.append(obj)

    @contextmanager
    def borrowed(self) -> Iterator[T]:
        """``with pool.borrowed() as obj:`` acquire, and release at the end of the block."""
        obj = self.acquire()
        try:
            yield obj
        finally:
            self.release(obj)

    def clear(self) -> None:
        """Drop every idle object (borrowed ones stay borrowed)."""
        with self._lock:
            self._idle.clear()

    def stats(self) -> ObjectPoolStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return ObjectPoolStats(len(self._idle), len(self._active), self._created, self.max_size)

    def get_stats(self) -> dict[str, int]:
        """The original's form: ``{"available", "active", "max_size"}``."""
        s = self.stats()
        return {"available": s.available, "active": s.active, "max_size": s.max_size}
