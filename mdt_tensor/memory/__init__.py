"""Memory utilities: process / system / CUDA figures, a monitor, an object pool, GC and profiling.

The original ModernTensor SDK's ``memory_optimization`` names, rebuilt without its defects:
percentages are the system's memory pressure, CUDA memory is
reported from torch's allocator, the pool takes any object, sizes never consume generators.
Imports psutil, so ``import mdt_tensor`` loads this package only on first use.
"""

from __future__ import annotations

from .collect import *  # noqa: F403
from .collect import __all__ as _collect_all
from .monitor import *  # noqa: F403
from .monitor import __all__ as _monitor_all
from .pool import *  # noqa: F403
from .pool import __all__ as _pool_all
from .profiling import *  # noqa: F403
from .profiling import __all__ as _profiling_all
from .sizes import *  # noqa: F403
from .sizes import __all__ as _sizes_all
from .stats import *  # noqa: F403
from .stats import __all__ as _stats_all

__all__ = [*_stats_all, *_monitor_all, *_pool_all, *_collect_all, *_profiling_all, *_sizes_all]
