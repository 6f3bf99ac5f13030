"""Watch memory against two thresholds and tell callbacks; optionally poll in the background.

``on`` names what is watched: ``"system"`` (the machine's memory pressure, the default),
``"process"`` (this process's resident share of RAM) or ``"cuda:N"`` (how full device N is).
Callbacks are ``cb(stats, level)`` with level ``"warning"`` or ``"critical"`` (the original's
docstring showed a one-argument callback, which failed and was swallowed; here the signature is
checked when the callback is added).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import torch

from .._validation import check_bool, check_callable, check_number, check_seconds
from ..errors import DTypeError, ValueRangeError
from .collect import force_gc
from .stats import MemoryStats, get_memory_stats

__all__ = ["MemoryMonitor", "memory_monitor", "MemoryCallback"]

logger = logging.getLogger(__name__)

MemoryCallback = Callable[[MemoryStats, str], Any]


def _check_on(on: object) -> str:
    if on in ("system", "process"):
        return str(on)
    if isinstance(on, str) and on.startswith("cuda:") and on[5:].isdigit():
        index = int(on[5:])
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index >= count:
            raise ValueRangeError(f"Expected `on` to name an existing CUDA device, but got {on!r} ({count} device(s)).")
        return on
    raise ValueRangeError(f"Expected `on` to be 'system', 'process' or 'cuda:N', but got {on!r}.")


def _check_two_arguments(callback: object) -> None:
    check_callable(callback, "callback")
    if inspect.iscoroutinefunction(callback):
        raise DTypeError("Expected `callback` to be a plain function (it is called from check()), but got a coroutine function.")
    try:
        inspect.signature(callback).bind(None, None)  # type: ignore[arg-type]
    except TypeError:
        raise DTypeError(f"Expected `callback` to accept (stats, level), but {callback!r} does not.") from None
    except ValueError:  # no signature (some builtins): trust the caller
        pass


class MemoryMonitor:
    """Compare memory use with a warning and a critical threshold (percent, inclusive).

    ``check()`` reads :func:`get_memory_stats`, and at or above ``warning`` calls every callback
    with ``(stats, "warning")``, at or above ``critical`` with ``(stats, "critical")`` and then,
    if ``collect_on_critical``, runs :func:`force_gc` (gc plus ``torch.cuda.empty_cache()``).
    Callbacks run at every check that finds the level reached; one that raises is logged and the
    others still run. ``start(interval)`` polls in an asyncio task until ``await stop()``.

    Args:
        warning: percent at or above which the level is "warning"; in (0, 100].
        critical: percent at or above which the level is "critical"; in [warning, 100].
        on: ``"system"``, ``"process"`` or ``"cuda:N"``.
        collect_on_critical: run :func:`force_gc` on a critical check.

    Example:
        >>> seen = []
        >>> monitor = MemoryMonitor(warning=0.001, critical=100.0, collect_on_critical=False)
        >>> monitor.add_callback(lambda stats, level: seen.append(level))
        >>> _ = monitor.check()
        >>> seen, monitor.level
        (['warning'], 'warning')
    """

    def __init__(self, warning: float = 80.0, critical: float = 90.0, on: str = "system", *,
                 collect_on_critical: bool = True) -> None:
        self.warning = check_number(warning, "warning", low=0.0, high=100.0, low_open=True)
        self.critical = check_number(critical, "critical", low=self.warning, high=100.0)
        self.on = _check_on(on)
        self.collect_on_critical = check_bool(collect_on_critical, "collect_on_critical")
        self._callbacks: list[MemoryCallback] = []
        self._last_stats: MemoryStats | None = None
        self.level = "ok"
        self.last_collected: dict[str, int] | None = None
        self._task: asyncio.Task[None] | None = None

    # the original's names
    @property
    def warning_threshold(self) -> float:
        return self.warning

    @property
    def critical_threshold(self) -> float:
        return self.critical

    def add_callback(self, callback: MemoryCallback) -> None:
        """Call ``callback(stats, level)`` on each warning or critical check."""
        _check_two_arguments(callback)
        self._callbacks.append(callback)

    def remove_callback(self, callback: MemoryCallback) -> None:
        """Stop calling ``callback`` (ValueError if it was never added)."""
        self._callbacks.remove(callback)

    def get_last_stats(self) -> MemoryStats | None:
        """The stats of the last check (None before the first)."""
        return self._last_stats

    def _stats(self) -> MemoryStats:
        if self.on.startswith("cuda:"):
            return get_memory_stats(devices=[int(self.on[5:])])
        return get_memory_stats()

    def classify(self, percent: float) -> str:
        """``"critical"``, ``"warning"`` or ``"ok"`` for a percentage (thresholds inclusive)."""
        if percent >= self.critical:
            return "critical"
        if percent >= self.warning:
            return "warning"
        return "ok"

    def check(self) -> MemoryStats:
        """Read the stats, set :attr:`level`, call the callbacks, collect on critical."""
        stats = self._stats()
        self._last_stats = stats
        self.level = self.classify(stats.percent(self.on))
        if self.level == "ok":
            return stats
        for callback in list(self._callbacks):
            try:
                callback(stats, self.level)
            except Exception:
                logger.exception("memory monitor callback %r failed", callback)
        if self.level == "critical" and self.collect_on_critical:
            self.last_collected = force_gc()
        return stats

    # background polling ---------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the background task is polling."""
        return self._task is not None and not self._task.done()

    def start(self, interval: float = 5.0) -> asyncio.Task[None]:
        """Poll with :meth:`check` every ``interval`` seconds in a task of the running loop.

        Raises:
            RuntimeError: already running, or no event loop is running.
        """
        interval_s = check_seconds(interval, "interval", positive=True)
        assert interval_s is not None
        if self.running:
            raise RuntimeError("this MemoryMonitor is already polling; stop() it first")
        self._task = asyncio.get_running_loop().create_task(self._poll(interval_s), name="MemoryMonitor")
        return self._task

    async def _poll(self, interval: float) -> None:
        while True:
            try:
                self.check()
            except Exception:  # keep polling; the failure is logged, not lost
                logger.exception("memory monitor check failed")
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        """Cancel the background task and wait until it has ended (a no-op when not running)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # wait for the end without swallowing a cancellation of the caller itself (a
        # suppress(CancelledError) around ``await task`` would)
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            logger.warning("memory monitor task ended with %r", task.exception())

    @contextlib.asynccontextmanager
    async def polling(self, interval: float = 5.0) -> AsyncIterator[MemoryMonitor]:
        """``async with monitor.polling(1.0):`` start, and stop at the end of the block."""
        self.start(interval)
        try:
            yield self
        finally:
            await self.stop()


#: The module-level monitor: the system's memory, warning at 80 %, critical at 90 %.
memory_monitor = MemoryMonitor(80.0, 90.0)
