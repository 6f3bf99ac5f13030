"""A fake clock for the async tests: ``sleep`` parks the caller, time jumps to the next wake-up.

``run_until(end)`` advances to a fixed time (the concurrency tests); ``run(tasks)`` advances until
the tasks are done and fails if they block with nobody sleeping (the chaos tests).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any


async def settle(rounds: int) -> None:
    """Let ready callbacks run: ``rounds`` passes through the event loop."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class VirtualTime:
    """A fake clock and ``sleep``: time jumps to the next wake-up once every task is blocked."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._seq), future))
        await future

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    def _wake_next(self) -> None:
        wake, _, future = heapq.heappop(self._sleepers)
        self.now = max(self.now, wake)
        future.set_result(None)

    async def run_until(self, end: float, settle_rounds: int = 10) -> None:
        """Advance time to ``end``, waking every sleeper due before it."""
        while True:
            await settle(settle_rounds)
            self._drop_cancelled()
            if not self._sleepers or self._sleepers[0][0] > end:
                self.now = end
                return
            self._wake_next()

    async def run(self, tasks: list[asyncio.Task[Any]], max_steps: int = 100_000, settle_rounds: int = 5) -> None:
        """Advance time until every task is done."""
        for _ in range(max_steps):
            await settle(settle_rounds)
            if all(t.done() for t in tasks):
                return
            self._drop_cancelled()
            if not self._sleepers:
                await settle(50)  # callback chains (wait, gather) take a few more rounds
                if all(t.done() for t in tasks):
                    return
            assert self._sleepers, "tasks blocked with nobody sleeping: a caller is stuck"
            self._wake_next()
        raise AssertionError("virtual time ran out of steps")
