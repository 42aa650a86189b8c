"""Paging that cannot spin: whatever a server answers, a window's walk ends.

A correct server moves every page towards the end of the window and serves each
record once, inside the range asked for. ``PagingGuard`` watches for the opposite:
records outside the window (the server ignores the range), a page of nothing new (a
page, token or cursor served again), a token or cursor seen before. The first such
page ends the walk with a gap naming the reason; the good records already read are
kept. So a window costs at most (records the provider holds in it ÷ page size) + 1
requests from a correct server, and at most that many plus one from any other: every
page past the first must bring at least one new in-range record, and a window holds
finitely many.
"""

from __future__ import annotations

from datetime import datetime
from typing import Hashable, Iterable

from archiver.domain import Gap


class PagingGuard:
    def __init__(self, source: str, start: datetime, end: datetime) -> None:
        self.source, self.start, self.end = source, start, end
        self._seen: set[Hashable] = set()
        self._markers: set[str] = set()

    def in_range(self, at: datetime) -> bool:
        return self.start <= at <= self.end

    def fresh(self, keyed: Iterable[tuple[Hashable, object]]) -> list[object]:
        """The items whose key this walk has not seen yet (a re-served page yields none)."""
        new = []
        for key, item in keyed:
            if key not in self._seen:
                self._seen.add(key)
                new.append(item)
        return new

    def repeated(self, marker: str | None) -> bool:
        """Whether a page token or cursor was served before in this walk."""
        if marker is None:
            return False
        if marker in self._markers:
            return True
        self._markers.add(marker)
        return False

    def gap(self, why: str) -> Gap:
        return Gap(self.start, self.end, f"{self.source} server {why}; paging stopped, the window may be incomplete")
