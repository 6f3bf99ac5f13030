"""The async layer: cache throughput against cachetools with a lock; task-pool overhead against gather.

* ``LRUCache`` get (hits) and set (with evictions) against ``cachetools.LRUCache`` / ``TTLCache``
  guarded by a ``threading.Lock`` (what a thread-safe cachetools cache costs). Target: no more
  than 1.5x the time.
* ``gather_with_concurrency(100, ...)`` and ``AsyncTaskPool(100).map`` over trivial coroutines
  against a bare ``asyncio.gather`` of the same coroutines; the extra column gives the overhead
  per task in microseconds.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from benchmarks._harness import Comparison, Context, time_call
from mdt_tensor.aio.lru import LRUCache
from mdt_tensor.aio.tasks import AsyncTaskPool, gather_with_concurrency

try:
    import cachetools
except ImportError:  # test-only dependency
    cachetools = None


class _LockedCachetools:
    """A cachetools cache made thread-safe the usual way: one lock around every access."""

    def __init__(self, cache: Any) -> None:
        self._cache = cache
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            return self._cache.get(key)

    def set(self, key: Any, value: Any) -> None:
        with self._lock:
            self._cache[key] = value


def _cache_rows(ctx: Context) -> list[Comparison]:
    if cachetools is None:
        print("bench_async: cachetools is not installed: cache throughput rows skipped (pip install cachetools)")
        return []
    capacity = ctx.size(10_000, 2_000, 200)
    n_ops = ctx.size(20_000, 5_000, 400)
    hit_keys = [i % capacity for i in range(n_ops)]
    churn_keys = [i % (2 * capacity) for i in range(n_ops)]  # half the sets evict
    rows = []
    for label, ttl, make_ref in (
        ("LRUCache", None, lambda: cachetools.LRUCache(capacity)),
        ("TTLCache", 300.0, lambda: cachetools.TTLCache(capacity, 300.0)),
    ):
        ours, ref = LRUCache(capacity, ttl=ttl), _LockedCachetools(make_ref())
        for k in range(capacity):
            ours.set(k, k)
            ref.set(k, k)

        def loop_get(cache: Any) -> Callable[[], None]:
            get = cache.get
            return lambda: [get(k) for k in hit_keys] and None

        def loop_set(cache: Any) -> Callable[[], None]:
            put = cache.set
            return lambda: [put(k, k) for k in churn_keys] and None

        for op, make in (("get (hits)", loop_get), ("set (evicting)", loop_set)):
            ours_s = time_call(make(ours), repeat=ctx.repeat)
            ref_s = time_call(make(ref), repeat=ctx.repeat)
            rows.append(
                Comparison(
                    f"LRUCache {op}, ttl={ttl}, {n_ops} ops",
                    ours_s,
                    f"cachetools.{label} + Lock",
                    ref_s,
                    max_slowdown=1.5,
                    extra={"ours ops/s": f"{n_ops / ours_s:,.0f}", "baseline ops/s": f"{n_ops / ref_s:,.0f}"},
                )
            )
    return rows


async def _noop(i: int) -> int:
    return i


def _gather_rows(ctx: Context) -> list[Comparison]:
    n = ctx.size(20_000, 5_000, 200)
    loop = asyncio.new_event_loop()
    try:
        async def bare_gather() -> None:
            await asyncio.gather(*(_noop(i) for i in range(n)))

        def bare() -> None:
            loop.run_until_complete(bare_gather())

        def limited() -> None:
            loop.run_until_complete(gather_with_concurrency(100, *(_noop(i) for i in range(n))))

        pool = AsyncTaskPool(100)

        def pooled() -> None:
            loop.run_until_complete(pool.map(_noop, range(n)))

        base_s = time_call(bare, repeat=ctx.repeat)
        rows = []
        for name, fn, limit in (("gather_with_concurrency(100)", limited, 1.5), ("AsyncTaskPool(100).map", pooled, 3.0)):
            ours_s = time_call(fn, repeat=ctx.repeat)
            rows.append(
                Comparison(
                    f"{name}, {n} trivial coroutines",
                    ours_s,
                    "asyncio.gather (unbounded)",
                    base_s,
                    max_slowdown=limit,
                    extra={
                        "overhead per task (us)": f"{(ours_s - base_s) / n * 1e6:+.2f}",
                        "ours per task (us)": f"{ours_s / n * 1e6:.2f}",
                    },
                )
            )
        return rows
    finally:
        loop.close()


def run(ctx: Context) -> list[Comparison]:
    return _cache_rows(ctx) + _gather_rows(ctx)
