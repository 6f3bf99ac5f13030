"""Memoise sync and async functions with one in-flight call per key: :class:`QueryCache`.

Keys are the decorated function and its bound arguments (unhashable ones converted); entries
live in an :class:`~.lru.LRUCache`. Concurrent callers of one key share one call, sync or async,
so a slow query runs once however many callers ask for it at the same time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .._validation import check_callable
from ..errors import DTypeError
from .lru import CacheStats, LRUCache, check_ttl

__all__ = ["QueryCacheStats", "QueryCache", "query_cache"]


@dataclass(frozen=True)
class QueryCacheStats(CacheStats):
    """:class:`CacheStats` plus ``shared_calls``: callers served by another caller's in-flight call."""

    shared_calls: int = 0


@dataclass(frozen=True)
class _Unhashable:
    """Stand-in key for an unhashable argument (its own class, so it never equals a user tuple)."""

    kind: str
    payload: Hashable


def _normalise(value: Any) -> Hashable:
    """A hashable stand-in for ``value`` that is equal for equal arguments.

    Hashable values are used as they are (so ``1`` and ``1.0`` share an entry, as in a dict).
    Lists, tuples, dicts, sets and bytearrays are converted structurally, numpy arrays by dtype,
    shape and bytes; any other unhashable object falls back to ``repr`` (which must then
    describe the value completely, or unequal arguments may share an entry).
    """
    try:
        hash(value)
        return value
    except TypeError:
        pass
    if isinstance(value, (list, tuple)):
        return _Unhashable(type(value).__qualname__, tuple(_normalise(v) for v in value))
    if isinstance(value, Mapping):
        return _Unhashable("mapping", frozenset((_normalise(k), _normalise(v)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return _Unhashable("set", frozenset(_normalise(v) for v in value))
    if isinstance(value, bytearray):
        return _Unhashable("bytearray", bytes(value))
    if hasattr(value, "tobytes") and hasattr(value, "dtype") and hasattr(value, "shape"):
        return _Unhashable("ndarray", (str(value.dtype), tuple(value.shape), value.tobytes()))
    return _Unhashable("repr:" + type(value).__qualname__, repr(value))


_CallKey = tuple  # (decorated function, ((argument name, normalised value), ...))


class _SyncFlight:
    __slots__ = ("future", "owner", "invalidated")

    def __init__(self) -> None:
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.owner = threading.get_ident()
        self.invalidated = False


class _AsyncFlight:
    __slots__ = ("task", "loop", "waiters", "invalidated")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.task: asyncio.Task[Any] | None = None
        self.loop = loop
        self.waiters = 0
        self.invalidated = False


def _mark_retrieved(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # the waiters re-raise it; avoid "exception was never retrieved"


class QueryCache:
    """Memoise sync and async functions in an :class:`LRUCache`, one in-flight call per key.

    * Keys: ``(decorated function, bound arguments)`` after ``inspect.signature(f).bind`` and
      ``apply_defaults``, so ``f(1, y=0)``, ``f(1, 0)`` and ``f(x=1)`` (with ``y=0`` the default)
      share one entry. Two functions never share entries, even with the same name. Unhashable
      arguments are converted (see ``_normalise``: lists, dicts, sets, numpy arrays structurally,
      anything else by ``repr``). Objects hashed by identity (plain objects, torch tensors) only
      hit when the very same object is passed again.
    * ``None`` results are cached. Exceptions are never cached; they reach every caller that shared
      the failing call.
    * Concurrent callers of one key share one call: async callers await one task (cancelled only
      when every caller has gone), threads wait on one ``concurrent.futures.Future``. A recursive
      call of the same key in the same thread runs uncached instead of deadlocking.
    * Invalidation: ``fn.invalidate(*args, **kwargs)``, ``cache.invalidate(fn, *args, **kwargs)``,
      ``cache.invalidate_function(fn)``, ``cache.invalidate_where(predicate)``, ``cache.clear()``. An
      invalidated in-flight call still answers its current callers but is not stored.

    Args:
        max_size: capacity in entries (all decorated functions together).
        default_ttl: seconds an entry lives unless ``cached(ttl=...)`` says otherwise (None: forever).
        clock: monotonic time source.

    Example:
        >>> qc = QueryCache(max_size=100, default_ttl=60.0)
        >>> calls = []
        >>> @qc.cached
        ... def square(x, scale=1):
        ...     calls.append(x)
        ...     return x * x * scale
        >>> square(3), square(x=3), square(3, scale=1), calls
        (9, 9, 9, [3])
        >>> square.invalidate(3); square(3), calls
        True
        (9, [3, 3])
    """

    def __init__(
        self, max_size: int = 1000, default_ttl: float | None = 300.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cache: LRUCache[Any, Any] = LRUCache(max_size, default_ttl, clock=clock)
        self._lock = threading.Lock()  # guards _inflight and _shared
        self._inflight: dict[Any, _SyncFlight | _AsyncFlight] = {}
        self._shared = 0

    @property
    def cache(self) -> LRUCache[Any, Any]:
        """The underlying :class:`LRUCache` (keys are ``(function, arguments)`` tuples)."""
        return self._cache

    # -- decorator ---------------------------------------------------------------------------------
    def cached(self, fn: Callable[..., Any] | None = None, *, ttl: float | None = None) -> Any:
        """Decorate a sync or ``async def`` function; usable bare (``@qc.cached``) or called (``@qc.cached(ttl=60)``).

        The wrapper keeps ``functools.wraps`` metadata and gains ``invalidate(*args, **kwargs)``
        and ``invalidate_all()``.
        """
        entry_ttl = check_ttl(ttl, "ttl")

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            check_callable(func, "fn")
            signature = inspect.signature(func)

            def make_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _CallKey:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                return (wrapper, tuple((name, _normalise(v)) for name, v in bound.arguments.items()))

            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def wrapper(*args: Any, **kwargs: Any) -> Any:
                    return await self._call_async(func, make_key(args, kwargs), args, kwargs, entry_ttl)

            else:

                @functools.wraps(func)
                def wrapper(*args: Any, **kwargs: Any) -> Any:
                    return self._call_sync(func, make_key(args, kwargs), args, kwargs, entry_ttl)

            wrapper._mdt_make_key = make_key  # type: ignore[attr-defined]
            wrapper.invalidate = lambda *a, **kw: self.invalidate(wrapper, *a, **kw)  # type: ignore[attr-defined]
            wrapper.invalidate_all = lambda: self.invalidate_function(wrapper)  # type: ignore[attr-defined]
            wrapper.query_cache = self  # type: ignore[attr-defined]
            return wrapper

        return decorate(fn) if fn is not None else decorate

    def _call_sync(self, func: Callable[..., Any], key: _CallKey, args: tuple, kwargs: dict, ttl: float | None) -> Any:
        found, value = self._cache.lookup(key)
        if found:
            return value
        leader: _SyncFlight | Literal[False] | None
        with self._lock:
            flight = self._inflight.get(key)
            if isinstance(flight, _SyncFlight):
                if flight.owner == threading.get_ident():
                    flight = None  # recursion on our own key: run it uncached below
                    leader = None
                else:
                    self._shared += 1
                    leader = False
            elif flight is None:
                found, value = self._cache.peek(key)
                if found:  # a leader finished between our lookup and here
                    return value
                flight = leader = _SyncFlight()
                self._inflight[key] = flight
            else:
                leader = None  # an async call of this key is in flight elsewhere: do not share it
        if leader is None:
            return func(*args, **kwargs)
        if leader is False:
            return flight.future.result()  # type: ignore[union-attr]
        return self._lead_sync(func, key, args, kwargs, ttl, leader)

    def _lead_sync(
        self, func: Callable[..., Any], key: _CallKey, args: tuple, kwargs: dict, ttl: float | None,
        flight: _SyncFlight,
    ) -> Any:
        """Run the call this thread leads; its result or exception reaches every sharer."""
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            self._land(key, flight)
            flight.future.set_exception(exc)
            raise
        if not flight.invalidated:
            self._cache.set(key, result, ttl)
        self._land(key, flight)
        flight.future.set_result(result)
        return result

    async def _call_async(
        self, func: Callable[..., Awaitable[Any]], key: _CallKey, args: tuple, kwargs: dict, ttl: float | None
    ) -> Any:
        found, value = self._cache.lookup(key)
        if found:
            return value
        loop = asyncio.get_running_loop()
        with self._lock:
            flight = self._inflight.get(key)
            if flight is None:
                flight = _AsyncFlight(loop)
                self._inflight[key] = flight
                flight.task = loop.create_task(self._run_flight(func, key, args, kwargs, ttl, flight))
                flight.task.add_done_callback(_mark_retrieved)
            elif isinstance(flight, _AsyncFlight) and flight.loop is loop:
                self._shared += 1
            else:
                flight = None  # in flight in another thread or loop: do not share across loops
        if flight is None:
            result = await func(*args, **kwargs)
            self._cache.set(key, result, ttl)
            return result
        task = flight.task
        assert task is not None
        flight.waiters += 1
        try:
            return await asyncio.shield(task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not task.done():
                # every caller has gone (cancelled): stop the shared call, and let no new caller
                # join it (it would receive a cancellation it never asked for)
                self._land(key, flight)
                task.cancel()

    async def _run_flight(
        self, func: Callable[..., Awaitable[Any]], key: _CallKey, args: tuple, kwargs: dict, ttl: float | None,
        flight: _AsyncFlight,
    ) -> Any:
        try:
            result = await func(*args, **kwargs)
        except BaseException:
            self._land(key, flight)
            raise
        if not flight.invalidated:
            self._cache.set(key, result, ttl)
        self._land(key, flight)
        return result

    def _land(self, key: _CallKey, flight: _SyncFlight | _AsyncFlight) -> None:
        with self._lock:
            if self._inflight.get(key) is flight:
                del self._inflight[key]

    # -- invalidation ------------------------------------------------------------------------------
    def _forget_inflight(self, match: Callable[[_CallKey], bool]) -> None:
        with self._lock:
            for key in [k for k in self._inflight if match(k)]:
                self._inflight.pop(key).invalidated = True

    def invalidate(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """Drop the entry of ``fn(*args, **kwargs)``; True if there was a live one."""
        make_key = getattr(fn, "_mdt_make_key", None)
        if make_key is None:
            raise DTypeError(f"{fn!r} is not decorated with QueryCache.cached")
        key = make_key(args, kwargs)
        self._forget_inflight(lambda k: k == key)
        return self._cache.delete(key)

    def invalidate_function(self, fn: Callable[..., Any]) -> int:
        """Drop every entry of the decorated function ``fn``; returns how many."""
        self._forget_inflight(lambda k: k[0] is fn)
        return self._cache.delete_where(lambda k: k[0] is fn)

    def invalidate_where(self, predicate: Callable[[Callable[..., Any], Mapping[str, Any]], bool]) -> int:
        """Drop every entry for which ``predicate(function, arguments)`` is true; returns how many.

        ``arguments`` maps parameter names to the (normalised) argument values, defaults included.
        """
        match = lambda k: bool(predicate(k[0], dict(k[1])))  # noqa: E731
        self._forget_inflight(match)
        return self._cache.delete_where(match)

    def clear(self) -> None:
        """Drop every entry (and let in-flight calls finish without storing their results)."""
        self._forget_inflight(lambda k: True)
        self._cache.clear()

    # -- statistics --------------------------------------------------------------------------------
    def stats(self) -> QueryCacheStats:
        """Cache counters plus ``shared_calls`` (callers that joined another caller's call)."""
        s = self._cache.stats()
        with self._lock:
            shared = self._shared
        return QueryCacheStats(**s.__dict__, shared_calls=shared)

    def get_stats(self) -> dict[str, Any]:
        """The original library's dict of statistics (plus ``expirations`` and ``shared_calls``)."""
        stats = self._cache.get_stats()
        stats["shared_calls"] = self.stats().shared_calls
        return stats


query_cache = QueryCache(max_size=1000, default_ttl=300.0)
"""The module-level cache the original library exposed: ``@query_cache.cached(ttl=60)``."""
