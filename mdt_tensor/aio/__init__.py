"""The async layer: endpoints, health checks, retry, circuit breakers, caches, pools, concurrency.

Loaded on first use by ``mdt_tensor`` (it imports aiohttp, tenacity and psutil), so that
``import mdt_tensor`` stays lean for code that only computes.
"""

from __future__ import annotations

from ..errors import NetworkError
from .batch import *  # noqa: F403
from .batch import __all__ as _batch_all
from .breaker import *  # noqa: F403
from .breaker import __all__ as _breaker_all
from .endpoints import *  # noqa: F403
from .endpoints import __all__ as _endpoints_all
from .executors import *  # noqa: F403
from .executors import __all__ as _executors_all
from .health import *  # noqa: F403
from .health import __all__ as _health_all
from .loop import *  # noqa: F403
from .loop import __all__ as _loop_all
from .lru import *  # noqa: F403
from .lru import __all__ as _lru_all
from .pool import *  # noqa: F403
from .pool import __all__ as _pool_all
from .query_cache import *  # noqa: F403
from .query_cache import __all__ as _query_cache_all
from .ratelimit import *  # noqa: F403
from .ratelimit import __all__ as _ratelimit_all
from .retry import *  # noqa: F403
from .retry import __all__ as _retry_all
from .service import *  # noqa: F403
from .service import __all__ as _service_all
from .tasks import *  # noqa: F403
from .tasks import __all__ as _tasks_all
from .workqueue import *  # noqa: F403
from .workqueue import __all__ as _workqueue_all

# NetworkError lives in mdt_tensor.errors; the async layer re-exports it as the original did.
__all__ = [
    "NetworkError",
    *_endpoints_all, *_health_all, *_retry_all, *_breaker_all, *_service_all,
    *_lru_all, *_query_cache_all, *_batch_all, *_pool_all,
    *_tasks_all, *_executors_all, *_ratelimit_all, *_workqueue_all, *_loop_all,
]
