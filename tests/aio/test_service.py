"""is_port_open, wait_for_service, get_local_ip; packaging of the network layer."""

from __future__ import annotations

import asyncio
import importlib.metadata
import ipaddress
import socket
import time
from collections import namedtuple
from typing import Any

import psutil
import pytest

import mdt_tensor as mt
from mdt_tensor import aio
from mdt_tensor.aio import breaker, endpoints, health, retry, service
from mdt_tensor.aio.endpoints import EndpointError
from mdt_tensor.errors import DTypeError

from tests.netfaults import FaultServer, refused_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def listening_port() -> Any:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def tracked_sockets(monkeypatch: pytest.MonkeyPatch) -> list[socket.socket]:
    """Every socket created through ``socket.socket`` while the test runs."""
    created: list[socket.socket] = []
    original = socket.socket

    class Tracking(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(socket, "socket", Tracking)
    return created


# ---- is_port_open -------------------------------------------------------------------------------


def test_open_and_refused_ports(listening_port: int) -> None:
    assert mt.is_port_open("127.0.0.1", listening_port, timeout=2)
    assert mt.is_port_open("[127.0.0.1]".strip("[]"), listening_port, timeout=2)
    assert not mt.is_port_open("127.0.0.1", refused_port(), timeout=2)


def test_dns_failure_is_false(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    assert mt.is_port_open("no-such-host.invalid", 80, timeout=1) is False


def test_defect16_socket_closed_on_every_path(tracked_sockets: list[socket.socket],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert mt.is_port_open("127.0.0.1", port, timeout=2)
    assert not mt.is_port_open("127.0.0.1", refused_port(), timeout=2)

    def broken_connect(self: socket.socket, address: Any) -> None:
        raise OSError(99, "injected failure")

    monkeypatch.setattr(socket.socket, "connect", broken_connect)
    assert not mt.is_port_open("127.0.0.1", port, timeout=2)
    probes = tracked_sockets[1:]  # the first one is the test's own server
    assert len(probes) >= 3
    assert all(s.fileno() == -1 for s in probes), "a probe socket was left open"


@pytest.mark.parametrize("port", [0, -1, 65536, 70000, 2**70])
def test_defect16_bad_port_is_a_clear_error_not_overflow(port: int) -> None:
    with pytest.raises(EndpointError, match="1..65535"):
        mt.is_port_open("127.0.0.1", port, timeout=1)


@pytest.mark.parametrize("port", ["80", 80.0, True, None])
def test_non_int_port_is_a_type_error(port: object) -> None:
    with pytest.raises(DTypeError):
        mt.is_port_open("127.0.0.1", port, timeout=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [{"host": ""}, {"host": "   "}, {"timeout": 0},
                                    {"timeout": -1}])
def test_other_bad_arguments(kwargs: dict) -> None:
    arguments = {"host": "127.0.0.1", "port": 80, "timeout": 1.0} | kwargs
    with pytest.raises(ValueError):
        mt.is_port_open(**arguments)


async def test_async_variant(listening_port: int) -> None:
    assert await mt.is_port_open_async("127.0.0.1", listening_port, timeout=2)
    assert not await mt.is_port_open_async("127.0.0.1", refused_port(), timeout=2)
    with pytest.raises(EndpointError):
        await mt.is_port_open_async("127.0.0.1", 0)


async def test_async_variant_closes_its_connection() -> None:
    closed = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # returns b"" once the client closes
        closed.set()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        assert await mt.is_port_open_async("127.0.0.1", port, timeout=2)
        await asyncio.wait_for(closed.wait(), 5)


# ---- wait_for_service ---------------------------------------------------------------------------


class FakeTime:
    """A clock and an async sleep that advances it: time passes only when we sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def ready_after(n: int, *, asynchronous: bool, raises: bool = False) -> Any:
    calls = []

    def sync_check() -> bool:
        calls.append(1)
        if raises and len(calls) < n:
            raise ConnectionError("not yet")
        return len(calls) >= n

    async def async_check() -> bool:
        await asyncio.sleep(0)
        return sync_check()

    check = async_check if asynchronous else sync_check
    check.calls = calls  # type: ignore[attr-defined]
    return check


async def test_defect14_async_predicate_is_awaited_not_taken_as_truthy() -> None:
    fake = FakeTime()
    never = ready_after(10**9, asynchronous=True)
    assert await mt.wait_for_service(never, timeout=5, interval=1, clock=fake.clock,
                                     sleep=fake.sleep) is False
    assert len(never.calls) == 5  # t = 0, 1, 2, 3, 4; the deadline comes during the last sleep
    third = ready_after(3, asynchronous=True)
    assert await mt.wait_for_service(third, timeout=60, interval=1, clock=fake.clock,
                                     sleep=fake.sleep) is True
    assert len(third.calls) == 3


async def test_defect14_the_docstring_pattern_of_an_async_def_check() -> None:
    async def never_ready() -> bool:
        return False

    assert await mt.wait_for_service(never_ready, timeout=0.05, interval=0.01) is False


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_sync_and_async_checks_and_exceptions_mean_not_ready(asynchronous: bool) -> None:
    fake = FakeTime()
    check = ready_after(4, asynchronous=asynchronous, raises=True)
    assert await mt.wait_for_service(check, timeout=10, interval=2, clock=fake.clock,
                                     sleep=fake.sleep)
    assert len(check.calls) == 4 and fake.sleeps == [2, 2, 2]


async def test_an_awaitable_returned_by_a_plain_function_is_awaited() -> None:
    def check() -> asyncio.Future[bool]:
        future = asyncio.get_running_loop().create_future()
        future.set_result(False)
        return future

    fake = FakeTime()
    assert await mt.wait_for_service(check, timeout=3, interval=1, clock=fake.clock,
                                     sleep=fake.sleep) is False


async def test_never_sleeps_past_the_deadline() -> None:
    fake = FakeTime()
    never = ready_after(10**9, asynchronous=False)
    assert not await mt.wait_for_service(never, timeout=2.5, interval=1, clock=fake.clock,
                                         sleep=fake.sleep)
    assert fake.sleeps == [1, 1, 0.5] and fake.now == 2.5


async def test_a_hanging_check_is_cut_off_at_the_deadline() -> None:
    async def hang() -> bool:
        await asyncio.sleep(3600)
        return True

    start = time.monotonic()
    assert await mt.wait_for_service(hang, timeout=0.2, interval=0.05) is False
    assert time.monotonic() - start < 1.0


async def test_waits_for_a_real_server_to_come_up() -> None:
    async with FaultServer() as server:
        async def check() -> bool:
            info = await mt.check_endpoint_health(server.url("/ok"), timeout=1)
            return info.is_healthy()

        assert await mt.wait_for_service(check, timeout=5, interval=0.05)


async def test_cancellation_propagates() -> None:
    task = asyncio.create_task(mt.wait_for_service(lambda: False, timeout=60, interval=10))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("kwargs", [{"timeout": 0}, {"timeout": -1}, {"interval": 0},
                                    {"interval": float("inf")}, {"check": "nope"}])
async def test_bad_arguments(kwargs: dict) -> None:
    arguments = {"check": lambda: True, "timeout": 1.0, "interval": 0.1} | kwargs
    with pytest.raises((ValueError, TypeError)):
        await mt.wait_for_service(**arguments)


# ---- get_local_ip -------------------------------------------------------------------------------


@pytest.fixture
def no_packets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("get_local_ip tried to use the network")

    for name in ("connect", "connect_ex", "sendto", "send", "sendall"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_get_local_ip_sends_nothing_and_returns_a_local_ipv4(no_packets: None) -> None:
    ip = mt.get_local_ip()
    assert ipaddress.ip_address(ip).version == 4
    local = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
    assert ip == "127.0.0.1" or ip in local


Addr = namedtuple("Addr", "family address netmask broadcast ptp")
Stat = namedtuple("Stat", "isup duplex speed mtu flags")


def fake_interfaces(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[tuple[int, str]]],
                    down: set[str] = frozenset(), default_route: list[str] | None = None) -> None:
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {
        name: [Addr(family, address, None, None, None) for family, address in addrs]
        for name, addrs in table.items()
    })
    monkeypatch.setattr(psutil, "net_if_stats", lambda: {
        name: Stat(name not in down, 0, 0, 1500, "") for name in table
    })
    monkeypatch.setattr(service, "_default_route_interfaces", lambda: default_route or [])


V4, V6 = socket.AF_INET, socket.AF_INET6


def test_prefers_the_default_route_interface(no_packets: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fake_interfaces(monkeypatch, {
        "lo": [(V4, "127.0.0.1")],
        "docker0": [(V4, "172.17.0.1")],
        "eth0": [(V6, "fe80::1"), (V4, "10.1.2.3")],
    }, default_route=["eth0"])
    assert mt.get_local_ip() == "10.1.2.3"


def test_skips_loopback_link_local_and_down_interfaces(no_packets: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fake_interfaces(monkeypatch, {
        "lo": [(V4, "127.0.0.1")],
        "eth0": [(V4, "192.168.1.9")],
        "eth1": [(V4, "169.254.3.4"), (V4, "10.9.9.9")],
    }, down={"eth0"})
    assert mt.get_local_ip() == "10.9.9.9"


@pytest.mark.parametrize("table", [{}, {"lo": [(V4, "127.0.0.1")]}, {"eth0": [(V6, "2001::1")]}])
def test_falls_back_to_loopback(no_packets: None, monkeypatch: pytest.MonkeyPatch,
                                table: dict) -> None:
    fake_interfaces(monkeypatch, table)
    assert mt.get_local_ip() == "127.0.0.1"


def test_default_route_table_is_read_without_sockets(no_packets: None) -> None:
    names = service._default_route_interfaces()
    assert all(isinstance(n, str) for n in names)


# ---- packaging (defect 23) ----------------------------------------------------------------------


def test_defect23_aiohttp_and_tenacity_are_declared_dependencies() -> None:
    requires = importlib.metadata.requires("mdt-tensor") or []
    names = {r.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
             for r in requires if "extra ==" not in r}
    assert {"aiohttp", "tenacity", "psutil"} <= names


def test_public_names_are_exported() -> None:
    for module in (endpoints, health, retry, breaker, service):
        for name in module.__all__:
            assert getattr(mt, name) is getattr(module, name)
    assert mt.NetworkError is aio.NetworkError
