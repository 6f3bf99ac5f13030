"""The weight feeder: 256 rows of 4,096 u16 weights from loopback servers, against two aiohttp baselines.

The servers run in a child process (validators are other machines; servers in a thread of this
process would measure contention for the GIL instead) and hold each answer for a fixed delay, a
stand-in for the round trip to a remote validator (loopback alone has none, which would leave
nothing to overlap). Baselines, measured in the same run on the same servers:

* a sequential aiohttp loop (one request after another): target, the feeder at least 10x faster;
* a plain ``asyncio.gather`` of aiohttp requests limited by a semaphore to the feeder's
  concurrency, decoding with ``np.frombuffer`` into a preallocated buffer and checking nothing:
  target, the feeder (checks, breakers, retry, report, staging) at most 1.5x its time.

A last row repeats the gather comparison with no added delay (the feeder's CPU overhead laid
bare); it carries no target.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import numpy as np

from benchmarks._harness import Comparison, Context, time_call
from mdt_tensor.feed import WeightFeed, serve_weights

CONCURRENCY = 64
SERVERS = 4
HEADER = 12


def _serve(weights: np.ndarray, delay: float, urls: Any, stop: Any) -> None:
    """The child process: SERVERS weight servers until ``stop`` is set."""

    async def main() -> None:
        servers = [serve_weights(weights, delay=delay) for _ in range(SERVERS)]
        for server in servers:
            await server.start()
        urls.put([servers[i % SERVERS].url(i) for i in range(weights.shape[0])])
        while not stop.is_set():
            await asyncio.sleep(0.05)
        for server in servers:
            await server.close()

    asyncio.run(main())


@contextmanager
def _servers(weights: np.ndarray, delay: float) -> Iterator[list[str]]:
    """Loopback weight servers in a child process; yields one URL per row, spread over them."""
    # spawn, not fork: a child forked after torch's OpenMP pool started (another benchmark ran
    # first) can hang on its first torch call.
    context = multiprocessing.get_context("spawn")
    urls, stop = context.Queue(), context.Event()
    child = context.Process(target=_serve, args=(weights, delay, urls, stop), daemon=True)
    child.start()
    try:
        yield urls.get(timeout=60)
    finally:
        stop.set()
        child.join(30)
        if child.is_alive():
            child.kill()


def _row_comparisons(ctx: Context, rows: int, n: int, delay: float, targets: bool) -> list[Comparison]:
    weights = np.random.default_rng(0).integers(0, 65536, size=(rows, n))
    out = np.zeros((rows, n), dtype=np.int64)
    loop = asyncio.new_event_loop()
    with _servers(weights, delay) as urls:
        session = loop.run_until_complete(_session())
        feed = WeightFeed(urls, n, concurrency=CONCURRENCY, timeout=30.0)
        slots = asyncio.Semaphore(CONCURRENCY)

        async def get(i: int) -> None:
            async with session.get(urls[i]) as response:
                body = await response.read()
            out[i] = np.frombuffer(body, dtype="<u2", count=n, offset=HEADER)

        async def limited(i: int) -> None:
            async with slots:
                await get(i)

        async def sequential() -> None:
            for i in range(rows):
                await get(i)

        async def gathered() -> None:
            await asyncio.gather(*(limited(i) for i in range(rows)))

        def run(make: Callable[[], object]) -> Callable[[], None]:
            return lambda: loop.run_until_complete(make()) and None  # type: ignore[arg-type]

        try:
            loop.run_until_complete(feed.__aenter__())
            ours_s = time_call(run(feed.fetch), repeat=ctx.repeat)
            batch = loop.run_until_complete(feed.fetch())
            assert bool(batch.mask.all()) and np.array_equal(batch.weights.numpy(), weights)
            gather_s = time_call(run(gathered), repeat=ctx.repeat)
            assert np.array_equal(out, weights)
            label = f"WeightFeed.fetch, {rows} rows x {n} u16, {delay * 1e3:g} ms server delay"
            note = {"rows/s (ours)": f"{rows / ours_s:,.0f}", "MB/s (ours)": f"{rows * n * 2 / ours_s / 1e6:,.1f}"}
            rows_out = []
            if targets:
                seq_s = time_call(run(sequential), repeat=min(ctx.repeat, 3), warmup=0, min_time=0.0)
                rows_out.append(Comparison(label, ours_s, "sequential aiohttp loop", seq_s, min_speedup=10.0, extra=note))
            rows_out.append(Comparison(
                label, ours_s, f"asyncio.gather, semaphore({CONCURRENCY}), no checks", gather_s,
                max_slowdown=1.5 if targets else None, extra=note,
            ))
            return rows_out
        finally:
            loop.run_until_complete(feed.close())
            loop.run_until_complete(session.close())
            loop.close()


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY, limit_per_host=0))


def run(ctx: Context) -> list[Comparison]:
    rows = ctx.size(256, 256, 32)
    n = ctx.size(4096, 4096, 256)
    delay = ctx.size(0.02, 0.02, 0.005)
    return _row_comparisons(ctx, rows, n, delay, targets=True) + _row_comparisons(ctx, rows, n, 0.0, targets=False)
