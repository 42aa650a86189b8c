"""Pure planning of a pass: where it starts, how it is cut into windows, and how far
the checkpoint may move as windows complete (possibly out of order)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from archiver.domain import Gap


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime


def plan_start(checkpoint: datetime | None, now: datetime, retention: timedelta) -> tuple[datetime, Gap | None]:
    """Resume at the checkpoint; if it is older than retention, what lies between is lost.

    A first run starts at the start of retention. A gap is returned for the span the
    provider no longer serves, so it can be recorded and shown rather than hidden.
    """
    oldest = now - retention
    if checkpoint is None:
        return oldest, None
    if checkpoint < oldest:
        return oldest, Gap(checkpoint, oldest, "checkpoint older than the provider's retention")
    return checkpoint, None


class WindowPlanner:
    """Hands out consecutive windows over ``[start, end]``, oldest first, each sized to the
    record density seen so far so that a window holds about ``target`` records.

    Dense stretches get short windows (more of them fetched at once), sparse ones long
    windows (fewer empty requests); growth is gentle (×4 per window at most).

    With several ``workers``, no window takes more than half a worker's share of what
    is left (guided self-scheduling), down to an eighth of ``target`` records: a window
    is paged one request after another, so a few long windows at the end of a pass
    would leave the other workers idle while they finish.
    """

    def __init__(self, start: datetime, end: datetime, initial: timedelta, *, target: int = 2000, workers: int = 1,
                 smallest: timedelta = timedelta(minutes=1), largest: timedelta = timedelta(days=1)) -> None:
        self._cursor, self._end = start, end
        self._initial, self._target, self._workers = initial, target, workers
        self._smallest, self._largest = smallest, max(largest, initial)
        self._records, self._seconds = 0, 0.0
        self._last = initial
        self._started = False

    def next(self) -> Span | None:
        first, self._started = not self._started, True
        if self._cursor >= self._end:
            if self._cursor == self._end and first:
                return Span(self._cursor, self._end)  # a point range is one window
            return None
        self._last = self.size()
        span = Span(self._cursor, min(self._cursor + self._last, self._end))
        self._cursor = span.end
        return span

    def observe(self, span: Span, records: int) -> None:
        self._records += records
        self._seconds += (span.end - span.start).total_seconds()

    def size(self) -> timedelta:
        if self._seconds == 0:
            return self._initial
        if self._records == 0:
            return max(self._smallest, min(self._largest, self._last * 4))  # nothing seen: widen
        per_record = timedelta(seconds=self._seconds / self._records)
        size = min(per_record * self._target, self._largest, self._last * 4)
        if self._workers > 1:
            share = (self._end - self._cursor) / (2 * self._workers)
            size = min(size, max(share, per_record * (self._target // 8)))
        return max(self._smallest, size)


class Watermark:
    """The checkpoint over windows handed out in order: the end of the longest completed prefix.

    Windows may finish in any order; the mark only passes a window once it and all
    windows before it are done, so a failed or unfinished window is never skipped.
    """

    def __init__(self, ceiling: datetime) -> None:
        self._ends: list[datetime] = []
        self._done: list[bool] = []
        self._prefix = 0
        self._ceiling = ceiling

    def add(self, end: datetime) -> int:
        """Register the next window (in planning order); its index."""
        self._ends.append(end)
        self._done.append(False)
        return len(self._ends) - 1

    def complete(self, index: int) -> datetime | None:
        """Mark window ``index`` done; the new checkpoint, or ``None`` if it did not move."""
        self._done[index] = True
        before = self._prefix
        while self._prefix < len(self._done) and self._done[self._prefix]:
            self._prefix += 1
        if self._prefix == before:
            return None
        return min(self._ends[self._prefix - 1], self._ceiling)
