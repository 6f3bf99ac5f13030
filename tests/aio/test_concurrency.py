"""Task pools, executors, the rate limiter, the work queue and the helpers (defect 22)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import multiprocessing
import os
import sys
import threading
import types

import pytest

from tests.aio.virtual_time import VirtualTime
from mdt_tensor.aio.executors import ParallelProcessor, ThreadPoolExecutor
from mdt_tensor.aio.loop import optimize_async_loop, run_async
from mdt_tensor.aio.ratelimit import AsyncRateLimiter
from mdt_tensor.aio.tasks import AsyncTaskPool, TaskResult, gather_with_concurrency, run_with_timeout
from mdt_tensor.aio.workqueue import WorkQueue
from mdt_tensor.errors import DTypeError, PoolClosedError, ValueRangeError

pytestmark = pytest.mark.timeout(30)


async def settle(rounds: int = 10) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


# ---------------------------------------------------------------------------------------------------
# AsyncTaskPool and gather_with_concurrency
# ---------------------------------------------------------------------------------------------------


class Tracker:
    def __init__(self) -> None:
        self.active = self.peak = self.created = self.finished = 0
        self.peak_alive = 0

    async def job(self, x: int) -> int:
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        self.active -= 1
        self.finished += 1
        if x == 13:
            raise ValueError("unlucky")
        return x * 2

    def make(self, x: int):  # noqa: ANN201 - records how many coroutines exist at once
        self.created += 1
        self.peak_alive = max(self.peak_alive, self.created - self.finished)
        return self.job(x)


async def test_task_pool_map_is_ordered_bounded_and_creates_coroutines_lazily() -> None:
    tracker = Tracker()
    pool = AsyncTaskPool(max_concurrent=3)
    results = await pool.map(tracker.make, (i for i in range(20)))  # a generator: length unknown
    assert [r.result for r in results if r.success] == [2 * i for i in range(20) if i != 13]
    failed = results[13]
    assert not failed.success and isinstance(failed.error, ValueError) and failed.result is None
    assert tracker.peak <= 3 and tracker.peak_alive <= 3  # never more than 3 coroutines in existence


async def test_task_pool_submit_and_run_all() -> None:
    tracker = Tracker()
    pool = AsyncTaskPool(max_concurrent=2)
    tasks = [pool.submit(tracker.make, i) for i in range(6)]
    results = await asyncio.gather(*tasks)
    assert [r.result for r in results] == [0, 2, 4, 6, 8, 10] and tracker.peak_alive <= 2
    results = await pool.run_all([tracker.job(i) for i in range(4)])
    assert [r.result for r in results] == [0, 2, 4, 6] and all(isinstance(r, TaskResult) for r in results)


async def test_task_duration_excludes_the_wait_for_a_slot() -> None:
    gate = asyncio.Event()

    async def job(x: int) -> int:
        if x == 0:
            await gate.wait()
        return x

    pool = AsyncTaskPool(max_concurrent=1)
    tasks = [pool.submit(job, 0), pool.submit(job, 1)]  # the second waits for the first's slot
    await asyncio.sleep(0.1)
    gate.set()
    first, second = await asyncio.gather(*tasks)
    assert second.wait >= 0.09 and second.duration < second.wait
    assert first.duration >= 0.09 and first.wait < first.duration


async def test_task_pool_lets_cancellation_through() -> None:
    async def forever(_: int) -> None:
        await asyncio.sleep(10)

    pool = AsyncTaskPool(2)
    task = asyncio.create_task(pool.map(forever, range(4)))
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_gather_with_concurrency_order_and_bound() -> None:
    tracker = Tracker()
    out = await gather_with_concurrency(4, *(tracker.job(i) for i in range(30) if i != 13))
    assert out == [2 * i for i in range(30) if i != 13] and tracker.peak <= 4
    assert await gather_with_concurrency(3) == []


async def test_gather_with_concurrency_first_exception_cancels_the_rest() -> None:
    cancelled = []

    async def slow(i: int) -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        return i

    async def boom() -> None:
        await asyncio.sleep(0)
        raise KeyError("first")

    never_started = [slow(i) for i in range(10, 13)]
    with pytest.raises(KeyError, match="first"):
        await gather_with_concurrency(3, slow(1), slow(2), boom(), *never_started)
    assert sorted(cancelled) == [1, 2]  # the original let them keep running
    assert all(inspect.getcoroutinestate(c) == inspect.CORO_CLOSED for c in never_started)


async def test_gather_with_concurrency_return_exceptions() -> None:
    async def maybe(i: int) -> int:
        if i % 2:
            raise ValueError(i)
        return i

    out = await gather_with_concurrency(2, *(maybe(i) for i in range(5)), return_exceptions=True)
    assert [type(x) for x in out] == [int, ValueError, int, ValueError, int]


@pytest.mark.parametrize("n", [0, -1])
async def test_bad_concurrency_limits(n: object) -> None:
    with pytest.raises(ValueRangeError):
        AsyncTaskPool(n)  # type: ignore[arg-type]
    with pytest.raises(ValueRangeError):
        await gather_with_concurrency(n)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [1.5])
async def test_concurrency_limits_of_the_wrong_type(n: object) -> None:
    with pytest.raises(DTypeError):
        AsyncTaskPool(n)  # type: ignore[arg-type]
    with pytest.raises(DTypeError):
        await gather_with_concurrency(n)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------
# run_with_timeout
# ---------------------------------------------------------------------------------------------------


async def test_defect22_run_with_timeout_lets_an_inner_timeout_error_through() -> None:
    async def socket_timeout() -> None:
        raise TimeoutError("the peer did not answer")

    with pytest.raises(TimeoutError, match="peer"):
        await run_with_timeout(socket_timeout(), timeout=5.0, default="nope")


async def test_run_with_timeout_own_timeout_returns_default_and_cancels() -> None:
    cancelled = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    assert await run_with_timeout(slow(), timeout=0.01, default="default") == "default"
    assert cancelled.is_set()
    assert await run_with_timeout(asyncio.sleep(0, "fast"), timeout=1.0) == "fast"


# ---------------------------------------------------------------------------------------------------
# ThreadPoolExecutor and ParallelProcessor
# ---------------------------------------------------------------------------------------------------


def test_defect22_thread_pool_is_a_real_stdlib_executor_and_map_is_counted() -> None:
    with ThreadPoolExecutor(max_workers=2) as ex:
        assert isinstance(ex, concurrent.futures.ThreadPoolExecutor)
        assert list(ex.map(lambda x: x + 1, range(10))) == list(range(1, 11))
        assert ex.submit(pow, 2, 5).result() == 32
    stats = ex.stats()
    assert (stats.submitted, stats.completed, stats.failed, stats.pending) == (11, 11, 0, 0)
    assert ex.get_stats()["max_workers"] == 2


def test_defect22_thread_pool_counters_are_not_racy_and_count_failures_and_cancels() -> None:
    gate = threading.Event()
    with ThreadPoolExecutor(max_workers=4) as ex:
        blockers = [ex.submit(gate.wait, 10) for _ in range(4)]
        queued = [ex.submit(int, "1") for _ in range(5)]
        assert all(f.cancel() for f in queued)  # still queued behind the blockers: cancellable
        submitters = [threading.Thread(target=lambda: [ex.submit(divmod, i, i % 2) for i in range(200)]) for _ in range(4)]
        for t in submitters:
            t.start()
        for t in submitters:
            t.join()
        gate.set()
    stats = ex.stats()
    assert stats.submitted == 4 + 5 + 800
    assert stats.cancelled == 5 and stats.failed == 400 and stats.completed == 404 and stats.pending == 0
    assert all(f.result() for f in blockers)


def _pid_after_barrier(batch: list[int]) -> list[tuple[int, int]]:
    # Both batches must be inside this function at the same time for the barrier to open:
    # a serial (or GIL-bound) run would raise BrokenBarrierError after the timeout.
    _BARRIER["barrier"].wait(timeout=20)
    return [(x * x, os.getpid()) for x in batch]


_BARRIER: dict[str, object] = {}


def _install_barrier(barrier: object) -> None:
    _BARRIER["barrier"] = barrier


def _square_all(batch: list[int]) -> list[int]:
    return [x * x for x in batch]


def _fail_on_three(batch: list[int]) -> list[int]:
    if 3 in batch:
        raise RuntimeError("bad batch")
    return batch


@pytest.mark.skipif(sys.platform != "linux", reason="uses the fork start method")
def test_defect22_parallel_processor_runs_python_in_parallel_processes() -> None:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    with ParallelProcessor(num_workers=2, mp_context=ctx, initializer=_install_barrier, initargs=(barrier,)) as pp:
        out = pp.process([1, 2, 3, 4], _pid_after_barrier, batch_size=2)
    assert [v for v, _ in out] == [1, 4, 9, 16]
    pids = {pid for _, pid in out}
    assert len(pids) == 2 and os.getpid() not in pids  # two separate processes, so two GILs


@pytest.mark.skipif(sys.platform != "linux", reason="uses the fork start method")
def test_parallel_processor_order_errors_and_empty_input() -> None:
    with ParallelProcessor(num_workers=2, mp_context=multiprocessing.get_context("fork")) as pp:
        assert pp.process(list(range(10)), _square_all, batch_size=3) == [x * x for x in range(10)]
        assert pp.process([], _square_all) == []
        with pytest.raises(RuntimeError, match="bad batch"):
            pp.process(list(range(6)), _fail_on_three, batch_size=2)
        with pytest.raises(ValueRangeError, match="batch_size"):
            pp.process([1], _square_all, batch_size=0)


def test_parallel_processor_thread_backend_and_bad_arguments() -> None:
    with ParallelProcessor(num_workers=2, backend="thread") as pp:
        assert pp.process(list(range(5)), lambda xs: [x + 1 for x in xs], batch_size=2) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueRangeError, match="backend"):
        ParallelProcessor(backend="gpu")  # type: ignore[arg-type]
    with pytest.raises(ValueRangeError, match="num_workers"):
        ParallelProcessor(num_workers=0)


# ---------------------------------------------------------------------------------------------------
# AsyncRateLimiter
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"rate": 0}, "rate"), ({"rate": -5}, "rate"), ({"rate": float("nan")}, "rate"), ({"rate": float("inf")}, "rate"),
    ({"rate": 5, "per": 0}, "per"), ({"rate": 5, "per": -1}, "per"), ({"rate": 5, "burst": 0.5}, "burst"),
])
def test_defect22_rate_limiter_rejects_rates_that_would_hang_or_divide_by_zero(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueRangeError, match=name):
        AsyncRateLimiter(**kwargs)


async def test_defect22_rate_limiter_bursts_rate_not_rate_plus_one() -> None:
    vt = VirtualTime()
    limiter = AsyncRateLimiter(rate=5, per=1.0, clock=vt.clock, sleep=vt.sleep)
    admitted: list[float] = []

    async def caller() -> None:
        async with limiter:
            admitted.append(vt.now)

    tasks = [asyncio.create_task(caller()) for _ in range(8)]
    await vt.run_until(10.0)
    await asyncio.gather(*tasks)
    assert admitted[:5] == [0.0] * 5  # the original let 6 through at once
    assert admitted[5:] == pytest.approx([0.2, 0.4, 0.6])


async def test_defect22_rate_limiter_never_serialises_sleepers_and_serves_fifo() -> None:
    vt = VirtualTime()
    limiter = AsyncRateLimiter(rate=10, per=1.0, burst=1, clock=vt.clock, sleep=vt.sleep)
    order: list[int] = []

    async def caller(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    tasks = []
    for i in range(6):
        tasks.append(asyncio.create_task(caller(i)))
        await settle(2)
    # Every waiter reserved its slot at once and sleeps concurrently (no lock held while sleeping):
    assert sorted(round(t, 6) for t, _, f in vt._sleepers if not f.done()) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert limiter.try_acquire() is False  # a newcomer cannot jump the queue
    await vt.run_until(1.0)
    await asyncio.gather(*tasks)
    assert order == list(range(6))


@pytest.mark.parametrize("burst", [None, 20, 1])
async def test_rate_limiter_200_per_second_over_2_seconds_admits_400_plus_minus_burst(burst: float | None) -> None:
    vt = VirtualTime()
    limiter = AsyncRateLimiter(rate=200, per=1.0, burst=burst, clock=vt.clock, sleep=vt.sleep)
    times: list[float] = []
    done = False

    async def hammer() -> None:
        while not done:
            async with limiter:
                if vt.now <= 2.0:
                    times.append(vt.now)

    tasks = [asyncio.create_task(hammer()) for _ in range(25)]
    await vt.run_until(2.0)
    done = True
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    cap = limiter.burst
    assert 400 - cap <= len(times) <= 400 + cap
    assert len(times) >= 400  # the bucket starts full: at least the steady-state 400 pass
    # the token-bucket bound over every window: at most burst + rate * width admissions
    for i, start in enumerate(times):
        for j in range(i, len(times), 37):
            assert j - i + 1 <= cap + 200 * (times[j] - start) + 1e-6


async def test_rate_limiter_with_the_real_clock_is_bounded() -> None:
    limiter = AsyncRateLimiter(rate=200, per=1.0, burst=10)
    loop = asyncio.get_running_loop()
    start = loop.time()
    count = 0
    while loop.time() - start < 0.25:
        async with limiter:
            count += 1
    elapsed = loop.time() - start
    assert count <= 10 + 200 * elapsed + 1
    assert count >= 10 + 200 * 0.25 * 0.5  # loose: a loaded machine only makes it slower


async def test_cancelled_waiter_returns_its_token() -> None:
    vt = VirtualTime()
    limiter = AsyncRateLimiter(rate=1, per=1.0, clock=vt.clock, sleep=vt.sleep)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await settle()
    assert limiter.tokens == pytest.approx(-1.0)
    waiter.cancel()
    await settle()
    assert limiter.tokens == pytest.approx(0.0)
    vt.now = 1.0
    assert limiter.try_acquire() is True


# ---------------------------------------------------------------------------------------------------
# WorkQueue
# ---------------------------------------------------------------------------------------------------


async def test_work_queue_processes_everything_and_reports_results_and_errors() -> None:
    async def work(x: int) -> int:
        await asyncio.sleep(0)
        if x == 3:
            raise ValueError("three")
        return x * x

    queue = WorkQueue(work, num_workers=3)
    await queue.start()
    futures = [await queue.put(i) for i in range(8)]
    await queue.join()
    assert [f.result() for f in futures if not f.exception()] == [x * x for x in range(8) if x != 3]
    assert isinstance(futures[3].exception(), ValueError)
    assert (queue.processed, queue.failed) == (7, 1)
    assert await queue.stop() == []


async def test_defect22_work_queue_stop_drains_queued_and_in_flight_work() -> None:
    done: list[int] = []

    async def work(x: int) -> None:
        await asyncio.sleep(0.001)
        done.append(x)

    queue = WorkQueue(work, num_workers=2)
    await queue.start()
    for i in range(10):
        await queue.put(i)
    assert await queue.stop(drain=True) == []
    assert sorted(done) == list(range(10))  # the original lost the in-flight item and 4 queued ones
    with pytest.raises(PoolClosedError):
        await queue.put(99)


async def test_defect22_work_queue_stop_without_drain_returns_the_unprocessed_items() -> None:
    gate = asyncio.Event()
    done: list[int] = []

    async def work(x: int) -> None:
        await gate.wait()
        done.append(x)

    queue = WorkQueue(work, num_workers=2)
    await queue.start()
    futures = [await queue.put(i) for i in range(6)]
    await settle()
    stopping = asyncio.create_task(queue.stop(drain=False))
    await settle()
    gate.set()  # the two in-flight items finish
    left = await stopping
    assert sorted(done) == [0, 1] and left == [2, 3, 4, 5]  # nothing dropped silently
    assert all(isinstance(f.exception(), PoolClosedError) for f in futures[2:])


async def test_work_queue_stop_timeout_returns_stuck_in_flight_items() -> None:
    async def stuck(x: int) -> None:
        await asyncio.sleep(10)

    queue = WorkQueue(stuck, num_workers=1)
    await queue.start()
    futures = [await queue.put(i) for i in range(3)]
    await settle()
    left = await queue.stop(drain=True, timeout=0.02)
    assert sorted(left) == [0, 1, 2]
    assert all(isinstance(f.exception(), PoolClosedError) for f in futures)


async def test_work_queue_sync_worker_and_bad_arguments() -> None:
    queue = WorkQueue(lambda x: x + 1, num_workers=1)
    await queue.start()
    assert await (await queue.put(1)) == 2
    await queue.stop()
    with pytest.raises(ValueRangeError):
        WorkQueue(lambda x: x, num_workers=0)


# ---------------------------------------------------------------------------------------------------
# Event loop choice
# ---------------------------------------------------------------------------------------------------


def test_runner_uses_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes `import uvloop` fail
    assert optimize_async_loop() == "asyncio"

    async def main() -> str:
        return type(asyncio.get_running_loop()).__name__

    with caplog.at_level(logging.INFO, logger="mdt_tensor.aio.loop"):
        assert "EventLoop" in run_async(main())
    assert "asyncio event loop" in caplog.text


def test_runner_uses_uvloop_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    made = []

    def new_event_loop() -> asyncio.AbstractEventLoop:
        made.append(1)
        return asyncio.new_event_loop()

    monkeypatch.setitem(sys.modules, "uvloop", types.SimpleNamespace(new_event_loop=new_event_loop))
    assert optimize_async_loop() == "uvloop"

    async def main() -> int:
        return 7

    assert run_async(main()) == 7 and made == [1]
    assert run_async(main(), use_uvloop=False) == 7 and made == [1]
