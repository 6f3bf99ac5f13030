"""Exact money: ``Balance`` (a Python int of wei), its text forms and conversions, and integer
reward splits on int64 tensors (apportionment, the chain's emission split).

Every name is re-exported flat here and in ``mdt_tensor``; the modules hold one concern each.
"""

from __future__ import annotations

from .apportion import *  # noqa: F403
from .apportion import __all__ as _apportion_all
from .balance import *  # noqa: F403
from .balance import __all__ as _balance_all
from .emission import *  # noqa: F403
from .emission import __all__ as _emission_all
from .ops import *  # noqa: F403
from .ops import __all__ as _ops_all
from .text import *  # noqa: F403
from .text import __all__ as _text_all
from .units import *  # noqa: F403
from .units import __all__ as _units_all

__all__ = [*_balance_all, *_text_all, *_units_all, *_ops_all, *_apportion_all, *_emission_all]
