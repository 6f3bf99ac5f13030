"""What the chain computes, emulated: I32F32 / I64F64 fixed point and the Yuma consensus epoch."""

from __future__ import annotations

from . import fixed, yuma

__all__ = ["fixed", "yuma"]
