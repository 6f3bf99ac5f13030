"""The event loop to run on: uvloop's when installed, else asyncio's.

:func:`run_async` runs a coroutine in a fresh loop of that kind; :func:`optimize_async_loop`
says which one it would use. Nothing global (the deprecated event-loop policy) is changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["optimize_async_loop", "run_async"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _loop_factory() -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        return "asyncio", None
    return "uvloop", uvloop.new_event_loop


def optimize_async_loop() -> str:
    """Say which event loop :func:`run_async` will use: "uvloop" when installed, else "asyncio".

    Unlike the original, nothing global is changed (the event-loop policy API is deprecated);
    pass the choice to ``asyncio.Runner(loop_factory=...)`` or use :func:`run_async`.

    Example:
        >>> optimize_async_loop() in ("uvloop", "asyncio")
        True
    """
    name, _ = _loop_factory()
    logger.info("event loop: %s", name)
    return name


def run_async(main: Awaitable[T], *, use_uvloop: bool = True, debug: bool | None = None) -> T:
    """Run ``main`` to completion in a fresh event loop, uvloop's when installed (and ``use_uvloop``).

    The chosen loop is logged at INFO level (``mdt_tensor.aio.loop``).

    Example:
        >>> async def main():
        ...     return 42
        >>> run_async(main())
        42
    """
    name, factory = _loop_factory() if use_uvloop else ("asyncio", None)
    logger.info("run_async: using the %s event loop", name)
    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)  # type: ignore[arg-type]
