"""Exact money: ``Balance`` (a Python int of wei), parsing and formatting, and integer reward splits."""

from __future__ import annotations

from .balance import *  # noqa: F403
from .balance import __all__ as _balance_all
from .rewards import *  # noqa: F403
from .rewards import __all__ as _rewards_all

__all__ = [*_balance_all, *_rewards_all]
