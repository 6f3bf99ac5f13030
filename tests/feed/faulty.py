"""A loopback weight server whose routes misbehave on purpose, for the feeder's tests.

Every route serves row ``uid`` of one reference matrix, spoiled in its own way; the binary rows
are built here by hand (``struct``), independently of the library's encoder.
"""

from __future__ import annotations

import asyncio
import json
import struct

import numpy as np
from aiohttp import web

from tests.netfaults import LoopbackApp


def binary_row(values: np.ndarray, *, version: int = 1, dtype: int = 1, n: int | None = None) -> bytes:
    """The documented binary form, written out by hand."""
    count = len(values) if n is None else n
    return b"MDTW" + struct.pack("<BBHI", version, dtype, 0, count) + struct.pack(f"<{len(values)}H", *values.tolist())


class FaultyWeights(LoopbackApp):
    """Routes (``{uid}`` picks the row of ``weights``):

    good, good.json, slow (answers after ``slow_s``), fail (503), flaky (503 on the first request
    per uid, then good), notfound (404), garbage (200 with random bytes), big (a body far over any
    cap, with Content-Length), bigstream (the same, chunked, no length), nan / neg / range / frac
    (.json rows with a NaN / -1 / 70000 / 0.5 in position 3), short (binary, one weight short),
    version (binary, version 2), dtype (binary, dtype code 2), toggle (good while ``toggle_ok``,
    else 503), concurrent (good after ``slow_s``; records the peak number in flight).
    """

    def __init__(self, weights: np.ndarray, slow_s: float = 5.0) -> None:
        self.weights = weights
        self.slow_s = slow_s
        self.hits: dict[str, int] = {}
        self.flaky_seen: set[int] = set()
        self.toggle_ok = True
        self.in_flight = self.max_in_flight = 0
        app = web.Application()
        for kind in ("good", "slow", "fail", "flaky", "notfound", "garbage", "big", "bigstream", "short", "version",
                     "dtype", "toggle", "concurrent"):
            app.router.add_get(rf"/{kind}/{{uid:\d+}}", self._handler(kind))
        for kind in ("good", "nan", "neg", "range", "frac"):
            app.router.add_get(rf"/{kind}/{{uid:\d+}}.json", self._handler(kind + ".json"))
        super().__init__(app, shutdown_timeout=0.05, access_log=None)

    def url(self, kind: str, uid: int) -> str:
        if kind.endswith(".json"):
            return f"http://127.0.0.1:{self.port}/{kind[:-5]}/{uid}.json"
        return f"http://127.0.0.1:{self.port}/{kind}/{uid}"

    def _handler(self, kind: str):  # type: ignore[no-untyped-def]
        async def handle(request: web.Request) -> web.StreamResponse:
            self.hits[kind] = self.hits.get(kind, 0) + 1
            uid = int(request.match_info["uid"])
            return await self._answer(kind, uid, request)

        return handle

    def _good(self, uid: int) -> web.Response:
        return web.Response(body=binary_row(self.weights[uid]), content_type="application/x-mdt-weights")

    def _json(self, values: list[object]) -> web.Response:
        return web.Response(body=json.dumps({"weights": values}).encode(), content_type="application/json")

    async def _answer(self, kind: str, uid: int, request: web.Request) -> web.StreamResponse:
        row = self.weights[uid]
        spoiled = row.astype(object).tolist()
        if kind == "good":
            return self._good(uid)
        if kind == "good.json":
            return self._json(spoiled)
        if kind == "slow":
            await asyncio.sleep(self.slow_s)
            return self._good(uid)
        if kind == "fail" or (kind == "toggle" and not self.toggle_ok):
            return web.Response(status=503, text="down")
        if kind == "toggle":
            return self._good(uid)
        if kind == "flaky":
            if uid not in self.flaky_seen:
                self.flaky_seen.add(uid)
                return web.Response(status=503, text="warming up")
            return self._good(uid)
        if kind == "notfound":
            return web.Response(status=404, text="no")
        if kind == "garbage":
            return web.Response(body=np.random.default_rng(uid).bytes(50), content_type="application/octet-stream")
        if kind == "big":
            return web.Response(body=b"\x00" * 1_000_000)
        if kind == "bigstream":
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            try:
                for _ in range(100):
                    await response.write(b"\x00" * 10_000)
                await response.write_eof()
            except ConnectionResetError:  # the client hung up at its cap, as it should
                pass
            return response
        if kind in ("nan.json", "neg.json", "range.json", "frac.json"):
            spoiled[3] = {"nan.json": float("nan"), "neg.json": -1, "range.json": 70000, "frac.json": 0.5}[kind]
            return self._json(spoiled)
        if kind == "short":
            return web.Response(body=binary_row(row[:-1]))
        if kind == "version":
            return web.Response(body=binary_row(row, version=2))
        if kind == "dtype":
            return web.Response(body=binary_row(row, dtype=2))
        if kind == "concurrent":
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.slow_s)
            finally:
                self.in_flight -= 1
            return self._good(uid)
        raise AssertionError(kind)
