"""Chaos test of the async layer (issue 10): many concurrent callers, random timeouts and
cancellations, then the invariants every user relies on.

Each test runs several seeded scenarios (``random.Random(seed)``: a failure names its seed and
replays exactly). After each scenario:

* ``WorkQueue``: every accepted item resolved exactly once (run at most once, its future done),
  no producer left waiting, ``processed + failed + cancelled + handed back == accepted``.
* ``ConnectionPool`` (fake connections and real TCP connections to a loopback server): every
  connection opened was closed exactly once, never more than ``max_size`` open at once, no
  caller left waiting, the counters add up (``created == closed``, size 0).
* ``AsyncTaskPool``: never more than ``max_concurrent`` running, every coroutine it started
  finished, one result per call that was not cancelled.
* ``AsyncRateLimiter`` (virtual clock): over every window of admissions, at most
  ``burst + rate * t``; cancelled waiters give their tokens back; ``admitted`` adds up.
* ``CircuitBreaker`` (virtual clock): never more than ``half_open_max_calls`` probes at once;
  successes + failures + ignored = admitted calls, rejections = refused calls.
* ``QueryCache`` with async functions: every caller gets the right value, the function's own
  error, or a cancellation it asked for; nothing left in flight; hits + misses = calls.
* ``LRUCache`` hammered from threads: never over ``max_size``, every value read was written for
  its key, hits + misses = reads.

By default the whole file runs in about 25 s (about 800 scenarios). ``HYPOTHESIS_PROFILE=thorough`` (the project's
long profile) runs ten times the scenarios; ``MDT_CHAOS_RUNS=N`` sets the number of scenarios
per test directly.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.aio.virtual_time import VirtualTime
from mdt_tensor.aio.breaker import CircuitBreaker, CircuitState
from mdt_tensor.aio.lru import MISSING, LRUCache
from mdt_tensor.aio.pool import ConnectionPool
from mdt_tensor.aio.query_cache import QueryCache
from mdt_tensor.aio.ratelimit import AsyncRateLimiter
from mdt_tensor.aio.tasks import AsyncTaskPool
from mdt_tensor.aio.workqueue import WorkQueue
from mdt_tensor.errors import CircuitOpenError, PoolClosedError, PoolTimeoutError

pytestmark = pytest.mark.timeout(300)

_THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
RUNS = int(os.environ.get("MDT_CHAOS_RUNS", "0")) or (10 if _THOROUGH else 1)


def seeds(base: int, per_run: int) -> list[int]:
    """``per_run * RUNS`` seeds for one test (distinct across tests through ``base``)."""
    return [base * 100_000 + i for i in range(per_run * RUNS)]


async def settle(rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def finish(tasks: list[asyncio.Task[Any]], limit: float = 10.0) -> None:
    """Wait for ``tasks``; any still pending after ``limit`` seconds is a caller left waiting."""
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=limit)
    assert not pending, f"{len(pending)} caller(s) left waiting: " + "; ".join(map(_where, pending))


def _where(task: asyncio.Task[Any]) -> str:
    """Where a suspended task waits: the chain of coroutines down to the awaited object."""
    chain, coro = [], task.get_coro()
    while coro is not None and hasattr(coro, "cr_frame"):
        frame = coro.cr_frame
        if frame is not None:
            chain.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        coro = coro.cr_await
    return " > ".join(chain) + f" > {coro!r}"


# ---------------------------------------------------------------------------------------------------
# WorkQueue
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", seeds(1, 160))
async def test_chaos_work_queue(seed: int) -> None:
    rng = random.Random(seed)
    runs: dict[int, int] = {}

    async def work(item: int) -> int:
        runs[item] = runs.get(item, 0) + 1
        await asyncio.sleep(rng.choice([0, 0, 0.0005, 0.002]))
        if item % 7 == 3:
            raise ValueError(item)
        return item * 2

    queue: WorkQueue[int, int] = WorkQueue(work, num_workers=rng.randint(1, 4), maxsize=rng.choice([0, 1, 2, 5]))
    await queue.start()
    accepted: dict[int, asyncio.Future[int]] = {}
    ids = itertools.count()

    async def producer() -> None:
        for _ in range(rng.randint(1, 8)):
            await asyncio.sleep(rng.choice([0, 0, 0.0005, 0.001]))
            item = next(ids)
            future = await queue.put(item)
            accepted[item] = future
            if rng.random() < 0.1:
                future.cancel()  # the caller gives up on this one

    producers = [asyncio.create_task(producer()) for _ in range(rng.randint(1, 12))]
    cancelled_producers = set()
    await asyncio.sleep(rng.choice([0, 0.001, 0.004, 0.01]))
    for p in producers:
        if rng.random() < 0.15:
            p.cancel()
            cancelled_producers.add(p)
    drain = rng.random() < 0.6
    timeout = rng.choice([None, 0, 0.001, 0.005, 1.0])
    stopping = asyncio.create_task(queue.stop(drain=drain, timeout=timeout))
    stop_cancelled = False
    if rng.random() < 0.2:
        await asyncio.sleep(rng.choice([0, 0.001]))
        stop_cancelled = stopping.cancel()
    try:
        leftover = await stopping
    except asyncio.CancelledError:
        assert stop_cancelled
        leftover = None

    # when stop() has returned (or was cancelled) every accepted item has its outcome, and no
    # producer stays blocked: each one has its answer as soon as it next runs
    assert all(f.done() for f in accepted.values()), "an accepted item has no outcome"
    await finish(producers, limit=2.0)
    for p in producers:
        if not p.cancelled() and p not in cancelled_producers:
            assert p.exception() is None or isinstance(p.exception(), PoolClosedError)
    assert all(f.done() for f in accepted.values()), "an accepted item has no outcome"
    assert all(count == 1 for count in runs.values()), "an item ran twice"
    assert set(runs) <= set(accepted)
    for item, future in accepted.items():
        if future.cancelled():
            continue
        if future.exception() is None:
            assert future.result() == item * 2 and runs.get(item) == 1
        elif isinstance(future.exception(), ValueError):
            assert runs.get(item) == 1
        else:
            assert isinstance(future.exception(), PoolClosedError)
    if leftover is not None:
        assert len(leftover) == len(set(leftover))
        assert queue.processed + queue.failed + queue.cancelled + len(leftover) == len(accepted)
        assert all(isinstance(accepted[i].exception(), PoolClosedError) for i in leftover if not accepted[i].cancelled())
    await asyncio.sleep(0.003)
    assert queue.qsize() == 0 and set(runs) <= set(accepted)  # nothing accepted or run after stop()


# ---------------------------------------------------------------------------------------------------
# ConnectionPool
# ---------------------------------------------------------------------------------------------------


class Ledger:
    """What the fake connector opened and closed, and the most open at once."""

    def __init__(self) -> None:
        self.opening = 0  # connector calls under way
        self.open = 0  # opened and not yet told to close
        self.peak = 0
        self.conns: list[FakeConn] = []

    def note(self) -> None:
        self.peak = max(self.peak, self.opening + self.open)


class FakeConn:
    def __init__(self, ledger: Ledger, rng: random.Random) -> None:
        self.ledger, self.rng = ledger, rng
        self.close_calls = 0
        self.closes_done = 0

    def close(self) -> Any:
        self.close_calls += 1
        self.ledger.open -= 1
        delay = self.rng.choice([None, 0, 0.0005, 0.002])
        if delay is None:
            self.closes_done += 1
            return None

        async def finish() -> None:
            await asyncio.sleep(delay)
            if self.rng.random() < 0.05:
                raise OSError("close failed")  # logged by the pool; still counts as closed
            self.closes_done += 1

        return finish()


async def _pool_scenario(rng: random.Random, connector: Callable[[], Awaitable[Any]], max_size: int,
                         **pool_kwargs: Any) -> ConnectionPool[Any]:
    pool: ConnectionPool[Any] = ConnectionPool(
        connector, min_size=rng.randint(0, max_size), max_size=max_size,
        acquire_timeout=rng.choice([0.001, 0.005, 0.05, None]), **pool_kwargs,
    )
    if pool.min_size:
        try:
            await pool.initialize()
        except ConnectionError:
            pass
    outcomes: list[str] = []

    async def caller() -> None:
        for _ in range(rng.randint(1, 6)):
            await asyncio.sleep(rng.choice([0, 0, 0.0005, 0.001]))
            timeout = rng.choice([..., ..., 0.0005, 0.003, None])
            try:
                async with pool.acquire(timeout) as conn:
                    assert conn is not None
                    await asyncio.sleep(rng.choice([0, 0.0005, 0.002, 0.005]))
                    if rng.random() < 0.1:
                        raise ConnectionResetError("broken")  # discarded by the pool
                outcomes.append("ok")
            except (PoolTimeoutError, PoolClosedError, ConnectionError) as exc:
                outcomes.append(type(exc).__name__)
                if isinstance(exc, PoolClosedError):
                    return

    callers = [asyncio.create_task(caller()) for _ in range(rng.randint(1, 16))]
    await asyncio.sleep(rng.choice([0.001, 0.003, 0.01, 0.03]))
    for task in callers:
        if rng.random() < 0.2:
            task.cancel()
            if rng.random() < 0.5:
                await asyncio.sleep(0)
                task.cancel()  # cancelled again, maybe while its connection closes
    close_timeout = rng.choice([0.0001, 0.002, 5.0])
    closing = asyncio.create_task(pool.close(timeout=close_timeout))
    if rng.random() < 0.2:
        await asyncio.sleep(rng.choice([0, 0.0005]))
        closing.cancel()
    await asyncio.gather(closing, return_exceptions=True)
    if close_timeout == 5.0 and not closing.cancelled():
        # close() returned in time: every connection it ever opened is closed, right now
        assert closing.result() == []
        assert pool.stats().closed == pool.stats().created, pool.stats()
        assert pool.stats().size == 0, pool.stats()
    await finish(callers)  # every caller woke up: done, failed or cancelled, none waiting
    for task in callers:
        assert task.cancelled() or task.exception() is None, task
    # after a timed-out or cancelled close(), the next one finishes the job
    assert await pool.close(timeout=5.0) == []
    stats = pool.stats()
    assert (stats.size, stats.idle, stats.in_use, stats.waiting) == (0, 0, 0, 0), stats
    assert stats.closed == stats.created, stats
    assert stats.acquisitions == stats.releases, stats
    return pool


@pytest.mark.parametrize("seed", seeds(2, 160))
async def test_chaos_connection_pool(seed: int) -> None:
    rng = random.Random(seed)
    ledger = Ledger()

    async def connect() -> FakeConn:
        ledger.opening += 1
        ledger.note()
        try:
            await asyncio.sleep(rng.choice([0, 0, 0.0005, 0.002]))
            if rng.random() < 0.05:
                raise ConnectionRefusedError("refused")
        finally:
            ledger.opening -= 1
        conn = FakeConn(ledger, rng)
        ledger.conns.append(conn)
        ledger.open += 1
        ledger.note()
        return conn

    async def validate(conn: FakeConn) -> bool:
        await asyncio.sleep(rng.choice([0, 0, 0.0005]))
        return rng.random() < 0.85

    max_size = rng.randint(1, 5)
    pool = await _pool_scenario(rng, connect, max_size, validate=validate if rng.random() < 0.5 else None)
    assert ledger.peak <= max_size, f"{ledger.peak} connections open or opening at once, max_size={max_size}"
    assert all(c.close_calls == 1 for c in ledger.conns), [c.close_calls for c in ledger.conns]
    assert len(ledger.conns) == pool.stats().created
    assert ledger.open == 0 and ledger.opening == 0


class LoopbackServer:
    """A TCP server on 127.0.0.1 that counts the connections it accepted and saw closed."""

    def __init__(self) -> None:
        self.accepted = 0
        self.ended = 0
        self._server: asyncio.base_events.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            await reader.read()  # until the client closes
        except ConnectionError:
            pass
        finally:
            self.ended += 1
            writer.close()

    async def __aenter__(self) -> LoopbackServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])


@pytest.mark.parametrize("seed", seeds(3, 40))
async def test_chaos_connection_pool_of_real_loopback_connections(seed: int) -> None:
    rng = random.Random(seed)
    async with LoopbackServer() as server:
        writers: list[asyncio.StreamWriter] = []
        close_calls: dict[int, int] = {}

        async def connect() -> asyncio.StreamWriter:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writers.append(writer)
            return writer

        async def close(writer: asyncio.StreamWriter) -> None:
            close_calls[id(writer)] = close_calls.get(id(writer), 0) + 1
            writer.close()
            await writer.wait_closed()

        await _pool_scenario(rng, connect, rng.randint(1, 4), close_conn=close)
        assert sorted(close_calls.values()) == [1] * len(writers)
        async with asyncio.timeout(5.0):
            while server.ended < server.accepted:  # the server sees every connection closed
                await asyncio.sleep(0.001)
        # a connector cancelled by an acquire timeout mid-connect never gave the pool its
        # connection; asyncio closed that socket itself (the server saw it end, above)
        assert server.accepted >= len(writers)


# ---------------------------------------------------------------------------------------------------
# AsyncTaskPool
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", seeds(4, 100))
async def test_chaos_task_pool(seed: int) -> None:
    rng = random.Random(seed)
    limit = rng.randint(1, 5)
    pool = AsyncTaskPool(max_concurrent=limit)
    running = [0]
    peak = [0]
    started: list[int] = []
    finished: list[int] = []

    async def job(i: int) -> int:
        started.append(i)
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        try:
            await asyncio.sleep(rng.choice([0, 0.0005, 0.002]))
            if i % 5 == 4:
                raise ValueError(i)
            return i
        finally:
            running[0] -= 1
            finished.append(i)

    submitted = [pool.submit(job, i) for i in range(rng.randint(0, 30))]
    mapped = asyncio.create_task(pool.map(job, range(1000, 1000 + rng.randint(0, 30))))
    coroutines = [job(2000 + i) for i in range(rng.randint(0, 10))]
    run_all = asyncio.create_task(pool.run_all(coroutines))
    await asyncio.sleep(rng.choice([0, 0.001, 0.003]))
    victims = [t for t in [*submitted, mapped, run_all] if rng.random() < 0.15]
    for task in victims:
        task.cancel()
    await finish([*submitted, mapped, run_all])
    assert peak[0] <= limit, f"{peak[0]} jobs ran at once, limit {limit}"
    assert sorted(started) == sorted(finished), "a started job never finished"
    for i, task in enumerate(submitted):
        if task.cancelled():
            continue
        result = task.result()
        assert result.success == (i % 5 != 4) and (result.result == i or not result.success)
    for task in (mapped, run_all):
        if not task.cancelled():
            results = task.result()
            assert all(r.success or isinstance(r.error, ValueError) for r in results)
    assert all(c.cr_frame is None for c in coroutines), "a coroutine was neither run nor closed"


# ---------------------------------------------------------------------------------------------------
# AsyncRateLimiter
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", seeds(5, 100))
async def test_chaos_rate_limiter(seed: int) -> None:
    rng = random.Random(seed)
    vt = VirtualTime()
    rate, per = rng.choice([1.0, 5.0, 50.0]), rng.choice([0.5, 1.0, 2.0])
    burst = rng.choice([None, 1.0, 3.0, 10.0])
    limiter = AsyncRateLimiter(rate, per, burst, clock=vt.clock, sleep=vt.sleep)
    fill = rate / per
    admissions: list[float] = []
    cancelled = [0]

    async def caller() -> None:
        for _ in range(rng.randint(1, 10)):
            await vt.sleep(rng.expovariate(fill / 2))
            if rng.random() < 0.1:
                if limiter.try_acquire():
                    admissions.append(vt.now)
                continue
            attempt = asyncio.ensure_future(limiter.acquire())
            if rng.random() < 0.2:  # a caller with a deadline: gives up after a while
                done, _ = await asyncio.wait([attempt, asyncio.ensure_future(vt.sleep(rng.uniform(0, 3 / fill)))],
                                             return_when=asyncio.FIRST_COMPLETED)
                if attempt not in done:
                    attempt.cancel()
                    await asyncio.gather(attempt, return_exceptions=True)
                if attempt.cancelled():
                    cancelled[0] += 1
                    continue
            await attempt
            admissions.append(vt.now)

    callers = [asyncio.create_task(caller()) for _ in range(rng.randint(1, 20))]
    await vt.run(callers)
    assert all(t.done() and t.exception() is None for t in callers)
    assert limiter.admitted == len(admissions)
    times = sorted(admissions)
    cap = limiter.burst
    for i in range(len(times)):
        for j in range(i, len(times)):
            assert j - i + 1 <= cap + fill * (times[j] - times[i]) + 1e-6, (
                f"{j - i + 1} admissions in {times[j] - times[i]:.4f} s; bound {cap} + {fill} * t")
    # cancelled waiters gave their tokens back: once everyone is gone the bucket refills to burst
    vt.now += (cap + len(times)) / fill
    assert limiter.tokens == pytest.approx(cap)


# ---------------------------------------------------------------------------------------------------
# CircuitBreaker
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", seeds(6, 100))
async def test_chaos_circuit_breaker(seed: int) -> None:
    rng = random.Random(seed)
    vt = VirtualTime()
    breaker = CircuitBreaker(
        failure_threshold=rng.randint(1, 4), recovery_timeout=rng.choice([0.0, 0.5, 2.0]),
        half_open_max_calls=rng.randint(1, 3), success_threshold=rng.randint(1, 3),
        expected_exceptions=(ConnectionError,), clock=vt.clock,
    )
    probes = [0]
    peak = [0]
    counts = {"admitted": 0, "ok": 0, "failed": 0, "other": 0, "cancelled": 0, "rejected": 0}

    async def one_call() -> None:
        probe = breaker.state is CircuitState.HALF_OPEN  # read and admission: no await between
        async with breaker:
            counts["admitted"] += 1
            if probe:
                probes[0] += 1
                peak[0] = max(peak[0], probes[0])
            try:
                await vt.sleep(rng.choice([0, 0.1, 0.5, 1.0]))
                roll = rng.random()
                if roll < 0.35:
                    raise ConnectionError("down")
                if roll < 0.4:
                    raise KeyError("not a failure")
            finally:
                if probe:
                    probes[0] -= 1

    async def caller() -> None:
        for _ in range(rng.randint(1, 12)):
            await vt.sleep(rng.choice([0, 0.05, 0.3, 1.0]))
            call = asyncio.ensure_future(one_call())
            if rng.random() < 0.15:
                await vt.sleep(rng.choice([0, 0.2]))
                call.cancel()
            try:
                await call
                counts["ok"] += 1
            except CircuitOpenError:
                counts["rejected"] += 1
            except ConnectionError:
                counts["failed"] += 1
            except KeyError:
                counts["other"] += 1
            except asyncio.CancelledError:
                counts["cancelled"] += 1
            assert breaker.stats().half_open_in_flight <= breaker.half_open_max_calls

    callers = [asyncio.create_task(caller()) for _ in range(rng.randint(1, 16))]
    await vt.run(callers)
    assert all(t.done() and t.exception() is None for t in callers)
    assert peak[0] <= breaker.half_open_max_calls, f"{peak[0]} probes at once"
    s = breaker.stats()
    assert s.half_open_in_flight == 0
    assert s.rejections == counts["rejected"]
    assert s.successes == counts["ok"] and s.failures == counts["failed"]
    # a call cancelled before it was admitted never reached the breaker
    assert s.successes + s.failures + s.ignored == counts["admitted"]
    assert s.ignored <= counts["other"] + counts["cancelled"]


# ---------------------------------------------------------------------------------------------------
# QueryCache (async functions) and LRUCache
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", seeds(7, 100))
async def test_chaos_query_cache(seed: int) -> None:
    rng = random.Random(seed)
    vt = VirtualTime()
    cache = QueryCache(max_size=rng.choice([2, 4, 50]), default_ttl=rng.choice([None, 0.5, 3.0]), clock=vt.clock)
    executions = [0]
    requests = [0]

    @cache.cached
    async def lookup(key: int) -> int:
        executions[0] += 1
        await vt.sleep(rng.choice([0, 0.1, 0.5]))
        if key == 3 and rng.random() < 0.5:
            raise LookupError(key)
        return key * 10

    async def caller() -> None:
        for _ in range(rng.randint(1, 10)):
            await vt.sleep(rng.choice([0, 0, 0.05, 0.3]))
            if rng.random() < 0.05:
                lookup.invalidate(rng.randint(0, 5))  # type: ignore[attr-defined]
                continue
            key = rng.randint(0, 5)
            requests[0] += 1
            call = asyncio.ensure_future(lookup(key))
            cancel = rng.random() < 0.2
            if cancel:
                await vt.sleep(rng.choice([0, 0.05, 0.2]))
                call.cancel()
            try:
                value = await call
            except asyncio.CancelledError:
                assert cancel, "a caller got a cancellation it never asked for"
                continue
            except LookupError:
                assert key == 3
                continue
            assert value == key * 10

    callers = [asyncio.create_task(caller()) for _ in range(rng.randint(1, 16))]
    await vt.run(callers)
    assert all(t.done() and t.exception() is None for t in callers)
    assert not cache._inflight, "a call is still in flight after every caller has gone"
    s = cache.stats()
    # a caller cancelled before its first step never looked the key up
    assert s.hits + s.misses <= requests[0]
    assert executions[0] <= s.misses and s.shared_calls <= s.misses
    assert s.size <= s.max_size


@pytest.mark.parametrize("seed", seeds(8, 8))
def test_chaos_lru_cache_from_threads(seed: int) -> None:
    rng = random.Random(seed)
    clock_lock = threading.Lock()
    now = [0.0]

    def clock() -> float:
        with clock_lock:
            return now[0]

    cache: LRUCache[int, tuple[int, int]] = LRUCache(rng.choice([1, 3, 16]), ttl=rng.choice([None, 0.01, 1.0]), clock=clock)
    reads = [0] * 4
    errors: list[str] = []

    def worker(w: int) -> None:
        local = random.Random(seed * 10 + w)
        for step in range(1500):
            key = local.randint(0, 20)
            op = local.random()
            if op < 0.45:
                cache.set(key, (key, step), ttl=local.choice([None, 0.005]))
            elif op < 0.9:
                reads[w] += 1
                value = cache.get(key, MISSING)
                if value is not MISSING and value[0] != key:
                    errors.append(f"key {key} read {value}")
            elif op < 0.95:
                cache.delete(key)
            else:
                with clock_lock:
                    now[0] += 0.001
            if len(cache) > cache.max_size:
                errors.append(f"{len(cache)} entries > max_size {cache.max_size}")

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    s = cache.stats()
    assert s.hits + s.misses == sum(reads)
    assert s.size <= s.max_size
