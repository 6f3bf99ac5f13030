"""The weight feeder against real loopback servers: good, slow, failing, garbage, oversized and bad rows."""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np
import pytest
import torch

from mdt_tensor.errors import DTypeError, ValueRangeError
from mdt_tensor.feed import FeedIncompleteError, RowStatus, WeightFeed, fetch_weight_stack, serve_weights
from tests.feed.faulty import FaultyWeights
from tests.netfaults import RawServer, refused_port

pytestmark = pytest.mark.timeout(30)

V, N = 256, 64
FAST = dict(timeout=0.3, max_retries=1, retry_delay=0.01, max_retry_delay=0.02)

# kind -> (status, reason, attempts with max_retries=1)
EXPECTED: dict[str, tuple[RowStatus, str | None, int]] = {
    "good": (RowStatus.OK, None, 1),
    "good.json": (RowStatus.OK, None, 1),
    "flaky": (RowStatus.OK, None, 2),
    "slow": (RowStatus.UNREACHABLE, "timeout", 2),
    "fail": (RowStatus.UNREACHABLE, "http_503", 2),
    "notfound": (RowStatus.UNREACHABLE, "http_404", 1),
    "refused": (RowStatus.UNREACHABLE, "connection", 2),
    "not_http": (RowStatus.UNREACHABLE, "connection", 2),
    "garbage": (RowStatus.REJECTED, "malformed", 1),
    "big": (RowStatus.REJECTED, "too_large", 1),
    "bigstream": (RowStatus.REJECTED, "too_large", 1),
    "nan.json": (RowStatus.REJECTED, "not_finite", 1),
    "neg.json": (RowStatus.REJECTED, "negative", 1),
    "range.json": (RowStatus.REJECTED, "out_of_range", 1),
    "frac.json": (RowStatus.REJECTED, "dtype", 1),
    "short": (RowStatus.REJECTED, "length", 1),
    "version": (RowStatus.REJECTED, "version", 1),
    "dtype": (RowStatus.REJECTED, "dtype", 1),
}
BAD_KINDS = [k for k in EXPECTED if k not in ("good", "good.json")]


def reference_weights(rows: int = V, n: int = N, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, size=(rows, n), dtype=np.int64)


def kind_of(i: int) -> str:
    """Every fourth row is spoiled, cycling through every fault; the rest alternate binary / JSON."""
    if i % 4 == 1:
        return BAD_KINDS[(i // 4) % len(BAD_KINDS)]
    return "good" if i % 2 == 0 else "good.json"


async def test_256_endpoints_the_good_rows_arrive_and_every_bad_one_is_named() -> None:
    weights = reference_weights()
    async with FaultyWeights(weights, slow_s=5.0) as server, RawServer("garbage") as raw:
        dead = refused_port()
        kinds = [kind_of(i) for i in range(V)]

        def url(i: int) -> str:
            if kinds[i] == "refused":
                return f"http://127.0.0.1:{dead}/weights/{i}"
            if kinds[i] == "not_http":
                return raw.url(f"/weights/{i}")
            return server.url(kinds[i], i)

        start = time.perf_counter()
        async with asyncio.timeout(10):
            batch = await fetch_weight_stack([url(i) for i in range(V)], N, max_response_bytes=4096,
                                             **{**FAST, "timeout": 1.0})
        elapsed = time.perf_counter() - start

    assert elapsed < 5.0  # two 1 s attempts for the slow rows, then done (the slow server takes 5 s)
    good = np.array([EXPECTED[k][0] is RowStatus.OK for k in kinds])
    assert batch.weights.shape == (V, N) and batch.weights.dtype == torch.int64
    assert batch.mask.numpy().tolist() == good.tolist()
    assert np.array_equal(batch.weights.numpy()[good], weights[good])
    assert not batch.weights.numpy()[~good].any()  # zero, and masked, and reported
    for i, r in enumerate(batch.reports):
        assert (r.index, r.url) == (i, url(i))
        status, reason, attempts = EXPECTED[kinds[i]]
        assert (r.status, r.reason) == (status, reason), (i, kinds[i], r)
        # a good row on a busy machine may need its retry; a failing one always uses exactly its attempts
        assert r.attempts == attempts or (r.status is RowStatus.OK and r.attempts == 2), (i, kinds[i], r)
        assert (r.detail == "") == (r.status is RowStatus.OK)
    assert {kind_of(r.index) for r in batch.failures} == set(BAD_KINDS) - {"flaky"}
    assert batch.ok_count == int(good.sum())
    with pytest.raises(FeedIncompleteError, match=f"{len(batch.failures)} row"):
        batch.raise_if_incomplete()


async def test_rejection_details_name_the_first_bad_position() -> None:
    weights = reference_weights(4, 8)
    async with FaultyWeights(weights) as server:
        batch = await fetch_weight_stack([server.url(k, 0) for k in ("nan.json", "range.json", "short")], 8, **FAST)
    assert [r.detail for r in batch.reports] == [
        "weight 3 is nan", "weight 3 is 70000.0 > 65535", "7 weights, expected 8"]


async def test_breaker_opens_after_repeated_failures_and_skips_the_endpoint() -> None:
    weights = reference_weights(4, 8)
    async with FaultyWeights(weights) as server:
        urls = [server.url("good", 0), server.url("fail", 1)]
        async with WeightFeed(urls, 8, failure_threshold=2, recovery_timeout=60.0, **FAST) as feed:
            outcomes = [(await feed.fetch()).reports[1] for _ in range(3)]
    assert [r.status for r in outcomes] == [RowStatus.UNREACHABLE, RowStatus.UNREACHABLE, RowStatus.BREAKER_OPEN]
    assert outcomes[2].attempts == 0 and outcomes[2].reason == "breaker_open"
    assert server.hits["fail"] == 4  # 2 fetches x 2 attempts; none while open


async def test_every_retry_is_made_and_counted() -> None:
    weights = reference_weights(2, 8)
    async with FaultyWeights(weights) as server:
        for retries in (0, 1, 2, 3):
            before = server.hits.get("fail", 0)
            batch = await fetch_weight_stack([server.url("fail", 0)], 8, **{**FAST, "max_retries": retries})
            assert batch.reports[0].attempts == retries + 1 == server.hits["fail"] - before


async def test_a_row_that_fails_later_is_zeroed_not_left_stale() -> None:
    weights = reference_weights(2, 8)
    async with FaultyWeights(weights) as server:
        async with WeightFeed([server.url("good", 0), server.url("toggle", 1)], 8, **FAST) as feed:
            first = await feed.fetch()
            assert first.mask.tolist() == [True, True]
            await feed.fetch()  # the other buffer
            server.toggle_ok = False
            third = await feed.fetch()  # first's buffer again
    assert third.weights.data_ptr() == first.weights.data_ptr()
    assert third.mask.tolist() == [True, False] and not third.weights[1].any()
    assert third.weights[0].tolist() == weights[0].tolist()


async def test_stream_prefetches_the_next_epoch_while_the_caller_works() -> None:
    weights = reference_weights(8, 16)
    async with serve_weights(weights) as server:
        async with WeightFeed(server.urls(), 16, **FAST) as feed:
            seen = []
            async with contextlib.aclosing(feed.stream(count=4)) as batches:
                async for batch in batches:
                    assert np.array_equal(batch.weights.numpy(), weights) and bool(batch.mask.all())
                    seen.append((batch.epoch, batch.weights.data_ptr()))
                    if batch.epoch < 3:  # while we "compute", the next epoch's rows arrive
                        async with asyncio.timeout(5):
                            while server.requests < 8 * (batch.epoch + 2):
                                await asyncio.sleep(0.005)
    assert [e for e, _ in seen] == [0, 1, 2, 3]
    assert seen[0][1] == seen[2][1] != seen[1][1] == seen[3][1]  # two buffers, alternating
    assert server.requests == 32  # no fetch past count


async def test_leaving_a_stream_early_cancels_the_prefetch() -> None:
    weights = reference_weights(4, 8)
    async with FaultyWeights(weights, slow_s=5.0) as server:
        async with WeightFeed([server.url("good", 0), server.url("slow", 1)], 8, timeout=3.0, max_retries=0) as feed:
            async with contextlib.aclosing(feed.stream()) as batches:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.2):
                        async for _ in batches:
                            pass
            assert feed._prefetch is None
            ours = [t for t in asyncio.all_tasks() if "WeightFeed" in getattr(t.get_coro(), "__qualname__", "")]
            assert ours == []  # (the server's own handler may still be sleeping; it is not ours)


async def test_concurrency_and_rate_limits_hold() -> None:
    weights = reference_weights(24, 8)
    async with FaultyWeights(weights, slow_s=0.05) as server:
        batch = await fetch_weight_stack([server.url("concurrent", i) for i in range(24)], 8, concurrency=4, **FAST)
        assert bool(batch.mask.all()) and server.max_in_flight == 4
        start = time.perf_counter()
        await fetch_weight_stack([server.url("good", i) for i in range(11)], 8, rate=100.0, burst=1.0, **FAST)
        assert time.perf_counter() - start >= 0.09  # 10 tokens at 100/s after the first


async def test_json_endpoints_and_float_dtype() -> None:
    weights = reference_weights(5, 12)
    async with serve_weights(weights) as server:
        batch = await fetch_weight_stack(server.urls(json=True), 12, dtype=torch.float32)
    assert batch.weights.dtype == torch.float32
    assert torch.equal(batch.weights, torch.from_numpy(weights).float())


async def test_a_session_passed_in_stays_open() -> None:
    import aiohttp

    weights = reference_weights(2, 4)
    async with serve_weights(weights) as server, aiohttp.ClientSession() as session:
        batch = await fetch_weight_stack(server.urls(), 4, session=session)
        assert not session.closed and batch.ok_count == 2


@pytest.mark.parametrize(
    "urls, n, kwargs, error",
    [([], 4, {}, ValueRangeError), ("http://x", 4, {}, DTypeError), (["ftp://x"], 4, {}, ValueRangeError),
     (["http://127.0.0.1:1/w"], 0, {}, ValueRangeError), (["http://127.0.0.1:1/w"], 4, {"dtype": torch.uint8}, DTypeError),
     (["http://127.0.0.1:1/w"], 4, {"timeout": 0}, ValueRangeError), (["http://127.0.0.1:1/w"], 4, {"max_retries": -1}, ValueRangeError)]
    + ([] if torch.cuda.is_available() else [(["http://127.0.0.1:1/w"], 4, {"device": "cuda"}, ValueRangeError)]),
)
def test_bad_arguments_are_refused_before_any_request(urls: object, n: int, kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        WeightFeed(urls, n, **kwargs)  # type: ignore[arg-type]


@pytest.mark.cuda
async def test_cuda_stack_lands_on_the_device_from_pinned_buffers() -> None:
    weights = reference_weights(16, 32)
    async with serve_weights(weights) as server:
        async with WeightFeed(server.urls(), 32, device="cuda") as feed:
            assert feed.pinned
            results = []
            async with contextlib.aclosing(feed.stream(count=3)) as batches:
                async for batch in batches:
                    assert batch.weights.device.type == "cuda" and batch.mask.device.type == "cuda"
                    results.append((batch.weights.float() * 2).sum().item())  # compute on the current stream
    assert results == [float(weights.sum() * 2)] * 3
