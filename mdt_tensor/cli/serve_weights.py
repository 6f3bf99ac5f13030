"""``mdt-tensor serve-weights``: publish a snapshot's weight rows over HTTP, one row per validator.

Row ``uid`` is served at ``/weights/{uid}`` (the binary form of ``mdt_tensor.feed.wire``) and
``/weights/{uid}.json``, with ``/health``; the feeder (``mt.fetch_weight_stack``) and the
``epoch --from-endpoints`` option read them. aiohttp is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

from .options import port

__all__ = ["EXAMPLES", "add_parser", "run"]

EXAMPLES = """\
  mdt-tensor serve-weights sn15.npz --port 8090   serve sn15's rows at http://127.0.0.1:8090/weights/{uid}
"""


def add_parser(commands: Any, epilog: str) -> None:
    """Add the ``serve-weights`` subcommand to ``commands`` (the parser's subparsers action)."""
    parser = commands.add_parser(
        "serve-weights",
        help="serve each validator's weight row of a snapshot over HTTP",
        description="Serve row uid of a snapshot's weights at /weights/{uid} (binary u16) and "
                    "/weights/{uid}.json, plus /health, until interrupted.",
    )
    parser.add_argument("snapshot", type=Path, metavar="SNAPSHOT", help="snapshot file")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=port, default=8090, help="port (default 8090; 0: any free port)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM; returns 0."""
    from ..feed.server import serve_snapshot

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows, or not the main thread
                loop.add_signal_handler(sig, stop.set)
        await serve_snapshot(args.snapshot, args.host, args.port, stop=stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0
