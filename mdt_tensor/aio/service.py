"""Ports, service waits and the local address.

:func:`is_port_open` (and its async twin) answers "does anything listen there?",
:func:`wait_for_service` polls a readiness check until a deadline, and :func:`get_local_ip` reads
this machine's preferred IPv4 address from the interface table without sending a packet. Every
wait is measured on the monotonic clock (or an injected one).
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psutil

from .._validation import check_callable, check_seconds
from ..errors import DTypeError
from .endpoints import EndpointError, check_port

__all__ = ["is_port_open", "is_port_open_async", "wait_for_service", "get_local_ip"]


def _socket_host(host: object) -> str:
    if not isinstance(host, str):
        raise DTypeError(f"`host` must be a str, got {type(host).__name__}")
    stripped = host.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        stripped = stripped[1:-1]
    if not stripped:
        raise EndpointError("`host` is empty")
    return stripped


def _connect_args(host: object, port: object, timeout: object) -> tuple[str, int, float]:
    """The validated ``(host, port, timeout)`` of a port probe."""
    target, number = _socket_host(host), check_port(port)
    timeout_s = check_seconds(timeout, "timeout", positive=True)
    assert timeout_s is not None
    return target, number, timeout_s


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
    target, port, timeout_s = _connect_args(host, port, timeout)
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
    target, port, timeout_s = _connect_args(host, port, timeout)
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
    check_callable(check, "check")
    check_callable(clock, "clock")
    check_callable(sleep, "sleep")
    timeout_s = check_seconds(timeout, "timeout", positive=True)
    interval_s = check_seconds(interval, "interval", positive=True)
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
