"""The publishing side: serve each validator's weight row of a snapshot over HTTP (aiohttp).

Routes: ``GET /weights/{uid}`` (the binary row, :mod:`mdt_tensor.feed.wire`),
``GET /weights/{uid}.json`` (the JSON row) and ``GET /health`` (``{"status": "ok", ...}``).
``mdt-tensor serve-weights SNAPSHOT --port P`` runs it from the command line; tests and demos use
``async with serve_weights(W) as server:``. It binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from aiohttp import web

from .._validation import check_int, check_seconds, check_u16
from ..errors import DTypeError, ShapeError
from .wire import CONTENT_TYPE, encode_row, encode_row_json

__all__ = ["WeightServer", "serve_weights", "serve_snapshot"]


def _weight_rows(weights: Any) -> torch.Tensor:
    """``weights`` ((V, n) array, or anything with a ``.weights`` such as SubnetState) as a CPU int64 tensor."""
    if hasattr(weights, "weights") and not isinstance(weights, (torch.Tensor, np.ndarray)):
        weights = weights.weights
    tensor = torch.as_tensor(np.asarray(weights) if not isinstance(weights, torch.Tensor) else weights).cpu()
    if tensor.ndim == 3 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != 2:
        raise ShapeError(f"Expected `weights` of shape (V, n) (or one subnet (1, n, n)), but got {tuple(tensor.shape)}.")
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise DTypeError(f"Expected integer u16 `weights`, but got {tensor.dtype} (quantise float rows first).")
    check_u16(tensor, "weights")
    return tensor.to(torch.int64)


class WeightServer:
    """An aiohttp server of one ``(V, n)`` weight matrix, row ``uid`` at ``/weights/{uid}``.

    Args:
        weights: ``(V, n)`` integer u16 values, or a state with a ``weights`` attribute
            (:class:`mdt_tensor.yuma.SubnetState` of one subnet).
        host, port: where to listen (port 0: any free port; read :attr:`port` after start).
        delay: seconds each answer waits before it is sent (a stand-in for network latency in
            demos and benchmarks).

    Example:
        >>> import asyncio
        >>> async def main():
        ...     async with serve_weights([[1, 2], [3, 4]]) as server:
        ...         return server.url(1).endswith("/weights/1"), len(server.urls())
        >>> asyncio.run(main())
        (True, 2)
    """

    def __init__(self, weights: Any, host: str = "127.0.0.1", port: int = 0, *, delay: float = 0.0) -> None:
        rows = _weight_rows(weights)
        self.rows, self.n = int(rows.shape[0]), int(rows.shape[1])
        self.host = host
        self.port = check_int(port, "port", low=0, high=65535)
        self.delay = check_seconds(delay, "delay") or 0.0
        self._weights = rows
        self._binary = [encode_row(row) for row in rows.numpy()]
        self._json: dict[int, bytes] = {}
        self.requests = 0
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get(r"/weights/{uid:\d+}.json", self._row_json)
        app.router.add_get(r"/weights/{uid:\d+}", self._row_binary)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1, access_log=None)
        self._started = False

    async def start(self) -> WeightServer:
        """Listen; afterwards :attr:`port` is the bound port."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started = True
        return self

    async def close(self) -> None:
        """Stop listening and close every connection."""
        await self._runner.cleanup()
        self._started = False

    async def __aenter__(self) -> WeightServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, uid: int, *, json: bool = False) -> str:
        """The URL of row ``uid`` (binary, or JSON with ``json=True``)."""
        return f"{self.base_url}/weights/{uid}{'.json' if json else ''}"

    def urls(self, *, json: bool = False) -> list[str]:
        """One URL per row, in order: the ``urls`` argument of a :class:`WeightFeed`."""
        return [self.url(uid, json=json) for uid in range(self.rows)]

    async def _answer(self, request: web.Request) -> int | None:
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        uid = int(request.match_info["uid"])
        return uid if uid < self.rows else None

    async def _row_binary(self, request: web.Request) -> web.Response:
        uid = await self._answer(request)
        if uid is None:
            return web.json_response({"error": f"no row {request.match_info['uid']} (rows: {self.rows})"}, status=404)
        return web.Response(body=self._binary[uid], content_type=CONTENT_TYPE)

    async def _row_json(self, request: web.Request) -> web.Response:
        uid = await self._answer(request)
        if uid is None:
            return web.json_response({"error": f"no row {request.match_info['uid']} (rows: {self.rows})"}, status=404)
        if uid not in self._json:
            self._json[uid] = encode_row_json(self._weights[uid], uid)
        return web.Response(body=self._json[uid], content_type="application/json")

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "rows": self.rows, "n": self.n})


def serve_weights(weights: Any, host: str = "127.0.0.1", port: int = 0, *, delay: float = 0.0) -> WeightServer:
    """A :class:`WeightServer` for ``weights``; start it with ``async with`` or ``await .start()``."""
    return WeightServer(weights, host, port, delay=delay)


async def serve_snapshot(path: Path, host: str = "127.0.0.1", port: int = 0, *, stop: asyncio.Event | None = None,
                         announce: Callable[[str], Any] = print, loader: Callable[[Path], Any] | None = None) -> None:
    """Serve the weight rows of a snapshot file until ``stop`` is set (or the task is cancelled).

    ``loader`` reads the file into something with ``.weights`` (default: the state of
    :func:`mdt_tensor.io.read_snapshot`, which reads every snapshot format).
    """
    if loader is None:
        from ..io import read_snapshot

        def loader(file: Path) -> Any:
            return read_snapshot(file).state

    state = loader(Path(path))
    async with serve_weights(state, host, port) as server:
        announce(f"serving {server.rows} weight rows of {server.n} from {path} at {server.base_url}/weights/{{uid}} "
                 f"(binary; add .json for JSON), health at {server.base_url}/health")
        await (stop or asyncio.Event()).wait()
