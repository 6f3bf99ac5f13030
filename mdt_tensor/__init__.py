"""mdt_tensor: torch-native weights, Yuma consensus and exact money for Bittensor-style networks.

The public API is flat (``mt.normalize_weights``, ``mt.weighted_median``, ``mt.Balance``, ...);
the epoch lives in the ``mt.yuma`` namespace (``mt.yuma.epoch``, ``mt.yuma.run_epochs``).
Every tensor function accepts torch tensors, numpy arrays and CuPy arrays and returns the
caller's array type on the caller's device.
"""

from __future__ import annotations

from . import errors, yuma
from .balance import *  # noqa: F403
from .cache import *  # noqa: F403
from .compat import *  # noqa: F403
from .concurrency import *  # noqa: F403
from .consensus import *  # noqa: F403
from .errors import *  # noqa: F403
from .fixed import *  # noqa: F403
from .network import *  # noqa: F403
from .pool import *  # noqa: F403
from .rewards import *  # noqa: F403
from .weights import *  # noqa: F403

__version__ = "0.1.0"
