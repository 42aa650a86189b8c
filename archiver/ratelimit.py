"""A sliding-window request limiter: at most ``limit`` requests in any ``period``.

Each slot is counted from the moment its response *completed*, which is never
earlier than the moment the provider received the request. So the provider, which
counts arrivals, can never see more than ``limit`` requests in any window of
``period`` seconds, whatever the network latency. One limiter is shared by every
task that talks to the same account; a 429 pauses all of them.

Waiters are served urgent first, then in arrival order: work done inside
``urgent()`` (the live tail, status re-reads) never queues behind a long backfill.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import deque
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import AsyncIterator, Awaitable, Callable, Iterator

import structlog

from archiver import metrics

log = structlog.get_logger(__name__)
_URGENT: ContextVar[bool] = ContextVar("archiver_urgent_requests", default=False)


@contextmanager
def urgent() -> Iterator[None]:
    """Requests made in this context (this task and those it starts) jump the queue."""
    token = _URGENT.set(True)
    try:
        yield
    finally:
        _URGENT.reset(token)


class RateLimiter:
    def __init__(
        self,
        limit: int,
        period: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        name: str = "",
    ) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("limit must be >= 1 and period > 0")
        self.limit, self.period = limit, period
        self._clock, self._sleep = clock, sleep
        self._ends: deque[float] = deque()
        self._in_flight = 0
        self._paused_until = -math.inf
        self._turns = asyncio.Condition()
        self._queue: list[tuple[int, int]] = []  # (0 urgent / 1 normal, arrival), a heap
        self._arrivals = itertools.count()
        self.waited_seconds = 0.0
        self.name = name

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request slot for the duration of a request."""
        await self._acquire()
        try:
            yield
        finally:
            self._in_flight -= 1
            self._ends.append(self._clock())
            async with self._turns:
                self._turns.notify_all()

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
        ticket = (0 if _URGENT.get() else 1, next(self._arrivals))
        async with self._turns:
            heapq.heappush(self._queue, ticket)
            try:
                await self._wait_turn(ticket)
            except BaseException:
                self._queue.remove(ticket)
                heapq.heapify(self._queue)
                self._turns.notify_all()
                raise
            heapq.heappop(self._queue)
            self._in_flight += 1
            self._turns.notify_all()

    async def _wait_turn(self, ticket: tuple[int, int]) -> None:
        """Return (holding the condition) once ``ticket`` is first in line and a slot is free."""
        while True:
            if self._queue[0] != ticket:
                await self._turns.wait()
                continue
            wait = self.delay(self._clock())
            if wait is None:
                return
            if wait == math.inf:
                await self._turns.wait()  # every slot in flight: wait for one to complete
                continue
            self.waited_seconds += wait
            metrics.RATE_LIMIT_WAIT.labels(self.name).inc(wait)
            log.debug("rate limit wait", source=self.name, seconds=round(wait, 3))
            self._turns.release()  # let others queue (and urgent ones overtake) meanwhile
            try:
                await self._sleep(wait)
            finally:
                await self._turns.acquire()
