"""The coverage ledger's pure logic: which spans were fetched, and where the holes are.

Every finished window is logged as a row; a daemon polling every minute would add half
a million rows a year per source. ``merge`` folds rows that overlap or touch into one,
so the ledger stays a handful of rows (one per stretch between holes) and ``status``
stays instant months later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from archiver.domain import Gap

LEDGER_HOLE = "never fetched (hole in the coverage ledger)"


@dataclass(frozen=True)
class Covered:
    start: datetime
    end: datetime
    records: int
    pages: int
    finished_at: datetime


def merge(rows: Iterable[Covered]) -> list[Covered]:
    """Rows that overlap or touch become one (counts summed, latest finish kept)."""
    merged: list[Covered] = []
    for row in sorted(rows, key=lambda r: (r.start, r.end)):
        last = merged[-1] if merged else None
        if last is not None and row.start <= last.end:
            merged[-1] = Covered(last.start, max(last.end, row.end), last.records + row.records,
                                 last.pages + row.pages, max(last.finished_at, row.finished_at))
        else:
            merged.append(row)
    return merged


def holes(windows: list[tuple[datetime, datetime]], checkpoint: datetime | None) -> list[Gap]:
    """Spans between the first fetched window and the checkpoint that no window covered."""
    found: list[Gap] = []
    if not windows:
        return found
    covered_to = windows[0][0]
    for start, end in sorted(windows):
        if checkpoint is not None and start >= checkpoint:
            break
        if start > covered_to:
            found.append(Gap(covered_to, start, LEDGER_HOLE))
        covered_to = max(covered_to, end)
    return found
