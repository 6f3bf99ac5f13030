"""The weight feeder: validators' published rows -> pinned host buffers -> device tensors.

``serve_weights`` publishes a weight matrix over HTTP (one row per validator);
``fetch_weight_stack`` / ``WeightFeed`` fetch rows from many endpoints at once, check them, and
land the ``(V, n)`` stack on the device with a per-endpoint report and a validity mask. Imports
aiohttp: ``import mdt_tensor`` loads this package only on first use.
"""

from __future__ import annotations

from .client import *  # noqa: F403
from .client import __all__ as _client_all
from .endpoints import *  # noqa: F403
from .endpoints import __all__ as _endpoints_all
from .server import *  # noqa: F403
from .server import __all__ as _server_all
from .wire import CONTENT_TYPE, RejectReason, RowRejected, decode_row, encode_row

__all__ = [*_client_all, *_server_all, *_endpoints_all,
           "CONTENT_TYPE", "RejectReason", "RowRejected", "decode_row", "encode_row"]
