"""The row format, the publishing server, the URLs file and the epoch's endpoint weights."""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import mdt_tensor as mt
from mdt_tensor.errors import DTypeError, ShapeError, ValueRangeError
from mdt_tensor.feed import (
    CONTENT_TYPE,
    RejectReason,
    RowRejected,
    RowStatus,
    decode_row,
    encode_row,
    fetch_epoch_weights,
    format_feed_report,
    read_urls_file,
    serve_snapshot,
    serve_weights,
    weights_from_endpoints,
)
from tests.feed.faulty import FaultyWeights, binary_row
from tests.netfaults import refused_port

pytestmark = pytest.mark.timeout(30)


# --- wire ----------------------------------------------------------------------------------------

@given(st.lists(st.integers(0, 65535), min_size=1, max_size=300))
def test_binary_rows_match_the_documented_layout_and_round_trip(values: list[int]) -> None:
    row = np.array(values, dtype=np.int64)
    body = encode_row(row)
    assert body == binary_row(row)  # the hand-written layout of the tests
    assert body[:12] == b"MDTW\x01\x01\x00\x00" + struct.pack("<I", len(values))
    assert decode_row(body, len(values)).tolist() == values
    assert decode_row(json.dumps(values).encode(), len(values)).tolist() == values


@pytest.mark.parametrize(
    "body, reason",
    [(b"", RejectReason.MALFORMED), (b"MDTW\x01", RejectReason.MALFORMED), (b"\xff\xfe", RejectReason.MALFORMED),
     (b'{"w": [1, 2]}', RejectReason.MALFORMED), (b'[1, "2"]', RejectReason.MALFORMED), (b"[1, true]", RejectReason.MALFORMED),
     (b"[1, 2, 3]", RejectReason.LENGTH), (b"[1, Infinity]", RejectReason.NOT_FINITE), (b"[1, -0.5]", RejectReason.NEGATIVE),
     (b"[1, 65536]", RejectReason.OUT_OF_RANGE), (b"[1, 1e400]", RejectReason.NOT_FINITE),
     (b"[1, 100000000000000000000000000000000000000000000000]", RejectReason.OUT_OF_RANGE),
     (b"[1.5, 2]", RejectReason.DTYPE), (b'{"weights": [1, 2]}' + b" ", None)],
)
def test_json_and_binary_rejections(body: bytes, reason: RejectReason | None) -> None:
    if reason is None:
        assert decode_row(body, 2).tolist() == [1, 2]
        return
    with pytest.raises(RowRejected) as info:
        decode_row(body, 2)
    assert info.value.reason is reason and isinstance(info.value, ValueError)


def test_binary_header_checks() -> None:
    row = np.array([1, 2, 3])
    with pytest.raises(RowRejected, match="version"):
        decode_row(binary_row(row, version=9), 3)
    with pytest.raises(RowRejected, match="dtype code 2"):
        decode_row(binary_row(row, dtype=2), 3)
    with pytest.raises(RowRejected, match="3 weights, expected 4"):
        decode_row(binary_row(row), 4)
    with pytest.raises(RowRejected, match="body of"):
        decode_row(binary_row(row) + b"\x00\x00", 3)
    with pytest.raises(RowRejected, match="body of"):
        decode_row(binary_row(row, n=3)[:-2], 3)


# --- server --------------------------------------------------------------------------------------

async def test_server_routes() -> None:
    weights = np.arange(12).reshape(3, 4) * 1000
    async with serve_weights(weights) as server, aiohttp.ClientSession() as session:
        async with session.get(server.url(2)) as r:
            assert r.status == 200 and r.content_type == CONTENT_TYPE
            assert await r.read() == binary_row(weights[2])
        async with session.get(server.url(1, json=True)) as r:
            assert (await r.json()) == {"uid": 1, "n": 4, "weights": weights[1].tolist()}
        async with session.get(f"{server.base_url}/health") as r:
            assert (await r.json()) == {"status": "ok", "rows": 3, "n": 4}
        async with session.get(server.url(3)) as r:
            assert r.status == 404
    assert server.host == "127.0.0.1"


def test_server_takes_a_subnet_state_and_refuses_bad_weights() -> None:
    state = mt.yuma.SubnetState(weights=[[0, 65535], [1, 2]], stake=[1, 1])
    assert serve_weights(state).rows == 2
    with pytest.raises(DTypeError):
        serve_weights(np.ones((2, 2)) * 0.5)
    with pytest.raises(ValueRangeError):
        serve_weights(np.array([[0, 70000]]))
    with pytest.raises(ShapeError):
        serve_weights(np.zeros((2, 2, 2), dtype=np.int64))


async def test_serve_snapshot_serves_a_file_until_stopped(tmp_path: Path) -> None:
    weights = np.array([[0, 65535, 0], [3, 0, 5], [0, 0, 0]], dtype=np.int64)
    path = tmp_path / "snap.npz"
    np.savez(path, S=np.array([10, 20, 0]), W=weights)
    messages: list[str] = []
    stop = asyncio.Event()
    port = refused_port()  # a free port
    task = asyncio.create_task(serve_snapshot(path, port=port, stop=stop, announce=messages.append))
    async with asyncio.timeout(5):
        while not messages:
            await asyncio.sleep(0.01)
    batch = await mt.feed.fetch_weight_stack([f"http://127.0.0.1:{port}/weights/{i}" for i in range(3)], 3)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert batch.weights.tolist() == weights.tolist() and f":{port}/weights/{{uid}}" in messages[0]


# --- URLs file and epoch weights -----------------------------------------------------------------

def test_read_urls_file(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_text("# validators\nhttp://a/w/0\n\n5 http://b/w/5  # uid 5\nhttp://c/w\n")
    assert read_urls_file(path) == [(0, "http://a/w/0"), (5, "http://b/w/5"), (2, "http://c/w")]
    for text, match in (("x y z\n", ":1: expected 'URL'"), ("ftp://a\n", "http"), ("1 http://a\n1 http://b\n", "twice"),
                        ("# none\n", "no endpoints")):
        path.write_text(text)
        with pytest.raises(ValueRangeError, match=match):
            read_urls_file(path)


async def test_epoch_weights_replace_fetched_rows_and_keep_the_base_for_failed_ones() -> None:
    n = 6
    base = torch.full((n, n), 7, dtype=torch.int64)
    served = np.random.default_rng(1).integers(0, 65536, size=(n, n))
    async with FaultyWeights(served) as server:
        endpoints = [(0, server.url("good", 0)), (3, server.url("good.json", 3)), (4, server.url("nan.json", 4))]
        weights, batch = await weights_from_endpoints(base, endpoints, timeout=1.0, max_retries=0)
    expected = base.clone()
    expected[0], expected[3] = torch.from_numpy(served[0]), torch.from_numpy(served[3])
    assert torch.equal(weights, expected)
    assert [r.status for r in batch.reports] == [RowStatus.OK, RowStatus.OK, RowStatus.REJECTED]
    text = format_feed_report(batch)
    assert "ok 2, rejected 1" in text and "row 2 " in text and "not_finite" in text
    with pytest.raises(ValueRangeError, match="uid 9"):
        await weights_from_endpoints(base, [(9, "http://127.0.0.1:1/x")])
    with pytest.raises(ShapeError):
        await weights_from_endpoints(torch.zeros(2, 3, 3), endpoints)


def test_fetch_epoch_weights_end_to_end(tmp_path: Path) -> None:
    """What ``mdt-tensor epoch --from-endpoints`` does, against a server in another thread's loop."""
    import threading

    weights = np.random.default_rng(2).integers(0, 65536, size=(4, 4))
    ready, done = threading.Event(), threading.Event()
    urls: list[str] = []

    def serve() -> None:
        async def main() -> None:
            async with serve_weights(weights) as server:
                urls.extend(server.urls())
                ready.set()
                while not done.is_set():
                    await asyncio.sleep(0.01)

        asyncio.run(main())

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert ready.wait(10)
        path = tmp_path / "urls.txt"
        path.write_text("\n".join(f"{uid} {url}" for uid, url in enumerate(urls)))
        merged, batch = fetch_epoch_weights(path, torch.zeros(1, 4, 4, dtype=torch.int64))
    finally:
        done.set()
        thread.join(10)
    assert merged.shape == (1, 4, 4) and merged[0].tolist() == weights.tolist() and batch.ok_count == 4
