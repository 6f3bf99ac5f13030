"""A pool of worker tasks fed by a queue: :class:`WorkQueue`.

``asyncio.Queue`` has no "stop and hand back the rest"; :class:`WorkQueue` adds it: every item
gets a future of its outcome, and ``stop()`` either drains the queue or returns the items that
never ran, so nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from .._validation import check_callable, check_int, check_timeout
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

    An item is *accepted* when :meth:`put` returns its future. ``stop()`` refuses new items at
    once: producers waiting for room in a bounded queue (``maxsize``) are woken with
    ``PoolClosedError`` and their items are not accepted. When ``stop()`` returns (or is itself
    cancelled) every accepted item's future is resolved: a result, the worker's exception, or
    ``PoolClosedError`` for an item handed back. A future the caller cancels before its item
    starts is skipped (counted in ``cancelled``), so ``processed + failed + cancelled`` plus the
    items ``stop()`` handed back is the number of accepted items.

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
        check_callable(worker, "worker")
        self._worker = worker
        self.num_workers = check_int(num_workers, "num_workers", low=1)
        self.maxsize = check_int(maxsize, "maxsize", low=0)
        self._items: collections.deque[tuple[T, asyncio.Future[R]]] = collections.deque()
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()  # idle workers
        self._putters: collections.deque[asyncio.Future[None]] = collections.deque()  # producers waiting for room
        self._unfinished = 0  # accepted items not yet done (queued or running)
        self._idle_event: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running: dict[asyncio.Task[None], tuple[T, asyncio.Future[R]]] = {}
        self._closing = False
        self.processed = 0
        self.failed = 0
        self.cancelled = 0

    async def start(self) -> None:
        """Start the worker tasks (idempotent)."""
        if self._closing:
            raise PoolClosedError("WorkQueue was stopped; create a new one")
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work()) for _ in range(self.num_workers)]

    # -- the queue ---------------------------------------------------------------------------------
    @staticmethod
    def _wake(waiters: collections.deque[asyncio.Future[None]]) -> None:
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _wait_on(self, waiters: collections.deque[asyncio.Future[None]]) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            # woken just as we were cancelled: pass the turn on, or it is lost
            if waiter.done() and not waiter.cancelled():
                self._wake(waiters)
            raise
        finally:
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)

    def _take(self) -> tuple[T, asyncio.Future[R]]:
        entry = self._items.popleft()
        self._wake(self._putters)  # room for one more
        return entry

    def _done_one(self) -> None:
        self._unfinished -= 1
        if self._unfinished == 0 and self._idle_event is not None:
            self._idle_event.set()

    async def _work(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while True:
            while not self._items:
                await self._wait_on(self._getters)
            item, future = self._take()
            if future.done():  # the caller cancelled it before it started
                self.cancelled += 1
                self._done_one()
                continue
            self._running[me] = (item, future)
            try:
                result = self._worker(item)
                if inspect.isawaitable(result):
                    result = await result
            except asyncio.CancelledError as exc:
                if me.cancelling():
                    raise  # stop() is shutting this worker down (it resolved the future)
                self._fail(item, future, exc)  # the worker itself raised CancelledError
            except Exception as exc:
                self._fail(item, future, exc)
            else:
                self.processed += 1
                if not future.done():
                    future.set_result(result)
            finally:
                self._running.pop(me, None)
                self._done_one()

    def _fail(self, item: T, future: asyncio.Future[R], exc: BaseException) -> None:
        self.failed += 1
        logger.warning("WorkQueue worker failed on %r: %r", item, exc)
        if not future.done():
            future.set_exception(exc)

    async def put(self, item: T) -> asyncio.Future[R]:
        """Queue ``item`` (waits while a bounded queue is full); returns the future of its outcome.

        Raises:
            PoolClosedError: the queue is stopping, before or while this call waited for room
                (the item was not accepted).
        """
        while True:
            if self._closing:
                raise PoolClosedError("WorkQueue is stopping; put() refused")
            if not self.maxsize or len(self._items) < self.maxsize:
                break
            await self._wait_on(self._putters)
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve_quietly)
        self._items.append((item, future))
        self._unfinished += 1
        if self._idle_event is not None:
            self._idle_event.clear()
        self._wake(self._getters)
        if self.maxsize and len(self._items) < self.maxsize:
            self._wake(self._putters)  # a producer woken for room that has gone passes the turn on
        return future

    add_task = put

    def qsize(self) -> int:
        """Items queued and not yet started."""
        return len(self._items)

    async def join(self) -> None:
        """Wait until every item put so far has been processed."""
        if self._unfinished == 0:
            return
        if self._idle_event is None:
            self._idle_event = asyncio.Event()
        self._idle_event.clear()
        await self._idle_event.wait()

    async def stop(self, drain: bool = True, timeout: float | None = None) -> list[T]:
        """Stop accepting items and shut the workers down; returns the items that were not processed.

        Args:
            drain: finish the queued items first (True) or hand them back unprocessed (False).
            timeout: seconds to wait for the work to finish (>= 0); items still running then are
                cancelled and returned (None or ``inf``: wait as long as it takes).

        Producers blocked in :meth:`put` are woken with ``PoolClosedError`` at once. If ``stop()``
        is cancelled while it waits, it hands back (fails) what is queued and running before the
        cancellation propagates, so no future is left unresolved.
        """
        timeout_s = check_timeout(timeout, "timeout")
        self._closing = True
        for waiter in self._putters:
            if not waiter.done():
                waiter.set_result(None)  # they see _closing and raise PoolClosedError
        leftover: list[T] = []
        if not drain:
            leftover.extend(self._take_queued("WorkQueue stopped before this item ran"))
        if self._tasks:
            try:
                async with asyncio.timeout(timeout_s):
                    await self.join()
            except BaseException as exc:  # out of time, or stop() itself cancelled
                leftover.extend(self._take_queued("WorkQueue stopped before this item ran"))
                leftover.extend(self._abort_running())
                self._cancel_workers()
                if not isinstance(exc, TimeoutError):
                    raise
        self._cancel_workers()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        leftover.extend(self._take_queued("WorkQueue stopped before this item ran"))  # not started
        return leftover

    def _cancel_workers(self) -> None:
        for task in self._tasks:
            task.cancel()

    def _abort_running(self) -> list[T]:
        aborted = []
        for item, future in self._running.values():
            aborted.append(item)
            if not future.done():
                future.set_exception(PoolClosedError("WorkQueue stopped while this item ran"))
        return aborted

    def _take_queued(self, reason: str) -> list[T]:
        taken = []
        while self._items:
            item, future = self._take()
            self._done_one()
            taken.append(item)
            if not future.done():
                future.set_exception(PoolClosedError(reason))
        return taken


def _retrieve_quietly(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # errors are logged by the worker; a future nobody awaits must not warn
