"""Endpoints, health checks, retry, circuit breaking, ports and service waits.

The async resilience layer in front of the device: validators publish over HTTP, and this module
finds out which endpoints answer (:func:`check_endpoint_health`, :func:`check_multiple_endpoints`),
retries flaky calls (:func:`retry_async`, :func:`retry_sync`), stops hammering a failing
dependency (:class:`CircuitBreaker`), and parses and formats endpoint addresses
(:func:`parse_endpoint`, :func:`format_url`).

Why parts are hand-written although libraries exist:

* Retry is **tenacity** (``AsyncRetrying`` / ``Retrying``, ``wait_exponential``,
  ``stop_after_attempt``, ``retry_if_exception_type``); only the glue is ours: the call and
  decorator forms, a jitter that never pushes a delay past ``max_delay`` (tenacity's
  ``wait_exponential_jitter`` adds jitter on top of the exponential and so is uniform over
  ``[d, d + jitter]``), never retrying cancellation, and re-raising the last exception instead of
  ``tenacity.RetryError``.
* The circuit breaker is ours: the maintained Python breakers (``pybreaker``, ``aiobreaker``,
  ``circuitbreaker``) either are sync-only, count cancellation as a failure, lack an injectable
  clock, or do not limit concurrent half-open probes, and we may not add a dependency.
* :func:`parse_endpoint` does not use ``urllib.parse.urlparse``: it reads ``"host:8080"`` as
  scheme ``host`` and a scheme-less ``"node.example.com"`` as a path (the original's defects);
  endpoints are a small grammar that a dozen lines parse exactly.

Clocks: every duration (latency, backoff, breaker recovery, service waits) is measured with
``time.monotonic`` (or an injected clock), never with the wall clock; only
``EndpointInfo.last_check`` is a wall-clock timestamp, because it is meant for display.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import enum
import functools
import inspect
import ipaddress
import math
import operator
import random
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any, NamedTuple, TypeVar, overload

import aiohttp
import psutil
import tenacity

# NetworkError is re-exported: the original defined it in this module.
from ..errors import CircuitOpenError, DTypeError, NetworkError, ValueRangeError

__all__ = [
    "NetworkError",
    "CircuitOpenError",
    "EndpointError",
    "EndpointStatus",
    "EndpointInfo",
    "check_endpoint_health",
    "check_multiple_endpoints",
    "endpoint_infos_by_url",
    "RetryOptions",
    "retry_async",
    "retry_sync",
    "CircuitState",
    "CircuitBreakerStats",
    "CircuitBreaker",
    "Endpoint",
    "DEFAULT_PORTS",
    "parse_endpoint",
    "format_url",
    "is_port_open",
    "is_port_open_async",
    "wait_for_service",
    "get_local_ip",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class EndpointError(ValueRangeError):
    """An endpoint, URL, host or port argument is malformed or out of range."""


# --------------------------------------------------------------------------------------------
# Endpoints: parse and format
# --------------------------------------------------------------------------------------------

#: Default port of each scheme an endpoint may use.
DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443, "ws": 80, "wss": 443}

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?")
_BAD_CHARS_RE = re.compile(r"[\s\x00-\x1f\x7f]")


class Endpoint(NamedTuple):
    """A parsed endpoint.

    Attributes:
        scheme: ``"http"``, ``"https"``, ``"ws"`` or ``"wss"`` (lower case).
        host: a DNS name (lower case), an IPv4 address, or an IPv6 address *without* brackets.
        port: 1..65535; the scheme's default when the text named none.
        path: everything after the host and port, query included (``""`` when none).
    """

    scheme: str
    host: str
    port: int
    path: str

    @property
    def url(self) -> str:
        """The endpoint as a URL; the port is left out when it is the scheme's default.

        Example:
            >>> parse_endpoint("[::1]:8080/v1").url
            'http://[::1]:8080/v1'
        """
        port = None if DEFAULT_PORTS[self.scheme] == self.port else self.port
        return format_url(self.host, port, self.scheme, self.path)


def _check_port(port: object, name: str = "port") -> int:
    """``port`` as an int in 1..65535, or a clear error (never ``OverflowError``)."""
    if isinstance(port, bool):
        raise DTypeError(f"`{name}` must be an int in 1..65535, got bool {port!r}")
    try:
        value = operator.index(port)  # type: ignore[arg-type]
    except TypeError:
        raise DTypeError(
            f"`{name}` must be an int in 1..65535, got {type(port).__name__} {port!r}"
        ) from None
    if not 1 <= value <= 65535:
        raise EndpointError(f"`{name}` must be in 1..65535, got {value}")
    return value


def _check_scheme(scheme: object, text: object) -> str:
    if not isinstance(scheme, str) or not _SCHEME_RE.fullmatch(scheme):
        raise EndpointError(f"malformed scheme {scheme!r} in {text!r}")
    lowered = scheme.lower()
    if lowered not in DEFAULT_PORTS:
        raise EndpointError(
            f"unknown scheme {scheme!r} in {text!r}; expected one of {', '.join(DEFAULT_PORTS)}"
        )
    return lowered


def _normalize_host(host: str, text: object) -> str:
    """A validated host: canonical IPv6 (no brackets), IPv4, or a lower-case DNS name."""
    if not host:
        raise EndpointError(f"empty host in {text!r}")
    if host.startswith("[") or host.endswith("]"):
        if not (host.startswith("[") and host.endswith("]")):
            raise EndpointError(f"unbalanced brackets around host in {text!r}")
        host = host[1:-1]
        if not host:
            raise EndpointError(f"empty host in {text!r}")
        return _ipv6(host, text)
    if ":" in host:
        return _ipv6(host, text)
    if re.fullmatch(r"[0-9.]+", host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise EndpointError(f"host {host!r} in {text!r} is not a valid IPv4 address") from None
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise EndpointError(f"host {host!r} in {text!r} is not a valid DNS name") from None
    name = ascii_host[:-1] if ascii_host.endswith(".") else ascii_host
    if len(name) > 253 or not all(_LABEL_RE.fullmatch(label) for label in name.split(".")):
        raise EndpointError(f"host {host!r} in {text!r} is not a valid DNS name")
    return ascii_host


def _ipv6(host: str, text: object) -> str:
    try:
        return str(ipaddress.IPv6Address(host.replace("%25", "%", 1)))
    except ValueError:
        raise EndpointError(f"host {host!r} in {text!r} is not a valid IPv6 address") from None


def parse_endpoint(url: str) -> Endpoint:
    """Parse ``scheme://host:port/path`` into an :class:`Endpoint`.

    * No ``://`` means ``http``: ``"node.example.com"`` is that host on port 80 and
      ``"localhost:8080"`` is ``localhost`` on port 8080 (the original turned the first into
      ``localhost`` and read ``localhost`` in the second as a scheme).
    * The port defaults to the scheme's (:data:`DEFAULT_PORTS`: ``wss`` is 443, not 80).
    * IPv6 hosts need brackets (``[::1]:8080``); :attr:`Endpoint.host` holds them without.

    Args:
        url: the endpoint text; surrounding whitespace is ignored.

    Returns:
        The :class:`Endpoint` (scheme, host, port, path).

    Raises:
        EndpointError: garbage, an unknown scheme, an empty or invalid host, a port that is not a
            number in 1..65535 (0 included), credentials (``user@host``), or whitespace inside.
        DTypeError: ``url`` is not a ``str``.

    Example:
        >>> parse_endpoint("node.example.com")
        Endpoint(scheme='http', host='node.example.com', port=80, path='')
        >>> parse_endpoint("localhost:8080")
        Endpoint(scheme='http', host='localhost', port=8080, path='')
        >>> parse_endpoint("wss://[::1]/feed?x=1")
        Endpoint(scheme='wss', host='::1', port=443, path='/feed?x=1')
    """
    if not isinstance(url, str):
        raise DTypeError(f"`url` must be a str, got {type(url).__name__}")
    text = url.strip()
    if not text:
        raise EndpointError(f"empty endpoint {url!r}")
    if _BAD_CHARS_RE.search(text):
        raise EndpointError(f"whitespace or control character inside endpoint {url!r}")
    scheme_text, sep, rest = text.partition("://")
    if sep:
        scheme = _check_scheme(scheme_text, url)
    else:
        scheme, rest = "http", text
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:]
    if "@" in authority:
        raise EndpointError(f"credentials ('user@host') are not supported in endpoint {url!r}")
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise EndpointError(f"unclosed '[' in endpoint {url!r}")
        host_text, port_text = authority[: close + 1], authority[close + 1 :]
        if port_text and not port_text.startswith(":"):
            raise EndpointError(f"unexpected {port_text!r} after ']' in endpoint {url!r}")
        port_text = port_text[1:] if port_text else None  # type: ignore[assignment]
    elif authority.count(":") > 1:
        raise EndpointError(f"IPv6 hosts need brackets, as in 'http://[::1]:8080', got {url!r}")
    else:
        host_text, colon, port_text = authority.partition(":")
        port_text = port_text if colon else None  # type: ignore[assignment]
    host = _normalize_host(host_text, url)
    if port_text is None:
        port = DEFAULT_PORTS[scheme]
    else:
        if not port_text.isascii() or not port_text.isdigit():
            raise EndpointError(f"port {port_text!r} in {url!r} is not a number in 1..65535")
        port = _check_port(int(port_text))
    return Endpoint(scheme, host, port, path)


def format_url(host: str, port: int | None = None, scheme: str = "http", path: str = "") -> str:
    """Build a URL from parts; an IPv6 host is put in brackets.

    Args:
        host: a DNS name, an IPv4 address, or an IPv6 address (with or without brackets).
        port: 1..65535, or ``None`` to leave the port out (the scheme's default applies).
        scheme: ``"http"``, ``"https"``, ``"ws"`` or ``"wss"``.
        path: appended as is; a leading ``/`` is added when it starts with neither ``/`` nor ``?``.

    Returns:
        ``"{scheme}://{host}[:{port}]{path}"``.

    Raises:
        EndpointError: an unknown scheme, an empty or invalid host, a port out of range.

    Example:
        >>> format_url("::1", 8080)
        'http://[::1]:8080'
        >>> format_url("node.example.com", scheme="wss", path="feed")
        'wss://node.example.com/feed'
    """
    scheme = _check_scheme(scheme, scheme)
    if not isinstance(host, str):
        raise DTypeError(f"`host` must be a str, got {type(host).__name__}")
    canonical = _normalize_host(host.strip(), host)
    # A zone id's "%" is written "%25" inside brackets (RFC 6874); parse_endpoint reads it back.
    netloc = f"[{canonical.replace('%', '%25')}]" if ":" in canonical else canonical
    if port is not None:
        netloc = f"{netloc}:{_check_port(port)}"
    if not isinstance(path, str):
        raise DTypeError(f"`path` must be a str, got {type(path).__name__}")
    if _BAD_CHARS_RE.search(path):
        raise EndpointError(f"whitespace or control character in path {path!r}")
    if path and path[0] not in "/?":
        path = "/" + path
    return f"{scheme}://{netloc}{path}"


def _health_url(url: object) -> str:
    """``url`` ready for aiohttp: validated, ``http://`` added when it has no scheme."""
    endpoint = parse_endpoint(url)  # type: ignore[arg-type]
    if endpoint.scheme not in ("http", "https"):
        raise EndpointError(f"health checks need an http or https URL, got {url!r}")
    text = str(url).strip()
    return text if "://" in text else "http://" + text


# --------------------------------------------------------------------------------------------
# Health checks
# --------------------------------------------------------------------------------------------


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


def _check_seconds(value: object, name: str, *, allow_none: bool = False,
                   positive: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DTypeError(f"`{name}` must be a number of seconds, got {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (positive and seconds == 0) or math.isinf(seconds):
        bound = "> 0" if positive else ">= 0"
        raise ValueRangeError(f"`{name}` must be finite and {bound} seconds, got {value!r}")
    return seconds


def _expected_set(expected_status: int | Collection[int]) -> frozenset[int]:
    codes = (expected_status,) if isinstance(expected_status, int) else tuple(expected_status)
    if not codes or not all(isinstance(c, int) and 100 <= c <= 599 for c in codes):
        raise ValueRangeError(
            f"`expected_status` must be an HTTP status (100..599) or a non-empty collection of "
            f"them, got {expected_status!r}"
        )
    return frozenset(codes)


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
    timeout_s = _check_seconds(timeout, "timeout", positive=True)
    degraded_s = _check_seconds(degraded_latency, "degraded_latency", allow_none=True)
    expected = _expected_set(expected_status)
    assert timeout_s is not None
    if session is None:
        async with aiohttp.ClientSession() as own_session:
            return await _check_one(url, request_url, timeout_s, own_session, method, expected,
                                    degraded_s)
    return await _check_one(url, request_url, timeout_s, session, method, expected, degraded_s)


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
    if isinstance(urls, (str, bytes)):
        raise DTypeError("`urls` must be an iterable of URLs, got a single string")
    url_list = list(urls)
    for index, url in enumerate(url_list):
        try:
            _health_url(url)
        except (EndpointError, DTypeError) as exc:
            raise type(exc)(f"urls[{index}]: {exc}") from None
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueRangeError(f"`concurrency` must be an int >= 1, got {concurrency!r}")
    check = functools.partial(check_endpoint_health, timeout=timeout, method=method,
                              expected_status=expected_status, degraded_latency=degraded_latency)
    if not url_list:
        return []
    results: list[EndpointInfo | None] = [None] * len(url_list)
    next_index = iter(range(len(url_list)))

    async def worker(shared: aiohttp.ClientSession) -> None:
        # A fixed set of workers pulling indices: at most `concurrency` tasks exist at all.
        for index in next_index:
            results[index] = await check(url_list[index], session=shared)

    async def run_all(shared: aiohttp.ClientSession) -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(url_list))):
                group.create_task(worker(shared))

    if session is None:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as own_session:
            await run_all(own_session)
    else:
        await run_all(session)
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


# --------------------------------------------------------------------------------------------
# Retry (tenacity)
# --------------------------------------------------------------------------------------------


class _NotAwaitableError(DTypeError):
    """``retry_async`` was given a function whose result cannot be awaited (never retried)."""


def _exception_types(value: object, name: str) -> tuple[type[BaseException], ...]:
    """``value`` (None, one exception class, or several) as a non-empty tuple of classes."""
    if value is None:
        return (Exception,)
    types = (value,) if isinstance(value, type) else tuple(value)  # type: ignore[arg-type]
    if not types:
        raise ValueRangeError(
            f"`{name}` is empty; name at least one exception type, or pass None for every "
            f"Exception"
        )
    for item in types:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise DTypeError(f"`{name}` must hold exception classes, got {item!r}")
    return types


@dataclasses.dataclass(frozen=True)
class RetryOptions:
    """How :func:`retry_async` / :func:`retry_sync` retry (validated on construction).

    The delay before retry ``k`` (``k = 1, 2, ...``) is
    ``d_k = min(initial_delay * backoff_factor ** (k - 1), max_delay)`` (the first one is capped
    too), then jittered down to a uniform value in ``[d_k * (1 - jitter), d_k]``: jitter never
    pushes a delay past ``max_delay``. ``jitter=1`` is "full jitter", ``0`` none.

    Attributes:
        max_retries: retries after the first attempt (``max_retries + 1`` attempts); >= 0.
        initial_delay: seconds before the first retry (capped by ``max_delay``); >= 0.
        backoff_factor: growth of the delay per retry; >= 1.
        max_delay: cap on every delay, seconds; >= 0.
        jitter: fraction in [0, 1] by which a delay may be shortened at random.
        retry_on: exception classes worth a retry; ``None``: every ``Exception``. Anything else
            is raised at once. ``asyncio.CancelledError`` is never retried, even if named.
        on_retry: ``on_retry(attempt, exception, delay)``, called before each backoff sleep
            (``attempt`` is the number of the attempt that failed, from 1); with
            :func:`retry_async` it may be ``async``.
        sleep: the sleep function (sync, or with :func:`retry_async` sync or async); ``None``:
            the real one. Inject a fake to test backoff without waiting.
    """

    max_retries: int = 3
    initial_delay: float = 1.0
    backoff_factor: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.1
    retry_on: tuple[type[BaseException], ...] | None = None
    on_retry: Callable[[int, BaseException, float], Any] | None = None
    sleep: Callable[[float], Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise DTypeError(f"`max_retries` must be an int, got {type(self.max_retries).__name__}")
        if self.max_retries < 0:
            raise ValueRangeError(f"`max_retries` must be >= 0, got {self.max_retries}")
        _check_seconds(self.initial_delay, "initial_delay")
        _check_seconds(self.max_delay, "max_delay")
        for name, low, high in (("backoff_factor", 1.0, math.inf), ("jitter", 0.0, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DTypeError(f"`{name}` must be a number, got {type(value).__name__}")
            if not low <= value <= high or math.isinf(value):
                raise ValueRangeError(
                    f"`{name}` must be finite and in [{low}, {high}], got {value}"
                )
        object.__setattr__(self, "retry_on", _exception_types(self.retry_on, "retry_on"))
        for name in ("on_retry", "sleep"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise DTypeError(f"`{name}` must be callable or None")

    def delay(self, retry: int, unit: float = 1.0) -> float:
        """The delay before retry ``retry`` (from 1), given a uniform draw ``unit`` in [0, 1].

        Example:
            >>> opts = RetryOptions(initial_delay=10.0, max_delay=2.0, jitter=0.5)
            >>> opts.delay(1), opts.delay(1, unit=0.0)
            (2.0, 1.0)
        """
        base = tenacity.wait_exponential(
            multiplier=self.initial_delay, max=self.max_delay, exp_base=self.backoff_factor
        )(_AttemptView(retry))  # type: ignore[arg-type]  # duck-types RetryCallState
        return base * (1.0 - self.jitter * (1.0 - unit))


class _AttemptView:
    """The one field of ``tenacity.RetryCallState`` that ``wait_exponential`` reads."""

    def __init__(self, attempt_number: int) -> None:
        self.attempt_number = attempt_number


class _JitteredExponentialWait(tenacity.wait.wait_base):
    def __init__(self, options: RetryOptions) -> None:
        self.options = options

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self.options.delay(retry_state.attempt_number, random.random())


_RETRY_OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(RetryOptions))


def _tenacity_kwargs(options: RetryOptions, default_sleep: Callable[[float], Any],
                     callback: Callable[[tenacity.RetryCallState], Any]) -> dict[str, Any]:
    assert options.retry_on is not None
    never = tenacity.retry_if_not_exception_type((asyncio.CancelledError, _NotAwaitableError))
    retry = tenacity.retry_if_exception_type(options.retry_on) & never
    return {
        "sleep": options.sleep or default_sleep,
        "stop": tenacity.stop_after_attempt(options.max_retries + 1),
        "wait": _JitteredExponentialWait(options),
        "retry": retry,
        "before_sleep": callback if options.on_retry is not None else None,
        "reraise": True,  # the last exception, not tenacity.RetryError
    }


def _event(retry_state: tenacity.RetryCallState) -> tuple[int, BaseException, float]:
    assert retry_state.outcome is not None and retry_state.next_action is not None
    exception = retry_state.outcome.exception()
    assert exception is not None
    return retry_state.attempt_number, exception, retry_state.next_action.sleep


async def _run_async(func: Callable[..., Awaitable[T]], args: tuple[Any, ...],
                     kwargs: dict[str, Any], options: RetryOptions) -> T:
    async def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        assert options.on_retry is not None
        outcome = options.on_retry(*_event(retry_state))
        if inspect.isawaitable(outcome):
            await outcome

    async def attempt() -> T:
        result = func(*args, **kwargs)
        if not inspect.isawaitable(result):
            raise _NotAwaitableError(
                f"retry_async needs a function that returns an awaitable; {func!r} returned "
                f"{type(result).__name__} (use retry_sync for plain functions)"
            )
        return await result

    async def sleep(seconds: float) -> None:
        # An injected sleep may be sync (a fake clock) or async.
        assert options.sleep is not None
        outcome = options.sleep(seconds)
        if inspect.isawaitable(outcome):
            await outcome

    settings = _tenacity_kwargs(options, asyncio.sleep, before_sleep)
    if options.sleep is not None:
        settings["sleep"] = sleep
    return await tenacity.AsyncRetrying(**settings)(attempt)


def _run_sync(func: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any],
              options: RetryOptions) -> T:
    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        assert options.on_retry is not None
        options.on_retry(*_event(retry_state))

    def attempt() -> T:
        result = func(*args, **kwargs)
        if inspect.iscoroutine(result):
            result.close()
            raise _NotAwaitableError(
                f"retry_sync got a coroutine from {func!r}; use retry_async for async functions"
            )
        return result

    if options.on_retry is not None and inspect.iscoroutinefunction(options.on_retry):
        raise DTypeError("retry_sync cannot await an async `on_retry`; use retry_async")
    if options.sleep is not None and inspect.iscoroutinefunction(options.sleep):
        raise DTypeError("retry_sync needs a synchronous `sleep`")
    return tenacity.Retrying(**_tenacity_kwargs(options, time.sleep, before_sleep))(attempt)


def _split_call_options(func: Callable[..., Any], kwargs: dict[str, Any],
                        retry_options: RetryOptions | None) -> tuple[RetryOptions, dict[str, Any]]:
    """Separate retry options from ``func``'s keywords in the call form (never silently)."""
    if retry_options is not None:
        if not isinstance(retry_options, RetryOptions):
            raise DTypeError(f"`retry_options` must be a RetryOptions, got {retry_options!r}")
        return retry_options, kwargs
    option_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _RETRY_OPTION_NAMES}
    if option_kwargs:
        try:
            parameters = inspect.signature(func).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        clash = sorted(name for name in option_kwargs if name in parameters)
        if clash:
            raise TypeError(
                f"{', '.join(clash)} is both a retry option and a parameter of {func!r}; pass "
                f"the retry options as retry_options=RetryOptions(...) so every other keyword "
                f"goes to the function"
            )
    return RetryOptions(**option_kwargs), kwargs


def _check_function(func: object, name: str) -> None:
    if not callable(func):
        raise DTypeError(f"{name} needs a callable, got {type(func).__name__}")


@overload
def retry_async(func: None = None, /, **options: Any) -> Callable[[F], F]: ...
@overload
def retry_async(func: F, /) -> F: ...
@overload
def retry_async(
    func: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
) -> Awaitable[T]: ...


def retry_async(func: Callable[..., Any] | None = None, /, *args: Any, **kwargs: Any) -> Any:
    """Retry an async function with capped, jittered exponential backoff (tenacity inside).

    Three forms:

    * ``@retry_async`` (bare) and ``@retry_async(max_retries=5, ...)``: decorators; the keywords
      are the fields of :class:`RetryOptions`. The wrapper keeps ``functools.wraps`` metadata.
    * ``await retry_async(fn, *args, max_retries=5, **kwargs)``: one retried call (the original's
      form). Keywords named like a :class:`RetryOptions` field are retry options, the rest go to
      ``fn``; if ``fn`` itself has a parameter of such a name, this raises ``TypeError`` rather
      than guess: then pass ``retry_options=RetryOptions(...)``, and *every* other keyword goes
      to ``fn`` untouched.
    * ``retry_async(fn)`` with nothing else is the bare decorator (it returns the retrying
      function); a retried call without arguments is ``await retry_async(fn)()``.

    ``max_retries + 1`` attempts in all; when they run out the last exception is re-raised
    (never ``tenacity.RetryError``); an exception outside ``retry_on`` and
    ``asyncio.CancelledError`` are raised at once.

    Raises:
        ValueRangeError: ``max_retries < 0`` or another option out of range (at decoration or
            call time, before ``fn`` runs).

    Example:
        >>> import asyncio
        >>> calls = []
        >>> async def no_sleep(seconds):
        ...     pass
        >>> @retry_async(max_retries=2, retry_on=(ConnectionError,), sleep=no_sleep)
        ... async def flaky():
        ...     calls.append(1)
        ...     if len(calls) < 3:
        ...         raise ConnectionError("try again")
        ...     return "ok"
        >>> asyncio.run(flaky()), len(calls)
        ('ok', 3)
    """
    if func is None:
        options = RetryOptions(**kwargs)
        if args:
            raise TypeError("retry_async(...) as a decorator factory takes keyword options only")
        return lambda f: _decorate_async(f, options)
    _check_function(func, "retry_async")
    if not args and not kwargs:
        return _decorate_async(func, RetryOptions())
    retry_options = kwargs.pop("retry_options", None)
    options, func_kwargs = _split_call_options(func, kwargs, retry_options)
    return _run_async(func, args, func_kwargs, options)


def _decorate_async(
    func: Callable[..., Awaitable[T]], options: RetryOptions
) -> Callable[..., Awaitable[T]]:
    _check_function(func, "retry_async")

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        return await _run_async(func, args, kwargs, options)

    wrapper.retry_options = options  # type: ignore[attr-defined]
    return wrapper


@overload
def retry_sync(func: None = None, /, **options: Any) -> Callable[[F], F]: ...
@overload
def retry_sync(func: F, /) -> F: ...
@overload
def retry_sync(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...


def retry_sync(func: Callable[..., Any] | None = None, /, *args: Any, **kwargs: Any) -> Any:
    """The synchronous twin of :func:`retry_async` (same forms, options and rules).

    ``retry_sync(fn, *args, **kwargs)`` returns ``fn``'s result; ``retry_sync(fn)`` alone is the
    bare decorator (call ``retry_sync(fn)()`` for a retried call without arguments).

    Example:
        >>> attempts = []
        >>> def flaky(x):
        ...     attempts.append(x)
        ...     if len(attempts) < 2:
        ...         raise TimeoutError("slow")
        ...     return x * 2
        >>> retry_sync(flaky, 21, max_retries=3, sleep=lambda s: None)
        42
        >>> retry_sync(flaky, 1, max_retries=-1)
        Traceback (most recent call last):
        ...
        mdt_tensor.errors.ValueRangeError: `max_retries` must be >= 0, got -1
    """
    if func is None:
        options = RetryOptions(**kwargs)
        if args:
            raise TypeError("retry_sync(...) as a decorator factory takes keyword options only")
        return lambda f: _decorate_sync(f, options)
    _check_function(func, "retry_sync")
    if not args and not kwargs:
        return _decorate_sync(func, RetryOptions())
    retry_options = kwargs.pop("retry_options", None)
    options, func_kwargs = _split_call_options(func, kwargs, retry_options)
    return _run_sync(func, args, func_kwargs, options)


def _decorate_sync(func: Callable[..., T], options: RetryOptions) -> Callable[..., T]:
    _check_function(func, "retry_sync")
    if inspect.iscoroutinefunction(func):
        raise DTypeError(f"retry_sync cannot decorate the async function {func!r}; use retry_async")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return _run_sync(func, args, kwargs, options)

    wrapper.retry_options = options  # type: ignore[attr-defined]
    return wrapper


# --------------------------------------------------------------------------------------------
# Circuit breaker
# --------------------------------------------------------------------------------------------


class CircuitState(enum.StrEnum):
    """State of a :class:`CircuitBreaker` (``CircuitState.OPEN == "open"``, as the original)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclasses.dataclass(frozen=True)
class CircuitBreakerStats:
    """A snapshot of a breaker's state and counters.

    Attributes:
        state: the state (after any due OPEN -> HALF_OPEN transition).
        consecutive_failures: failures since the last success or state change.
        failures: all recorded failures. successes: all recorded successes.
        rejections: calls refused with :class:`CircuitOpenError`.
        ignored: calls that ended in cancellation or an exception outside ``expected_exceptions``.
        state_changes: number of transitions so far.
        half_open_in_flight: probe calls now running.
    """

    state: CircuitState
    consecutive_failures: int
    failures: int
    successes: int
    rejections: int
    ignored: int
    state_changes: int
    half_open_in_flight: int


class _Admission(NamedTuple):
    generation: int
    probe: bool


class CircuitBreaker:
    """Stop calling a failing dependency for a while, then probe it.

    * CLOSED: calls pass; ``failure_threshold`` *consecutive* failures open the breaker.
    * OPEN: calls raise :class:`CircuitOpenError` (``retry_after`` = seconds until probing);
      once ``recovery_timeout`` has passed on ``clock``, the next read of the state (lazily: no
      timer) moves to HALF_OPEN.
    * HALF_OPEN: at most ``half_open_max_calls`` probe calls run at once; more are refused with
      ``retry_after=0.0`` (a probe is in flight; try again when it ends). A probe failure
      re-opens the breaker; ``success_threshold`` probe successes close it.

    A failure is an exception that is an instance of ``expected_exceptions``. Cancellation
    (``asyncio.CancelledError``) and other exceptions pass through and count neither way (the
    original counted cancellation as a failure). A call that began in an earlier state (e.g. a
    slow call admitted while CLOSED that ends after the breaker opened) updates the counters but
    not the state. Mutations take a ``threading.Lock`` that is never held across an ``await``,
    so one breaker can guard async code and threads alike.

    Use as ``async with breaker:``, ``with breaker:``, or as a decorator on async or sync
    functions.

    Args:
        failure_threshold: consecutive failures that open the breaker; >= 1.
        recovery_timeout: seconds OPEN before probing; >= 0 (the original's ``timeout``).
        half_open_max_calls: concurrent probes allowed in HALF_OPEN; >= 1.
        success_threshold: probe successes that close the breaker; >= 1.
        expected_exceptions: exception classes that count as failures.
        clock: monotonic seconds; inject a fake for tests.
        name: used in error messages.

    Example:
        >>> now = [0.0]
        >>> breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=30, clock=lambda: now[0])
        >>> @breaker
        ... def call(ok):
        ...     if not ok:
        ...         raise ConnectionError("down")
        ...     return "up"
        >>> for _ in range(2):
        ...     try:
        ...         call(False)
        ...     except ConnectionError:
        ...         pass
        >>> breaker.state
        <CircuitState.OPEN: 'open'>
        >>> now[0] = 10.0
        >>> try:
        ...     call(True)
        ... except CircuitOpenError as err:
        ...     err.retry_after
        20.0
        >>> now[0] = 30.0
        >>> call(True), breaker.state
        ('up', <CircuitState.CLOSED: 'closed'>)
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 60.0,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        expected_exceptions: type[BaseException] | Sequence[type[BaseException]] = (Exception,),
        clock: Callable[[], float] = time.monotonic,
        *,
        name: str = "circuit",
    ) -> None:
        for arg, value in (("failure_threshold", failure_threshold),
                           ("half_open_max_calls", half_open_max_calls),
                           ("success_threshold", success_threshold)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueRangeError(f"`{arg}` must be an int >= 1, got {value!r}")
        self.recovery_timeout: float = _check_seconds(recovery_timeout, "recovery_timeout")  # type: ignore[assignment]
        self.failure_threshold = failure_threshold
        self.half_open_max_calls = half_open_max_calls
        self.success_threshold = success_threshold
        self.expected_exceptions = _exception_types(expected_exceptions, "expected_exceptions")
        if not callable(clock):
            raise DTypeError("`clock` must be callable")
        self.clock = clock
        self.name = name
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._generation = 0
        self._opened_at = 0.0
        self._consecutive_failures = 0
        self._half_open_successes = 0
        self._in_flight_probes = 0
        self._failures = self._successes = self._rejections = self._ignored = 0
        self._state_changes = 0
        self._admissions: contextvars.ContextVar[tuple[_Admission, ...]] = contextvars.ContextVar(
            f"circuit_breaker_{id(self)}", default=()
        )

    # state ------------------------------------------------------------------------------------
    def _set_state(self, state: CircuitState) -> None:
        self._state = state
        self._generation += 1
        self._state_changes += 1
        self._consecutive_failures = 0
        self._half_open_successes = 0
        self._in_flight_probes = 0
        if state is CircuitState.OPEN:
            self._opened_at = self.clock()

    def _refresh(self) -> None:
        if (self._state is CircuitState.OPEN
                and self.clock() - self._opened_at >= self.recovery_timeout):
            self._set_state(CircuitState.HALF_OPEN)

    @property
    def state(self) -> CircuitState:
        """The current state; reading it performs a due OPEN -> HALF_OPEN transition."""
        with self._lock:
            self._refresh()
            return self._state

    def get_state(self) -> CircuitState:
        """The current state (the original's name; compares equal to its strings)."""
        return self.state

    @property
    def failure_count(self) -> int:
        """Consecutive failures counted toward ``failure_threshold``."""
        with self._lock:
            return self._consecutive_failures

    def stats(self) -> CircuitBreakerStats:
        """A consistent snapshot of state and counters."""
        with self._lock:
            self._refresh()
            return CircuitBreakerStats(
                self._state, self._consecutive_failures, self._failures, self._successes,
                self._rejections, self._ignored, self._state_changes, self._in_flight_probes,
            )

    def reset(self) -> None:
        """Force CLOSED and clear the consecutive-failure count (totals are kept)."""
        with self._lock:
            if self._state is not CircuitState.CLOSED:
                self._set_state(CircuitState.CLOSED)
            self._consecutive_failures = 0

    # admission and outcome -------------------------------------------------------------------
    def _admit(self) -> _Admission:
        with self._lock:
            self._refresh()
            if self._state is CircuitState.CLOSED:
                return _Admission(self._generation, probe=False)
            if self._state is CircuitState.HALF_OPEN:
                if self._in_flight_probes < self.half_open_max_calls:
                    self._in_flight_probes += 1
                    return _Admission(self._generation, probe=True)
                self._rejections += 1
                raise CircuitOpenError(
                    f"{self.name} is half-open and its {self.half_open_max_calls} probe call(s) "
                    f"are in flight",
                    retry_after=0.0,
                )
            self._rejections += 1
            retry_after = max(0.0, self._opened_at + self.recovery_timeout - self.clock())
            raise CircuitOpenError(
                f"{self.name} is open; retry after {retry_after:.3f} s", retry_after=retry_after
            )

    def _record(self, admission: _Admission, exc: BaseException | None) -> None:
        failed = (exc is not None and isinstance(exc, self.expected_exceptions)
                  and not isinstance(exc, asyncio.CancelledError))
        with self._lock:
            current = admission.generation == self._generation
            if admission.probe and current:
                self._in_flight_probes -= 1
            if exc is not None and not failed:
                self._ignored += 1
                return
            if failed:
                self._failures += 1
            else:
                self._successes += 1
            if not current:
                return
            if failed:
                self._consecutive_failures += 1
                if (self._state is CircuitState.HALF_OPEN
                        or self._consecutive_failures >= self.failure_threshold):
                    self._set_state(CircuitState.OPEN)
            elif self._state is CircuitState.HALF_OPEN:
                self._half_open_successes += 1
                if self._half_open_successes >= self.success_threshold:
                    self._set_state(CircuitState.CLOSED)
            else:
                self._consecutive_failures = 0

    # context managers and decorator ------------------------------------------------------------
    def _enter(self) -> None:
        admission = self._admit()
        self._admissions.set(self._admissions.get() + (admission,))

    def _exit(self, exc: BaseException | None) -> None:
        stack = self._admissions.get()
        self._admissions.set(stack[:-1])
        self._record(stack[-1], exc)

    async def __aenter__(self) -> CircuitBreaker:
        self._enter()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        self._exit(exc)

    def __enter__(self) -> CircuitBreaker:
        self._enter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        self._exit(exc)

    def __call__(self, func: F) -> F:
        """Decorate an async or sync function so every call goes through the breaker."""
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                admission = self._admit()
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    self._record(admission, exc)
                    raise
                self._record(admission, None)
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            admission = self._admit()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                self._record(admission, exc)
                raise
            self._record(admission, None)
            return result

        return sync_wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        s = self.stats()
        return (f"CircuitBreaker(name={self.name!r}, state={s.state.value}, "
                f"consecutive_failures={s.consecutive_failures}/{self.failure_threshold})")


# --------------------------------------------------------------------------------------------
# Ports, service waits, local address
# --------------------------------------------------------------------------------------------


def _socket_host(host: object) -> str:
    if not isinstance(host, str):
        raise DTypeError(f"`host` must be a str, got {type(host).__name__}")
    stripped = host.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        stripped = stripped[1:-1]
    if not stripped:
        raise EndpointError("`host` is empty")
    return stripped


def is_port_open(host: str, port: int, timeout: float = 5.0) -> bool:
    """True when a TCP connection to ``host:port`` succeeds within ``timeout`` seconds.

    The socket is always closed. Any ``OSError`` (refused, timeout, DNS failure, no route) is
    ``False``; a bad argument is an error, not ``False`` (nor the original's ``OverflowError``).
    The call blocks; from async code use :func:`is_port_open_async`.

    Raises:
        EndpointError: ``port`` outside 1..65535 or an empty host.
        DTypeError: ``port`` is not an int.

    Example:
        >>> import socket
        >>> with socket.socket() as server:
        ...     server.bind(("127.0.0.1", 0))
        ...     server.listen()
        ...     is_port_open("127.0.0.1", server.getsockname()[1], timeout=1)
        True
    """
    target = _socket_host(host)
    port = _check_port(port)
    timeout_s = _check_seconds(timeout, "timeout", positive=True)
    try:
        with socket.create_connection((target, port), timeout=timeout_s):
            return True
    except OSError:
        return False


async def is_port_open_async(host: str, port: int, timeout: float = 5.0) -> bool:
    """The non-blocking twin of :func:`is_port_open` (asyncio; the connection is closed).

    Example:
        >>> import asyncio
        >>> asyncio.run(is_port_open_async("127.0.0.1", 80, timeout=0.5)) in (True, False)
        True
    """
    target = _socket_host(host)
    port = _check_port(port)
    timeout_s = _check_seconds(timeout, "timeout", positive=True)
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(target, port)
    except OSError:  # TimeoutError included
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


async def wait_for_service(
    check: Callable[[], Any],
    timeout: float = 60.0,
    interval: float = 1.0,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> bool:
    """Poll ``check`` until it reports ready or ``timeout`` seconds pass.

    ``check`` may be a plain function, an ``async def``, or anything returning an awaitable; an
    awaitable result is awaited (the original treated the coroutine object itself as "ready").
    A truthy result is ready; an exception from ``check`` counts as not ready. Checks run every
    ``interval`` while time is left; an awaited check is cut off at the deadline, so the call
    overruns ``timeout`` by at most the duration of one synchronous check (a blocking sync check
    blocks the event loop: prefer an async check such as :func:`is_port_open_async`).

    Args:
        check: the readiness predicate.
        timeout: seconds to keep trying; > 0.
        interval: seconds between checks; > 0.
        clock: monotonic seconds; sleep: async sleep (inject both to test without waiting).

    Returns:
        True once ready, False at the deadline.

    Example:
        >>> import asyncio
        >>> async def ready():
        ...     return False
        >>> asyncio.run(wait_for_service(ready, timeout=0.05, interval=0.01))
        False
    """
    if not callable(check):
        raise DTypeError(f"`check` must be callable, got {type(check).__name__}")
    timeout_s = _check_seconds(timeout, "timeout", positive=True)
    interval_s = _check_seconds(interval, "interval", positive=True)
    assert timeout_s is not None and interval_s is not None
    deadline = clock() + timeout_s
    while True:
        if await _probe(check, deadline - clock()):
            return True
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        await sleep(min(interval_s, remaining))
        if deadline - clock() <= 0:
            return False


async def _probe(check: Callable[[], Any], budget: float) -> bool:
    """One check; an awaitable result is awaited for at most ``budget`` seconds."""
    try:
        result = check()
        if inspect.isawaitable(result):
            async with asyncio.timeout(max(budget, 0.0)):
                result = await result
        return bool(result)
    except Exception:  # a failing check is "not ready", whatever it raised (TimeoutError too)
        return False


def _default_route_interfaces() -> list[str]:
    """Interfaces with an IPv4 default route, from ``/proc/net/route`` (Linux; else empty)."""
    try:
        with open("/proc/net/route", encoding="ascii") as table:
            rows = [line.split() for line in table.readlines()[1:]]
    except OSError:
        return []
    return [row[0] for row in rows if len(row) > 2 and row[1] == "00000000"]


def get_local_ip() -> str:
    """This machine's preferred non-loopback IPv4 address, else ``"127.0.0.1"``.

    Reads the local interface table (``psutil.net_if_addrs``): no socket is connected and no
    packet is sent (the original "connected" a UDP socket to 8.8.8.8). Preference: interfaces
    holding the IPv4 default route (Linux ``/proc/net/route``), then the others in the OS's
    order; interfaces that are down, loopback and link-local (169.254/16) addresses are skipped.

    Example:
        >>> import ipaddress
        >>> ipaddress.ip_address(get_local_ip()).version
        4
    """
    try:
        interfaces = psutil.net_if_addrs()
        if_stats = psutil.net_if_stats()
    except (OSError, RuntimeError):
        return "127.0.0.1"
    default_ifaces = _default_route_interfaces()
    ordered = [n for n in default_ifaces if n in interfaces]
    ordered += [n for n in interfaces if n not in ordered]
    for name in ordered:
        stats = if_stats.get(name)
        if stats is not None and not stats.isup:
            continue
        for address in interfaces[name]:
            if address.family != socket.AF_INET:
                continue
            try:
                ip = ipaddress.IPv4Address(address.address)
            except ValueError:
                continue
            if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
                return str(ip)
    return "127.0.0.1"

