"""A pool of worker tasks fed by a queue: :class:`WorkQueue`.

``asyncio.Queue`` has no "stop and hand back the rest"; :class:`WorkQueue` adds it: every item
gets a future of its outcome, and ``stop()`` either drains the queue or returns the items that
never ran, so nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from .._validation import check_int
from ..errors import PoolClosedError

__all__ = ["WorkQueue"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


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
        self.num_workers = check_int(num_workers, "num_workers", low=1)
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
