"""LRUCache (checked against cachetools on random operation sequences) and QueryCache."""

from __future__ import annotations

import asyncio
import threading

import cachetools
import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

import mdt_tensor as mt
from mdt_tensor.aio.lru import MISSING, LRUCache
from mdt_tensor.aio.query_cache import QueryCache
from mdt_tensor.errors import DTypeError, ValueRangeError

pytestmark = pytest.mark.timeout(60)


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------------------------------------
# LRUCache against cachetools (the independent reference)
# ---------------------------------------------------------------------------------------------------

KEYS = st.integers(0, 5)
VALUES = st.none() | st.integers(-5, 5)
STEPS = st.sampled_from([0, 1, 2, 3, 4, 7])  # whole seconds, so clock == set time + ttl happens


def _ref_snapshot(ref: cachetools.Cache) -> dict:
    # iterate and read without touching the reference's LRU order
    return {k: cachetools.Cache.__getitem__(ref, k) for k in list(ref)}


class _AgainstReference(RuleBasedStateMachine):
    """Same visible contents after every operation as a cachetools cache with the same clock."""

    MAX_SIZE = 3
    TTL: float | None = 3.0

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.ours = LRUCache(self.MAX_SIZE, ttl=self.TTL, clock=self.clock)
        self.ref = self.make_reference()

    def make_reference(self) -> cachetools.Cache:
        return cachetools.TTLCache(self.MAX_SIZE, self.TTL, timer=self.clock)

    def ref_set(self, key: int, value: object, ttl: float | None) -> None:
        self.ref[key] = value

    @rule(key=KEYS, value=VALUES)
    def set(self, key: int, value: object) -> None:
        self.ours.set(key, value)
        self.ref_set(key, value, None)

    @rule(key=KEYS)
    def get(self, key: int) -> None:
        assert self.ours.get(key, MISSING) == self.ref.get(key, MISSING)

    @rule(key=KEYS)
    def contains(self, key: int) -> None:
        assert (key in self.ours) == (key in self.ref)

    @rule(key=KEYS)
    def delete(self, key: int) -> None:
        assert self.ours.delete(key) == (self.ref.pop(key, MISSING) is not MISSING)

    @rule(step=STEPS)
    def advance(self, step: int) -> None:
        self.clock.now += step

    # A rule, not an invariant: reading every entry purges expired ones, and doing it after every
    # step would hide bugs that need expired entries to linger (e.g. at capacity).
    @rule()
    def same_contents(self) -> None:
        expected = _ref_snapshot(self.ref)
        assert dict(self.ours.items()) == expected
        assert len(self.ours) == len(expected) <= self.MAX_SIZE


class _AgainstLRUCache(_AgainstReference):
    TTL = None

    def make_reference(self) -> cachetools.Cache:
        return cachetools.LRUCache(self.MAX_SIZE)


class _PerItemTTLAgainstTLRUCache(_AgainstReference):
    """Per-entry ttl: cachetools.TLRUCache with a time-to-use function reading the ttl we stored."""

    def make_reference(self) -> cachetools.Cache:
        return cachetools.TLRUCache(self.MAX_SIZE, lambda key, value, now: now + value[1], timer=self.clock)

    @rule(key=KEYS, value=VALUES, ttl=st.sampled_from([1, 2, 5]))
    def set_with_ttl(self, key: int, value: object, ttl: int) -> None:
        self.ours.set(key, value, ttl=ttl)
        self.ref[key] = (value, ttl)

    def ref_set(self, key: int, value: object, ttl: float | None) -> None:
        self.ref[key] = (value, self.TTL)

    @rule(key=KEYS)
    def get(self, key: int) -> None:
        ref = self.ref.get(key, MISSING)
        assert self.ours.get(key, MISSING) == (ref if ref is MISSING else ref[0])

    @rule()
    def same_contents(self) -> None:
        expected = {k: v[0] for k, v in _ref_snapshot(self.ref).items()}
        assert dict(self.ours.items()) == expected
        assert len(self.ours) == len(expected)


_settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestLRUCacheMatchesTTLCache = _AgainstReference.TestCase
TestLRUCacheMatchesTTLCache.settings = _settings
TestLRUCacheWithoutTTLMatchesLRUCache = _AgainstLRUCache.TestCase
TestLRUCacheWithoutTTLMatchesLRUCache.settings = _settings
TestLRUCachePerItemTTLMatchesTLRUCache = _PerItemTTLAgainstTLRUCache.TestCase
TestLRUCachePerItemTTLMatchesTLRUCache.settings = _settings


# ---------------------------------------------------------------------------------------------------
# LRUCache: the original's defect 17 and documented behaviour
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_size", [0, -1])
def test_defect17_max_size_zero_or_invalid_is_a_clear_error(max_size: object) -> None:
    with pytest.raises(ValueRangeError, match="max_size"):
        LRUCache(max_size)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_size", [True, 2.5, None])
def test_defect17_max_size_of_the_wrong_type_is_a_type_error(max_size: object) -> None:
    with pytest.raises(DTypeError, match="max_size"):
        LRUCache(max_size)  # type: ignore[arg-type]


def test_defect17_expired_entries_do_not_count_toward_capacity() -> None:
    clock = FakeClock()
    cache = LRUCache(2, clock=clock)
    cache.set("old", 1, ttl=1.0)  # least recently used, and about to expire
    cache.set("live", 2, ttl=100.0)
    clock.now = 1.0
    cache.set("new", 3)
    assert dict(cache.items()) == {"live": 2, "new": 3}  # the live LRU entry was not evicted
    stats = cache.stats()
    assert (stats.evictions, stats.expirations, stats.size) == (0, 1, 2)


def test_defect17_purges_expired_before_evicting_live_lru() -> None:
    clock = FakeClock()
    cache = LRUCache(3, clock=clock)
    cache.set("lru", 0)  # no ttl: lives forever, least recently used
    cache.set("a", 1, ttl=1.0)
    cache.set("b", 2, ttl=1.0)
    clock.now = 5.0
    cache.set("c", 3)
    cache.set("d", 4)
    assert dict(cache.items()) == {"lru": 0, "c": 3, "d": 4}
    cache.set("e", 5)  # now full of live entries: the LRU one goes
    assert "lru" not in cache and cache.stats().evictions == 1


def test_defect17_thread_safe_under_concurrent_use() -> None:
    cache: LRUCache[int, int] = LRUCache(16, ttl=60.0)
    n_threads, n_ops = 8, 3000
    errors: list[BaseException] = []
    start = threading.Barrier(n_threads)

    def hammer(seed: int) -> None:
        rng = np.random.default_rng(seed)
        keys = rng.integers(0, 40, n_ops)
        start.wait()
        try:
            for i, k in enumerate(keys):
                k = int(k)
                if i % 3 == 0:
                    cache.set(k, k * 10)
                elif i % 3 == 1:
                    value = cache.get(k, MISSING)
                    assert value is MISSING or value == k * 10
                else:
                    cache.delete(k) if i % 7 == 0 else (k in cache)
                assert len(cache) <= 16
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stats = cache.stats()
    gets = sum(1 for i in range(n_ops) if i % 3 == 1) * n_threads
    assert stats.hits + stats.misses == gets  # no lost counter updates
    assert stats.size == len(cache) <= 16


def test_defect17_stats_are_a_consistent_dataclass_snapshot() -> None:
    cache = LRUCache(2)
    cache.set("a", 1)
    cache.get("a"), cache.get("b")
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.size, stats.max_size, stats.hit_rate) == (1, 1, 1, 2, 0.5)
    assert cache.get_stats()["total_requests"] == 2
    with pytest.raises(AttributeError):
        stats.hits = 5  # type: ignore[misc]


def test_cached_none_is_distinguishable_from_a_miss() -> None:
    cache = LRUCache(4)
    cache.set("k", None)
    assert cache.get("k", MISSING) is None
    assert cache.get("nope", MISSING) is MISSING
    assert cache.lookup("k") == (True, None) and cache.lookup("nope") == (False, None)
    assert "k" in cache and cache["k"] is None
    with pytest.raises(KeyError):
        cache["nope"]


@pytest.mark.parametrize("ttl", [0, -1.0, float("nan")])
def test_ttl_must_be_positive(ttl: object) -> None:
    with pytest.raises(ValueRangeError, match="ttl"):
        LRUCache(4, ttl=ttl)  # type: ignore[arg-type]
    with pytest.raises(ValueRangeError, match="ttl"):
        LRUCache(4).set("k", 1, ttl=ttl)  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", ["1"])
def test_ttl_must_be_a_number(ttl: object) -> None:
    with pytest.raises(DTypeError, match="ttl"):
        LRUCache(4, ttl=ttl)  # type: ignore[arg-type]
    with pytest.raises(DTypeError, match="ttl"):
        LRUCache(4).set("k", 1, ttl=ttl)  # type: ignore[arg-type]


def test_expiry_is_at_set_time_plus_ttl_and_get_does_not_extend_it() -> None:
    clock = FakeClock(10.0)
    cache = LRUCache(4, ttl=5.0, clock=clock)
    cache.set("k", 1)
    clock.now = 14.999
    assert cache.get("k") == 1  # a hit does not slide the expiry
    clock.now = 15.0
    assert cache.get("k", MISSING) is MISSING
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.expirations) == (1, 1, 1)


def test_reset_of_a_key_restarts_its_ttl() -> None:
    clock = FakeClock()
    cache = LRUCache(4, ttl=5.0, clock=clock)
    cache.set("k", 1)
    clock.now = 4.0
    cache.set("k", 2)
    clock.now = 8.0
    assert cache.get("k") == 2


def test_contains_counts_nothing_and_keeps_lru_order() -> None:
    cache = LRUCache(2)
    cache.set("a", 1)
    cache.set("b", 2)
    assert "a" in cache
    cache.set("c", 3)  # "a" is still the least recently used
    assert cache.keys() == ["b", "c"]
    assert cache.stats().hits == cache.stats().misses == 0


def test_delete_where_pop_clear_and_expire() -> None:
    clock = FakeClock()
    cache = LRUCache(10, ttl=2.0, clock=clock)
    for i in range(6):
        cache.set(i, i)
    assert cache.delete_where(lambda k: k % 2 == 0) == 3
    assert cache.pop(1) == 1 and cache.pop(1, "gone") == "gone"
    clock.now = 2.0
    assert cache.expire() == 2 and len(cache) == 0
    cache.set("x", 1)
    cache.clear()
    assert len(cache) == 0 and cache.stats().expirations == 2


def test_heap_of_expiry_times_stays_bounded_under_resets() -> None:
    cache = LRUCache(4, ttl=10.0, clock=FakeClock())
    for i in range(10_000):
        cache.set(i % 3, i)
    assert len(cache._heap) <= 2 * 3 + 65


async def test_usable_from_async_code() -> None:
    cache = LRUCache(8, ttl=1.0)

    async def user(i: int) -> object:
        cache.set(i, i * i)
        await asyncio.sleep(0)
        return cache.get(i)

    assert await asyncio.gather(*(user(i) for i in range(8))) == [i * i for i in range(8)]


# ---------------------------------------------------------------------------------------------------
# QueryCache: item 18 and the decorator's contract
# ---------------------------------------------------------------------------------------------------


def test_module_level_query_cache_is_exported() -> None:
    assert isinstance(mt.query_cache, QueryCache)


def test_defect18_none_results_are_cached() -> None:
    qc = QueryCache()
    calls = []

    @qc.cached
    def lookup(x: int) -> None:
        calls.append(x)
        return None

    assert lookup(1) is None and lookup(1) is None
    assert calls == [1]


def test_defect18_positional_and_keyword_spellings_share_one_entry() -> None:
    qc = QueryCache()
    calls = []

    @qc.cached()
    def f(x: int, y: int = 0, *rest: int, **extra: int) -> int:
        calls.append((x, y))
        return x + y

    assert f(1, y=0) == f(1, 0) == f(x=1, y=0) == f(1) == 1
    assert f(1, a=1, b=2) == f(1, b=2, a=1) == 1  # **kwargs order does not matter
    assert len(calls) == 2


def test_defect18_same_named_functions_and_same_str_args_do_not_collide() -> None:
    qc = QueryCache()

    def make(offset: int):  # two functions with the same module and qualname
        @qc.cached
        def f(x: object) -> object:
            return (offset, x)

        return f

    f1, f2 = make(1), make(2)
    assert f1(0) == (1, 0) and f2(0) == (2, 0)

    class SameStr:
        def __str__(self) -> str:
            return "same"

    a, b = SameStr(), SameStr()
    assert f1(a) == (1, a) and f1(b) == (1, b)  # different objects, same str(): two entries


def test_defect18_wraps_is_kept() -> None:
    qc = QueryCache()

    def original(x: int) -> int:
        """Docs."""
        return x

    wrapped = qc.cached(ttl=60)(original)
    assert wrapped.__name__ == "original" and wrapped.__doc__ == "Docs." and wrapped.__wrapped__ is original


def test_unhashable_arguments_are_keyed_by_value() -> None:
    qc = QueryCache()
    calls = []

    @qc.cached
    def total(xs: object) -> float:
        calls.append(1)
        return float(np.sum(xs if not isinstance(xs, dict) else list(xs.values())))

    assert total([1, 2]) == total([1, 2]) == 3.0
    assert total({"a": 1, "b": 2}) == total({"b": 2, "a": 1}) == 3.0
    assert total(np.array([1, 2])) == total(np.array([1, 2])) == 3.0
    assert total(np.array([1, 3])) == 4.0
    assert len(calls) == 4


def test_ttl_with_fake_clock() -> None:
    clock = FakeClock()
    qc = QueryCache(default_ttl=300.0, clock=clock)
    calls = []

    @qc.cached(ttl=60)
    def short(x: int) -> int:
        calls.append(x)
        return x

    @qc.cached
    def long(x: int) -> int:
        calls.append(-x)
        return x

    short(1), long(1)
    clock.now = 60.0
    short(1), long(1)
    clock.now = 300.0
    long(1)
    assert calls == [1, -1, 1, -1]


async def test_async_function_is_cached_including_none() -> None:
    qc = QueryCache()
    calls = []

    @qc.cached
    async def fetch(x: int) -> None:
        calls.append(x)
        await asyncio.sleep(0)

    assert await fetch(1) is None and await fetch(x=1) is None
    assert calls == [1]


async def test_concurrent_async_callers_share_one_in_flight_call() -> None:
    qc = QueryCache()
    calls = []
    release = asyncio.Event()

    @qc.cached
    async def fetch(x: int) -> int:
        calls.append(x)
        await release.wait()
        return x * 2

    tasks = [asyncio.create_task(fetch(3)) for _ in range(10)]
    await asyncio.sleep(0.01)
    release.set()
    assert await asyncio.gather(*tasks) == [6] * 10
    assert calls == [3] and qc.stats().shared_calls == 9


async def test_async_exception_reaches_every_sharer_and_is_not_cached() -> None:
    qc = QueryCache()
    calls = []
    release = asyncio.Event()

    @qc.cached
    async def flaky(x: int) -> int:
        calls.append(x)
        await release.wait()
        if len(calls) == 1:
            raise ConnectionError("boom")
        return x

    tasks = [asyncio.create_task(flaky(1)) for _ in range(3)]
    await asyncio.sleep(0.01)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await flaky(1) == 1 and calls == [1, 1]


async def test_cancelling_one_sharer_keeps_the_call_for_the_others() -> None:
    qc = QueryCache()
    release = asyncio.Event()
    started = []

    @qc.cached
    async def slow() -> str:
        started.append(1)
        await release.wait()
        return "done"

    first, second = asyncio.create_task(slow()), asyncio.create_task(slow())
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.sleep(0)
    release.set()
    assert await second == "done" and first.cancelled() and started == [1]


async def test_cancelling_every_sharer_cancels_the_call() -> None:
    qc = QueryCache()
    cancelled = asyncio.Event()

    @qc.cached
    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    task = asyncio.create_task(slow())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait_for(cancelled.wait(), 1.0)
    assert len(qc.cache) == 0


@pytest.mark.timeout(20)
def test_concurrent_threads_share_one_in_flight_call_and_its_exception() -> None:
    qc = QueryCache()
    calls = []
    release = threading.Event()

    @qc.cached
    def load(x: int) -> int:
        calls.append(x)
        release.wait(5)
        if x < 0:
            raise ValueError("negative")
        return x

    for arg in (5, -1):
        results: list[object] = []
        threads = [threading.Thread(target=lambda: results.append(_call(load, arg))) for _ in range(6)]
        release.clear()
        for t in threads:
            t.start()
        while qc.stats().shared_calls < 5 * (1 if arg == 5 else 2):
            threading.Event().wait(0.001)
        release.set()
        for t in threads:
            t.join()
        expected = 5 if arg == 5 else "ValueError"
        assert results == [expected] * 6
    assert calls == [5, -1]  # one call each; the exception was not cached:
    release.set()
    assert _call(load, -1) == "ValueError" and calls == [5, -1, -1]


def _call(fn, arg):  # noqa: ANN001, ANN202
    try:
        return fn(arg)
    except ValueError:
        return "ValueError"


@pytest.mark.timeout(10)
def test_recursive_call_of_the_same_key_does_not_deadlock() -> None:
    qc = QueryCache()
    seen = []

    @qc.cached
    def rec(key: str) -> int:
        seen.append(key)
        return rec(key) + 1 if len(seen) == 1 else 1  # the inner call runs uncached

    assert rec("x") == 2 and rec("x") == 2 and seen == ["x", "x"]


def test_invalidation_by_arguments_function_predicate_and_all() -> None:
    qc = QueryCache()
    calls = []

    @qc.cached
    def f(x: int, y: int = 0) -> int:
        calls.append(("f", x))
        return x

    @qc.cached
    def g(x: int) -> int:
        calls.append(("g", x))
        return x

    def fill() -> None:
        for i in range(3):
            f(i), g(i)

    fill()
    assert f.invalidate(1, y=0) is True and qc.invalidate(f, 2) is True and f.invalidate(99) is False
    assert len(qc.cache) == 4
    assert qc.invalidate_function(g) == 3 and len(qc.cache) == 1
    fill()
    assert qc.invalidate_where(lambda fn, args: fn is f and args["x"] >= 1) == 2
    assert sorted(dict(k[1])["x"] for k in qc.cache.keys() if k[0] is f) == [0]
    qc.clear()
    assert len(qc.cache) == 0
    with pytest.raises(TypeError, match="not decorated"):
        qc.invalidate(len, 1)


async def test_invalidated_in_flight_result_is_not_stored() -> None:
    qc = QueryCache()
    release = asyncio.Event()
    version = [1]

    @qc.cached
    async def read() -> int:
        seen = version[0]
        await release.wait()
        return seen

    task = asyncio.create_task(read())
    await asyncio.sleep(0.01)
    version[0] = 2
    read.invalidate()  # the data changed while the call was in flight
    release.set()
    assert await task == 1  # its caller still gets an answer...
    assert await read() == 2  # ...but the stale value was not cached


@pytest.mark.timeout(20)
def test_async_function_used_from_two_event_loops_in_two_threads() -> None:
    qc = QueryCache()
    both_in = threading.Barrier(2)

    @qc.cached
    async def fetch(x: int) -> int:
        await asyncio.get_running_loop().run_in_executor(None, both_in.wait, 5)  # both calls in flight
        return x + 1

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(asyncio.run(fetch(1)))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [2, 2]  # no future awaited across loops
    assert qc.cache.get(next(iter(qc.cache.keys()))) == 2 and len(qc.cache) == 1
