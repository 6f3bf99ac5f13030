"""Weight operations on ``(*, V, N)`` stacks: normalize, validate, clip, decay, smooth, top-k, entropy, sparse."""

from __future__ import annotations

from .ops import *  # noqa: F403
from .ops import __all__ as _ops_all

__all__ = [*_ops_all]
