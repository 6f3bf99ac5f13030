"""Loopback servers with injected faults, for tests of the network layer.

* :class:`FaultServer`: a real ``aiohttp.web`` server on ``127.0.0.1`` (port 0) whose routes
  misbehave on request: any status, delayed headers, a stalled body, an aborted connection,
  and a route that counts how many requests it serves at once.
* :class:`RawServer`: a raw asyncio TCP server for what aiohttp will not send: garbage instead of
  HTTP, a reset (RST) or a plain close right after accept, silence.
* :func:`refused_port`: a loopback port nobody listens on.

Use them as ``async with FaultServer() as server: server.url("/ok")``.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any, Literal, Self

from aiohttp import web

RawMode = Literal["garbage", "bad_header", "reset", "close", "silent"]


class LoopbackApp:
    """An aiohttp ``app`` served on 127.0.0.1 at a free port while the ``async with`` block runs."""

    def __init__(self, app: web.Application, *, shutdown_timeout: float, **runner_options: Any) -> None:
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout, **runner_options)
        self.port = 0

    async def __aenter__(self) -> Self:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


class FaultServer(LoopbackApp):
    """An aiohttp server on 127.0.0.1 with fault-injecting routes.

    Routes:
        ``/ok``: 200 "ok".
        ``/status/{code}``: that status.
        ``/delay/{ms}``: headers only after ``ms`` milliseconds (slow headers), then 200.
        ``/slow-body/{ms}``: headers at once, then the body after ``ms`` milliseconds.
        ``/abort``: the connection is aborted without an answer (a reset).
        ``/concurrent/{ms}``: 200 after ``ms`` ms; ``max_in_flight`` records the peak number of
        requests this route served at once, ``served`` how many it answered.
    """

    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.served = 0
        self.requests = 0
        app = web.Application()
        app.router.add_route("*", "/ok", self._ok)
        app.router.add_route("*", "/status/{code}", self._status)
        app.router.add_get("/delay/{ms}", self._delay)
        app.router.add_get("/slow-body/{ms}", self._slow_body)
        app.router.add_get("/abort", self._abort)
        app.router.add_get("/concurrent/{ms}", self._concurrent)
        super().__init__(app, shutdown_timeout=0.1)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _ok(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(text="ok")

    async def _status(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(status=int(request.match_info["code"]), text="status")

    async def _delay(self, request: web.Request) -> web.Response:
        self.requests += 1
        await asyncio.sleep(int(request.match_info["ms"]) / 1000)
        return web.Response(text="late")

    async def _slow_body(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        response = web.StreamResponse()
        response.content_length = 8
        await response.prepare(request)
        await response.write(b"part")
        await asyncio.sleep(int(request.match_info["ms"]) / 1000)
        await response.write(b"rest")
        await response.write_eof()
        return response

    async def _abort(self, request: web.Request) -> web.Response:
        self.requests += 1
        transport = request.transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        if sock is not None:  # linger 0: close sends RST, not FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        raise web.HTTPInternalServerError()  # never delivered: the connection is gone

    async def _concurrent(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(int(request.match_info["ms"]) / 1000)
        finally:
            self.in_flight -= 1
        self.served += 1
        return web.Response(text="ok")


class RawServer:
    """A raw TCP server on 127.0.0.1 that answers every connection the same broken way.

    Modes: ``garbage`` (writes non-HTTP bytes, closes), ``bad_header`` (a valid status line, then
    a malformed header), ``reset`` (RST right after accept), ``close`` (FIN right after reading the
    request, no answer), ``silent`` (reads and never answers; the connection stays open).
    """

    def __init__(self, mode: RawMode) -> None:
        self.mode = mode
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        if self.mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        if self.mode == "garbage":
            writer.write(b"\x00\xffthis is not http at all\r\n\r\n")
        elif self.mode == "bad_header":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: banana\r\n\r\nok")
        elif self.mode == "silent":
            return  # keep the connection open, never answer
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()


def refused_port() -> int:
    """A loopback port that refuses connections (bound to get a free number, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
