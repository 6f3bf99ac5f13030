"""CircuitBreaker: states, lazy recovery on a fake clock, probes, cancellation, counters."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import mdt_tensor as mt
from mdt_tensor.errors import CircuitOpenError, NetworkError
from mdt_tensor.aio.breaker import CircuitBreaker, CircuitState

pytestmark = pytest.mark.timeout(60)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def fail(breaker: CircuitBreaker, exc: BaseException | None = None) -> None:
    with pytest.raises(type(exc) if exc else ConnectionError):
        async with breaker:
            raise exc if exc else ConnectionError("down")


async def succeed(breaker: CircuitBreaker) -> None:
    async with breaker:
        pass


def make(clock: FakeClock, **kwargs: object) -> CircuitBreaker:
    options: dict = {"failure_threshold": 3, "recovery_timeout": 30.0, "clock": clock}
    options.update(kwargs)
    return mt.CircuitBreaker(**options)


async def test_consecutive_failures_open_the_breaker() -> None:
    breaker = make(FakeClock())
    await fail(breaker)
    await fail(breaker)
    await succeed(breaker)  # resets the run
    assert breaker.failure_count == 0
    await fail(breaker)
    await fail(breaker)
    assert breaker.state is CircuitState.CLOSED and breaker.failure_count == 2
    await fail(breaker)
    assert breaker.state is CircuitState.OPEN and breaker.get_state() == "open"


async def test_open_rejects_with_retry_after_and_does_not_run_the_call() -> None:
    clock = FakeClock()
    breaker = make(clock)
    for _ in range(3):
        await fail(breaker)
    clock.now += 12.5
    ran = False
    with pytest.raises(CircuitOpenError) as info:
        async with breaker:
            ran = True
    assert not ran and info.value.retry_after == pytest.approx(17.5)
    assert isinstance(info.value, NetworkError) and isinstance(info.value, RuntimeError)
    assert breaker.stats().rejections == 1


async def test_recovery_is_lazy_and_happens_exactly_at_the_timeout() -> None:
    clock = FakeClock()
    breaker = make(clock)
    for _ in range(3):
        await fail(breaker)
    clock.now += 29.999
    assert breaker.state is CircuitState.OPEN
    clock.now += 0.001
    assert breaker.state is CircuitState.HALF_OPEN  # on read, no timer involved


async def test_half_open_probe_success_closes_and_failure_reopens() -> None:
    clock = FakeClock()
    breaker = make(clock, success_threshold=2)
    for _ in range(3):
        await fail(breaker)
    clock.now += 30
    await succeed(breaker)
    assert breaker.state is CircuitState.HALF_OPEN
    await succeed(breaker)
    assert breaker.state is CircuitState.CLOSED and breaker.failure_count == 0

    for _ in range(3):
        await fail(breaker)
    clock.now += 30
    await fail(breaker)  # one failed probe re-opens, the timeout starts again
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        await succeed(breaker)
    assert info.value.retry_after == pytest.approx(30.0)


async def test_defect15_half_open_limits_concurrent_probes() -> None:
    clock = FakeClock()
    breaker = make(clock, half_open_max_calls=2)
    for _ in range(3):
        await fail(breaker)
    clock.now += 30
    release = asyncio.Event()
    entered = 0

    async def probe() -> None:
        nonlocal entered
        async with breaker:
            entered += 1
            await release.wait()

    probes = [asyncio.create_task(probe()) for _ in range(2)]
    await asyncio.sleep(0.01)
    assert entered == 2 and breaker.stats().half_open_in_flight == 2
    with pytest.raises(CircuitOpenError) as info:
        await succeed(breaker)
    assert info.value.retry_after == 0.0
    release.set()
    await asyncio.gather(*probes)
    assert breaker.state is CircuitState.CLOSED and entered == 2


async def test_defect15_cancellation_is_not_a_failure() -> None:
    breaker = make(FakeClock(), failure_threshold=1)
    started = asyncio.Event()

    async def hang() -> None:
        async with breaker:
            started.set()
            await asyncio.sleep(3600)

    for _ in range(3):
        task = asyncio.create_task(hang())
        await started.wait()
        started.clear()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    stats = breaker.stats()
    assert stats.state is CircuitState.CLOSED and stats.failures == 0 and stats.ignored == 3


async def test_defect15_cancelled_probe_frees_its_slot() -> None:
    clock = FakeClock()
    breaker = make(clock, failure_threshold=1)
    await fail(breaker)
    clock.now += 30
    await fail(breaker, asyncio.CancelledError())
    assert breaker.state is CircuitState.HALF_OPEN
    await succeed(breaker)  # the slot is free again
    assert breaker.state is CircuitState.CLOSED


def test_defect15_uses_the_monotonic_clock_not_wall_time(monkeypatch: pytest.MonkeyPatch) -> None:
    breaker = mt.CircuitBreaker(failure_threshold=1, recovery_timeout=30.0)
    assert breaker.clock is time.monotonic
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError
    monkeypatch.setattr(time, "time", lambda: 10**12)  # the wall clock jumps a century ahead
    assert breaker.state is CircuitState.OPEN


async def test_unexpected_exceptions_pass_through_and_do_not_count() -> None:
    clock = FakeClock()
    breaker = make(clock, failure_threshold=1, expected_exceptions=(ConnectionError,))
    await fail(breaker, KeyError("bug"))
    assert breaker.state is CircuitState.CLOSED
    await fail(breaker, ConnectionError("down"))
    assert breaker.state is CircuitState.OPEN
    clock.now += 30
    await fail(breaker, ValueError("bug in probe"))
    assert breaker.state is CircuitState.HALF_OPEN
    await succeed(breaker)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.stats().ignored == 2


async def test_a_call_from_an_older_state_does_not_move_the_new_one() -> None:
    clock = FakeClock()
    breaker = make(clock, failure_threshold=1)
    release = asyncio.Event()

    async def slow_success() -> None:
        async with breaker:
            await release.wait()

    slow = asyncio.create_task(slow_success())  # admitted while CLOSED
    await asyncio.sleep(0)
    await fail(breaker)
    assert breaker.state is CircuitState.OPEN
    clock.now += 30
    assert breaker.state is CircuitState.HALF_OPEN
    release.set()
    await slow  # ends during HALF_OPEN, but it was no probe: the breaker stays half-open
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.stats().successes == 1


async def test_async_decorator() -> None:
    clock = FakeClock()
    breaker = make(clock, failure_threshold=2)

    @breaker
    async def call(ok: bool) -> str:
        """Doc."""
        if not ok:
            raise ConnectionError
        return "up"

    assert call.__name__ == "call" and call.__doc__ == "Doc."
    assert await call(True) == "up"
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await call(False)
    with pytest.raises(CircuitOpenError):
        await call(True)
    clock.now += 30
    assert await call(True) == "up" and breaker.state is CircuitState.CLOSED


def test_sync_decorator_and_context_manager() -> None:
    clock = FakeClock()
    breaker = make(clock, failure_threshold=1)

    @breaker
    def call(ok: bool) -> str:
        if not ok:
            raise ConnectionError
        return "up"

    assert call(True) == "up"
    with pytest.raises(ConnectionError):
        call(False)
    with pytest.raises(CircuitOpenError):
        call(True)
    with pytest.raises(CircuitOpenError), breaker:
        pass
    clock.now += 30
    with breaker:
        pass
    assert breaker.state == "closed"


async def test_concurrent_context_managers_in_many_tasks_track_their_own_calls() -> None:
    breaker = make(FakeClock(), failure_threshold=1000)

    async def one(i: int) -> None:
        async with breaker:
            await asyncio.sleep(0.001 * (i % 5))
            if i % 2:
                raise ConnectionError

    results = await asyncio.gather(*(one(i) for i in range(50)), return_exceptions=True)
    assert sum(isinstance(r, ConnectionError) for r in results) == 25
    stats = breaker.stats()
    assert stats.failures == 25 and stats.successes == 25


def test_counters_and_state_changes() -> None:
    clock = FakeClock()
    breaker = make(clock, failure_threshold=1)
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError
    for _ in range(3):
        with pytest.raises(CircuitOpenError), breaker:
            pass
    clock.now += 30
    with breaker:
        pass
    stats = breaker.stats()
    assert (stats.failures, stats.successes, stats.rejections) == (1, 1, 3)
    assert stats.state_changes == 3  # closed -> open -> half_open -> closed
    assert "closed" in repr(breaker)


def test_thread_safety_every_call_accounted_for() -> None:
    breaker = mt.CircuitBreaker(failure_threshold=3, recovery_timeout=0.0)
    counts = {"ok": 0, "fail": 0, "rejected": 0}
    lock = threading.Lock()

    @breaker
    def call(i: int) -> None:
        if i % 3 == 0:
            raise ConnectionError

    def worker(offset: int) -> None:
        for i in range(offset, offset + 300):
            try:
                call(i)
                key = "ok"
            except ConnectionError:
                key = "fail"
            except CircuitOpenError:
                key = "rejected"
            with lock:
                counts[key] += 1

    threads = [threading.Thread(target=worker, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = breaker.stats()
    assert sum(counts.values()) == 1200
    assert (stats.successes, stats.failures, stats.rejections) == (
        counts["ok"], counts["fail"], counts["rejected"])
    assert stats.half_open_in_flight == 0 or stats.state is CircuitState.HALF_OPEN


def test_reset_closes() -> None:
    breaker = make(FakeClock(), failure_threshold=1)
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED and breaker.failure_count == 0


@pytest.mark.parametrize("kwargs", [
    {"failure_threshold": 0}, {"recovery_timeout": -1}, {"recovery_timeout": float("nan")},
    {"half_open_max_calls": 0}, {"success_threshold": 0}, {"expected_exceptions": ()},
    {"expected_exceptions": (int,)}, {"failure_threshold": 2.5},
])
def test_bad_arguments_raise(kwargs: dict) -> None:
    with pytest.raises((ValueError, TypeError)):
        mt.CircuitBreaker(**kwargs)
