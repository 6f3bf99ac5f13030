"""``@profile_memory_usage``: the peak memory a call needs, for sync and async functions.

It measures what a call allocates at its peak (``tracemalloc``: Python allocations, numpy's
included, but not torch's CPU allocator), the change of the process's RSS, and on CUDA the peak
allocated on each device in use. The original only logged an RSS difference, measured nothing for
async functions (it returned the coroutine) and lost the function's name (no ``functools.wraps``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import psutil
import torch

from ..errors import DTypeError

__all__ = ["MemoryProfile", "profile_memory_usage", "measure_memory"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class MemoryProfile:
    """What one profiled call used.

    Attributes:
        name: the function's qualified name.
        python_peak_bytes: peak bytes traced by ``tracemalloc`` during the call, above what was
            traced when it began.
        rss_delta_bytes: resident set size after minus before (may be negative).
        cuda_peak_bytes: per CUDA device index, peak allocated bytes during the call above the
            allocation when it began (empty without CUDA in use).
        seconds: wall time of the call.
    """

    name: str = ""
    python_peak_bytes: int = 0
    rss_delta_bytes: int = 0
    cuda_peak_bytes: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


def _cuda_devices() -> list[int]:
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return []
    return list(range(torch.cuda.device_count()))


@contextmanager
def measure_memory(name: str = "") -> Iterator[MemoryProfile]:
    """``with measure_memory() as profile:`` fill ``profile`` when the block ends.

    Tracing is process-wide: if ``tracemalloc`` is already tracing, its peak is reset at the start
    (an enclosing measurement loses its own peak), and concurrent async calls share one figure.

    Example:
        >>> with measure_memory() as profile:
        ...     block = bytearray(1_000_000)
        >>> profile.python_peak_bytes >= 1_000_000
        True
    """
    profile = MemoryProfile(name=name)
    started_tracing = not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    else:
        tracemalloc.reset_peak()
    traced_before = tracemalloc.get_traced_memory()[0]
    devices = _cuda_devices()
    cuda_before = {}
    for d in devices:
        torch.cuda.reset_peak_memory_stats(d)
        cuda_before[d] = torch.cuda.memory_allocated(d)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    start = time.perf_counter()
    try:
        yield profile
    finally:
        profile.seconds = time.perf_counter() - start
        profile.python_peak_bytes = max(0, tracemalloc.get_traced_memory()[1] - traced_before)
        if started_tracing:
            tracemalloc.stop()
        profile.rss_delta_bytes = int(process.memory_info().rss - rss_before)
        profile.cuda_peak_bytes = {d: int(torch.cuda.max_memory_allocated(d) - cuda_before[d]) for d in devices}


def _log(profile: MemoryProfile, level: int) -> None:
    cuda = ", ".join(f"cuda:{d} peak {b / 2**20:.1f} MiB" for d, b in profile.cuda_peak_bytes.items())
    logger.log(
        level, "%s: python peak %.1f MiB, rss %+.1f MiB%s, %.3f s", profile.name,
        profile.python_peak_bytes / 2**20, profile.rss_delta_bytes / 2**20, f", {cuda}" if cuda else "", profile.seconds,
    )


def _decorate(func: F, report: Callable[[MemoryProfile], Any] | None, level: int) -> F:
    if not callable(func):
        raise DTypeError(f"Expected profile_memory_usage to decorate a callable, but got {type(func).__name__}.")
    name = getattr(func, "__qualname__", repr(func))

    def finish(wrapper: Any, profile: MemoryProfile) -> None:
        wrapper.last_profile = profile
        _log(profile, level)
        if report is not None:
            report(profile)

    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            profile = MemoryProfile(name)
            try:
                with measure_memory(name) as profile:
                    return await func(*args, **kwargs)
            finally:  # after measure_memory has filled the profile
                finish(async_wrapper, profile)

        wrapper: Any = async_wrapper
    else:
        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            profile = MemoryProfile(name)
            try:
                with measure_memory(name) as profile:
                    return func(*args, **kwargs)
            finally:
                finish(sync_wrapper, profile)

        wrapper = sync_wrapper
    wrapper.last_profile = None
    return wrapper  # type: ignore[no-any-return]


@overload
def profile_memory_usage(func: F, /) -> F: ...
@overload
def profile_memory_usage(
    func: None = None, /, *, report: Callable[[MemoryProfile], Any] | None = None, level: int = logging.INFO
) -> Callable[[F], F]: ...


def profile_memory_usage(
    func: Any = None, /, *, report: Callable[[MemoryProfile], Any] | None = None, level: int = logging.INFO
) -> Any:
    """Measure each call's peak memory; works on plain and ``async`` functions.

    Use bare (``@profile_memory_usage``) or with options
    (``@profile_memory_usage(report=profiles.append)``). After each call (also one that raises)
    the wrapper's ``last_profile`` holds a :class:`MemoryProfile`, the profile is logged on the
    ``mdt_tensor.memory.profiling`` logger at ``level``, and ``report(profile)`` is called if given.
    See :func:`measure_memory` for what is measured.

    Example:
        >>> @profile_memory_usage
        ... def build(n):
        ...     return [0] * n
        >>> len(build(100_000)), build.last_profile.python_peak_bytes >= 800_000, build.__name__
        (100000, True, 'build')
    """
    if func is not None:
        return _decorate(func, report, level)
    return lambda f: _decorate(f, report, level)
