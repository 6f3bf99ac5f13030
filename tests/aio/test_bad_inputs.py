"""Issue 10, classes 3 and 5 in the async layer: every bad timeout is refused, and every error a
public async function raises on bad input is an ``MdtError`` that is also the builtin a user
would catch (never aiohttp's ``ValueError``, a bare ``TypeError`` or an ``ExceptionGroup``)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from mdt_tensor.aio.breaker import CircuitBreaker
from mdt_tensor.aio.health import check_endpoint_health, check_multiple_endpoints
from mdt_tensor.aio.pool import ConnectionPool
from mdt_tensor.aio.retry import RetryOptions, retry_async, retry_sync
from mdt_tensor.aio.tasks import AsyncTaskPool, gather_with_concurrency, run_with_timeout
from mdt_tensor.aio.workqueue import WorkQueue
from mdt_tensor.errors import DTypeError, MdtError, ValueRangeError
from mdt_tensor.feed import WeightFeed, fetch_weight_stack

pytestmark = pytest.mark.timeout(20)

BAD_SECONDS: list[tuple[object, type]] = [
    (math.nan, ValueRangeError), (-1.0, ValueRangeError), (-math.inf, ValueRangeError), ("1", DTypeError), (True, DTypeError),
]


async def never() -> None:
    await asyncio.sleep(10)


class Conn:
    def close(self) -> None:
        pass


# -- class 3: timeouts -------------------------------------------------------------------------


@pytest.mark.parametrize(("timeout", "error"), BAD_SECONDS)
async def test_issue10_run_with_timeout_refuses_a_bad_timeout(timeout: object, error: type) -> None:
    coro = never()
    with pytest.raises(error, match="timeout"):
        await run_with_timeout(coro, timeout)  # type: ignore[arg-type]
    assert coro.cr_frame is None  # closed, not left "never awaited"


async def test_run_with_timeout_zero_none_and_inf_keep_their_meaning() -> None:
    assert await run_with_timeout(never(), 0, default="late") == "late"
    assert await run_with_timeout(asyncio.sleep(0, "ok"), None) == "ok"
    assert await run_with_timeout(asyncio.sleep(0, "ok"), math.inf) == "ok"


@pytest.mark.parametrize(("timeout", "error"), [*BAD_SECONDS, (0, ValueRangeError)])
async def test_issue10_pool_acquire_checks_its_timeout(timeout: object, error: type) -> None:
    pool = ConnectionPool(Conn, max_size=1)
    with pytest.raises(error, match="timeout"):
        await pool.acquire(timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(error, match="timeout"):
        async with pool.connection(timeout=timeout):  # type: ignore[arg-type]
            pass
    assert pool.stats().in_use == 0
    assert await pool.close(timeout=1.0) == []


async def test_pool_acquire_timeout_none_and_inf_wait_forever() -> None:
    pool = ConnectionPool(Conn, max_size=1)
    for timeout in (None, math.inf):
        conn = await pool.acquire(timeout=timeout)
        await pool.release(conn)
    await pool.close()


@pytest.mark.parametrize(("timeout", "error"), BAD_SECONDS)
async def test_issue10_pool_close_and_work_queue_stop_check_their_timeout(timeout: object, error: type) -> None:
    pool = ConnectionPool(Conn, max_size=1)
    with pytest.raises(error, match="timeout"):
        await pool.close(timeout=timeout)  # type: ignore[arg-type]
    queue = WorkQueue(lambda x: x, num_workers=1)
    await queue.start()
    with pytest.raises(error, match="timeout"):
        await queue.stop(timeout=timeout)  # type: ignore[arg-type]
    assert await queue.stop() == []


# -- class 5: one error family -----------------------------------------------------------------


async def test_issue10_health_check_bad_method_is_a_value_range_error_before_any_request() -> None:
    with pytest.raises(ValueRangeError, match="method"):
        await check_endpoint_health("http://127.0.0.1:1/", method="GE T")
    with pytest.raises(DTypeError, match="method"):
        await check_endpoint_health("http://127.0.0.1:1/", method=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"method": "GE T"}, ValueRangeError), ({"timeout": math.nan}, ValueRangeError),
    ({"timeout": -1}, ValueRangeError), ({"expected_status": 42}, ValueRangeError),
    ({"expected_status": "200"}, DTypeError), ({"degraded_latency": -1}, ValueRangeError),
    ({"session": object()}, DTypeError),
])
async def test_issue10_check_multiple_endpoints_bad_options_are_one_clear_error(kwargs: dict[str, Any], error: type) -> None:
    # inside the task group these surfaced as an ExceptionGroup (or aiohttp's ValueError)
    with pytest.raises(error):
        await check_multiple_endpoints(["http://127.0.0.1:1/a", "http://127.0.0.1:1/b"], **kwargs)


async def test_issue10_health_checks_refuse_a_closed_session_and_a_non_iterable() -> None:
    session = aiohttp.ClientSession()
    await session.close()
    with pytest.raises(ValueRangeError, match="session"):
        await check_endpoint_health("http://127.0.0.1:1/", session=session)
    with pytest.raises(DTypeError, match="urls"):
        await check_multiple_endpoints(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [5, "ValueError", 3.5])
def test_issue10_retry_on_and_expected_exceptions_that_are_not_exception_classes(bad: object) -> None:
    with pytest.raises(DTypeError, match="retry_on"):
        RetryOptions(retry_on=bad)  # type: ignore[arg-type]
    with pytest.raises(DTypeError, match="expected_exceptions"):
        CircuitBreaker(expected_exceptions=bad)  # type: ignore[arg-type]


async def test_issue10_retry_call_forms_raise_dtype_errors() -> None:
    async def fn() -> int:
        return 1

    with pytest.raises(DTypeError, match="retry_on"):
        await retry_async(fn, retry_on=5)
    with pytest.raises(DTypeError, match="max_retrys"):
        retry_async(max_retrys=3)
    with pytest.raises(DTypeError):
        retry_sync(None, 1)  # type: ignore[call-overload]

    def clash(sleep: float) -> float:
        return sleep

    with pytest.raises(DTypeError, match="sleep"):
        retry_sync(clash, sleep=1.0)


BAD_CONCURRENCY_CALLS: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
    ("gather_with_concurrency(2, 5)", lambda: gather_with_concurrency(2, 5)),
    ("run_with_timeout(5, 1)", lambda: run_with_timeout(5, 1)),  # type: ignore[arg-type]
    ("AsyncTaskPool().map(5, [1])", lambda: AsyncTaskPool(2).map(5, [1])),  # type: ignore[arg-type]
    ("AsyncTaskPool().map(fn, 5)", lambda: AsyncTaskPool(2).map(asyncio.sleep, 5)),  # type: ignore[arg-type]
    ("AsyncTaskPool().run_all([5])", lambda: AsyncTaskPool(2).run_all([5])),  # type: ignore[list-item]
    ("AsyncTaskPool().run_task(5)", lambda: AsyncTaskPool(2).run_task(5)),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("label", "call"), BAD_CONCURRENCY_CALLS, ids=[c[0] for c in BAD_CONCURRENCY_CALLS])
async def test_issue10_concurrency_helpers_refuse_what_cannot_be_awaited_or_called(
    label: str, call: Callable[[], Awaitable[Any]]
) -> None:
    with pytest.raises(DTypeError):
        await call()


async def test_issue10_gather_with_concurrency_closes_its_coroutines_when_refusing() -> None:
    coro = never()
    with pytest.raises(DTypeError, match=r"aws\[1\]"):
        await gather_with_concurrency(2, coro, 5)
    assert coro.cr_frame is None


@pytest.mark.parametrize(("make", "error"), [
    (lambda: ConnectionPool(5), DTypeError),  # type: ignore[arg-type]
    (lambda: ConnectionPool(Conn, validate=5), DTypeError),  # type: ignore[arg-type]
    (lambda: ConnectionPool(Conn, broken_exceptions=5), DTypeError),  # type: ignore[arg-type]
    (lambda: WorkQueue(5), DTypeError),  # type: ignore[arg-type]
    (lambda: WorkQueue(print, maxsize=-1), ValueRangeError),
    (lambda: WeightFeed(["http://127.0.0.1:1/w"], 4, device="nonsense"), ValueRangeError),
    (lambda: WeightFeed(["http://127.0.0.1:1/w"], 4, session=object()), DTypeError),  # type: ignore[arg-type]
])
def test_issue10_constructors_of_the_async_layer_check_their_arguments(make: Callable[[], object], error: type) -> None:
    with pytest.raises(error):
        make()


async def test_issue10_fetch_weight_stack_unknown_option_is_a_dtype_error() -> None:
    with pytest.raises(DTypeError, match="timout"):
        await fetch_weight_stack(["http://127.0.0.1:1/w"], 4, timout=1.0)


def test_issue10_every_error_above_is_in_the_family() -> None:
    for error in (DTypeError, ValueRangeError):
        assert issubclass(error, MdtError)
