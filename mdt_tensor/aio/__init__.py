"""The async layer: endpoints, health checks, retry, circuit breakers, caches, pools, concurrency.

Loaded on first use by ``mdt_tensor`` (it imports aiohttp, tenacity and psutil), so that
``import mdt_tensor`` stays lean for code that only computes.
"""

from __future__ import annotations

from .cache import *  # noqa: F403
from .cache import __all__ as _cache_all
from .concurrency import *  # noqa: F403
from .concurrency import __all__ as _concurrency_all
from .network import *  # noqa: F403
from .network import __all__ as _network_all
from .pool import *  # noqa: F403
from .pool import __all__ as _pool_all

__all__ = [*_network_all, *_cache_all, *_pool_all, *_concurrency_all]
