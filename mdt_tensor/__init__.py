"""mdt_tensor: torch-native weights, Yuma consensus and exact money for Bittensor-style networks.

The public API is flat (``mt.normalize_weights``, ``mt.weighted_median``, ``mt.Balance``, ...);
the epoch lives in ``mt.yuma`` (``mt.yuma.epoch``, ``mt.yuma.run_epochs``), the fixed-point
arithmetic in ``mt.fixed``. Tensor functions accept torch, numpy and CuPy arrays and return the
caller's array type on the caller's device. The async layer (``mt.aio``: aiohttp, tenacity),
the memory utilities (``mt.memory``: psutil), the weight feeder (``mt.feed``), ``mt.io``,
``mt.distributed`` and ``mt.studio`` load on first use of one of their names.
"""

import importlib
from typing import Any

from . import errors
from ._constants import U16_MAX, WEI_PER_MDT
from .chain import fixed, yuma  # before consensus: yuma imports it, and it imports fixed
from .chain.fixed import __all__ as _fixed_all
from .chain.fixed import *  # noqa: F403
from .compat import __all__ as _compat_all
from .compat import *  # noqa: F403
from .consensus import __all__ as _consensus_all
from .consensus import *  # noqa: F403
from .errors import __all__ as _errors_all
from .errors import *  # noqa: F403
from .money import __all__ as _money_all
from .money import *  # noqa: F403
from .weights import __all__ as _weights_all
from .weights import *  # noqa: F403

__version__ = "0.1.0"

#: Names served by ``mdt_tensor.aio``, imported on first access (``mt.CircuitBreaker``, ...).
_AIO_NAMES = (
    "EndpointError", "EndpointStatus", "EndpointInfo", "check_endpoint_health", "check_multiple_endpoints",
    "endpoint_infos_by_url", "RetryOptions", "retry_async", "retry_sync", "CircuitState",
    "CircuitBreakerStats", "CircuitBreaker", "Endpoint", "DEFAULT_PORTS", "parse_endpoint", "format_url",
    "is_port_open", "is_port_open_async", "wait_for_service", "get_local_ip",
    "MISSING", "CacheStats", "QueryCacheStats", "LRUCache", "QueryCache", "query_cache", "BatchProcessor",
    "BatchResultError", "ConnectionPool", "PoolStats",
    "TaskResult", "AsyncTaskPool", "ThreadPoolExecutor", "ExecutorStats", "ParallelProcessor",
    "AsyncRateLimiter", "WorkQueue", "gather_with_concurrency", "run_with_timeout", "optimize_async_loop",
    "run_async",
)

#: Names served by ``mdt_tensor.memory`` (psutil), imported on first access.
_MEMORY_NAMES = (
    "MemoryStats", "CudaMemory", "get_memory_stats", "MemoryMonitor", "memory_monitor", "ObjectPool",
    "optimize_gc", "force_gc", "profile_memory_usage", "get_object_size", "optimize_data_structure",
)

#: Names served by ``mdt_tensor.feed`` (aiohttp), imported on first access.
_FEED_NAMES = (
    "fetch_weight_stack", "WeightFeed", "WeightBatch", "EndpointReport", "RowStatus", "FeedIncompleteError",
    "serve_weights", "WeightServer",
)

#: Every lazily served name and the sub-package that holds it.
_LAZY_NAMES = {
    **dict.fromkeys(_AIO_NAMES, "aio"),
    **dict.fromkeys(_MEMORY_NAMES, "memory"),
    **dict.fromkeys(_FEED_NAMES, "feed"),
}

#: Sub-packages imported on first access.
_LAZY_MODULES = ("aio", "memory", "feed", "distributed", "io", "studio")


def _unique(*groups: Any) -> list[str]:
    seen: dict[str, None] = {}
    for group in groups:
        seen.update(dict.fromkeys(group))
    return list(seen)


__all__ = _unique(
    ["__version__", "errors", "fixed", "yuma", *_LAZY_MODULES, "U16_MAX", "WEI_PER_MDT"],
    _errors_all,
    _weights_all,
    _consensus_all,
    _compat_all,
    _fixed_all,
    _money_all,
    _LAZY_NAMES,
)


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
