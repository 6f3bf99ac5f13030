"""An asyncio connection pool: ``ConnectionPool``.

It opens connections at once below ``max_size`` and queues callers first-in first-out only at
the limit, hands a freed connection or slot straight to the longest waiter, never leaks a slot,
discards broken connections, and on ``close`` reports the ones it had to abandon. State changes
happen on the event loop between awaits (no lock; one pool per loop). Why not aiohttp's pool or
an ``asyncio.Queue``: ``docs/design/aio-pool.md``.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .._validation import check_callable, check_int, check_number, check_timeout
from ..errors import PoolClosedError, PoolTimeoutError, ValueRangeError
from ._checks import exception_types

__all__ = ["ConnectionPool", "PoolStats"]

logger = logging.getLogger(__name__)

C = TypeVar("C")

_SLOT = object()  # handed to a waiter instead of a connection: "you may open a new one"


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _shielded(task: asyncio.Task[None] | None) -> None:
    """Wait for a close task; a cancelled caller stops waiting but the close goes on."""
    if task is not None:
        await asyncio.shield(task)


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool's counters.

    Attributes:
        size: open connections plus those being opened.
        idle: open connections waiting in the pool.
        in_use: connections checked out.
        waiting: callers queued for a connection.
        created: connections opened so far.
        closed: connections closed so far (discarded, rejected or at shutdown).
        acquisitions: successful acquires.
        releases: connections given back (discards included).
        timeouts: acquires that ran out of time.
        connect_failures: connector calls that raised.
        min_size, max_size: the limits.
    """

    size: int
    idle: int
    in_use: int
    waiting: int
    created: int
    closed: int
    acquisitions: int
    releases: int
    timeouts: int
    connect_failures: int
    min_size: int
    max_size: int


class _Acquire(Generic[C]):
    """What :meth:`ConnectionPool.acquire` returns: an async context manager, or awaitable for a bare connection."""

    def __init__(self, pool: ConnectionPool[C], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._conn: C | None = None

    def __await__(self) -> Generator[Any, None, C]:
        return self._pool._acquire(self._timeout).__await__()

    async def __aenter__(self) -> C:
        self._conn = await self._pool._acquire(self._timeout)
        return self._conn

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        conn, self._conn = self._conn, None
        # A cancelled body may have left the connection mid-request: treat it as broken too.
        if isinstance(exc, (*self._pool.broken_exceptions, asyncio.CancelledError)):
            await self._pool.discard(conn)  # type: ignore[arg-type]
        else:
            await self._pool.release(conn)  # type: ignore[arg-type]


class ConnectionPool(Generic[C]):
    """A bounded pool of connections made by ``connector``, handed out with ``async with pool.acquire()``.

    Args:
        connector: ``() -> connection`` (sync or async). Called without blocking other acquirers.
        min_size: connections opened by :meth:`initialize` (and ``async with pool``), >= 0.
        max_size: most connections open at once (idle + in use + being opened), >= 1, >= min_size.
        acquire_timeout: seconds an acquire may wait (for a free connection and for the connector
            together) before ``PoolTimeoutError``; None waits forever.
        close_conn: ``(conn) -> None`` (sync or async) to close a connection; by default
            ``conn.close()``, awaited if it returns an awaitable. Errors while closing are logged.
        validate: ``(conn) -> bool`` (sync or async) checked before an idle connection is handed
            out again; False discards it and the acquire goes on.
        broken_exceptions: exceptions that, raised from an ``async with`` body, mark the connection
            broken (discarded instead of returned). A cancelled body discards it too.

    Example:
        >>> class Conn:
        ...     def close(self): pass
        >>> async def main():
        ...     async with ConnectionPool(Conn, min_size=1, max_size=2, acquire_timeout=1.0) as pool:
        ...         async with pool.acquire() as a, pool.acquire() as b:
        ...             busy = pool.stats().in_use
        ...         return busy, pool.stats().idle
        >>> asyncio.run(main())
        (2, 2)
    """

    def __init__(
        self,
        connector: Callable[[], C | Awaitable[C]],
        min_size: int = 0,
        max_size: int = 10,
        acquire_timeout: float | None = 30.0,
        *,
        close_conn: Callable[[C], Any] | None = None,
        validate: Callable[[C], bool | Awaitable[bool]] | None = None,
        broken_exceptions: tuple[type[BaseException], ...] = (ConnectionError, OSError),
    ) -> None:
        check_callable(connector, "connector")
        for name, hook in (("close_conn", close_conn), ("validate", validate)):
            if hook is not None:
                check_callable(hook, name)
        if broken_exceptions != ():
            broken_exceptions = exception_types(broken_exceptions, "broken_exceptions")
        check_int(min_size, "min_size", low=0)
        check_int(max_size, "max_size", low=1)
        if min_size > max_size:
            raise ValueRangeError(f"`min_size` ({min_size}) must be <= `max_size` ({max_size})")
        if acquire_timeout is not None:  # an infinite timeout waits forever, as None does
            check_number(acquire_timeout, "acquire_timeout", low=0.0, low_open=True, finite=False)
        self._connector = connector
        self.min_size = min_size
        self.max_size = max_size
        self.acquire_timeout = acquire_timeout
        self._close_conn = close_conn
        self._validate = validate
        self.broken_exceptions = broken_exceptions
        self._idle: collections.deque[C] = collections.deque()
        self._in_use: dict[int, C] = {}  # id(conn) -> conn
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._size = 0
        self._closed = False
        self._connecting = 0  # connector calls in progress
        self._in_transit = 0  # connections handed to a waiter not yet awake, or being validated
        self._closers: set[asyncio.Task[None]] = set()  # awaitable closes still running
        self._wakeup: asyncio.Event | None = None  # set when in-use / connecting / closing changes
        self._created = self._closed_count = self._acquisitions = self._releases = 0
        self._timeouts = self._connect_failures = 0

    # -- opening -----------------------------------------------------------------------------------
    async def initialize(self) -> None:
        """Open connections until ``min_size`` are open (concurrently)."""
        self._check_open()
        missing = self.min_size - self._size
        if missing <= 0:
            return
        self._size += missing
        results = await asyncio.gather(*(self._connect_reserved() for _ in range(missing)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for result in results:
            if not isinstance(result, BaseException):
                self._give_back(result)  # keep the ones that opened, even if another failed
        if failures:
            raise failures[0]

    async def _connect_reserved(self) -> C:
        """Open a connection in a slot already counted in ``_size``; the slot is freed on failure.

        A connection that arrives after the pool was closed is closed at once (PoolClosedError).
        """
        if self._closed:
            self._free_slot()
            raise PoolClosedError("the connection pool is closed")
        self._connecting += 1
        try:
            conn = await _maybe_await(self._connector())
        except BaseException:
            self._connect_failures += 1
            self._free_slot()
            raise
        finally:
            self._connecting -= 1
            self._notify()
        self._created += 1
        return self._still_open(conn)

    def _still_open(self, conn: C) -> C:
        """``conn``, unless the pool closed meanwhile: then it is closed and PoolClosedError raised."""
        if self._closed:
            self._give_back(conn)  # closes it and frees its slot
            raise PoolClosedError("the connection pool was closed while this acquire waited")
        return conn

    # -- acquire / release -------------------------------------------------------------------------
    def acquire(self, timeout: float | None = ...) -> _Acquire[C]:  # type: ignore[assignment]
        """``async with pool.acquire() as conn`` (or ``conn = await pool.acquire()`` plus :meth:`release`).

        Args:
            timeout: overrides ``acquire_timeout`` for this call: seconds > 0, or None / ``inf``
                to wait forever.

        Raises:
            PoolTimeoutError: no connection within the timeout.
            PoolClosedError: the pool is closed (or closes while waiting).
            ValueRangeError, DTypeError: ``timeout`` is NaN, <= 0 or not a number.
        """
        if timeout is ...:
            return _Acquire(self, self.acquire_timeout)
        return _Acquire(self, check_timeout(timeout, "timeout", positive=True))

    async def _acquire(self, timeout: float | None) -> C:
        self._check_open()
        try:
            async with asyncio.timeout(timeout):
                conn = await self._get()
        except TimeoutError:
            self._timeouts += 1
            raise PoolTimeoutError(
                f"no connection within {timeout} s (max_size={self.max_size}, all in use, "
                f"{len(self._waiters)} waiting)"
            ) from None
        self._in_use[id(conn)] = conn
        self._acquisitions += 1
        return conn

    async def _get(self) -> C:
        while True:
            self._check_open()
            while self._idle:
                conn = self._idle.popleft()
                if await self._vet(conn):
                    return self._still_open(conn)
            if self._size < self.max_size and not self._waiters:
                self._size += 1
                return await self._connect_reserved()
            got = await self._wait_turn()
            if got is _SLOT:
                return await self._connect_reserved()
            if await self._vet(got):
                return self._still_open(got)

    async def _vet(self, conn: C) -> bool:
        """Whether ``conn`` (taken from the pool) may be handed out; a rejected one is closed, its slot freed."""
        self._in_transit += 1  # close() waits for a connection being validated
        try:
            ok = await self._is_valid(conn)
        except BaseException:
            self._give_back(conn)  # cancelled while validating: the connection stays pooled
            raise
        finally:
            self._in_transit -= 1
            self._notify()
        if not ok:
            closing = self._start_close(conn)
            self._free_slot()
            await _shielded(closing)
        return ok

    async def _wait_turn(self) -> Any:
        self._check_open()  # the pool may have closed while this acquire validated a connection
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            got = await future
        except BaseException:
            if future.done() and not future.cancelled() and future.exception() is None:
                # handed a connection or slot just as we were cancelled / timed out: pass it on
                got = future.result()
                if got is _SLOT:
                    self._free_slot()
                else:
                    self._in_transit -= 1
                    self._give_back(got)
                    self._notify()
            raise
        finally:
            try:
                self._waiters.remove(future)
            except ValueError:
                pass
        if got is not _SLOT:
            self._in_transit -= 1  # picked up; _vet counts it again while it validates
            self._notify()
        return got

    async def _is_valid(self, conn: C) -> bool:
        if self._validate is None:
            return True
        try:
            return bool(await _maybe_await(self._validate(conn)))
        except Exception:
            logger.warning("validate(%r) raised; discarding the connection", conn, exc_info=True)
            return False

    def _next_waiter(self) -> asyncio.Future[Any] | None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                return future
        return None

    def _give_back(self, conn: C) -> None:
        """Hand ``conn`` to the longest waiter, or park it idle (close it if the pool is closed)."""
        if self._closed:
            self._size -= 1
            self._start_close(conn)  # an awaitable close runs on as a tracked task
            return
        waiter = self._next_waiter()
        if waiter is not None:
            self._in_transit += 1  # in the waiter's hands until it wakes up
            waiter.set_result(conn)
        else:
            self._idle.append(conn)

    def _free_slot(self) -> None:
        """A connection slot became free: pass it to the longest waiter, or shrink."""
        waiter = self._next_waiter()
        if waiter is not None and not self._closed:
            waiter.set_result(_SLOT)
        else:
            self._size -= 1

    def _checked_in(self, conn: C) -> None:
        if self._in_use.pop(id(conn), None) is None:
            raise ValueRangeError(f"connection {conn!r} was not checked out from this pool")
        self._releases += 1

    def _notify(self) -> None:
        """Wake ``close()`` waiting for checked-out connections, connects and closes to finish."""
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    async def release(self, conn: C) -> None:
        """Give back a connection from ``await pool.acquire()`` (closed at once if the pool is closed)."""
        self._checked_in(conn)
        closing = None
        if self._closed:
            self._size -= 1
            closing = self._start_close(conn)
        else:
            self._give_back(conn)
        self._notify()
        await _shielded(closing)

    async def discard(self, conn: C) -> None:
        """Give back a broken connection: it is closed, never handed out again, and its slot freed."""
        self._checked_in(conn)
        closing = self._start_close(conn)
        self._free_slot()
        self._notify()
        await _shielded(closing)

    def _start_close(self, conn: C) -> asyncio.Task[None] | None:
        """Close ``conn`` (every path that closes one comes here, once per connection).

        A plain close runs now; an awaitable one runs in a task the pool tracks, so that a caller
        cancelled (or timed out) while waiting for it cannot leave the connection half closed and
        forgotten: the close goes on, and :meth:`close` waits for it. Returns that task, if any.
        """
        try:
            if self._close_conn is not None:
                outcome = self._close_conn(conn)
            else:
                close = getattr(conn, "close", None)
                outcome = close() if close is not None else None
        except Exception:
            logger.warning("closing connection %r failed", conn, exc_info=True)
            outcome = None
        if not inspect.isawaitable(outcome):
            self._closed_count += 1
            return None
        task = asyncio.ensure_future(self._finish_close(conn, outcome))
        self._closers.add(task)
        task.add_done_callback(self._closer_done)
        return task

    async def _finish_close(self, conn: C, outcome: Awaitable[Any]) -> None:
        try:
            await outcome
        except Exception:
            logger.warning("closing connection %r failed", conn, exc_info=True)
        self._closed_count += 1

    def _closer_done(self, task: asyncio.Task[None]) -> None:
        self._closers.discard(task)
        self._notify()

    # -- closing -----------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise PoolClosedError("the connection pool is closed")

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self, timeout: float | None = 30.0) -> list[C]:
        """Close the pool: fail waiters, close idle connections, wait for checked-out ones.

        Waiting acquirers fail with ``PoolClosedError`` at once; idle connections are closed; a
        connection being opened for an acquirer is closed when it arrives (that acquirer gets
        ``PoolClosedError``); a checked-out one is closed when it is given back. ``close()``
        returns once all of that has happened (every connection the pool opened closed exactly
        once), or when ``timeout`` runs out. Calling it again, or concurrently, is safe.

        Args:
            timeout: seconds to wait for checked-out connections, connects and closes in progress
                (>= 0; None or ``inf``: forever).

        Returns:
            The connections still checked out when the timeout ran out (abandoned: not closed
            now, but closed when they are released).
        """
        timeout_s = check_timeout(timeout, "timeout")
        self._closed = True
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_exception(PoolClosedError("the connection pool was closed while waiting"))
        while self._idle:  # start every close before the first await: a cancelled close() loses none
            conn = self._idle.popleft()
            self._size -= 1
            self._start_close(conn)
        try:
            async with asyncio.timeout(timeout_s):
                while self._in_use or self._connecting or self._in_transit or self._closers:
                    if self._wakeup is None:
                        self._wakeup = asyncio.Event()
                    await self._wakeup.wait()
        except TimeoutError:
            abandoned = list(self._in_use.values())
            logger.warning("ConnectionPool.close: abandoned %d checked-out connection(s)", len(abandoned))
            return abandoned
        return []

    async def __aenter__(self) -> ConnectionPool[C]:
        await self.initialize()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- statistics --------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self._size

    def stats(self) -> PoolStats:
        """A snapshot of the counters."""
        return PoolStats(
            size=self._size,
            idle=len(self._idle),
            in_use=len(self._in_use),
            waiting=sum(not f.done() for f in self._waiters),
            created=self._created,
            closed=self._closed_count,
            acquisitions=self._acquisitions,
            releases=self._releases,
            timeouts=self._timeouts,
            connect_failures=self._connect_failures,
            min_size=self.min_size,
            max_size=self.max_size,
        )

    def get_stats(self) -> dict[str, int]:
        """The statistics as a dict (the original library's form; ``available`` = idle)."""
        d = dict(self.stats().__dict__)
        d["available"] = d["idle"]
        return d

    @asynccontextmanager
    async def connection(self, timeout: float | None = ...) -> AsyncIterator[C]:  # type: ignore[assignment]
        """Same as ``acquire()``, as a plain ``asynccontextmanager``."""
        async with self.acquire(timeout) as conn:
            yield conn
