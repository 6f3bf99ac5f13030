"""CPU kernels: numpy SIMD code on a tensor's own memory, where a benchmark shows it beats torch."""

from __future__ import annotations

__all__: list[str] = []
