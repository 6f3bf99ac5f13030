"""Timing and reporting helpers shared by the benchmark modules."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from mdt_tensor._cpu.engine import numpy_avx512


@dataclass(frozen=True)
class Context:
    """What a benchmark module is asked to run.

    Attributes:
        mode: "full" (the sizes the issues name), "quick" (smaller, fewer repeats) or "smoke"
            (tiny, one repeat: only proves the benchmark still runs; used by the test suite).
        device: "cpu" or "cuda".
    """

    mode: str = "full"
    device: str = "cpu"

    @property
    def repeat(self) -> int:
        return {"full": 7, "quick": 3, "smoke": 1}[self.mode]

    def size(self, full: Any, quick: Any, smoke: Any) -> Any:
        """Pick the problem size for this mode."""
        return {"full": full, "quick": quick, "smoke": smoke}[self.mode]


@dataclass
class Comparison:
    """One benchmark line: our time against a baseline's, both measured in this run.

    ``min_speedup`` asks for ``baseline / ours >= min_speedup``; ``max_slowdown`` asks for
    ``ours / baseline <= max_slowdown`` (used against the memory-copy ceiling and against fast
    but wrong baselines). ``extra`` holds further figures (e.g. fraction of copy bandwidth).
    ``unit``: ``"s"`` for times, ``"MB"`` for sizes (``ours_s`` and ``baseline_s`` then hold
    megabytes, and the target bounds ours / baseline).
    """

    name: str
    ours_s: float
    baseline: str
    baseline_s: float
    min_speedup: float | None = None
    max_slowdown: float | None = None
    extra: dict[str, str] = field(default_factory=dict)
    unit: str = "s"

    @property
    def speedup(self) -> float:
        return self.baseline_s / self.ours_s if self.ours_s > 0 else float("inf")

    @property
    def target(self) -> str:
        if self.min_speedup is not None:
            return f">= {self.min_speedup:g}x faster"
        if self.max_slowdown is not None:
            return f"<= {self.max_slowdown:g}x the {'size' if self.unit == 'MB' else 'time'}"
        return "-"

    @property
    def met(self) -> bool | None:
        if self.min_speedup is not None:
            return self.speedup >= self.min_speedup
        if self.max_slowdown is not None:
            return 1 / self.speedup <= self.max_slowdown
        return None


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_call(fn: Callable[[], Any], *, repeat: int = 7, warmup: int = 1, device: str = "cpu", min_time: float = 0.05) -> float:
    """Median seconds per call of ``fn`` over ``repeat`` rounds (each round loops until ``min_time``)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    rounds = []
    for _ in range(repeat):
        calls = 0
        start = time.perf_counter()
        while True:
            fn()
            calls += 1
            synchronize(device)
            elapsed = time.perf_counter() - start
            if elapsed >= min_time or calls >= 1000:
                break
        rounds.append(elapsed / calls)
    return statistics.median(rounds)


def copy_time(tensor: torch.Tensor, *, repeat: int = 7, device: str = "cpu") -> float:
    """Seconds for one plain copy of ``tensor`` into a preallocated buffer (the memory ceiling)."""
    out = torch.empty_like(tensor)
    return time_call(lambda: out.copy_(tensor), repeat=repeat, device=device)


def cpu_isa() -> str:
    """The instruction set the CPU kernels run on: numpy's AVX-512 dispatch and torch's CPU capability."""
    return f"numpy {'AVX-512' if numpy_avx512() else 'no AVX-512'}, torch {torch.backends.cpu.get_cpu_capability()}"
