"""Bounded concurrency for the async layer: task pools, a rate limiter, a work queue, runners.

Why hand-written where the standard library almost serves:

* ``asyncio.gather`` / ``TaskGroup`` start everything at once; :func:`gather_with_concurrency` and
  :meth:`AsyncTaskPool.map` run at most ``n`` at a time with ``n`` worker tasks (not one task per
  item) and create coroutines lazily, so a million items do not become a million coroutines.
* ``concurrent.futures`` executors keep no statistics; :class:`ThreadPoolExecutor` is a true
  subclass that counts submitted / completed / failed / cancelled under a lock (``map`` included,
  because the standard ``map`` goes through ``submit``).
* There is no asyncio token bucket in the standard library; :class:`AsyncRateLimiter` reserves a
  slot for each caller under no lock at all (reservations are synchronous on the event loop) and
  then sleeps outside it, so waiters are served in arrival order and never more than ``burst``
  pass at once.
* ``asyncio.Queue`` has no "stop and hand back the rest"; :class:`WorkQueue` adds it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import math
import multiprocessing.context
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from ..errors import PoolClosedError, ValueRangeError

__all__ = [
    "TaskResult",
    "AsyncTaskPool",
    "ThreadPoolExecutor",
    "ExecutorStats",
    "ParallelProcessor",
    "AsyncRateLimiter",
    "WorkQueue",
    "gather_with_concurrency",
    "run_with_timeout",
    "optimize_async_loop",
    "run_async",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueRangeError(f"`{name}` must be an int >= 1, got {value!r}")
    return value


def _check_positive_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
        raise ValueRangeError(f"`{name}` must be a finite number > 0, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------------
# Task pools
# ---------------------------------------------------------------------------------------------------


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
        self.max_concurrent = _check_positive_int(max_concurrent, "max_concurrent")
        self._slots = asyncio.Semaphore(max_concurrent)

    async def run_task(self, aw: Awaitable[T]) -> TaskResult[T]:
        """Run one awaitable in a slot (an already created coroutine: prefer :meth:`submit`)."""
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
        return asyncio.get_running_loop().create_task(self._run_fn(fn, args))

    async def run_all(self, aws: Iterable[Awaitable[T]]) -> list[TaskResult[T]]:
        """Run awaitables (at most ``max_concurrent`` at once); results in input order."""
        return await self.map(lambda aw: aw, aws)

    async def map(self, fn: Callable[[Any], Awaitable[T]], items: Iterable[Any]) -> list[TaskResult[T]]:
        """``fn(item)`` for every item, at most ``max_concurrent`` at once; results in input order."""
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
    _check_positive_int(n, "n")
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
        for _, aw in source:  # never started: close them so they do not warn "never awaited"
            if inspect.iscoroutine(aw):
                aw.close()
    return results


async def run_with_timeout(aw: Awaitable[T], timeout: float | None, default: Any = None) -> T | Any:
    """Await ``aw``; if *this* timeout expires, cancel it and return ``default``.

    A ``TimeoutError`` raised inside ``aw`` (say, by a socket) is not ours: it propagates.

    Example:
        >>> asyncio.run(run_with_timeout(asyncio.sleep(10, "late"), 0.01, default="default"))
        'default'
    """
    try:
        async with asyncio.timeout(timeout) as scope:
            return await aw
    except TimeoutError:
        if scope.expired():
            logger.debug("run_with_timeout: timed out after %s s; returning the default", timeout)
            return default
        raise


# ---------------------------------------------------------------------------------------------------
# Executors
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutorStats:
    """Counters of a :class:`ThreadPoolExecutor` (``pending`` = submitted but not finished)."""

    max_workers: int
    submitted: int
    completed: int
    failed: int
    cancelled: int
    pending: int


class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    """``concurrent.futures.ThreadPoolExecutor`` that counts what it runs (same interface, a subclass).

    ``submit`` and ``map`` (which submits through ``submit``) are counted; a future that is
    cancelled counts as cancelled, one that raises as failed. Counters are updated under a lock.

    Example:
        >>> with ThreadPoolExecutor(max_workers=2) as ex:
        ...     squares = list(ex.map(lambda x: x * x, range(4)))
        >>> squares, ex.stats().completed
        ([0, 1, 4, 9], 4)
    """

    def __init__(self, max_workers: int | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(max_workers, *args, **kwargs)
        self._stats_lock = threading.Lock()
        self._submitted = self._completed = self._failed = self._cancelled = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        future = super().submit(fn, *args, **kwargs)
        with self._stats_lock:
            self._submitted += 1
        future.add_done_callback(self._count)
        return future

    def _count(self, future: concurrent.futures.Future[Any]) -> None:
        with self._stats_lock:
            if future.cancelled():
                self._cancelled += 1
            elif future.exception() is not None:
                self._failed += 1
            else:
                self._completed += 1

    def stats(self) -> ExecutorStats:
        with self._stats_lock:
            finished = self._completed + self._failed + self._cancelled
            return ExecutorStats(
                self._max_workers, self._submitted, self._completed, self._failed, self._cancelled,
                self._submitted - finished,
            )

    def get_stats(self) -> dict[str, int]:
        """The statistics as a dict (the original library's form)."""
        return dict(self.stats().__dict__)


def _apply_to_batch(func: Callable[[list[Any]], list[Any]], batch: list[Any]) -> list[Any]:
    return list(func(batch))


class ParallelProcessor:
    """Apply ``func(batch) -> list`` to slices of the data in parallel; results flattened in order.

    With ``backend="process"`` (the default) batches run in a ``ProcessPoolExecutor``, so pure-Python
    CPU work really runs on several cores: ``func``, the items and the results must be picklable
    (``func`` a module-level function, not a lambda or closure). ``backend="thread"`` suits I/O or
    GIL-releasing work (numpy, torch). The executor is created on first use and kept until
    :meth:`shutdown` (or the end of a ``with`` block). ``func`` may return any number of results per
    batch; they are concatenated in batch order.

    Args:
        num_workers: worker processes / threads (None: the executor's default).
        backend: "process" or "thread".
        mp_context: multiprocessing context for processes (None: the platform default).
        initializer, initargs: run once in each worker (as in ``concurrent.futures``).

    Example:
        >>> with ParallelProcessor(num_workers=2, backend="thread") as pp:
        ...     pp.process(list(range(7)), lambda xs: [x + 1 for x in xs], batch_size=3)
        [1, 2, 3, 4, 5, 6, 7]
    """

    def __init__(
        self,
        num_workers: int | None = None,
        backend: Literal["process", "thread"] = "process",
        *,
        mp_context: multiprocessing.context.BaseContext | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        if num_workers is not None:
            _check_positive_int(num_workers, "num_workers")
        if backend not in ("process", "thread"):
            raise ValueRangeError(f"`backend` must be 'process' or 'thread', got {backend!r}")
        self.num_workers = num_workers
        self.backend = backend
        self._mp_context = mp_context
        self._initializer = initializer
        self._initargs = initargs
        self._executor: concurrent.futures.Executor | None = None

    def _get_executor(self) -> concurrent.futures.Executor:
        if self._executor is None:
            if self.backend == "process":
                self._executor = concurrent.futures.ProcessPoolExecutor(
                    self.num_workers, mp_context=self._mp_context,
                    initializer=self._initializer, initargs=self._initargs,
                )
            else:
                self._executor = ThreadPoolExecutor(
                    self.num_workers, initializer=self._initializer, initargs=self._initargs
                )
        return self._executor

    def process(self, data: Sequence[T], func: Callable[[list[T]], list[R]], batch_size: int = 100) -> list[R]:
        """Run ``func`` on ``data[i:i + batch_size]`` slices in parallel; the first failing batch's error propagates."""
        _check_positive_int(batch_size, "batch_size")
        batches = [list(data[i : i + batch_size]) for i in range(0, len(data), batch_size)]
        if not batches:
            return []
        executor = self._get_executor()
        futures = [executor.submit(_apply_to_batch, func, b) for b in batches]
        try:
            return [r for f in futures for r in f.result()]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    def shutdown(self, wait: bool = True) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> ParallelProcessor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


# ---------------------------------------------------------------------------------------------------
# Rate limiting
# ---------------------------------------------------------------------------------------------------


class AsyncRateLimiter:
    """A token bucket: ``rate`` admissions per ``per`` seconds, at most ``burst`` at once.

    The bucket holds up to ``burst`` tokens (default: ``max(1, rate)``, the original's capacity
    without its extra token) and starts full; it refills continuously at ``rate / per`` tokens per
    second. Each admission takes one whole token, so over any window of ``t`` seconds at most
    ``burst + t * rate / per`` callers pass.

    A caller that finds no token reserves the next one (the balance goes negative) and sleeps
    until its reserved time; reservations are taken in arrival order with no await in between, so
    waiters are served first-in first-out, no lock is ever held while sleeping, and a cancelled
    waiter gives its token back. Use one limiter from one event loop (it is not thread-safe).

    Args:
        rate: admissions per ``per`` seconds, > 0.
        per: the period in seconds, > 0.
        burst: bucket capacity, >= 1.
        clock, sleep: time source and sleeping coroutine (inject fakes in tests).

    Example:
        >>> async def main():
        ...     limiter = AsyncRateLimiter(rate=1000, per=1.0, burst=5)
        ...     for _ in range(7):
        ...         async with limiter:
        ...             pass
        ...     return limiter.admitted
        >>> asyncio.run(main())
        7
    """

    def __init__(
        self,
        rate: float,
        per: float = 1.0,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.rate = _check_positive_float(rate, "rate")
        self.per = _check_positive_float(per, "per")
        self.burst = max(1.0, self.rate) if burst is None else _check_positive_float(burst, "burst")
        if self.burst < 1:
            raise ValueRangeError(f"`burst` must be >= 1 (one admission takes a whole token), got {burst!r}")
        self._fill_rate = self.rate / self.per  # tokens per second
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self.admitted = 0

    def _refill(self) -> float:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.burst, self._tokens + elapsed * self._fill_rate)
        self._updated = now
        return now

    @property
    def tokens(self) -> float:
        """Tokens available now (negative: that many admissions are already reserved ahead)."""
        self._refill()
        return self._tokens

    def try_acquire(self) -> bool:
        """Take a token if one is free now, without waiting (never jumps ahead of waiters)."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            self.admitted += 1
            return True
        return False

    async def acquire(self) -> None:
        """Wait for a token (first come, first served)."""
        self._refill()
        self._tokens -= 1  # reserve: the balance may go below zero
        if self._tokens >= 0:
            self.admitted += 1
            return
        delay = -self._tokens / self._fill_rate
        try:
            await self._sleep(delay)
        except BaseException:
            self._tokens += 1  # cancelled while waiting: release the reservation
            raise
        self.admitted += 1

    async def __aenter__(self) -> AsyncRateLimiter:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


# ---------------------------------------------------------------------------------------------------
# Work queue
# ---------------------------------------------------------------------------------------------------


class WorkQueue(Generic[T, R]):
    """``num_workers`` tasks that run ``worker(item)`` on queued items.

    :meth:`put` returns a future of that item's outcome: the worker's result, or its exception
    (also logged and counted in ``failed``). Nobody has to await it. :meth:`join` waits until every
    queued item is done. ``stop(drain=True)`` finishes everything queued first;
    ``stop(drain=False)`` lets the items already running finish and returns the queued ones that
    never started (their futures fail with ``PoolClosedError``). With ``timeout``, items still
    running when it expires are cancelled and returned as well. Nothing is dropped silently.

    Example:
        >>> async def main():
        ...     async def work(x):
        ...         return x * x
        ...     queue = WorkQueue(work, num_workers=2)
        ...     await queue.start()
        ...     futures = [await queue.put(i) for i in range(4)]
        ...     left = await queue.stop(drain=True)
        ...     return [f.result() for f in futures], left
        >>> asyncio.run(main())
        ([0, 1, 4, 9], [])
    """

    def __init__(self, worker: Callable[[T], R | Awaitable[R]], num_workers: int = 4, *, maxsize: int = 0) -> None:
        self._worker = worker
        self.num_workers = _check_positive_int(num_workers, "num_workers")
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] = asyncio.Queue(maxsize)
        self._tasks: list[asyncio.Task[None]] = []
        self._running: dict[asyncio.Task[None], tuple[T, asyncio.Future[R]]] = {}
        self._closing = False
        self.processed = 0
        self.failed = 0

    async def start(self) -> None:
        """Start the worker tasks (idempotent)."""
        if self._closing:
            raise PoolClosedError("WorkQueue was stopped; create a new one")
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work()) for _ in range(self.num_workers)]

    async def _work(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while True:
            item, future = await self._queue.get()
            self._running[me] = (item, future)
            try:
                result = self._worker(item)
                if inspect.isawaitable(result):
                    result = await result
            except asyncio.CancelledError as exc:
                if me.cancelling():
                    raise  # stop() is shutting this worker down
                self._fail(item, future, exc)  # the worker itself raised CancelledError
            except Exception as exc:
                self._fail(item, future, exc)
            else:
                self.processed += 1
                if not future.done():
                    future.set_result(result)
            finally:
                del self._running[me]
                self._queue.task_done()

    def _fail(self, item: T, future: asyncio.Future[R], exc: BaseException) -> None:
        self.failed += 1
        logger.warning("WorkQueue worker failed on %r: %r", item, exc)
        if not future.done():
            future.set_exception(exc)

    async def put(self, item: T) -> asyncio.Future[R]:
        """Queue ``item`` (waits while a bounded queue is full); returns the future of its outcome."""
        if self._closing:
            raise PoolClosedError("WorkQueue is stopping; put() refused")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve_quietly)
        await self._queue.put((item, future))
        return future

    add_task = put

    def qsize(self) -> int:
        return self._queue.qsize()

    async def join(self) -> None:
        """Wait until every item put so far has been processed."""
        await self._queue.join()

    async def stop(self, drain: bool = True, timeout: float | None = None) -> list[T]:
        """Stop accepting items and shut the workers down; returns the items that were not processed.

        Args:
            drain: finish the queued items first (True) or hand them back unprocessed (False).
            timeout: seconds to wait for the work to finish; items still running then are cancelled
                and returned (None: wait as long as it takes).
        """
        self._closing = True
        leftover: list[T] = []
        if not drain:
            leftover.extend(self._take_queued("WorkQueue stopped before this item ran"))
        if self._tasks:
            try:
                async with asyncio.timeout(timeout):
                    await self._queue.join()
            except TimeoutError:  # out of time: hand back what is queued and what is running
                leftover.extend(self._take_queued("WorkQueue stopped before this item ran"))
                for item, future in self._running.values():
                    leftover.append(item)
                    if not future.done():
                        future.set_exception(PoolClosedError("WorkQueue stopped while this item ran"))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        leftover.extend(self._take_queued("WorkQueue stopped before this item ran"))  # late put()s
        return leftover

    def _take_queued(self, reason: str) -> list[T]:
        taken = []
        while not self._queue.empty():
            item, future = self._queue.get_nowait()
            self._queue.task_done()
            taken.append(item)
            if not future.done():
                future.set_exception(PoolClosedError(reason))
        return taken


def _retrieve_quietly(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # errors are logged by the worker; a future nobody awaits must not warn


# ---------------------------------------------------------------------------------------------------
# Event loop choice
# ---------------------------------------------------------------------------------------------------


def _loop_factory() -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        return "asyncio", None
    return "uvloop", uvloop.new_event_loop


def optimize_async_loop() -> str:
    """Say which event loop :func:`run_async` will use: "uvloop" when installed, else "asyncio".

    Unlike the original, nothing global is changed (the event-loop policy API is deprecated);
    pass the choice to ``asyncio.Runner(loop_factory=...)`` or use :func:`run_async`.

    Example:
        >>> optimize_async_loop() in ("uvloop", "asyncio")
        True
    """
    name, _ = _loop_factory()
    logger.info("event loop: %s", name)
    return name


def run_async(main: Awaitable[T], *, use_uvloop: bool = True, debug: bool | None = None) -> T:
    """Run ``main`` to completion in a fresh event loop, uvloop's when installed (and ``use_uvloop``).

    The chosen loop is logged at INFO level (``mdt_tensor.concurrency``).

    Example:
        >>> async def main():
        ...     return 42
        >>> run_async(main())
        42
    """
    name, factory = _loop_factory() if use_uvloop else ("asyncio", None)
    logger.info("run_async: using the %s event loop", name)
    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)  # type: ignore[arg-type]
