"""ConnectionPool: growth, FIFO waits, timeouts, broken connections, closing (defect 20)."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdt_tensor.errors import DTypeError, PoolClosedError, PoolTimeoutError, ValueRangeError
from mdt_tensor.aio.pool import ConnectionPool

pytestmark = pytest.mark.timeout(20)


class Conn:
    ids = itertools.count()

    def __init__(self) -> None:
        self.id = next(Conn.ids)
        self.closed = False

    def close(self) -> None:
        self.closed = True


class AsyncCloseConn(Conn):
    async def close(self) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        self.closed = True


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_defect20_acquire_is_an_async_context_manager() -> None:
    pool = ConnectionPool(Conn, max_size=2, acquire_timeout=1.0)
    async with pool.acquire() as conn:
        assert isinstance(conn, Conn) and pool.stats().in_use == 1
    assert pool.stats().idle == 1 and pool.stats().releases == 1
    conn2 = await pool.acquire()  # the original's awaitable form still works
    assert conn2 is conn
    await pool.release(conn2)


async def test_defect20_grows_at_once_below_max_size() -> None:
    started = asyncio.Event()
    pool = ConnectionPool(Conn, max_size=3, acquire_timeout=30.0)

    async def hold() -> Conn:
        async with pool.acquire() as conn:
            await started.wait()
            return conn

    tasks = [asyncio.create_task(hold()) for _ in range(3)]
    async with asyncio.timeout(1.0):  # the original waited the full 30 s before growing
        while pool.stats().in_use < 3:
            await asyncio.sleep(0)
    started.set()
    conns = await asyncio.gather(*tasks)
    assert len({c.id for c in conns}) == 3 and pool.stats().created == 3


@pytest.mark.parametrize(("min_size", "max_size"), [(3, 2), (-1, 2), (0, 0), (0, -1)])
def test_defect20_bad_sizes_are_clear_errors(min_size: object, max_size: object) -> None:
    with pytest.raises(ValueRangeError):
        ConnectionPool(Conn, min_size=min_size, max_size=max_size)  # type: ignore[arg-type]


@pytest.mark.parametrize(("min_size", "max_size"), [(1.5, 2), (True, 2)])
def test_defect20_sizes_of_the_wrong_type_are_type_errors(min_size: object, max_size: object) -> None:
    with pytest.raises(DTypeError):
        ConnectionPool(Conn, min_size=min_size, max_size=max_size)  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan")])
def test_bad_acquire_timeout_is_a_clear_error(timeout: float) -> None:
    with pytest.raises(ValueRangeError, match="acquire_timeout"):
        ConnectionPool(Conn, acquire_timeout=timeout)


async def test_defect20_close_waits_for_checked_out_connections_and_reports_abandoned() -> None:
    pool = ConnectionPool(Conn, min_size=2, max_size=3, acquire_timeout=1.0)
    await pool.initialize()
    returned, kept = await pool.acquire(), await pool.acquire()
    idle = await pool.acquire()
    await pool.release(idle)

    async def give_back_soon() -> None:
        await asyncio.sleep(0.01)
        await pool.release(returned)

    asyncio.create_task(give_back_soon())
    abandoned = await pool.close(timeout=0.2)
    assert abandoned == [kept]
    assert idle.closed and returned.closed and not kept.closed  # abandoned: left to its holder
    await pool.release(kept)  # closed when it finally comes back
    assert kept.closed and pool.size == 0


async def test_close_returns_nothing_when_everything_came_back() -> None:
    pool = ConnectionPool(AsyncCloseConn, min_size=2, max_size=2)
    await pool.initialize()
    conn = await pool.acquire()

    async def give_back() -> None:
        await asyncio.sleep(0.01)
        await pool.release(conn)

    asyncio.create_task(give_back())
    assert await pool.close(timeout=5.0) == []
    assert pool.stats().closed == 2 and conn.closed


async def test_waits_fifo_only_at_the_limit() -> None:
    pool = ConnectionPool(Conn, max_size=1, acquire_timeout=5.0)
    holder = await pool.acquire()
    order: list[str] = []

    async def want(name: str) -> None:
        async with pool.acquire() as conn:
            order.append(name)
            assert conn is holder
            await asyncio.sleep(0)

    tasks = []
    for name in "abcd":
        tasks.append(asyncio.create_task(want(name)))
        await settle()
    assert pool.stats().waiting == 4
    await pool.release(holder)
    await asyncio.gather(*tasks)
    assert order == list("abcd") and pool.stats().created == 1


async def test_acquire_timeout_raises_pool_timeout_error() -> None:
    pool = ConnectionPool(Conn, max_size=1, acquire_timeout=0.02)
    conn = await pool.acquire()
    with pytest.raises(PoolTimeoutError, match="no connection within") as info:
        await pool.acquire()
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(PoolTimeoutError):
        await pool.acquire(timeout=0.01)
    assert pool.stats().timeouts == 2 and pool.stats().waiting == 0
    await pool.release(conn)
    async with pool.acquire() as again:  # the timed-out waiters did not swallow the connection
        assert again is conn


async def test_failing_connector_does_not_leak_a_slot() -> None:
    attempts = []

    async def connector() -> Conn:
        attempts.append(1)
        if len(attempts) <= 2:
            raise ConnectionRefusedError("refused")
        return Conn()

    pool = ConnectionPool(connector, max_size=1, acquire_timeout=0.5)
    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):
            await pool.acquire()
    assert pool.size == 0 and pool.stats().connect_failures == 2
    async with pool.acquire() as conn:
        assert isinstance(conn, Conn)


async def test_failing_connector_passes_the_slot_to_a_waiter() -> None:
    gate = asyncio.Event()
    calls = []

    async def connector() -> Conn:
        calls.append(1)
        if len(calls) == 1:
            await gate.wait()
            raise OSError("first connect fails")
        return Conn()

    pool = ConnectionPool(connector, max_size=1, acquire_timeout=2.0)
    first = asyncio.ensure_future(pool.acquire())
    await settle()
    second = asyncio.ensure_future(pool.acquire())  # at the limit: waits
    await settle()
    gate.set()
    with pytest.raises(OSError):
        await first
    assert isinstance(await second, Conn) and pool.size == 1


async def test_broken_connection_is_discarded_not_handed_out_again() -> None:
    pool = ConnectionPool(Conn, max_size=1, acquire_timeout=1.0)
    with pytest.raises(ConnectionResetError):
        async with pool.acquire() as broken:
            raise ConnectionResetError("peer reset")
    assert broken.closed and pool.size == 0
    async with pool.acquire() as fresh:
        assert fresh is not broken
    with pytest.raises(KeyError):
        async with pool.acquire() as healthy:
            raise KeyError("not a connection problem")
    async with pool.acquire() as again:
        assert again is healthy and not healthy.closed


async def test_discard_and_validate() -> None:
    pool = ConnectionPool(Conn, max_size=2, acquire_timeout=1.0, validate=lambda c: not getattr(c, "stale", False))
    conn = await pool.acquire()
    await pool.discard(conn)
    assert conn.closed and pool.size == 0
    async with pool.acquire() as conn:
        conn.stale = True  # type: ignore[attr-defined]
    async with pool.acquire() as other:
        assert other is not conn and conn.closed
    with pytest.raises(ValueRangeError, match="not checked out"):
        await pool.release(Conn())


async def test_discard_at_the_limit_hands_the_slot_to_the_waiter() -> None:
    pool = ConnectionPool(Conn, max_size=1, acquire_timeout=2.0)
    conn = await pool.acquire()
    waiter = asyncio.ensure_future(pool.acquire())
    await settle()
    await pool.discard(conn)
    fresh = await waiter
    assert fresh is not conn and pool.size == 1


async def test_cancelled_waiter_does_not_leak() -> None:
    pool = ConnectionPool(Conn, max_size=1, acquire_timeout=None)
    conn = await pool.acquire()
    waiter = asyncio.ensure_future(pool.acquire())
    await settle()
    waiter.cancel()
    await settle()
    await pool.release(conn)
    assert pool.stats().idle == 1 and pool.stats().waiting == 0


@pytest.mark.parametrize("hand_over", ["release", "discard"])
async def test_waiter_cancelled_right_after_the_hand_over_passes_it_on(hand_over: str) -> None:
    pool = ConnectionPool(Conn, max_size=1, acquire_timeout=None)
    conn = await pool.acquire()
    first = asyncio.ensure_future(pool.acquire())
    second = asyncio.ensure_future(pool.acquire())
    await settle()
    await getattr(pool, hand_over)(conn)  # hands the connection (or the free slot) to `first`...
    first.cancel()  # ...which is cancelled before it could run
    got = await asyncio.wait_for(second, 2.0)  # never a hang
    assert first.cancelled() and pool.stats().in_use == 1 and pool.size == 1
    assert (got is conn) == (hand_over == "release")


async def test_close_fails_waiters_and_refuses_new_acquires() -> None:
    pool = ConnectionPool(Conn, max_size=1, acquire_timeout=None)
    conn = await pool.acquire()
    waiter = asyncio.ensure_future(pool.acquire())
    await settle()
    closing = asyncio.create_task(pool.close(timeout=1.0))
    with pytest.raises(PoolClosedError):
        await waiter
    with pytest.raises(PoolClosedError):
        await pool.acquire()
    await pool.release(conn)
    assert await closing == [] and conn.closed


async def test_with_real_loopback_sockets() -> None:
    """Connections are real TCP streams to a 127.0.0.1 echo server that resets one of them."""
    resets = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if line == b"reset\n":
                writer.transport.abort()
                resets.set()
                return
            writer.write(line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    class Stream:
        def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.reader, self.writer = reader, writer

        async def ask(self, text: str) -> str:
            self.writer.write(text.encode() + b"\n")
            await self.writer.drain()
            line = await self.reader.readline()
            if not line:
                raise ConnectionResetError("server closed the connection")
            return line.decode().strip()

        async def close(self) -> None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass

    async def connect() -> Stream:
        return Stream(*await asyncio.open_connection("127.0.0.1", port))

    try:
        async with ConnectionPool(connect, min_size=1, max_size=2, acquire_timeout=2.0) as pool:
            async with pool.acquire() as s:
                assert await s.ask("hello") == "hello"
                first = s
            with pytest.raises(ConnectionError):
                async with pool.acquire() as s:
                    assert s is first
                    await s.ask("reset")
            await resets.wait()
            async with pool.acquire() as s:
                assert s is not first and await s.ask("again") == "again"
            assert pool.stats().created == 2
    finally:
        server.close()
        await server.wait_closed()


async def test_initialize_keeps_the_connections_that_opened_when_one_fails() -> None:
    calls = []

    def connector() -> Conn:
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionRefusedError("second one refused")
        return Conn()

    pool = ConnectionPool(connector, min_size=3, max_size=3, acquire_timeout=1.0)
    with pytest.raises(ConnectionRefusedError):
        await pool.initialize()
    stats = pool.stats()
    assert (stats.size, stats.idle, stats.connect_failures) == (2, 2, 1)
    await pool.initialize()  # tops up the missing one
    assert pool.stats().idle == 3
    assert await pool.close() == [] and pool.stats().closed == 3


# ---------------------------------------------------------------------------------------------------
# Random interleavings: no slot leaks, no broken connection handed out, FIFO at the limit
# ---------------------------------------------------------------------------------------------------

OPS = st.lists(
    st.tuples(st.sampled_from(["acquire", "release", "discard", "cancel", "fail_next", "settle"]), st.integers(0, 7)),
    max_size=50,
)


@settings(max_examples=150, deadline=None)
@given(ops=OPS, max_size=st.integers(1, 3))
def test_random_interleavings_keep_the_pool_consistent(ops: list[tuple[str, int]], max_size: int) -> None:
    asyncio.run(_interleave(ops, max_size))


async def _interleave(ops: list[tuple[str, int]], max_size: int) -> None:
    fail_next = [False]
    discarded: set[int] = set()

    async def connector() -> Conn:
        await asyncio.sleep(0)
        if fail_next[0]:
            fail_next[0] = False
            raise ConnectionRefusedError("refused")
        return Conn()

    pool = ConnectionPool(connector, max_size=max_size, acquire_timeout=None)
    waiting: list[asyncio.Future[Conn]] = []  # in arrival order
    held: list[Conn] = []

    def collect() -> None:
        for fut in [f for f in waiting if f.done()]:
            waiting.remove(fut)
            if not fut.cancelled() and fut.exception() is None:
                conn = fut.result()
                assert conn.id not in discarded and not conn.closed
                held.append(conn)

    for op, pick in ops:
        if op == "acquire":
            waiting.append(asyncio.ensure_future(pool.acquire()))
        elif op == "release" and held:
            await pool.release(held.pop(pick % len(held)))
        elif op == "discard" and held:
            conn = held.pop(pick % len(held))
            discarded.add(conn.id)
            await pool.discard(conn)
        elif op == "cancel" and waiting:
            waiting[pick % len(waiting)].cancel()
        elif op == "fail_next":
            fail_next[0] = True
        # Partial progress only (zero or one loop step, or a few with "settle"), so that hand-offs,
        # cancellations and connects interleave at every point.
        for _ in range(pick if op == "settle" else pick % 2):
            await asyncio.sleep(0)
        collect()
        s = pool.stats()
        assert s.size <= max_size and s.in_use == len(held) and s.idle + s.in_use <= s.size
        if s.waiting:  # nobody waits while there is room or an idle connection
            assert s.size == max_size and s.idle == 0
    # Give everything back: every remaining waiter is served in turn, and nothing leaks.
    fail_next[0] = False
    for _ in range(200):
        if not (held or waiting):
            break
        if held:
            await pool.release(held.pop(0))
        await settle()
        collect()
    assert not held and not waiting, "a waiter was never served"
    s = pool.stats()
    assert s.in_use == 0 and s.idle == s.size <= max_size and s.waiting == 0
    assert await pool.close() == [] and pool.size == 0
