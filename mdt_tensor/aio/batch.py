"""Collect single requests into batches: :class:`BatchProcessor`.

Callers ``await submit(item)`` one item at a time; the processor hands ``max_batch_size`` items
(or whatever arrived within ``max_wait`` seconds) to one ``process_batch(items)`` call and gives
each caller its own result or exception.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from .._validation import check_callable, check_int, check_seconds
from ..errors import MdtError, PoolClosedError

__all__ = ["BatchProcessor", "BatchResultError"]

T = TypeVar("T")
R = TypeVar("R")


class BatchResultError(MdtError, RuntimeError):
    """``process_batch`` returned something other than one result per item."""


class _Batch:
    __slots__ = ("items", "futures", "timer")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.timer: asyncio.Task[None] | None = None


class BatchProcessor(Generic[T, R]):
    """Collect single ``submit(item)`` calls into batches for one ``process_batch(items)`` call.

    A batch is flushed when it holds ``max_batch_size`` items or ``max_wait`` seconds after its
    first item, whichever comes first. Each batch owns its timer, and a size flush cancels it, so a
    timer can never flush a later batch early. ``process_batch`` is bound at construction (batches
    never mix processors) and may be sync or async; a sync one runs on the event loop, so wrap
    blocking work with ``asyncio.to_thread``.

    Results: ``process_batch`` returns one result per item, in order. An exception *instance* in
    that list fails only its own caller (it is raised there). A result of the wrong length (or not a
    sequence) fails every caller of the batch with :class:`BatchResultError`; an exception raised by
    ``process_batch`` fails every caller of the batch. No caller ever waits forever.

    ``close()`` (or leaving ``async with``) flushes what is pending, waits for running batches and
    then refuses new submissions with ``PoolClosedError``. A caller cancelled while waiting does not
    remove its item: it is still processed, its result discarded.

    Args:
        process_batch: ``(list of items) -> sequence of results`` (sync or async).
        max_batch_size: items per batch, >= 1.
        max_wait: seconds the first item of a batch waits for company, >= 0.
        sleep: the coroutine used to wait ``max_wait`` (inject a fake one in tests).

    Example:
        >>> async def main():
        ...     async with BatchProcessor(lambda xs: [x * 10 for x in xs], max_batch_size=3, max_wait=0.01) as bp:
        ...         return await asyncio.gather(*(bp.submit(i) for i in range(5)))
        >>> asyncio.run(main())
        [0, 10, 20, 30, 40]
    """

    def __init__(
        self,
        process_batch: Callable[[list[T]], Sequence[R] | Awaitable[Sequence[R]]],
        max_batch_size: int = 50,
        max_wait: float = 0.1,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        check_callable(process_batch, "process_batch")
        check_callable(sleep, "sleep")
        self._process = process_batch
        self.max_batch_size = check_int(max_batch_size, "max_batch_size", low=1)
        self.max_wait: float = check_seconds(max_wait, "max_wait")  # type: ignore[assignment]
        self._sleep = sleep
        self._pending: _Batch | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False
        self.batches = 0
        self.items = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Items waiting for their batch to be flushed."""
        return len(self._pending.items) if self._pending else 0

    async def submit(self, item: T) -> R:
        """Add ``item`` to the current batch and wait for its own result (or exception)."""
        if self._closed:
            raise PoolClosedError("BatchProcessor is closed; submit() refused")
        loop = asyncio.get_running_loop()
        batch = self._pending
        if batch is None:
            batch = self._pending = _Batch()
            batch.timer = loop.create_task(self._flush_later(batch))
        future: asyncio.Future[R] = loop.create_future()
        batch.items.append(item)
        batch.futures.append(future)
        if len(batch.items) >= self.max_batch_size:
            self._flush(batch)
        return await future

    add = submit  # the original library's name

    async def _flush_later(self, batch: _Batch) -> None:
        await self._sleep(self.max_wait)
        batch.timer = None  # do not let _flush cancel the task that is running it
        if self._pending is batch:
            self._flush(batch)

    def _flush(self, batch: _Batch) -> None:
        if self._pending is batch:
            self._pending = None
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: _Batch) -> None:
        self.batches += 1
        self.items += len(batch.items)
        try:
            results = self._process(list(batch.items))
            if inspect.isawaitable(results):
                results = await results
            if not isinstance(results, Sequence) or isinstance(results, (str, bytes)):
                raise BatchResultError(
                    f"process_batch must return a sequence of {len(batch.items)} results, got {type(results).__name__}"
                )
            if len(results) != len(batch.items):
                raise BatchResultError(
                    f"process_batch returned {len(results)} results for {len(batch.items)} items"
                )
        except BaseException as exc:
            for future in batch.futures:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for future, result in zip(batch.futures, results):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def flush(self) -> None:
        """Flush the pending batch now and wait until every running batch has finished."""
        if self._pending is not None:
            self._flush(self._pending)
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def close(self) -> None:
        """Refuse new submissions, then flush and finish everything already submitted."""
        self._closed = True
        await self.flush()

    async def __aenter__(self) -> BatchProcessor[T, R]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
