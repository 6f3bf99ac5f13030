"""Bounded concurrency for coroutines: :class:`AsyncTaskPool`, :func:`gather_with_concurrency`.

``asyncio.gather`` and ``TaskGroup`` start everything at once; these run at most ``n`` at a time
inside ``n`` worker tasks (not one task per item) and create coroutines only when a slot is free,
so a million items never become a million pending coroutines. :func:`run_with_timeout` returns a
default when *its own* timeout expires (``docs/design/aio-concurrency.md``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .._validation import check_callable, check_int, check_timeout
from ..errors import DTypeError, MdtError

__all__ = ["TaskResult", "AsyncTaskPool", "gather_with_concurrency", "run_with_timeout"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class TaskResult(Generic[T]):
    """The outcome of one task.

    Attributes:
        success: True if the task returned, False if it raised an ``Exception``.
        result: its return value (None on failure).
        error: the exception it raised (None on success).
        duration: seconds the task itself ran (the wait for a free slot excluded).
        wait: seconds it waited for a free slot.
    """

    success: bool
    result: T | None = None
    error: BaseException | None = None
    duration: float = 0.0
    wait: float = 0.0


def _check_awaitable(value: Any, name: str) -> None:
    if not inspect.isawaitable(value):
        raise DTypeError(f"Expected `{name}` to be awaitable (a coroutine, task or future), but got {type(value).__name__}.")


def _close_unstarted(source: Iterable[tuple[int, Any]]) -> None:
    """Close the coroutines a worker never started, so they do not warn "never awaited"."""
    for _, aw in source:
        if inspect.iscoroutine(aw):
            aw.close()


async def _timed(awaitable: Awaitable[T], wait: float) -> TaskResult[T]:
    start = time.perf_counter()
    try:
        value = await awaitable
    except Exception as exc:  # CancelledError is a BaseException: it propagates
        logger.debug("task failed: %r", exc)
        return TaskResult(False, None, exc, time.perf_counter() - start, wait)
    return TaskResult(True, value, None, time.perf_counter() - start, wait)


class AsyncTaskPool:
    """Run coroutines with at most ``max_concurrent`` in progress, one :class:`TaskResult` each.

    Every entry point shares the pool's limit. Coroutines are created only when a slot is free
    (``map``, ``submit``), so a long input never turns into a mountain of pending coroutines.
    Exceptions become failed results; cancellation propagates. ``submit`` gives every call its own
    task; ``map`` and ``run_all`` run the calls inside ``max_concurrent`` worker tasks (see
    :func:`gather_with_concurrency` for what that means for ``contextvars``).

    Example:
        >>> async def double(x):
        ...     return 2 * x
        >>> async def main():
        ...     pool = AsyncTaskPool(max_concurrent=2)
        ...     return [r.result for r in await pool.map(double, range(5))]
        >>> asyncio.run(main())
        [0, 2, 4, 6, 8]
    """

    def __init__(self, max_concurrent: int = 100) -> None:
        self.max_concurrent = check_int(max_concurrent, "max_concurrent", low=1)
        self._slots = asyncio.Semaphore(self.max_concurrent)

    async def run_task(self, aw: Awaitable[T]) -> TaskResult[T]:
        """Run one awaitable in a slot (an already created coroutine: prefer :meth:`submit`)."""
        _check_awaitable(aw, "aw")
        start = time.perf_counter()
        async with self._slots:
            return await _timed(aw, time.perf_counter() - start)

    async def _run_fn(self, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> TaskResult[T]:
        start = time.perf_counter()
        async with self._slots:
            wait = time.perf_counter() - start
            try:
                aw = fn(*args)
            except Exception as exc:
                return TaskResult(False, None, exc, 0.0, wait)
            return await _timed(aw, wait)

    def submit(self, fn: Callable[..., Awaitable[T]], *args: Any) -> asyncio.Task[TaskResult[T]]:
        """Schedule ``fn(*args)``; the coroutine is created once a slot is free. Returns a task of its result."""
        check_callable(fn, "fn")
        return asyncio.get_running_loop().create_task(self._run_fn(fn, args))

    async def run_all(self, aws: Iterable[Awaitable[T]]) -> list[TaskResult[T]]:
        """Run awaitables (at most ``max_concurrent`` at once); results in input order.

        If the call is cancelled (or fails), the coroutines it never started are closed.
        """
        items = list(aws)
        for index, aw in enumerate(items):
            _check_awaitable(aw, f"aws[{index}]")
        started = [False] * len(items)

        def start(index_aw: tuple[int, Awaitable[T]]) -> Awaitable[T]:
            started[index_aw[0]] = True
            return index_aw[1]

        try:
            return await self.map(start, list(enumerate(items)))
        finally:
            _close_unstarted((i, aw) for i, aw in enumerate(items) if not started[i])

    async def map(self, fn: Callable[[Any], Awaitable[T]], items: Iterable[Any]) -> list[TaskResult[T]]:
        """``fn(item)`` for every item, at most ``max_concurrent`` at once; results in input order."""
        check_callable(fn, "fn")
        if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            raise DTypeError(f"Expected `items` to be an iterable of items, but got {type(items).__name__}.")
        results: dict[int, TaskResult[T]] = {}
        source = enumerate(items)

        async def worker() -> None:
            for index, item in source:  # workers share the iterator: each item is taken once
                results[index] = await self._run_fn(fn, (item,))

        n_items = len(items) if isinstance(items, Sequence) else self.max_concurrent
        n_workers = min(self.max_concurrent, n_items)
        if n_workers == 1:
            await worker()
        elif n_workers > 1:
            await _run_workers([worker() for _ in range(n_workers)])
        return [results[i] for i in range(len(results))]


async def _run_workers(workers: list[Awaitable[None]]) -> None:
    """Run worker coroutines; the first exception cancels the others and is raised as itself."""
    tasks = [asyncio.ensure_future(w) for w in workers]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def gather_with_concurrency(n: int, *aws: Awaitable[Any], return_exceptions: bool = False) -> list[Any]:
    """Await ``aws`` with at most ``n`` running at once; results in argument order.

    Coroutines are started only when a slot is free (tasks and futures passed in are already
    running and only their awaiting is limited). They run one after another inside ``n`` worker
    tasks rather than in a task each (which is what makes this cheaper than ``gather``): a
    coroutine that sets a ``contextvars`` variable is seen by the next one its worker runs, and
    ``asyncio.current_task()`` is the worker. Wrap it in ``asyncio.create_task`` where that matters. On the first exception the coroutines still
    running are cancelled, those not started are closed, and that exception is raised, unless
    ``return_exceptions`` is true: then each ``Exception`` takes its place in the results.

    Example:
        >>> async def echo(x):
        ...     await asyncio.sleep(0)
        ...     return x
        >>> asyncio.run(gather_with_concurrency(2, *(echo(i) for i in range(5))))
        [0, 1, 2, 3, 4]
    """
    check_int(n, "n", low=1)
    for index, aw in enumerate(aws):
        if not inspect.isawaitable(aw):
            for other in aws:  # nothing starts: close the coroutines we were given
                if inspect.iscoroutine(other):
                    other.close()
            _check_awaitable(aw, f"aws[{index}]")
    results: list[Any] = [None] * len(aws)
    source = iter(enumerate(aws))

    async def worker() -> None:
        for index, aw in source:
            if return_exceptions:
                try:
                    results[index] = await aw
                except Exception as exc:
                    results[index] = exc
            else:
                results[index] = await aw

    try:
        n_workers = min(n, len(aws))
        if n_workers == 1:
            await worker()
        elif n_workers > 1:
            await _run_workers([worker() for _ in range(n_workers)])
    finally:
        _close_unstarted(source)  # never started: close them so they do not warn "never awaited"
    return results


async def run_with_timeout(aw: Awaitable[T], timeout: float | None, default: Any = None) -> T | Any:
    """Await ``aw``; if *this* timeout expires, cancel it and return ``default``.

    A ``TimeoutError`` raised inside ``aw`` (say, by a socket) is not ours: it propagates.
    ``timeout`` is seconds >= 0 (0: already expired), or None / ``inf`` to wait forever; NaN, a
    negative number or a non-number is a ``ValueRangeError`` / ``DTypeError`` (and ``aw``, if a
    coroutine, is closed unstarted).

    Example:
        >>> asyncio.run(run_with_timeout(asyncio.sleep(10, "late"), 0.01, default="default"))
        'default'
    """
    try:
        _check_awaitable(aw, "aw")
        timeout_s = check_timeout(timeout, "timeout")
    except MdtError:
        if inspect.iscoroutine(aw):
            aw.close()
        raise
    try:
        async with asyncio.timeout(timeout_s) as scope:
            return await aw
    except TimeoutError:
        if scope.expired():
            logger.debug("run_with_timeout: timed out after %s s; returning the default", timeout)
            return default
        raise
