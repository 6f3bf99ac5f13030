"""Issue 10, class 2: shutdown and cancellation lose nothing.

After ``stop()`` / ``close()`` returns, every accepted item has a resolved future, every blocked
caller has been woken with a clear error (``PoolClosedError``), and every connection the pool
opened has been closed exactly once, whatever was cancelled when.
"""

from __future__ import annotations

import asyncio

import pytest

from mdt_tensor.aio.batch import BatchProcessor
from mdt_tensor.aio.breaker import CircuitBreaker, CircuitState
from mdt_tensor.aio.executors import ThreadPoolExecutor
from mdt_tensor.aio.pool import ConnectionPool
from mdt_tensor.aio.query_cache import QueryCache
from mdt_tensor.aio.ratelimit import AsyncRateLimiter
from mdt_tensor.aio.tasks import AsyncTaskPool
from mdt_tensor.aio.workqueue import WorkQueue
from mdt_tensor.errors import PoolClosedError, PoolTimeoutError

pytestmark = pytest.mark.timeout(20)


async def settle(rounds: int = 10) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


# -- WorkQueue ---------------------------------------------------------------------------------


async def test_issue10_bounded_work_queue_stop_refuses_blocked_producers_and_resolves_everything() -> None:
    async def work(x: int) -> int:
        await asyncio.sleep(0.05)
        return x

    queue = WorkQueue(work, num_workers=1, maxsize=1)
    await queue.start()
    accepted: list[asyncio.Future[int]] = []

    async def producer(i: int) -> None:
        accepted.append(await queue.put(i))

    producers = [asyncio.create_task(producer(i)) for i in range(5)]
    await asyncio.sleep(0.01)  # item 0 runs, item 1 is queued, three producers wait for room
    left = await queue.stop(drain=True, timeout=0.02)
    # at once, not later: every producer has its answer and every accepted item its outcome
    assert all(p.done() for p in producers)
    assert all(f.done() for f in accepted)
    refused = [p for p in producers if p.exception() is not None]
    assert len(refused) == 5 - len(accepted)
    assert all(isinstance(p.exception(), PoolClosedError) for p in refused)
    assert sorted(left) == [0, 1]
    await asyncio.sleep(0.1)  # nothing sneaks in after stop() returned
    assert queue.qsize() == 0 and len(accepted) == 2


async def test_issue10_bounded_work_queue_drain_refuses_waiting_producers_but_finishes_accepted() -> None:
    done: list[int] = []

    async def work(x: int) -> None:
        await asyncio.sleep(0.005)
        done.append(x)

    queue = WorkQueue(work, num_workers=1, maxsize=1)
    await queue.start()
    accepted = [await queue.put(0), await queue.put(1)]  # 0 running, 1 queued
    blocked = asyncio.create_task(queue.put(2))
    await settle()
    assert await queue.stop(drain=True) == []
    assert sorted(done) == [0, 1] and all(f.done() and f.exception() is None for f in accepted)
    with pytest.raises(PoolClosedError):
        await blocked


async def test_issue10_cancelled_stop_resolves_every_accepted_future() -> None:
    async def stuck(x: int) -> None:
        await asyncio.sleep(10)

    queue = WorkQueue(stuck, num_workers=1)
    await queue.start()
    futures = [await queue.put(i) for i in range(3)]
    await settle()
    stopping = asyncio.create_task(queue.stop(drain=True))
    await settle()
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert all(isinstance(f.exception(), PoolClosedError) for f in futures)


async def test_issue10_work_queue_skips_items_whose_future_the_caller_cancelled() -> None:
    ran: list[int] = []
    queue = WorkQueue(ran.append, num_workers=1)
    first, second = await queue.put(1), await queue.put(2)
    second.cancel()
    await queue.start()
    await queue.join()
    assert ran == [1] and first.done() and (queue.processed, queue.failed, queue.cancelled) == (1, 0, 1)
    assert await queue.stop() == []


# -- ConnectionPool ----------------------------------------------------------------------------


class SlowClose:
    """A connection whose close takes a while (awaits) and counts how often it was closed."""

    def __init__(self) -> None:
        self.closes = 0

    async def close(self) -> None:
        await asyncio.sleep(0.03)
        self.closes += 1


class Made(list):
    def __call__(self) -> SlowClose:
        conn = SlowClose()
        self.append(conn)
        return conn


async def test_issue10_close_interrupted_by_an_acquire_timeout_is_not_forgotten() -> None:
    made = Made()
    pool = ConnectionPool(made, max_size=1, acquire_timeout=1.0, validate=lambda c: False)
    conn = await pool.acquire()
    await pool.release(conn)
    with pytest.raises(PoolTimeoutError):  # the idle one fails validation; its close outlasts the timeout
        await pool.acquire(timeout=0.01)
    assert await pool.close(timeout=1.0) == []
    assert [c.closes for c in made] == [1]
    stats = pool.stats()
    assert (stats.created, stats.closed, stats.size) == (1, 1, 0)


async def test_issue10_close_interrupted_by_cancellation_is_not_forgotten() -> None:
    made = Made()
    pool = ConnectionPool(made, max_size=2, acquire_timeout=1.0)

    async def use() -> None:
        async with pool.acquire():
            await asyncio.sleep(10)  # cancelled here: the connection is discarded (closed) ...

    task = asyncio.create_task(use())
    await settle()
    task.cancel()
    await settle(3)
    task.cancel()  # ... and cancelled again while that close runs
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await pool.close(timeout=1.0) == []
    assert [c.closes for c in made] == [1]
    assert pool.stats().closed == 1 and pool.stats().size == 0


async def test_issue10_release_to_a_closed_pool_cancelled_mid_close_still_closes_and_frees_the_slot() -> None:
    made = Made()
    pool = ConnectionPool(made, max_size=1, acquire_timeout=1.0)
    conn = await pool.acquire()
    closing = asyncio.create_task(pool.close(timeout=1.0))
    await settle()
    releasing = asyncio.create_task(pool.release(conn))
    await settle()
    releasing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await releasing
    assert await closing == []
    assert conn.closes == 1 and pool.stats().size == 0 and pool.stats().closed == 1


async def test_issue10_cancelled_close_still_closes_every_idle_connection() -> None:
    made = Made()
    pool = ConnectionPool(made, min_size=3, max_size=3, acquire_timeout=1.0)
    await pool.initialize()
    closing = asyncio.create_task(pool.close(timeout=1.0))
    await settle()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert await pool.close(timeout=1.0) == []  # a second close waits for the closes under way
    assert [c.closes for c in made] == [1, 1, 1]


async def test_issue10_a_connection_that_opens_after_close_is_closed_and_the_acquirer_told() -> None:
    gate = asyncio.Event()
    made: list[SlowClose] = []

    async def connect() -> SlowClose:
        await gate.wait()
        made.append(SlowClose())
        return made[-1]

    pool = ConnectionPool(connect, max_size=1, acquire_timeout=5.0)

    async def acquire() -> object:
        return await pool.acquire()

    acquiring = asyncio.create_task(acquire())
    await settle()
    closing = asyncio.create_task(pool.close(timeout=1.0))
    await settle()
    assert not closing.done()  # it waits for the connect under way
    gate.set()
    assert await closing == []
    with pytest.raises(PoolClosedError):
        await acquiring
    assert [c.closes for c in made] == [1] and pool.stats().size == 0


async def test_issue10_waiters_are_woken_with_pool_closed_error() -> None:
    pool = ConnectionPool(Made(), max_size=1, acquire_timeout=5.0)
    held = await pool.acquire()

    async def acquire() -> object:
        return await pool.acquire()

    waiters = [asyncio.create_task(acquire()) for _ in range(3)]
    await settle()
    closing = asyncio.create_task(pool.close(timeout=1.0))
    await settle()
    assert all(w.done() and isinstance(w.exception(), PoolClosedError) for w in waiters)
    await pool.release(held)
    assert await closing == [] and held.closes == 1


# -- the other closable objects ----------------------------------------------------------------


def test_issue10_thread_pool_submit_after_shutdown_is_pool_closed_error() -> None:
    executor = ThreadPoolExecutor(max_workers=1)
    executor.shutdown()
    with pytest.raises(PoolClosedError):
        executor.submit(print)


def test_issue10_thread_pool_counters_add_up_after_shutdown_with_cancel() -> None:
    import threading

    gate = threading.Event()
    executor = ThreadPoolExecutor(max_workers=1)
    futures = [executor.submit(gate.wait) for _ in range(5)]
    executor.shutdown(wait=False, cancel_futures=True)
    gate.set()
    executor.shutdown(wait=True)
    assert all(f.done() for f in futures)
    s = executor.stats()
    assert s.submitted == 5 and s.completed + s.failed + s.cancelled == 5 and s.pending == 0


async def test_issue10_batch_processor_close_resolves_every_submission() -> None:
    processor: BatchProcessor[int, int] = BatchProcessor(lambda xs: [x + 1 for x in xs], max_batch_size=10, max_wait=60)
    calls = [asyncio.create_task(processor.submit(i)) for i in range(3)]
    await settle()
    await processor.close()
    assert [await c for c in calls] == [1, 2, 3]
    with pytest.raises(PoolClosedError):
        await processor.submit(4)


async def test_issue10_breaker_half_open_slot_is_released_on_cancellation() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, clock=lambda: now[0])
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError
    now[0] = 1.0
    assert breaker.state is CircuitState.HALF_OPEN

    async def probe() -> None:
        async with breaker:
            await asyncio.sleep(10)

    task = asyncio.create_task(probe())
    await settle()
    assert breaker.stats().half_open_in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.stats().half_open_in_flight == 0 and breaker.state is CircuitState.HALF_OPEN


async def test_issue10_half_open_probes_of_an_earlier_round_still_count() -> None:
    """A probe admitted in one half-open round that is still running holds its slot in the next."""
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, half_open_max_calls=2, clock=lambda: now[0])
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError
    now[0] = 1.0
    release = asyncio.Event()
    concurrent_probes = [0]
    peak = [0]

    async def probe(fail: bool) -> None:
        async with breaker:
            concurrent_probes[0] += 1
            peak[0] = max(peak[0], concurrent_probes[0])
            try:
                if fail:
                    raise ConnectionError
                await release.wait()
            finally:
                concurrent_probes[0] -= 1

    slow = asyncio.create_task(probe(False))
    await settle()
    with pytest.raises(ConnectionError):
        await probe(True)  # the second probe fails: OPEN again, the slow one still running
    now[0] = 2.0
    assert breaker.state is CircuitState.HALF_OPEN
    admitted = []
    for _ in range(2):
        admitted.append(asyncio.create_task(probe(False)))
        await settle()
    refused = [t for t in admitted if t.done() and t.exception() is not None]
    assert peak[0] <= 2 and len(refused) == 1
    release.set()
    await asyncio.gather(slow, *admitted, return_exceptions=True)


async def test_issue10_query_cache_caller_arriving_as_the_last_one_leaves_gets_a_fresh_call() -> None:
    cache = QueryCache(max_size=10)
    calls = [0]
    gate = asyncio.Event()

    @cache.cached
    async def fetch(x: int) -> int:
        calls[0] += 1
        await gate.wait()
        return x

    first = asyncio.create_task(fetch(1))
    await settle()
    first.cancel()  # the only caller leaves: the shared call is cancelled ...
    second = asyncio.create_task(fetch(1))  # ... and a new caller arrives in the same breath
    await settle()
    gate.set()
    assert await second == 1  # not the CancelledError of the call the first caller abandoned
    assert calls[0] == 2


async def test_issue10_rate_limiter_cancelled_waiters_return_their_tokens() -> None:
    now = [0.0]
    sleeps: list[asyncio.Future[None]] = []

    async def sleep(seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sleeps.append(future)
        await future

    limiter = AsyncRateLimiter(rate=1, burst=1, clock=lambda: now[0], sleep=sleep)
    await limiter.acquire()
    waiters = [asyncio.create_task(limiter.acquire()) for _ in range(3)]
    await settle()
    for w in waiters:
        w.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert limiter.tokens == pytest.approx(0.0) and limiter.admitted == 1


async def test_issue10_task_pool_run_all_closes_coroutines_it_never_started_when_cancelled() -> None:
    started: list[int] = []

    async def job(i: int) -> int:
        started.append(i)
        await asyncio.sleep(10)
        return i

    coroutines = [job(i) for i in range(5)]
    pool = AsyncTaskPool(max_concurrent=2)
    running = asyncio.create_task(pool.run_all(coroutines))
    await settle()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert started == [0, 1]
    assert all(c.cr_frame is None for c in coroutines)  # every coroutine finished or closed


# -- the feed and the memory monitor ------------------------------------------------------------


async def test_issue10_memory_monitor_stop_does_not_swallow_the_callers_cancellation() -> None:
    from mdt_tensor.memory import MemoryMonitor

    monitor = MemoryMonitor(warning=99.9, critical=100.0, collect_on_critical=False)
    monitor.start(interval=60.0)
    await settle()
    stopper = asyncio.create_task(monitor.stop())
    await asyncio.sleep(0)  # stop() has cancelled the polling task and waits for it
    stopper.cancel()
    await asyncio.gather(stopper, return_exceptions=True)
    assert stopper.cancelled()  # the caller's cancellation went through
    assert not monitor.running


async def test_issue10_weight_feed_close_wakes_a_fetch_in_flight_with_pool_closed_error() -> None:
    from mdt_tensor.feed import WeightFeed, serve_weights

    async with serve_weights([[1, 2], [3, 4]], delay=5.0) as server:
        feed = WeightFeed(server.urls(), 2, timeout=10.0, max_retries=0)
        async with feed:
            fetching = asyncio.create_task(feed.fetch())
            while server.requests < 2:
                await asyncio.sleep(0.005)
            await feed.close()  # returns without waiting out the slow server
            with pytest.raises(PoolClosedError):
                await fetching
            with pytest.raises(PoolClosedError):
                await feed.fetch()  # a closed feed refuses at once


async def test_issue10_weight_feed_close_ends_a_stream_with_pool_closed_error() -> None:
    from mdt_tensor.feed import WeightFeed, serve_weights

    async with serve_weights([[1, 2], [3, 4]], delay=0.2) as server:
        feed = WeightFeed(server.urls(), 2, timeout=10.0, max_retries=0)
        seen = []

        async def consume() -> None:
            async for batch in feed.stream(count=5):
                seen.append(batch.ok_count)

        async with feed:
            consumer = asyncio.create_task(consume())
            while not seen:
                await asyncio.sleep(0.01)
            await feed.close()
            with pytest.raises(PoolClosedError):  # not a silent early end, nor a CancelledError
                await consumer
        assert seen == [2]


async def test_issue10_a_cancelled_waiter_in_the_middle_of_the_line_does_not_double_book_a_slot() -> None:
    """burst 1, 1 per second: a waiter leaving the middle of the line must not let a newcomer in
    beside the last waiter (two admissions at t=4 made four in [2, 4], over 1 + 1 * 2)."""
    now = [0.0]
    wakes: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        wakes.append((now[0] + seconds, future))
        await future

    limiter = AsyncRateLimiter(rate=1, burst=1, clock=lambda: now[0], sleep=sleep)
    admitted: list[float] = []

    async def acquire() -> None:
        await limiter.acquire()
        admitted.append(now[0])

    await acquire()  # t=0
    line = [asyncio.create_task(acquire()) for _ in range(4)]  # slots at t = 1, 2, 3, 4
    await settle()
    line[0].cancel()  # the first in line leaves
    await settle()
    newcomer = asyncio.create_task(acquire())
    await settle()
    while wakes:
        wakes.sort(key=lambda w: w[0])
        wake, future = wakes.pop(0)
        now[0] = max(now[0], wake)
        if not future.done():
            future.set_result(None)
        await settle()
    await asyncio.gather(*line, newcomer, return_exceptions=True)
    times = sorted(admitted)
    for i in range(len(times)):
        for j in range(i, len(times)):
            assert j - i + 1 <= 1 + (times[j] - times[i]) + 1e-9, times


async def test_issue10_acquire_that_closes_a_rejected_connection_while_the_pool_closes_is_told() -> None:
    """Found by the chaos test: an acquire whose rejected connection was still closing when the
    pool closed went on to wait for a turn that never came (after close() had failed waiters)."""
    gate = asyncio.Event()
    made = Made()

    async def connect() -> SlowClose:
        if made:
            await gate.wait()  # the second connection: opened for the waiter, held back
        return made()

    async def validate(conn: SlowClose) -> bool:
        await asyncio.sleep(0.005)
        return False

    pool = ConnectionPool(connect, max_size=1, acquire_timeout=None, validate=validate)
    first = await pool.acquire()
    await pool.release(first)  # idle, and will fail validation

    async def acquire() -> object:
        return await pool.acquire()

    rejecting = asyncio.create_task(acquire())  # validates the idle one (rejects it, then closes it)
    await settle(2)
    waiting = asyncio.create_task(acquire())  # at max_size: waits, and is handed the freed slot
    await asyncio.sleep(0.01)
    closing = asyncio.create_task(pool.close(timeout=5.0))
    await asyncio.sleep(0.06)  # the rejected connection is closed; its acquire goes on
    gate.set()
    async with asyncio.timeout(2.0):
        results = await asyncio.gather(rejecting, waiting, return_exceptions=True)
    assert all(isinstance(r, PoolClosedError) for r in results), results
    assert await closing == []
    assert [c.closes for c in made] == [1] * len(made) and pool.stats().size == 0
