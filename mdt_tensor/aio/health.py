"""Health checks: send one request per endpoint and classify the answer.

Validators publish over HTTP; :func:`check_endpoint_health` tells which endpoints answer, how
fast and how well (:class:`EndpointStatus`), and :func:`check_multiple_endpoints` checks many at
once over one shared aiohttp session with bounded concurrency. Latency is measured on the
monotonic clock; only ``EndpointInfo.last_check`` is a wall-clock time, for display.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import re
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Iterable

import aiohttp

from .._validation import check_int, check_seconds
from ..errors import DTypeError, ValueRangeError
from .endpoints import EndpointError, parse_endpoint

__all__ = [
    "EndpointStatus",
    "EndpointInfo",
    "check_endpoint_health",
    "check_multiple_endpoints",
    "endpoint_infos_by_url",
]


class EndpointStatus(enum.StrEnum):
    """Outcome of a health check (a ``str`` enum: ``EndpointStatus.HEALTHY == "healthy"``).

    * ``HEALTHY``: the expected status, within ``degraded_latency``.
    * ``DEGRADED``: the expected status but slower than ``degraded_latency``, or an unexpected
      status below 500 (a 3xx, 4xx, other 2xx: the server answers, but not as expected).
    * ``UNHEALTHY``: reached but broken: a 5xx (unless expected), a timeout (no complete answer
      within ``timeout``, a hanging connect included: we cannot tell slow from black-holed), a
      reset or closed connection, a malformed response, a truncated body, a TLS failure.
    * ``UNREACHABLE``: no connection at all: refused, DNS failure, no route.
    * ``UNKNOWN``: never produced by the checks; kept for callers' placeholders (original API).
    """

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True)
class EndpointInfo:
    """Result of one health check.

    Attributes:
        url: the URL exactly as the caller passed it.
        status: the :class:`EndpointStatus`.
        latency_ms: request start to the end of the (capped) body read, monotonic clock, in ms;
            ``None`` when no HTTP response arrived.
        last_check: wall-clock time (epoch seconds) the check finished; for display.
        error_message: why the status is not HEALTHY (``None`` when it is).
        http_status: the HTTP status code, ``None`` when no response arrived.
    """

    url: str
    status: EndpointStatus
    latency_ms: float | None = None
    last_check: float | None = None
    error_message: str | None = None
    http_status: int | None = None

    def is_healthy(self) -> bool:
        """True when the status is HEALTHY."""
        return self.status is EndpointStatus.HEALTHY


#: The health check reads at most this many body bytes (the rest is dropped with the connection).
_MAX_HEALTH_BODY = 64 * 1024


def _health_url(url: object) -> str:
    """``url`` ready for aiohttp: validated, ``http://`` added when it has no scheme."""
    endpoint = parse_endpoint(url)  # type: ignore[arg-type]
    if endpoint.scheme not in ("http", "https"):
        raise EndpointError(f"health checks need an http or https URL, got {url!r}")
    text = str(url).strip()
    return text if "://" in text else "http://" + text


#: An HTTP method is a token (RFC 9110 section 5.6.2).
_METHOD_RE = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")


def _check_method(method: object) -> str:
    """``method`` upper-cased, if it is an HTTP token (aiohttp would raise a bare ValueError)."""
    if not isinstance(method, str):
        raise DTypeError(f"Expected `method` to be an HTTP method (str), but got {type(method).__name__}.")
    if not _METHOD_RE.fullmatch(method):
        raise ValueRangeError(f"Expected `method` to be an HTTP method such as 'GET' or 'HEAD', but got {method!r}.")
    return method.upper()


def _check_session(session: object) -> aiohttp.ClientSession | None:
    """``session`` if it is None or an open ``aiohttp.ClientSession``."""
    if session is None:
        return None
    if not isinstance(session, aiohttp.ClientSession):
        raise DTypeError(f"Expected `session` to be an aiohttp.ClientSession or None, but got {type(session).__name__}.")
    if session.closed:
        raise ValueRangeError("Expected `session` to be open, but it is closed.")
    return session


def _expected_set(expected_status: int | Collection[int]) -> frozenset[int]:
    if isinstance(expected_status, (str, bytes)):
        raise DTypeError(f"Expected `expected_status` to be an int or a collection of ints, but got {expected_status!r}.")
    codes = tuple(expected_status) if isinstance(expected_status, Collection) else (expected_status,)
    if not codes:
        raise ValueRangeError(
            f"`expected_status` must be an HTTP status (100..599) or a non-empty collection of "
            f"them, got {expected_status!r}"
        )
    return frozenset(check_int(code, "expected_status", low=100, high=599) for code in codes)


def _classify_response(http_status: int, expected: frozenset[int], latency_s: float,
                       degraded_latency: float | None) -> tuple[EndpointStatus, str | None]:
    if http_status in expected:
        if degraded_latency is not None and latency_s > degraded_latency:
            return EndpointStatus.DEGRADED, (
                f"slow answer: {latency_s * 1000:.1f} ms > {degraded_latency * 1000:.1f} ms"
            )
        return EndpointStatus.HEALTHY, None
    status = EndpointStatus.UNHEALTHY if http_status >= 500 else EndpointStatus.DEGRADED
    return status, f"Unexpected status: {http_status}"


def _classify_failure(exc: BaseException, timeout: float) -> tuple[EndpointStatus, str]:
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TimeoutError):
        return EndpointStatus.UNHEALTHY, f"Request timeout: no complete answer within {timeout} s"
    if isinstance(exc, aiohttp.ClientSSLError):
        return EndpointStatus.UNHEALTHY, detail
    if isinstance(exc, (aiohttp.ClientConnectorError, ConnectionRefusedError, socket.gaierror)):
        return EndpointStatus.UNREACHABLE, detail
    return EndpointStatus.UNHEALTHY, detail


async def _read_capped(response: aiohttp.ClientResponse) -> None:
    read = 0
    while read < _MAX_HEALTH_BODY:
        chunk = await response.content.read(_MAX_HEALTH_BODY - read)
        if not chunk:
            return
        read += len(chunk)


async def check_endpoint_health(
    url: str,
    timeout: float = 5.0,
    *,
    session: aiohttp.ClientSession | None = None,
    method: str = "GET",
    expected_status: int | Collection[int] = 200,
    degraded_latency: float | None = 1.0,
) -> EndpointInfo:
    """Send one request to ``url`` and classify the answer (see :class:`EndpointStatus`).

    The check reads the body too (at most 64 KiB), so a server that sends its headers and then
    stalls is caught by ``timeout``. It never raises for a network failure; it does raise for a
    malformed ``url`` or bad options, and lets cancellation through.

    Args:
        url: an ``http``/``https`` URL; without a scheme, ``http://`` is assumed.
        timeout: seconds for the whole request (connect, headers, body); > 0.
        session: an open ``aiohttp.ClientSession`` to use (and leave open); ``None`` opens one
            for this call and closes it.
        method: the HTTP method.
        expected_status: the status (or collection of statuses) that means healthy.
        degraded_latency: seconds above which an expected answer is DEGRADED; ``None``: never.

    Returns:
        The :class:`EndpointInfo`; ``info.url`` is ``url`` as given.

    Raises:
        EndpointError: ``url`` is malformed or not http(s).
        ValueRangeError, DTypeError: a bad option (``timeout``, ``method``, ``expected_status``,
            ``degraded_latency``, ``session``: not a ClientSession, or closed).

    Example:
        >>> import asyncio, aiohttp.web as web
        >>> async def health(request):
        ...     return web.Response(text="ok")
        >>> async def demo():
        ...     app = web.Application()
        ...     app.router.add_get("/health", health)
        ...     runner = web.AppRunner(app)
        ...     await runner.setup()
        ...     site = web.TCPSite(runner, "127.0.0.1", 0)
        ...     await site.start()
        ...     port = site._server.sockets[0].getsockname()[1]
        ...     try:
        ...         return await check_endpoint_health(f"127.0.0.1:{port}/health", timeout=2)
        ...     finally:
        ...         await runner.cleanup()
        >>> info = asyncio.run(demo())
        >>> info.status, info.http_status
        (<EndpointStatus.HEALTHY: 'healthy'>, 200)
    """
    request_url = _health_url(url)
    timeout_s, method, expected, degraded_s = _check_options(timeout, method, expected_status, degraded_latency)
    session = _check_session(session)
    if session is None:
        async with aiohttp.ClientSession() as own_session:
            return await _check_one(url, request_url, timeout_s, own_session, method, expected,
                                    degraded_s)
    return await _check_one(url, request_url, timeout_s, session, method, expected, degraded_s)


def _check_options(timeout: object, method: object, expected_status: object,
                   degraded_latency: object) -> tuple[float, str, frozenset[int], float | None]:
    timeout_s = check_seconds(timeout, "timeout", positive=True)
    assert timeout_s is not None
    degraded_s = check_seconds(degraded_latency, "degraded_latency", allow_none=True)
    return timeout_s, _check_method(method), _expected_set(expected_status), degraded_s  # type: ignore[arg-type]


async def _check_one(url: str, request_url: str, timeout: float, session: aiohttp.ClientSession,
                     method: str, expected: frozenset[int],
                     degraded_latency: float | None) -> EndpointInfo:
    start = time.monotonic()
    message: str | None
    try:
        async with asyncio.timeout(timeout):
            async with session.request(
                method, request_url, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                await _read_capped(response)
                http_status = response.status
    except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
        status, message = _classify_failure(exc, timeout)
        return EndpointInfo(url, status, None, time.time(), message, None)
    latency = time.monotonic() - start
    status, message = _classify_response(http_status, expected, latency, degraded_latency)
    return EndpointInfo(url, status, latency * 1000.0, time.time(), message, http_status)


async def check_multiple_endpoints(
    urls: Iterable[str],
    timeout: float = 5.0,
    concurrency: int = 10,
    *,
    session: aiohttp.ClientSession | None = None,
    method: str = "GET",
    expected_status: int | Collection[int] = 200,
    degraded_latency: float | None = 1.0,
) -> list[EndpointInfo]:
    """Check many endpoints, at most ``concurrency`` at a time, over one shared session.

    Every URL is validated before any request is sent. Duplicates are checked once per
    occurrence and all kept (the original collapsed them into one dict key); use
    :func:`endpoint_infos_by_url` for a dict view.

    Args:
        urls: the URLs (see :func:`check_endpoint_health`).
        timeout: seconds per check.
        concurrency: the most checks in flight at once; >= 1.
        session: a session to share (left open); ``None`` opens one (with a connection limit of
            ``concurrency``) for the call and closes it.
        method, expected_status, degraded_latency: as in :func:`check_endpoint_health`.

    Returns:
        One :class:`EndpointInfo` per input URL, in input order.

    Raises:
        EndpointError: a URL is malformed (the message names its index).

    Example:
        >>> import asyncio
        >>> asyncio.run(check_multiple_endpoints([]))
        []
    """
    url_list = _read_urls(urls)
    check_int(concurrency, "concurrency", low=1)
    # every option is checked here, before any request: inside the task group a bad one would
    # surface as an ExceptionGroup
    _check_options(timeout, method, expected_status, degraded_latency)
    session = _check_session(session)
    check = functools.partial(check_endpoint_health, timeout=timeout, method=method,
                              expected_status=expected_status, degraded_latency=degraded_latency)
    if not url_list:
        return []
    if session is None:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as own_session:
            return await _check_all(url_list, check, concurrency, own_session)
    return await _check_all(url_list, check, concurrency, session)


def _read_urls(urls: Iterable[str]) -> list[str]:
    """``urls`` as a list, every one validated; an error names the index of the bad URL."""
    if isinstance(urls, (str, bytes)):
        raise DTypeError("`urls` must be an iterable of URLs, got a single string")
    if not isinstance(urls, Iterable):
        raise DTypeError(f"`urls` must be an iterable of URLs, got {type(urls).__name__}")
    url_list = list(urls)
    for index, url in enumerate(url_list):
        try:
            _health_url(url)
        except (EndpointError, DTypeError) as exc:
            raise type(exc)(f"urls[{index}]: {exc}") from None
    return url_list


async def _check_all(url_list: list[str], check: Callable[..., Awaitable[EndpointInfo]],
                     concurrency: int, session: aiohttp.ClientSession) -> list[EndpointInfo]:
    """Run ``check`` on every URL in ``concurrency`` workers; results in input order."""
    results: list[EndpointInfo | None] = [None] * len(url_list)
    next_index = iter(range(len(url_list)))

    async def worker() -> None:
        # A fixed set of workers pulling indices: at most `concurrency` tasks exist at all.
        for index in next_index:
            results[index] = await check(url_list[index], session=session)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(url_list))):
            group.create_task(worker())
    assert all(info is not None for info in results)
    return results  # type: ignore[return-value]


def endpoint_infos_by_url(infos: Iterable[EndpointInfo]) -> dict[str, list[EndpointInfo]]:
    """Group results by URL, keeping every result of a duplicated URL (in order).

    Example:
        >>> a = EndpointInfo("http://a", EndpointStatus.HEALTHY)
        >>> b = EndpointInfo("http://a", EndpointStatus.UNHEALTHY)
        >>> [i.status.value for i in endpoint_infos_by_url([a, b])["http://a"]]
        ['healthy', 'unhealthy']
    """
    grouped: dict[str, list[EndpointInfo]] = {}
    for info in infos:
        grouped.setdefault(info.url, []).append(info)
    return grouped
