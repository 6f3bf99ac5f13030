"""retry_async / retry_sync: forms, backoff (with a fake sleep), filters, cancellation."""

from __future__ import annotations

import asyncio
import inspect
import random
from typing import Any

import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

import mdt_tensor as mt
from mdt_tensor.errors import DTypeError, ValueRangeError
from mdt_tensor.aio.retry import RetryOptions

pytestmark = pytest.mark.timeout(60)


class Flaky:
    """Fails ``failures`` times (with numbered messages), then returns ``value``."""

    def __init__(self, failures: int, exc: type[BaseException] = ConnectionError,
                 value: Any = "ok") -> None:
        self.failures, self.exc, self.value = failures, exc, value
        self.calls: list[tuple[tuple, dict]] = []

    def sync(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        if len(self.calls) <= self.failures:
            raise self.exc(f"failure {len(self.calls)}")
        return self.value

    async def async_(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return self.sync(*args, **kwargs)


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class AsyncFakeSleep(FakeSleep):
    async def __call__(self, seconds: float) -> None:  # type: ignore[override]
        self.delays.append(seconds)


def reference_delays(n: int, initial: float, factor: float, cap: float) -> list[float]:
    """The documented schedule, written out: d_k = min(initial * factor**(k-1), cap)."""
    return [min(initial * factor ** (k - 1), cap) for k in range(1, n + 1)]


# ---- defect 15: negative max_retries, first delay cap, jitter, decorator form ------------------


def test_defect15_negative_max_retries_raises_instead_of_returning_none() -> None:
    flaky = Flaky(0)
    with pytest.raises(ValueRangeError, match="max_retries"):
        mt.retry_sync(flaky.sync, 1, max_retries=-1)
    with pytest.raises(ValueRangeError, match="max_retries"):
        mt.retry_sync(max_retries=-1)
    assert flaky.calls == []


async def test_defect15_negative_max_retries_raises_async() -> None:
    flaky = Flaky(0)
    with pytest.raises(ValueRangeError, match="max_retries"):
        await mt.retry_async(flaky.async_, 1, max_retries=-1)
    with pytest.raises(ValueRangeError):
        mt.retry_async(max_retries=-2)
    assert flaky.calls == []


async def test_defect15_first_delay_is_capped_by_max_delay() -> None:
    sleep = AsyncFakeSleep()
    flaky = Flaky(3)
    result = await mt.retry_async(flaky.async_, max_retries=3, initial_delay=10.0, max_delay=2.0,
                                  jitter=0.0, sleep=sleep)
    assert result == "ok" and sleep.delays == [2.0, 2.0, 2.0]


def test_defect15_jitter_spreads_delays_within_bounds() -> None:
    random.seed(1234)
    sleep = FakeSleep()
    for _ in range(20):
        mt.retry_sync(Flaky(3).sync, 0, max_retries=3, initial_delay=1.0, backoff_factor=2.0,
                      max_delay=3.0, jitter=0.5, sleep=sleep)
    per_run = [sleep.delays[i:i + 3] for i in range(0, 60, 3)]
    for run in per_run:
        for delay, full in zip(run, [1.0, 2.0, 3.0]):
            assert full * 0.5 <= delay <= full  # never past the cap, never below (1 - jitter) d
    assert len({run[0] for run in per_run}) > 10  # really random


async def test_defect15_decorator_forms() -> None:
    bare_flaky, opts_flaky = Flaky(1), Flaky(2)

    @mt.retry_async
    async def bare(x: int) -> int:
        """Doc."""
        await bare_flaky.async_()
        return x + 1

    @mt.retry_async(max_retries=5, initial_delay=0, sleep=AsyncFakeSleep())
    async def with_options(x: int, *, y: int = 0) -> int:
        await opts_flaky.async_()
        return x + y

    assert inspect.iscoroutinefunction(bare) and inspect.iscoroutinefunction(with_options)
    assert bare.__name__ == "bare" and bare.__doc__ == "Doc."
    assert bare.__wrapped__ is not None  # type: ignore[attr-defined]
    assert await with_options(1, y=2) == 3 and len(opts_flaky.calls) == 3

    @mt.retry_sync()
    def empty_parens() -> str:
        return "fine"

    @mt.retry_sync
    def bare_sync(x: int) -> int:
        return x * 2

    assert empty_parens() == "fine" and bare_sync(4) == 8 and bare_sync.__name__ == "bare_sync"


async def test_bare_decorator_uses_default_options() -> None:
    @mt.retry_async
    async def f() -> None:
        pass

    assert f.retry_options == RetryOptions()  # type: ignore[attr-defined]


# ---- schedule -----------------------------------------------------------------------------------


@given(
    retries=st.integers(0, 8),
    initial=st.floats(0.0, 5.0),
    factor=st.floats(1.0, 4.0),
    cap=st.floats(0.0, 20.0),
)
def test_schedule_matches_reference_without_jitter(retries: int, initial: float, factor: float,
                                                   cap: float) -> None:
    sleep = FakeSleep()
    flaky = Flaky(retries)
    assert mt.retry_sync(flaky.sync, max_retries=retries, initial_delay=initial,
                         backoff_factor=factor, max_delay=cap, jitter=0.0, sleep=sleep) == "ok"
    assert sleep.delays == pytest.approx(reference_delays(retries, initial, factor, cap))
    assert len(flaky.calls) == retries + 1


async def test_retry_async_accepts_a_sync_fake_sleep() -> None:
    sleep = FakeSleep()
    await mt.retry_async(Flaky(2).async_, initial_delay=3.0, jitter=0.0, sleep=sleep)
    assert sleep.delays == [3.0, 6.0]


async def test_exponential_schedule_async() -> None:
    sleep = AsyncFakeSleep()
    await mt.retry_async(Flaky(5).async_, max_retries=5, initial_delay=1.0, backoff_factor=2.0,
                         max_delay=5.0, jitter=0.0, sleep=sleep)
    assert sleep.delays == [1.0, 2.0, 4.0, 5.0, 5.0]


# ---- exhaustion, filters, cancellation ---------------------------------------------------------


async def test_last_exception_is_reraised_not_retry_error() -> None:
    flaky = Flaky(10)
    with pytest.raises(ConnectionError, match="failure 3") as info:
        await mt.retry_async(flaky.async_, max_retries=2, sleep=AsyncFakeSleep())
    assert not isinstance(info.value, tenacity.RetryError)
    assert len(flaky.calls) == 3


def test_max_retries_zero_is_one_attempt() -> None:
    flaky = Flaky(5)
    with pytest.raises(ConnectionError, match="failure 1"):
        mt.retry_sync(flaky.sync, max_retries=0, sleep=FakeSleep())
    assert len(flaky.calls) == 1


async def test_exception_outside_filter_is_raised_at_once() -> None:
    flaky = Flaky(5, exc=KeyError)
    with pytest.raises(KeyError):
        await mt.retry_async(flaky.async_, retry_on=(ConnectionError, TimeoutError),
                             sleep=AsyncFakeSleep())
    assert len(flaky.calls) == 1
    single = Flaky(1, exc=TimeoutError)
    assert mt.retry_sync(single.sync, retry_on=TimeoutError, sleep=FakeSleep()) == "ok"


def test_base_exceptions_are_not_retried_by_default() -> None:
    flaky = Flaky(5, exc=KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        mt.retry_sync(flaky.sync, sleep=FakeSleep())
    assert len(flaky.calls) == 1


async def test_cancelled_error_is_never_retried_even_if_named() -> None:
    flaky = Flaky(5, exc=asyncio.CancelledError)
    with pytest.raises(asyncio.CancelledError):
        await mt.retry_async(flaky.async_, retry_on=(BaseException,), sleep=AsyncFakeSleep())
    assert len(flaky.calls) == 1


async def test_cancel_during_backoff_stops_retrying() -> None:
    flaky = Flaky(10)
    sleeping = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        sleeping.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(mt.retry_async(flaky.async_, max_retries=5, sleep=slow_sleep))
    await asyncio.wait_for(sleeping.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(flaky.calls) == 1


# ---- callbacks -----------------------------------------------------------------------------------


def test_on_retry_gets_attempt_exception_and_delay() -> None:
    events: list[tuple[int, str, float]] = []
    mt.retry_sync(Flaky(2).sync, max_retries=3, initial_delay=0.5, jitter=0.0, sleep=FakeSleep(),
                  on_retry=lambda attempt, exc, delay: events.append((attempt, str(exc), delay)))
    assert events == [(1, "failure 1", 0.5), (2, "failure 2", 1.0)]


async def test_async_on_retry_is_awaited() -> None:
    events: list[int] = []

    async def on_retry(attempt: int, exc: BaseException, delay: float) -> None:
        await asyncio.sleep(0)
        events.append(attempt)

    await mt.retry_async(Flaky(2).async_, on_retry=on_retry, sleep=AsyncFakeSleep())
    assert events == [1, 2]


def test_sync_retry_rejects_async_callbacks() -> None:
    async def on_retry(attempt: int, exc: BaseException, delay: float) -> None:
        pass

    with pytest.raises(DTypeError):
        mt.retry_sync(Flaky(1).sync, 1, on_retry=on_retry)


# ---- the call form: arguments and option names ---------------------------------------------------


async def test_call_form_passes_arguments_through() -> None:
    flaky = Flaky(1)
    assert await mt.retry_async(flaky.async_, 1, 2, key="v", sleep=AsyncFakeSleep()) == "ok"
    assert flaky.calls == [((1, 2), {"key": "v"})] * 2


async def test_option_name_clashing_with_a_parameter_is_an_error_not_a_shadow() -> None:
    calls: list[int] = []

    async def fetch(url: str, max_retries: int = 0) -> int:
        calls.append(max_retries)
        return max_retries

    with pytest.raises(TypeError, match="max_retries"):
        await mt.retry_async(fetch, "u", max_retries=7)
    assert calls == []
    # retry_options= sends every other keyword to the function, untouched.
    got = await mt.retry_async(fetch, "u", max_retries=7, retry_options=RetryOptions(max_retries=1))
    assert got == 7 and calls == [7]


def test_retry_options_object_in_the_sync_call_form() -> None:
    def f(sleep: str) -> str:
        return sleep

    assert mt.retry_sync(f, sleep="zzz", retry_options=RetryOptions(sleep=FakeSleep())) == "zzz"
    with pytest.raises(DTypeError):
        mt.retry_sync(f, sleep="zzz", retry_options={"max_retries": 1})


def test_bare_call_with_only_a_function_is_the_decorator() -> None:
    flaky = Flaky(0)
    wrapped = mt.retry_sync(flaky.sync)
    assert callable(wrapped) and flaky.calls == []
    assert wrapped() == "ok"


# ---- wrong kinds of functions and options ------------------------------------------------------


async def test_retry_async_on_a_plain_function_is_a_clear_error_not_retried() -> None:
    flaky = Flaky(0)
    with pytest.raises(DTypeError, match="awaitable"):
        await mt.retry_async(flaky.sync, 1)
    assert len(flaky.calls) == 1


async def test_retry_sync_refuses_coroutines_without_leaking_them() -> None:
    async def f(x: int) -> int:
        return x

    with pytest.raises(DTypeError, match="retry_async"):
        mt.retry_sync(f, 1)  # the coroutine is closed: no "never awaited" warning
    with pytest.raises(DTypeError, match="retry_async"):
        mt.retry_sync(f)


@pytest.mark.parametrize("options", [
    {"initial_delay": -1}, {"max_delay": float("nan")}, {"backoff_factor": 0.5},
    {"jitter": 1.5}, {"jitter": -0.1}, {"retry_on": ()}, {"max_retries": float("inf")},
    {"retry_on": (ValueError, "nope")}, {"max_retries": True}, {"on_retry": 3},
])
def test_bad_options_raise_before_any_call(options: dict) -> None:
    flaky = Flaky(0)
    with pytest.raises((ValueError, TypeError)):
        mt.retry_sync(flaky.sync, 1, **options)
    assert flaky.calls == []
