"""An asyncio token bucket: :class:`AsyncRateLimiter`.

The standard library has none. Each caller reserves a slot synchronously on the event loop (no
lock) and then sleeps outside it, so waiters are served in arrival order, never more than
``burst`` pass at once, and the last waiter in line gives its token back when cancelled
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
    waiters are served first-in first-out and no lock is ever held while sleeping. A cancelled
    waiter gives its token back once nobody waits behind it and its slot is still to come; while
    someone does, its slot stays unused (the waiters behind it keep their times, and handing the
    slot to a newcomer would let two callers through at once later, above
    ``burst + t * rate / per``). Use one limiter from one event loop (it is not thread-safe).

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
        # reservations in arrival order -> [its slot's time, abandoned (waiter cancelled, token kept)]
        self._waiting: dict[int, list[Any]] = {}
        self._next_id = 0
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
        me = self._next_id
        self._next_id += 1
        self._waiting[me] = [self._updated + delay, False]
        try:
            await self._sleep(delay)
        except BaseException:
            self._release(me)
            raise
        del self._waiting[me]
        self.admitted += 1

    def _release(self, me: int) -> None:
        """A waiter was cancelled: give its slot back if nobody waits behind it.

        Trailing abandoned reservations go with it, but only slots still in the future return a
        token: a slot whose time has passed unused is gone (handing it out now would admit a
        caller beside the ones admitted in the slots after it).
        """
        self._waiting[me][1] = True
        now = self._refill()
        while self._waiting:
            last = next(reversed(self._waiting))
            slot, abandoned = self._waiting[last]
            if not abandoned:
                break
            del self._waiting[last]
            if slot > now:
                self._tokens = min(self.burst, self._tokens + 1)

    async def __aenter__(self) -> AsyncRateLimiter:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None
