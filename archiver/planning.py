"""Pure planning of a pass: where it starts, how it is cut into windows, and how far
the checkpoint may move as windows complete (possibly out of order)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from archiver.sources.base import Gap


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


def plan_windows(start: datetime, end: datetime, size: timedelta) -> list[Span]:
    """Consecutive windows of at most ``size`` covering ``[start, end]`` (oldest first)."""
    if end <= start:
        return [Span(start, start)] if end == start else []
    windows, cursor = [], start
    while cursor < end:
        nxt = min(cursor + size, end)
        windows.append(Span(cursor, nxt))
        cursor = nxt
    return windows


class Watermark:
    """The checkpoint over a list of windows: the end of the longest completed prefix.

    Windows may finish in any order; the mark only passes a window once it and all
    windows before it are done, so a failed or unfinished window is never skipped.
    """

    def __init__(self, windows: list[Span], ceiling: datetime) -> None:
        self._ends = [w.end for w in windows]
        self._done = [False] * len(windows)
        self._prefix = 0
        self._ceiling = ceiling

    def complete(self, index: int) -> datetime | None:
        """Mark window ``index`` done; the new checkpoint, or ``None`` if it did not move."""
        self._done[index] = True
        before = self._prefix
        while self._prefix < len(self._done) and self._done[self._prefix]:
            self._prefix += 1
        if self._prefix == before:
            return None
        return min(self._ends[self._prefix - 1], self._ceiling)
