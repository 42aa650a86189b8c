"""A sliding-window request limiter: at most ``limit`` requests in any ``period``.

Each slot is counted from the moment its response *completed*, which is never
earlier than the moment the provider received the request. So the provider, which
counts arrivals, can never see more than ``limit`` requests in any window of
``period`` seconds, whatever the network latency. One limiter is shared by every
task that talks to the same account; a 429 pauses all of them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class RateLimiter:
    def __init__(
        self,
        limit: int,
        period: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("limit must be >= 1 and period > 0")
        self.limit, self.period = limit, period
        self._clock, self._sleep = clock, sleep
        self._ends: deque[float] = deque()
        self._in_flight = 0
        self._paused_until = -math.inf
        self._lock = asyncio.Lock()
        self._released = asyncio.Event()
        self.waited_seconds = 0.0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request slot for the duration of a request."""
        await self._acquire()
        try:
            yield
        finally:
            self._in_flight -= 1
            self._ends.append(self._clock())
            self._released.set()

    def pause(self, seconds: float) -> None:
        """Stop every request of this limiter for ``seconds`` (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def delay(self, now: float) -> float | None:
        """Seconds to wait before the next request may start; ``None`` if it may start now."""
        if self._paused_until > now:
            return self._paused_until - now
        while self._ends and self._ends[0] <= now - self.period:
            self._ends.popleft()
        if len(self._ends) + self._in_flight < self.limit:
            return None
        return self._ends[0] + self.period - now if self._ends else math.inf

    async def _acquire(self) -> None:
        async with self._lock:  # waiters are served in arrival order
            while (wait := self.delay(self._clock())) is not None:
                if wait == math.inf:
                    self._released.clear()
                    await self._released.wait()
                    continue
                self.waited_seconds += wait
                log.debug("rate limit wait", seconds=round(wait, 3))
                await self._sleep(wait)
            self._in_flight += 1
