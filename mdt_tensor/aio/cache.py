"""Caches and request batching for the async layer: ``LRUCache``, ``QueryCache``, ``BatchProcessor``.

Why hand-written rather than ``cachetools`` / ``functools.lru_cache`` / ``async_lru``:

* ``cachetools`` is not a run-time dependency and its caches are not thread-safe by themselves
  (every access, reads included, reorders the LRU list); wrapping it in a lock still gives no
  per-item TTL, no expiration count and no way to tell "expired" from "never cached".
* ``functools.lru_cache`` has no TTL, no invalidation by argument and no async support; it also
  runs a function twice when two threads miss the same key at once.
* The decorator must de-duplicate concurrent calls of one key (one in-flight call, shared by every
  caller, sync or async), which none of the above does.

Semantics (chosen to match ``cachetools.TTLCache``, against which the tests check this cache):

* An entry set at time ``t`` with time-to-live ``ttl`` expires when ``clock() >= t + ttl``; it is
  never returned afterwards. ``get`` does not extend the lifetime (no sliding expiry).
* Expired entries do not count toward ``max_size``: a full cache first drops every expired entry
  and only then evicts live entries, least recently used first.
* ``get`` (hit) and ``set`` make a key the most recently used; ``in`` does not.
* ``ttl`` must be positive (or ``None`` for "never expires"): an entry that would be dead on arrival
  is almost certainly a bug, so ``ttl <= 0`` raises instead of silently caching nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import heapq
import inspect
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from ..errors import MdtError, PoolClosedError, ValueRangeError

__all__ = [
    "MISSING",
    "CacheStats",
    "QueryCacheStats",
    "LRUCache",
    "QueryCache",
    "query_cache",
    "BatchProcessor",
    "BatchResultError",
]

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")
R = TypeVar("R")


class _MissingType:
    """Type of :data:`MISSING`, the "no value" sentinel (a cached ``None`` is a real value)."""

    _instance: _MissingType | None = None

    def __new__(cls) -> _MissingType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _MissingType()
"""Sentinel for :meth:`LRUCache.get`: ``cache.get(key, MISSING) is MISSING`` means "not cached"."""


def _check_ttl(ttl: float | None, name: str) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise ValueRangeError(f"`{name}` must be a positive number of seconds or None, got {ttl!r}")
    if math.isnan(ttl) or ttl <= 0:
        raise ValueRangeError(
            f"`{name}` must be > 0 seconds (or None: never expires), got {ttl!r}; "
            "an entry with ttl <= 0 would be expired on arrival"
        )
    return None if math.isinf(ttl) else float(ttl)


@dataclass(frozen=True)
class CacheStats:
    """A consistent snapshot of a cache's counters (taken under the cache's lock).

    Attributes:
        hits: lookups that found a live entry.
        misses: lookups that found nothing (or only an expired entry).
        evictions: live entries dropped to make room (least recently used first).
        expirations: entries removed because their time-to-live had passed.
        size: live entries now.
        max_size: capacity.
        hit_rate: ``hits / (hits + misses)``, 0.0 before the first lookup.
    """

    hits: int
    misses: int
    evictions: int
    expirations: int
    size: int
    max_size: int
    hit_rate: float


@dataclass(frozen=True)
class QueryCacheStats(CacheStats):
    """:class:`CacheStats` plus ``shared_calls``: callers served by another caller's in-flight call."""

    shared_calls: int = 0


class LRUCache(Generic[K, V]):
    """A thread-safe least-recently-used cache with optional per-entry time-to-live.

    Every method takes a ``threading.Lock`` for a few dictionary operations and never awaits, so it
    is safe from threads and cheap to call from async code.

    Args:
        max_size: capacity in entries, >= 1.
        ttl: default time-to-live in seconds (> 0), or None for "never expires".
        clock: monotonic time source in seconds (inject a fake one in tests).

    Example:
        >>> now = [0.0]
        >>> cache = LRUCache(2, ttl=10.0, clock=lambda: now[0])
        >>> cache.set("a", None); cache.set("b", 2)
        >>> cache.get("a", MISSING) is None        # a cached None is a value
        True
        >>> now[0] = 10.0                          # expires when clock >= set time + ttl
        >>> cache.get("a", MISSING) is MISSING, len(cache)
        (True, 0)
        >>> cache.stats().expirations
        2
    """

    def __init__(
        self, max_size: int = 1000, ttl: float | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ValueRangeError(f"`max_size` must be an int >= 1, got {max_size!r}")
        self.max_size = max_size
        self.ttl = _check_ttl(ttl, "ttl")
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (value, expires or None, sequence number); order: least recently used first.
        self._data: OrderedDict[K, tuple[V, float | None, int]] = OrderedDict()
        # Lazy min-heap of (expires, seq, key); an item is stale once its key was re-set or removed.
        self._heap: list[tuple[float, int, K]] = []
        self._seq = 0
        self._hits = self._misses = self._evictions = self._expirations = 0

    # -- internals (call with the lock held) -------------------------------------------------------
    def _purge_expired(self, now: float) -> None:
        heap, data = self._heap, self._data
        while heap and heap[0][0] <= now:
            _, seq, key = heapq.heappop(heap)
            entry = data.get(key)
            if entry is not None and entry[2] == seq:
                del data[key]
                self._expirations += 1

    def _live_entry(self, key: K) -> tuple[V, float | None, int] | None:
        """The entry for ``key`` if it is live; an expired one is removed and counted."""
        entry = self._data.get(key)
        if entry is None:
            return None
        expires = entry[1]
        if expires is not None and self._clock() >= expires:
            del self._data[key]
            self._expirations += 1
            return None
        return entry

    def _purge_if_due(self) -> None:
        if self._heap:
            self._purge_expired(self._clock())

    # -- lookups -----------------------------------------------------------------------------------
    def lookup(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` for a live entry (counts a hit, marks it recently used), else ``(False, None)``."""
        with self._lock:
            entry = self._live_entry(key)
            if entry is None:
                self._misses += 1
                return False, None
            self._data.move_to_end(key)
            self._hits += 1
            return True, entry[0]

    def peek(self, key: K) -> tuple[bool, V | None]:
        """Like :meth:`lookup` but counts no hit or miss and keeps the LRU order."""
        with self._lock:
            entry = self._live_entry(key)
            return (False, None) if entry is None else (True, entry[0])

    def get(self, key: K, default: Any = None) -> Any:
        """The cached value, or ``default`` (pass :data:`MISSING` to tell a cached None from a miss)."""
        # lookup() inlined: this is the hot path
        with self._lock:
            data = self._data
            entry = data.get(key)
            if entry is not None:
                expires = entry[1]
                if expires is None or self._clock() < expires:
                    data.move_to_end(key)
                    self._hits += 1
                    return entry[0]
                del data[key]
                self._expirations += 1
            self._misses += 1
            return default

    def __getitem__(self, key: K) -> V:
        found, value = self.lookup(key)
        if not found:
            raise KeyError(key)
        return value  # type: ignore[return-value]

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` has a live entry; does not count as a hit or change the LRU order."""
        with self._lock:
            return self._live_entry(key) is not None  # type: ignore[arg-type]

    def __len__(self) -> int:
        """The number of live entries."""
        with self._lock:
            self._purge_if_due()
            return len(self._data)

    def keys(self) -> list[K]:
        """A snapshot of the live keys, least recently used first."""
        with self._lock:
            self._purge_if_due()
            return list(self._data)

    def items(self) -> list[tuple[K, V]]:
        """A snapshot of the live ``(key, value)`` pairs, least recently used first."""
        with self._lock:
            self._purge_if_due()
            return [(k, e[0]) for k, e in self._data.items()]

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    # -- updates -----------------------------------------------------------------------------------
    def set(self, key: K, value: V, ttl: float | None = None) -> None:
        """Store ``value``; ``ttl`` (> 0 seconds) overrides the cache's default for this entry.

        A new key in a full cache first drops expired entries, then the least recently used one.
        """
        ttl = self.ttl if ttl is None else _check_ttl(ttl, "ttl")
        with self._lock:
            data = self._data
            now = self._clock() if (ttl is not None or self._heap) else 0.0
            old = data.get(key)
            if old is not None and old[1] is not None and now >= old[1]:
                del data[key]  # a re-set of an expired key is a fresh insert
                self._expirations += 1
                old = None
            if old is None and len(data) >= self.max_size:
                if self._heap:
                    self._purge_expired(now)
                while len(data) >= self.max_size:
                    data.popitem(last=False)
                    self._evictions += 1
            self._seq += 1
            expires = None if ttl is None else now + ttl
            data[key] = (value, expires, self._seq)
            if old is not None:
                data.move_to_end(key)
            if expires is not None:
                heapq.heappush(self._heap, (expires, self._seq, key))
                if len(self._heap) > 2 * len(data) + 64:  # drop stale heap items now and then
                    self._heap = [(e[1], e[2], k) for k, e in data.items() if e[1] is not None]
                    heapq.heapify(self._heap)

    def __setitem__(self, key: K, value: V) -> None:
        self.set(key, value)

    def delete(self, key: K) -> bool:
        """Remove ``key``; True if a live entry was removed."""
        with self._lock:
            if self._live_entry(key) is None:
                return False
            del self._data[key]
            return True

    def __delitem__(self, key: K) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def pop(self, key: K, default: Any = None) -> Any:
        """Remove ``key`` and return its value, or ``default`` if it has no live entry."""
        with self._lock:
            entry = self._live_entry(key)
            if entry is None:
                return default
            del self._data[key]
            return entry[0]

    def delete_where(self, predicate: Callable[[K], bool]) -> int:
        """Remove every key for which ``predicate(key)`` is true; returns how many live entries went.

        The predicate runs without the lock held, so it may use the cache itself.
        """
        doomed = [k for k in self.keys() if predicate(k)]
        return sum(self.delete(k) for k in doomed)

    def expire(self) -> int:
        """Drop every expired entry now; returns how many were dropped (they count as expirations)."""
        with self._lock:
            before = self._expirations
            self._purge_if_due()
            return self._expirations - before

    def clear(self) -> None:
        """Remove every entry; the counters are kept (see :meth:`reset_stats`)."""
        with self._lock:
            self._data.clear()
            self._heap.clear()

    def reset_stats(self) -> None:
        """Set hits, misses, evictions and expirations back to zero."""
        with self._lock:
            self._hits = self._misses = self._evictions = self._expirations = 0

    # -- statistics --------------------------------------------------------------------------------
    def stats(self) -> CacheStats:
        """A consistent snapshot of the counters (expired entries are purged first)."""
        with self._lock:
            self._purge_if_due()
            total = self._hits + self._misses
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                expirations=self._expirations,
                size=len(self._data),
                max_size=self.max_size,
                hit_rate=self._hits / total if total else 0.0,
            )

    def get_stats(self) -> dict[str, Any]:
        """The original library's dict of statistics (plus ``expirations``)."""
        s = self.stats()
        return {
            "size": s.size,
            "max_size": s.max_size,
            "hits": s.hits,
            "misses": s.misses,
            "evictions": s.evictions,
            "expirations": s.expirations,
            "hit_rate": s.hit_rate,
            "total_requests": s.hits + s.misses,
        }

    def __repr__(self) -> str:
        return f"LRUCache(max_size={self.max_size}, ttl={self.ttl}, size={len(self)})"


# ---------------------------------------------------------------------------------------------------
# QueryCache: memoising decorator with in-flight de-duplication
# ---------------------------------------------------------------------------------------------------


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
        entry_ttl = _check_ttl(ttl, "ttl")

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
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
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            self._land(key, leader)
            leader.future.set_exception(exc)
            raise
        if not leader.invalidated:
            self._cache.set(key, result, ttl)
        self._land(key, leader)
        leader.future.set_result(result)
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
                task.cancel()  # every caller has gone (cancelled): stop the shared call

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
            raise TypeError(f"{fn!r} is not decorated with QueryCache.cached")
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


# ---------------------------------------------------------------------------------------------------
# BatchProcessor
# ---------------------------------------------------------------------------------------------------


class BatchResultError(MdtError, RuntimeError):
    """``process_batch`` returned something other than one result per item."""


class _Batch:
    __slots__ = ("items", "futures", "timer")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.timer: asyncio.Task[None] | None = None


class BatchProcessor(Generic[T, R]):
    """Collect single ``submit(item)`` calls into batches for one ``process_batch(items)`` call.

    A batch is flushed when it holds ``max_batch_size`` items or ``max_wait`` seconds after its
    first item, whichever comes first. Each batch owns its timer, and a size flush cancels it, so a
    timer can never flush a later batch early. ``process_batch`` is bound at construction (batches
    never mix processors) and may be sync or async; a sync one runs on the event loop, so wrap
    blocking work with ``asyncio.to_thread``.

    Results: ``process_batch`` returns one result per item, in order. An exception *instance* in
    that list fails only its own caller (it is raised there). A result of the wrong length (or not a
    sequence) fails every caller of the batch with :class:`BatchResultError`; an exception raised by
    ``process_batch`` fails every caller of the batch. No caller ever waits forever.

    ``close()`` (or leaving ``async with``) flushes what is pending, waits for running batches and
    then refuses new submissions with ``PoolClosedError``. A caller cancelled while waiting does not
    remove its item: it is still processed, its result discarded.

    Args:
        process_batch: ``(list of items) -> sequence of results`` (sync or async).
        max_batch_size: items per batch, >= 1.
        max_wait: seconds the first item of a batch waits for company, >= 0.
        sleep: the coroutine used to wait ``max_wait`` (inject a fake one in tests).

    Example:
        >>> async def main():
        ...     async with BatchProcessor(lambda xs: [x * 10 for x in xs], max_batch_size=3, max_wait=0.01) as bp:
        ...         return await asyncio.gather(*(bp.submit(i) for i in range(5)))
        >>> asyncio.run(main())
        [0, 10, 20, 30, 40]
    """

    def __init__(
        self,
        process_batch: Callable[[list[T]], Sequence[R] | Awaitable[Sequence[R]]],
        max_batch_size: int = 50,
        max_wait: float = 0.1,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise ValueRangeError(f"`max_batch_size` must be an int >= 1, got {max_batch_size!r}")
        if not isinstance(max_wait, (int, float)) or not (0 <= max_wait < math.inf):
            raise ValueRangeError(f"`max_wait` must be a finite number of seconds >= 0, got {max_wait!r}")
        self._process = process_batch
        self.max_batch_size = max_batch_size
        self.max_wait = float(max_wait)
        self._sleep = sleep
        self._pending: _Batch | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False
        self.batches = 0
        self.items = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Items waiting for their batch to be flushed."""
        return len(self._pending.items) if self._pending else 0

    async def submit(self, item: T) -> R:
        """Add ``item`` to the current batch and wait for its own result (or exception)."""
        if self._closed:
            raise PoolClosedError("BatchProcessor is closed; submit() refused")
        loop = asyncio.get_running_loop()
        batch = self._pending
        if batch is None:
            batch = self._pending = _Batch()
            batch.timer = loop.create_task(self._flush_later(batch))
        future: asyncio.Future[R] = loop.create_future()
        batch.items.append(item)
        batch.futures.append(future)
        if len(batch.items) >= self.max_batch_size:
            self._flush(batch)
        return await future

    add = submit  # the original library's name

    async def _flush_later(self, batch: _Batch) -> None:
        await self._sleep(self.max_wait)
        batch.timer = None  # do not let _flush cancel the task that is running it
        if self._pending is batch:
            self._flush(batch)

    def _flush(self, batch: _Batch) -> None:
        if self._pending is batch:
            self._pending = None
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: _Batch) -> None:
        self.batches += 1
        self.items += len(batch.items)
        try:
            results = self._process(list(batch.items))
            if inspect.isawaitable(results):
                results = await results
            if not isinstance(results, Sequence) or isinstance(results, (str, bytes)):
                raise BatchResultError(
                    f"process_batch must return a sequence of {len(batch.items)} results, got {type(results).__name__}"
                )
            if len(results) != len(batch.items):
                raise BatchResultError(
                    f"process_batch returned {len(results)} results for {len(batch.items)} items"
                )
        except BaseException as exc:
            for future in batch.futures:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for future, result in zip(batch.futures, results):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def flush(self) -> None:
        """Flush the pending batch now and wait until every running batch has finished."""
        if self._pending is not None:
            self._flush(self._pending)
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def close(self) -> None:
        """Refuse new submissions, then flush and finish everything already submitted."""
        self._closed = True
        await self.flush()

    async def __aenter__(self) -> BatchProcessor[T, R]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
