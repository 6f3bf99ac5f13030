"""Fetch every validator's weight row concurrently and land the stack on the device.

``WeightFeed`` holds one aiohttp session, one circuit breaker per endpoint, a global rate limit
and two staging slots; each ``fetch()`` requests every row (retrying transient failures with
backoff, each request under a timeout and a response-size cap), checks it, writes it into the
host buffer and copies the stack to the device. ``stream()`` prefetches the next epoch while the
caller computes on the current one. A row that is missing or bad is zero in the stack, False in
the mask, and named with its reason in the report: never a silent zero.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import inspect
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
import torch

from .._validation import check_int, check_seconds
from ..aio import AsyncRateLimiter, CircuitBreaker, RetryOptions, retry_async
from ..errors import CircuitOpenError, DTypeError, NetworkError, PoolClosedError, ValueRangeError
from .staging import Staging
from .wire import RejectReason, RowRejected, decode_row

__all__ = ["RowStatus", "EndpointReport", "WeightBatch", "FeedIncompleteError", "WeightFeed", "fetch_weight_stack"]

_DTYPES = (torch.int64, torch.int32, torch.float32, torch.float64)


class RowStatus(enum.StrEnum):
    """What became of one endpoint's row."""

    OK = "ok"
    REJECTED = "rejected"  # an answer arrived but failed a check (reason: a RejectReason)
    UNREACHABLE = "unreachable"  # no usable answer after the retries (timeout, connection, HTTP error)
    BREAKER_OPEN = "breaker_open"  # skipped: the endpoint failed too often lately


@dataclass(frozen=True)
class EndpointReport:
    """One endpoint's outcome in one fetch.

    Attributes:
        index: the row (position of the URL in ``urls``).
        url: the endpoint.
        status: a :class:`RowStatus`.
        reason: ``None`` when OK; a :class:`RejectReason` value when rejected; for unreachable
            rows ``"timeout"``, ``"connection"`` or ``"http_<status>"``; ``"breaker_open"``.
        detail: a human-readable explanation ("" when OK).
        attempts: HTTP requests made (0 when the breaker refused).
        seconds: time from the first request to the outcome.
    """

    index: int
    url: str
    status: RowStatus
    reason: str | None = None
    detail: str = ""
    attempts: int = 0
    seconds: float = 0.0


@dataclass
class WeightBatch:
    """The result of one fetch.

    Attributes:
        weights: ``(V, n)`` on the feed's device; row i is endpoint i's weights, zeros where
            ``mask[i]`` is False.
        mask: ``(V,)`` bool on the feed's device, True for rows that arrived and passed the checks.
        reports: one :class:`EndpointReport` per endpoint, in ``urls`` order.
        epoch: the feed's fetch counter (0 for the first fetch).
    """

    weights: torch.Tensor
    mask: torch.Tensor
    reports: list[EndpointReport]
    epoch: int = 0
    seconds: float = 0.0
    _valid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), repr=False)

    @property
    def ok_count(self) -> int:
        """Rows that arrived and passed."""
        return int(self._valid.sum())

    @property
    def failures(self) -> list[EndpointReport]:
        """The reports of every row that is not OK."""
        return [r for r in self.reports if r.status is not RowStatus.OK]

    def raise_if_incomplete(self) -> None:
        """Raise :class:`FeedIncompleteError` listing the failed rows, if any."""
        if self.failures:
            raise FeedIncompleteError(self.failures)


class FeedIncompleteError(NetworkError):
    """Some rows did not arrive or were rejected; ``failures`` holds their reports."""

    def __init__(self, failures: list[EndpointReport]) -> None:
        shown = "; ".join(f"row {r.index} ({r.url}): {r.status.value} {r.reason}: {r.detail}" for r in failures[:5])
        more = f"; and {len(failures) - 5} more" if len(failures) > 5 else ""
        super().__init__(f"{len(failures)} row(s) missing or rejected: {shown}{more}")
        self.failures = failures


class _Unreachable(NetworkError):
    """No usable HTTP answer; ``reason`` is "timeout", "connection" or "http_<status>"."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class _Transient(_Unreachable):
    """An unreachable answer worth a retry (timeouts, connection errors, 5xx, 429)."""


def _check_urls(urls: object) -> list[str]:
    if isinstance(urls, (str, bytes)) or not isinstance(urls, Sequence):
        raise DTypeError(f"Expected `urls` to be a sequence of URL strings, but got {type(urls).__name__}.")
    if not urls:
        raise ValueRangeError("Expected at least one URL in `urls`, but got none.")
    for i, url in enumerate(urls):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueRangeError(f"Expected `urls[{i}]` to be an http(s) URL, but got {url!r}.")
    return list(urls)


class WeightFeed:
    """A reusable fetcher of a ``(V, n)`` weight stack from ``V`` endpoints.

    Use as ``async with WeightFeed(urls, n, device="cuda") as feed:`` then ``await feed.fetch()``
    or ``async for batch in feed.stream():``. Batches of one feed share two buffers: a batch stays
    valid until the second fetch after it begins, that is, in ``stream()``, until you ask for the
    next batch (``.clone()`` what you keep).

    Args:
        urls: one URL per row; each answers with the binary or JSON row format
            (:mod:`mdt_tensor.feed.wire`).
        n: weights per row.
        device: where the stack lands.
        dtype: the stack's dtype (int64, int32, float32 or float64); values are u16 integers.
        timeout: seconds for one HTTP request, connection to last byte.
        max_retries: retries of a transient failure (timeout, connection error, 5xx, 429).
        retry_delay, max_retry_delay: backoff before the first retry, and its cap (seconds;
            doubled per retry, jittered down by up to 10 %).
        concurrency: requests in flight at most.
        rate: requests per second across all endpoints (``None``: unlimited), with ``burst``.
        failure_threshold, recovery_timeout: an endpoint unreachable in ``failure_threshold``
            fetches in a row is skipped (``breaker_open``) for ``recovery_timeout`` seconds.
        max_response_bytes: cap on one body; default ``1024 + 8 * n`` (room for JSON).
        session: an aiohttp session to use (not closed by the feed); default: the feed's own.
    """

    def __init__(
        self,
        urls: Sequence[str],
        n: int,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.int64,
        timeout: float = 2.0,
        max_retries: int = 2,
        retry_delay: float = 0.05,
        max_retry_delay: float = 1.0,
        concurrency: int = 64,
        rate: float | None = None,
        burst: float | None = None,
        failure_threshold: int = 3,
        recovery_timeout: float = 30.0,
        max_response_bytes: int | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.urls = _check_urls(urls)
        self.n = check_int(n, "n", low=1)
        if dtype not in _DTYPES:
            raise DTypeError(f"Expected `dtype` to be one of {[str(d) for d in _DTYPES]}, but got {dtype}.")
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as exc:  # torch's own errors for "cuda:x", 5, ...
            raise ValueRangeError(f"Expected `device` to name a torch device, but got {device!r} ({exc}).") from None
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise DTypeError(f"Expected `session` to be an aiohttp.ClientSession or None, but got {type(session).__name__}.")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueRangeError(f"Expected `device` to exist, but got {device!r} and CUDA is not available.")
        self.timeout = check_seconds(timeout, "timeout", positive=True)
        self._client_timeout = aiohttp.ClientTimeout(total=self.timeout)
        self.concurrency = check_int(concurrency, "concurrency", low=1)
        self.max_response_bytes = (1024 + 8 * self.n if max_response_bytes is None
                                   else check_int(max_response_bytes, "max_response_bytes", low=1))
        self._retry = RetryOptions(max_retries=max_retries, initial_delay=retry_delay, max_delay=max_retry_delay,
                                   jitter=0.1, retry_on=(_Transient,))
        # retries 2, 3, ...: the same capped doubling sequence, one step on (see _get)
        self._later_retries = (None if max_retries < 2 else dataclasses.replace(
            self._retry, max_retries=max_retries - 1, initial_delay=min(2.0 * self._retry.initial_delay, self._retry.max_delay)))
        self._limiter = None if rate is None else AsyncRateLimiter(rate, 1.0, burst)
        self.breakers = [
            CircuitBreaker(failure_threshold, recovery_timeout, expected_exceptions=(_Unreachable,), name=url)
            for url in self.urls
        ]
        self._staging = Staging(len(self.urls), self.n, dtype, self.device)
        self._session = session
        self._owns_session = session is None
        self._slots: asyncio.Semaphore | None = None
        self._lock: asyncio.Lock | None = None
        self._prefetch: asyncio.Task[WeightBatch] | None = None
        self._fetching: set[asyncio.Future[list[EndpointReport]]] = set()  # row requests of fetches in flight
        self._closed = False
        self.epoch = 0

    # lifecycle --------------------------------------------------------------------------------
    async def __aenter__(self) -> WeightFeed:
        self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise PoolClosedError("this WeightFeed is closed; create a new one")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
            self._lock = asyncio.Lock()
        if self._session is None or self._session.closed:
            if not self._owns_session:
                raise NetworkError("the aiohttp session given to this WeightFeed is closed")
            connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        """Stop the feed: cancel a prefetch and the requests of fetches in flight, close the feed's
        own session (one passed in stays open).

        A ``fetch()`` in flight (or waiting for its turn) raises ``PoolClosedError``; so does every
        later ``fetch()``. When ``close()`` returns, no request of this feed is running. Closing
        twice is harmless.
        """
        self._closed = True
        prefetch, self._prefetch = self._prefetch, None
        pending = [f for f in (prefetch, *self._fetching) if f is not None and not f.done()]
        for future in pending:
            future.cancel()
        if pending:
            await _wait_cancelled(pending)
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    @property
    def pinned(self) -> bool:
        """Whether the host buffers are page-locked (only when the stack goes to a CUDA device)."""
        return self._staging.pinned

    # one request ------------------------------------------------------------------------------
    async def _get_once(self, session: aiohttp.ClientSession, url: str, attempts: list[int]) -> bytes:
        assert self._slots is not None
        async with self._slots:
            if self._limiter is not None:
                await self._limiter.acquire()
            attempts[0] += 1
            try:
                async with session.get(url, timeout=self._client_timeout) as response:
                    if response.status >= 500 or response.status == 429:
                        raise _Transient(f"http_{response.status}", f"HTTP {response.status} {response.reason}")
                    if response.status != 200:
                        raise _Unreachable(f"http_{response.status}", f"HTTP {response.status} {response.reason}")
                    return await self._read_capped(response)
            except TimeoutError:  # aiohttp's timeouts are TimeoutError subclasses
                raise _Transient("timeout", f"no complete answer within {self.timeout} s") from None
            except aiohttp.ClientError as exc:
                raise _Transient("connection", f"{type(exc).__name__}: {exc}") from None

    async def _get(self, session: aiohttp.ClientSession, url: str, attempts: list[int]) -> bytes:
        """The body at ``url``, retrying transient failures with capped, jittered, doubling backoff.

        The first attempt runs without the retry machinery (most succeed, and tenacity costs
        more per call than a loopback request); after a transient failure, the first backoff is
        slept here and ``retry_async`` runs the remaining retries with the sequence's later delays.
        """
        try:
            return await self._get_once(session, url, attempts)
        except _Transient:
            if self._retry.max_retries == 0:
                raise
        await asyncio.sleep(self._retry.delay(1, random.random()))
        if self._later_retries is None:
            return await self._get_once(session, url, attempts)
        return await retry_async(self._get_once, session, url, attempts, retry_options=self._later_retries)

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        cap = self.max_response_bytes
        declared = response.content_length
        if declared is not None and declared > cap:
            raise RowRejected(RejectReason.TOO_LARGE, f"Content-Length {declared} > cap {cap} bytes")
        if declared is not None:
            return await response.read()
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > cap:
                raise RowRejected(RejectReason.TOO_LARGE, f"body over the cap of {cap} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _fetch_row(self, session: aiohttp.ClientSession, index: int, rows: np.ndarray,
                         valid: np.ndarray) -> EndpointReport:
        url = self.urls[index]
        attempts = [0]
        start = time.perf_counter()

        def report(status: RowStatus, reason: str | None = None, detail: str = "") -> EndpointReport:
            return EndpointReport(index, url, status, reason, detail, attempts[0], time.perf_counter() - start)

        valid[index] = False
        rows[index] = 0  # no stale row from an earlier epoch survives a failure
        try:
            async with self.breakers[index]:
                body = await self._get(session, url, attempts)
            rows[index] = decode_row(body, self.n)
        except CircuitOpenError as exc:
            return report(RowStatus.BREAKER_OPEN, "breaker_open", str(exc))
        except _Unreachable as exc:
            return report(RowStatus.UNREACHABLE, exc.reason, str(exc))
        except RowRejected as exc:
            rows[index] = 0
            return report(RowStatus.REJECTED, exc.reason.value, exc.detail)
        valid[index] = True
        return report(RowStatus.OK)

    # fetching ---------------------------------------------------------------------------------
    async def fetch(self) -> WeightBatch:
        """Fetch every row once; returns a :class:`WeightBatch` (never raises for a bad row)."""
        session = self._open()
        assert self._lock is not None
        async with self._lock:  # one fetch at a time per feed: they share the buffers
            if self._closed:
                raise PoolClosedError("this WeightFeed was closed while this fetch waited for its turn")
            slot = self.epoch % 2
            start = time.perf_counter()
            rows = self._staging.host_rows(slot)
            valid = np.zeros(len(self.urls), dtype=bool)
            work = asyncio.gather(*(self._fetch_row(session, i, rows, valid) for i in range(len(self.urls))))
            self._fetching.add(work)
            try:
                reports = await work
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if self._closed and not (current is not None and current.cancelling()):
                    raise PoolClosedError("this WeightFeed was closed during the fetch") from None
                raise
            finally:
                self._fetching.discard(work)
            weights, mask = self._staging.publish(slot, valid)
            batch = WeightBatch(weights, mask, list(reports), self.epoch, time.perf_counter() - start, valid)
            self.epoch += 1
            return batch

    async def _fetch_at(self, not_before: float) -> WeightBatch:
        delay = not_before - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        return await self.fetch()

    async def stream(self, count: int | None = None, interval: float = 0.0) -> AsyncIterator[WeightBatch]:
        """Batches one after another; the next is fetched while the caller works on the current.

        Args:
            count: batches to yield (``None``: until the caller stops iterating).
            interval: seconds at least between the starts of two fetches.

        The fetch of epoch k+1 runs as a task while the caller's loop body handles epoch k; it
        makes progress whenever the body awaits (GPU kernels are queued without blocking, so an
        ``await`` after launching them is enough). Leaving the loop early leaves the prefetch
        running until the generator is closed: iterate inside
        ``async with contextlib.aclosing(feed.stream()) as batches:``, or close the feed. Closing
        the feed ends the stream with ``PoolClosedError`` (never a silent early end).
        """
        count = None if count is None else check_int(count, "count", low=0)
        interval_s = check_seconds(interval, "interval")
        assert interval_s is not None
        if count == 0:
            return
        self._open()  # a closed feed refuses at once
        started = time.monotonic()
        self._prefetch = asyncio.ensure_future(self.fetch())
        produced = 0
        try:
            while True:
                prefetch = self._prefetch
                if prefetch is None:  # close() took it
                    raise PoolClosedError("this WeightFeed was closed during stream()")
                try:
                    batch = await prefetch
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if self._closed and not (current is not None and current.cancelling()):
                        raise PoolClosedError("this WeightFeed was closed during stream()") from None
                    raise
                produced += 1
                self._prefetch = None
                if count is not None and produced >= count:
                    yield batch
                    return
                started += interval_s
                self._prefetch = asyncio.ensure_future(self._fetch_at(started))
                yield batch
        finally:
            pending, self._prefetch = self._prefetch, None
            if pending is not None and not pending.done():
                pending.cancel()
                await _wait_cancelled([pending])


async def _wait_cancelled(futures: Sequence[asyncio.Future[Any]]) -> None:
    """Wait until ``futures`` (just cancelled) have ended, whatever they ended with.

    A cancellation of the caller itself still propagates (``contextlib.suppress(CancelledError)``
    around ``await task`` would swallow it too).
    """
    await asyncio.wait(futures)
    for future in futures:
        if not future.cancelled():
            future.exception()  # retrieved: an error of a cancelled prefetch is not the caller's


_FEED_OPTIONS = frozenset(inspect.signature(WeightFeed.__init__).parameters) - {"self", "urls", "n", "device"}


async def fetch_weight_stack(urls: Sequence[str], n: int, *, device: str | torch.device = "cpu",
                             **options: object) -> WeightBatch:
    """Fetch one ``(V, n)`` weight stack from ``V`` endpoints (a one-shot :class:`WeightFeed`).

    ``options`` are :class:`WeightFeed`'s keywords (``timeout``, ``max_retries``, ``dtype``, ...).
    The returned tensors belong to the caller. Check ``batch.mask`` / ``batch.failures`` (or call
    ``batch.raise_if_incomplete()``): failed rows are zeros in ``batch.weights``.
    """
    unknown = sorted(set(options) - _FEED_OPTIONS)
    if unknown:
        raise DTypeError(f"Unknown WeightFeed option(s) {', '.join(unknown)}; the options are {', '.join(sorted(_FEED_OPTIONS))}.")
    async with WeightFeed(urls, n, device=device, **options) as feed:  # type: ignore[arg-type]
        return await feed.fetch()
