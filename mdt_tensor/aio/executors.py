"""Thread and process executors: a counting :class:`ThreadPoolExecutor`, :class:`ParallelProcessor`.

``concurrent.futures`` executors keep no statistics; :class:`ThreadPoolExecutor` is a true
subclass that counts submitted / completed / failed / cancelled futures under a lock.
:class:`ParallelProcessor` applies a batch function to slices of the data on processes (real
parallelism for pure-Python work) or threads, results flattened in order
(``docs/design/aio-concurrency.md``).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing.context
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .._validation import check_callable, check_choice, check_int
from ..errors import PoolClosedError

__all__ = ["ThreadPoolExecutor", "ExecutorStats", "ParallelProcessor"]

T = TypeVar("T")
R = TypeVar("R")


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

    A torch operation on more than about 32K elements in a worker starts an OpenMP team in that
    thread; with more OpenMP threads than cores, every later torch operation of the process
    slows down several times (``docs/design/weighted-median.md``). Give workers numpy work, or
    torch operations on pieces of at most 32K elements (torch runs those in the calling thread).

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
        """``concurrent.futures`` ``submit``, counted; after :meth:`shutdown` a ``PoolClosedError``
        (a ``RuntimeError``, as the standard library raises)."""
        check_callable(fn, "fn")
        try:
            future = super().submit(fn, *args, **kwargs)
        except RuntimeError as exc:
            if self._shutdown or not isinstance(exc, concurrent.futures.BrokenExecutor):
                raise PoolClosedError(f"ThreadPoolExecutor: {exc}") from exc
            raise
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
            check_int(num_workers, "num_workers", low=1)
        self.num_workers = num_workers
        self.backend = check_choice(backend, "backend", ("process", "thread"))
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
        check_int(batch_size, "batch_size", low=1)
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
