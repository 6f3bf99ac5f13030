"""Health checks against real loopback aiohttp servers with injected faults."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import aiohttp.abc
import pytest

import mdt_tensor as mt
from mdt_tensor.aio.endpoints import EndpointError
from mdt_tensor.aio.health import EndpointStatus

from tests.netfaults import FaultServer, RawServer, refused_port

pytestmark = pytest.mark.timeout(60)

S = EndpointStatus


async def test_expected_status_is_healthy_with_latency_and_status() -> None:
    async with FaultServer() as server:
        before = time.time()
        info = await mt.check_endpoint_health(server.url("/ok"), timeout=5)
    assert info.status is S.HEALTHY and info.is_healthy()
    assert info.http_status == 200 and info.error_message is None
    assert info.latency_ms is not None and 0 <= info.latency_ms < 5000
    assert info.last_check is not None and info.last_check >= before
    assert info.url == server.url("/ok")


@pytest.mark.parametrize("code", [500, 502, 503])
async def test_5xx_is_unhealthy(code: int) -> None:
    async with FaultServer() as server:
        info = await mt.check_endpoint_health(server.url(f"/status/{code}"))
    assert info.status is S.UNHEALTHY
    assert info.http_status == code and info.error_message == f"Unexpected status: {code}"
    assert not info.is_healthy()


@pytest.mark.parametrize("code", [201, 204, 404, 429])
async def test_other_unexpected_status_is_degraded(code: int) -> None:
    async with FaultServer() as server:
        info = await mt.check_endpoint_health(server.url(f"/status/{code}"))
    assert info.status is S.DEGRADED and info.http_status == code


async def test_expected_status_may_be_a_collection_or_a_5xx() -> None:
    async with FaultServer() as server:
        many = await mt.check_endpoint_health(server.url("/status/204"), expected_status={200, 204})
        odd = await mt.check_endpoint_health(server.url("/status/503"), expected_status=503)
    assert many.status is S.HEALTHY and odd.status is S.HEALTHY


async def test_method_is_used() -> None:
    async with FaultServer() as server:
        info = await mt.check_endpoint_health(server.url("/ok"), method="HEAD")
        post = await mt.check_endpoint_health(server.url("/status/201"), method="POST",
                                              expected_status=201)
    assert info.status is S.HEALTHY and post.status is S.HEALTHY


async def test_slow_headers_past_threshold_are_degraded() -> None:
    async with FaultServer() as server:
        info = await mt.check_endpoint_health(server.url("/delay/150"), timeout=5,
                                              degraded_latency=0.05)
        never = await mt.check_endpoint_health(server.url("/delay/60"), timeout=5,
                                               degraded_latency=None)
    assert info.status is S.DEGRADED and info.http_status == 200
    assert info.latency_ms is not None and info.latency_ms >= 150
    assert "slow" in (info.error_message or "")
    assert never.status is S.HEALTHY


async def test_slow_body_counts_toward_latency_and_timeout() -> None:
    async with FaultServer() as server:
        slow = await mt.check_endpoint_health(server.url("/slow-body/150"), timeout=5,
                                              degraded_latency=0.05)
        stalled = await mt.check_endpoint_health(server.url("/slow-body/3000"), timeout=0.2)
    assert slow.status is S.DEGRADED and slow.latency_ms is not None and slow.latency_ms >= 150
    assert stalled.status is S.UNHEALTHY and "timeout" in (stalled.error_message or "").lower()


async def test_timeout_is_unhealthy_and_bounded() -> None:
    async with FaultServer() as server:
        start = time.monotonic()
        info = await mt.check_endpoint_health(server.url("/delay/5000"), timeout=0.2)
        elapsed = time.monotonic() - start
    assert info.status is S.UNHEALTHY and info.http_status is None and info.latency_ms is None
    assert "timeout" in (info.error_message or "").lower()
    assert elapsed < 2.0


async def test_silent_server_times_out_unhealthy() -> None:
    async with RawServer("silent") as server:
        info = await mt.check_endpoint_health(server.url(), timeout=0.2)
    assert info.status is S.UNHEALTHY


async def test_refused_port_is_unreachable() -> None:
    port = refused_port()
    info = await mt.check_endpoint_health(f"http://127.0.0.1:{port}/", timeout=2)
    assert info.status is S.UNREACHABLE and info.http_status is None
    assert info.error_message and "ClientConnector" in info.error_message


class _FailingResolver(aiohttp.abc.AbstractResolver):
    """A resolver that fails every lookup the way getaddrinfo does, with no packet sent."""

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        pass


async def test_dns_failure_is_unreachable() -> None:
    connector = aiohttp.TCPConnector(resolver=_FailingResolver())
    async with aiohttp.ClientSession(connector=connector) as session:
        info = await mt.check_endpoint_health("http://no-such-host.invalid/", session=session)
    assert info.status is S.UNREACHABLE and info.http_status is None
    assert "Name or service not known" in (info.error_message or "")


@pytest.mark.parametrize("mode", ["reset", "close", "garbage", "bad_header"])
async def test_broken_connections_and_malformed_answers_are_unhealthy(mode: str) -> None:
    async with RawServer(mode) as server:  # type: ignore[arg-type]
        info = await mt.check_endpoint_health(server.url(), timeout=2)
    assert info.status is S.UNHEALTHY, info
    assert info.http_status is None and info.error_message
    assert server.connections >= 1


async def test_handler_abort_is_unhealthy() -> None:
    async with FaultServer() as server:
        info = await mt.check_endpoint_health(server.url("/abort"), timeout=2)
    assert info.status is S.UNHEALTHY and info.error_message


async def test_tls_failure_is_unhealthy_not_unreachable() -> None:
    async with FaultServer() as server:  # https to a plain-HTTP server: the handshake fails
        info = await mt.check_endpoint_health(f"https://127.0.0.1:{server.port}/ok", timeout=2)
    assert info.status is S.UNHEALTHY and "SSL" in (info.error_message or "")


async def test_multiple_rejects_a_single_string() -> None:
    with pytest.raises(TypeError, match="single string"):
        await mt.check_multiple_endpoints("http://127.0.0.1:1/")


async def test_caller_session_is_used_and_left_open() -> None:
    async with FaultServer() as server, aiohttp.ClientSession() as session:
        first = await mt.check_endpoint_health(server.url("/ok"), session=session)
        second = await mt.check_endpoint_health(server.url("/ok"), session=session)
        assert not session.closed
    assert first.is_healthy() and second.is_healthy()


async def test_scheme_less_url_means_http() -> None:
    async with FaultServer() as server:
        info = await mt.check_endpoint_health(f"127.0.0.1:{server.port}/ok")
    assert info.status is S.HEALTHY and info.url == f"127.0.0.1:{server.port}/ok"


@pytest.mark.parametrize("url", ["", "http://", "ftp://x/", "ws://127.0.0.1/", "http://a b/",
                                 "http://127.0.0.1:0/", "http://127.0.0.1:99999/"])
async def test_malformed_url_raises(url: str) -> None:
    with pytest.raises(EndpointError):
        await mt.check_endpoint_health(url)


@pytest.mark.parametrize("kwargs", [{"timeout": 0}, {"timeout": -1}, {"timeout": float("nan")},
                                    {"degraded_latency": -1}, {"expected_status": 99},
                                    {"expected_status": []}])
async def test_bad_options_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        await mt.check_endpoint_health("http://127.0.0.1:1/", **kwargs)


async def test_cancellation_propagates() -> None:
    async with FaultServer() as server:
        task = asyncio.create_task(mt.check_endpoint_health(server.url("/delay/5000"), timeout=10))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_multiple_results_align_with_input_and_keep_duplicates() -> None:
    port = refused_port()
    async with FaultServer() as server:
        urls = [server.url("/ok"), server.url("/status/500"), server.url("/ok"),
                f"http://127.0.0.1:{port}/", server.url("/status/404")]
        infos = await mt.check_multiple_endpoints(urls, timeout=2, concurrency=2)
    assert [i.url for i in infos] == urls
    assert [i.status for i in infos] == [S.HEALTHY, S.UNHEALTHY, S.HEALTHY, S.UNREACHABLE,
                                         S.DEGRADED]
    grouped = mt.endpoint_infos_by_url(infos)
    assert len(grouped[server.url("/ok")]) == 2


async def test_multiple_validates_every_url_before_any_request() -> None:
    async with FaultServer() as server:
        with pytest.raises(EndpointError, match=r"urls\[1\]"):
            await mt.check_multiple_endpoints([server.url("/ok"), "http://[::1"])
        assert server.requests == 0


@pytest.mark.parametrize("concurrency", [0, -1])
async def test_multiple_rejects_bad_concurrency(concurrency: object) -> None:
    with pytest.raises(ValueError):
        await mt.check_multiple_endpoints(
            ["http://127.0.0.1:1/"], concurrency=concurrency  # type: ignore[arg-type]
        )


@pytest.mark.parametrize("concurrency", [1.5, True])
async def test_multiple_rejects_concurrency_of_the_wrong_type(concurrency: object) -> None:
    with pytest.raises(TypeError):
        await mt.check_multiple_endpoints(
            ["http://127.0.0.1:1/"], concurrency=concurrency  # type: ignore[arg-type]
        )


async def test_multiple_with_caller_session_forwards_options() -> None:
    async with FaultServer() as server, aiohttp.ClientSession() as session:
        infos = await mt.check_multiple_endpoints(
            [server.url("/status/204")] * 3, session=session, expected_status=204
        )
        assert not session.closed
    assert all(i.status is S.HEALTHY for i in infos)


@pytest.mark.timeout(120)
async def test_load_1000_checks_under_concurrency_100() -> None:
    async with FaultServer() as server:
        urls = [server.url("/concurrent/5")] * 1000
        start = time.monotonic()
        infos = await mt.check_multiple_endpoints(urls, timeout=30, concurrency=100)
        elapsed = time.monotonic() - start
    assert len(infos) == 1000
    assert all(info.status is S.HEALTHY for info in infos), {i.status for i in infos}
    assert server.served == 1000
    assert 10 <= server.max_in_flight <= 100
    assert elapsed < 60
