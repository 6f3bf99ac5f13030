"""An asyncio token bucket: :class:`AsyncRateLimiter`.

The standard library has none. Each caller reserves a slot synchronously on the event loop (no
lock) and then sleeps outside it, so waiters are served in arrival order, never more than
``burst`` pass at once, and a cancelled waiter gives its token back
(``docs/design/aio-concurrency.md``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .._validation import check_callable, check_number

__all__ = ["AsyncRateLimiter"]


class AsyncRateLimiter:
    """A token bucket: ``rate`` admissions per ``per`` seconds, at most ``burst`` at once.

    The bucket holds up to ``burst`` tokens (default: ``max(1, rate)``, the original's capacity
    without its extra token) and starts full; it refills continuously at ``rate / per`` tokens per
    second. Each admission takes one whole token, so over any window of ``t`` seconds at most
    ``burst + t * rate / per`` callers pass.

    A caller that finds no token reserves the next one (the balance goes negative) and sleeps
    until its reserved time; reservations are taken in arrival order with no await in between, so
    waiters are served first-in first-out, no lock is ever held while sleeping, and a cancelled
    waiter gives its token back. Use one limiter from one event loop (it is not thread-safe).

    Args:
        rate: admissions per ``per`` seconds, > 0.
        per: the period in seconds, > 0.
        burst: bucket capacity, >= 1.
        clock, sleep: time source and sleeping coroutine (inject fakes in tests).

    Example:
        >>> async def main():
        ...     limiter = AsyncRateLimiter(rate=1000, per=1.0, burst=5)
        ...     for _ in range(7):
        ...         async with limiter:
        ...             pass
        ...     return limiter.admitted
        >>> asyncio.run(main())
        7
    """

    def __init__(
        self,
        rate: float,
        per: float = 1.0,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.rate = check_number(rate, "rate", low=0.0, low_open=True)
        self.per = check_number(per, "per", low=0.0, low_open=True)
        # one admission takes a whole token, so the bucket must hold at least one
        self.burst = max(1.0, self.rate) if burst is None else check_number(burst, "burst", low=1.0)
        self._fill_rate = self.rate / self.per  # tokens per second
        check_callable(clock, "clock")
        check_callable(sleep, "sleep")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self.admitted = 0

    def _refill(self) -> float:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.burst, self._tokens + elapsed * self._fill_rate)
        self._updated = now
        return now

    @property
    def tokens(self) -> float:
        """Tokens available now (negative: that many admissions are already reserved ahead)."""
        self._refill()
        return self._tokens

    def try_acquire(self) -> bool:
        """Take a token if one is free now, without waiting (never jumps ahead of waiters)."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            self.admitted += 1
            return True
        return False

    async def acquire(self) -> None:
        """Wait for a token (first come, first served)."""
        self._refill()
        self._tokens -= 1  # reserve: the balance may go below zero
        if self._tokens >= 0:
            self.admitted += 1
            return
        delay = -self._tokens / self._fill_rate
        try:
            await self._sleep(delay)
        except BaseException:
            self._tokens += 1  # cancelled while waiting: release the reservation
            raise
        self.admitted += 1

    async def __aenter__(self) -> AsyncRateLimiter:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None
