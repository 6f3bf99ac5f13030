"""BatchProcessor: batching by size and by time, per-caller results, no hangs, clean shutdown."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdt_tensor.aio.batch import BatchProcessor, BatchResultError
from mdt_tensor.errors import DTypeError, PoolClosedError, ValueRangeError

pytestmark = pytest.mark.timeout(20)


class ManualSleep:
    """A fake ``sleep``: each call blocks until the test fires it (the batch timer, by hand)."""

    def __init__(self) -> None:
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def __call__(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((seconds, future))
        await future

    def fire(self, index: int) -> None:
        future = self.sleepers[index][1]
        if not future.done():
            future.set_result(None)


class Recorder:
    def __init__(self, fn=lambda xs: [x * 10 for x in xs]) -> None:  # noqa: ANN001
        self.batches: list[list[int]] = []
        self.fn = fn

    def __call__(self, items: list[int]) -> list[object]:
        self.batches.append(list(items))
        return self.fn(items)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_flushes_on_size_then_on_time() -> None:
    sleep, proc = ManualSleep(), Recorder()
    bp = BatchProcessor(proc, max_batch_size=3, max_wait=0.5, sleep=sleep)
    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(bp.submit(i)))
        await settle()
    assert proc.batches == [[0, 1, 2]] and bp.pending == 2
    assert [s for s, _ in sleep.sleepers] == [0.5, 0.5]  # one timer per batch
    assert sleep.sleepers[0][1].cancelled()  # the full batch's timer was cancelled
    sleep.fire(1)  # the second batch's timer
    assert await asyncio.gather(*tasks) == [0, 10, 20, 30, 40]
    assert proc.batches == [[0, 1, 2], [3, 4]]


async def test_defect19_size_flush_cancels_its_timer_so_no_stale_early_flush() -> None:
    sleep, proc = ManualSleep(), Recorder()
    bp = BatchProcessor(proc, max_batch_size=2, max_wait=1.0, sleep=sleep)
    first = [asyncio.create_task(bp.submit(0))]
    await settle()  # the first batch's timer is now sleeping
    first.append(asyncio.create_task(bp.submit(1)))  # size flush
    await settle()
    assert sleep.sleepers[0][1].cancelled()  # the first batch's timer is gone
    late = asyncio.create_task(bp.submit(7))
    await settle()
    sleep.fire(0)  # even a stale wake-up of the old timer cannot flush the new batch
    await settle()
    assert proc.batches == [[0, 1]] and not late.done()
    sleep.fire(1)
    assert await late == 70 and await asyncio.gather(*first) == [0, 10]


async def test_defect19_short_result_list_fails_every_caller_instead_of_hanging() -> None:
    bp = BatchProcessor(lambda xs: xs[:-1], max_batch_size=3, max_wait=0.01)
    results = await asyncio.gather(*(bp.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, BatchResultError) and "2 results for 3 items" in str(r) for r in results)


@pytest.mark.parametrize("bad", [lambda xs: xs + xs, lambda xs: None, lambda xs: "abc", lambda xs: iter(xs)])
async def test_defect19_wrong_result_shape_fails_every_caller(bad) -> None:  # noqa: ANN001
    bp = BatchProcessor(bad, max_batch_size=3, max_wait=0.01)
    results = await asyncio.gather(*(bp.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, BatchResultError) for r in results)


async def test_defect19_processors_are_never_mixed_in_a_batch() -> None:
    doubles, negates = Recorder(lambda xs: [2 * x for x in xs]), Recorder(lambda xs: [-x for x in xs])
    a = BatchProcessor(doubles, max_batch_size=4, max_wait=0.01)
    b = BatchProcessor(negates, max_batch_size=4, max_wait=0.01)
    out = await asyncio.gather(*(p.submit(i) for i in range(6) for p in (a, b)))
    assert out == [v for i in range(6) for v in (2 * i, -i)]
    assert sorted(x for batch in doubles.batches for x in batch) == list(range(6))
    assert sorted(x for batch in negates.batches for x in batch) == list(range(6))


async def test_exception_instance_in_results_fails_only_its_caller() -> None:
    bp = BatchProcessor(lambda xs: [ValueError(x) if x == 1 else x for x in xs], max_batch_size=3, max_wait=0.01)
    results = await asyncio.gather(*(bp.submit(i) for i in range(3)), return_exceptions=True)
    assert results[0] == 0 and results[2] == 2 and isinstance(results[1], ValueError)


async def test_processor_exception_fails_the_whole_batch_only() -> None:
    calls = []

    async def proc(xs: list[int]) -> list[int]:
        calls.append(xs)
        if len(calls) == 1:
            raise ConnectionError("down")
        return xs

    bp = BatchProcessor(proc, max_batch_size=2, max_wait=0.01)
    first = await asyncio.gather(bp.submit(1), bp.submit(2), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in first)
    assert await asyncio.gather(bp.submit(3), bp.submit(4)) == [3, 4]


async def test_real_time_flush_with_a_short_wait() -> None:
    proc = Recorder()
    bp = BatchProcessor(proc, max_batch_size=100, max_wait=0.01)
    assert await asyncio.gather(bp.submit(1), bp.submit(2)) == [10, 20]
    assert proc.batches == [[1, 2]]


async def test_close_flushes_pending_work_then_refuses_new_items() -> None:
    sleep, proc = ManualSleep(), Recorder()
    bp = BatchProcessor(proc, max_batch_size=10, max_wait=60.0, sleep=sleep)
    tasks = [asyncio.create_task(bp.submit(i)) for i in range(3)]
    await settle()
    await bp.close()  # nothing is lost: the pending batch is processed without waiting 60 s
    assert [t.result() for t in tasks] == [0, 10, 20] and bp.closed
    with pytest.raises(PoolClosedError):
        await bp.submit(4)


async def test_async_with_closes() -> None:
    async with BatchProcessor(Recorder(), max_batch_size=10, max_wait=60.0, sleep=ManualSleep()) as bp:
        task = asyncio.create_task(bp.submit(5))
        await settle()
    assert task.result() == 50


async def test_cancelled_caller_does_not_break_the_batch() -> None:
    sleep, proc = ManualSleep(), Recorder()
    bp = BatchProcessor(proc, max_batch_size=3, max_wait=1.0, sleep=sleep)
    gone = asyncio.create_task(bp.submit(1))
    kept = asyncio.create_task(bp.submit(2))
    await settle()
    gone.cancel()
    await settle()
    sleep.fire(0)
    assert await kept == 20 and gone.cancelled() and proc.batches == [[1, 2]]


@pytest.mark.parametrize(("size", "wait"), [(0, 0.1), (-1, 0.1), (1, -0.1), (1, float("inf")), (1, float("nan"))])
def test_bad_arguments_are_clear_errors(size: object, wait: object) -> None:
    with pytest.raises(ValueRangeError):
        BatchProcessor(lambda xs: xs, max_batch_size=size, max_wait=wait)  # type: ignore[arg-type]


@pytest.mark.parametrize(("size", "wait"), [(2.5, 0.1)])
def test_arguments_of_the_wrong_type_are_type_errors(size: object, wait: object) -> None:
    with pytest.raises(DTypeError):
        BatchProcessor(lambda xs: xs, max_batch_size=size, max_wait=wait)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    groups=st.lists(st.lists(st.integers(-100, 100), max_size=7), max_size=8),
    max_batch_size=st.integers(1, 5),
    fire_after=st.lists(st.booleans(), max_size=8),
    fail_every=st.integers(2, 9),
)
def test_batches_equal_a_loop_of_singles(groups, max_batch_size, fire_after, fail_every) -> None:  # noqa: ANN001
    """Every item is processed exactly once, in a batch of at most max_batch_size, and its caller gets f(item)."""

    def f(x: int) -> object:
        return ValueError(x) if x % fail_every == 0 else x * 3 + 1

    async def scenario() -> None:
        sleep, proc = ManualSleep(), Recorder(lambda xs: [f(x) for x in xs])
        bp = BatchProcessor(proc, max_batch_size=max_batch_size, max_wait=1.0, sleep=sleep)
        tasks, items = [], []
        for i, group in enumerate(groups):
            for x in group:
                items.append(x)
                tasks.append(asyncio.create_task(bp.submit(x)))
            await settle()
            if i < len(fire_after) and fire_after[i]:
                for j in range(len(sleep.sleepers)):
                    sleep.fire(j)  # time passes: the pending batch (if any) is flushed
                await settle()
        await bp.close()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for x, r in zip(items, results):
            expected = f(x)
            if isinstance(expected, ValueError):
                assert isinstance(r, ValueError) and r.args == (x,)
            else:
                assert r == expected
        assert sorted(x for b in proc.batches for x in b) == sorted(items)
        assert all(1 <= len(b) <= max_batch_size for b in proc.batches)

    asyncio.run(scenario())
