"""A thread-safe LRU cache with per-entry time-to-live: :class:`LRUCache`.

Semantics follow ``cachetools.TTLCache`` (the tests check it against one): an entry set at ``t``
with ``ttl`` is gone once ``clock() >= t + ttl``, expired entries never count toward
``max_size``, and ``get`` tells a cached ``None`` from a miss via :data:`MISSING`. Why not
cachetools or ``functools.lru_cache``: see ``docs/design/aio-cache.md``.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .._validation import check_callable, check_int, check_number

__all__ = ["MISSING", "CacheStats", "LRUCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


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


def check_ttl(ttl: Any, name: str) -> float | None:
    """A time-to-live: seconds > 0 (an entry with ``ttl <= 0`` would be expired on arrival), or
    None (also for an infinite ``ttl``) for "never expires"."""
    if ttl is None:
        return None
    seconds = check_number(ttl, name, low=0.0, low_open=True, finite=False)
    return None if math.isinf(seconds) else seconds


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
        self.max_size = check_int(max_size, "max_size", low=1)
        self.ttl = check_ttl(ttl, "ttl")
        check_callable(clock, "clock")
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
        ttl = self.ttl if ttl is None else check_ttl(ttl, "ttl")
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
