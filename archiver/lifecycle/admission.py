"""Where records enter: what retention and erasure forbid is never archived again.

Records older than ``keep_days`` are dropped (a provider that still serves them cannot
bring them back), and so are records of an erased number (a tombstone's keyed hash of
the sender or the recipient matches). Loaded once per pass, so an erasure made by
another process takes effect on the next poll; cheap when nothing is forbidden.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from archiver.db import models as m
from archiver.domain import Record
from archiver.lifecycle.subjects import database_key, digest, digits_of
from archiver.times import utcnow


class Admission:
    def __init__(self, keep_days: int = 0) -> None:
        self.keep = timedelta(days=keep_days) if keep_days else None
        self._key: bytes | None = None
        self._tombstones: frozenset[str] = frozenset()

    async def refresh(self, engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            stones = frozenset(await conn.scalars(select(m.tombstones.c.digest)))
            self._key = await database_key(conn) if stones else None
        self._tombstones = stones

    def admit(self, records: Sequence[Record], now: datetime | None = None) -> Sequence[Record]:
        """``records`` less those retention or an erasure forbid (the same list if none)."""
        if self.keep is None and not self._tombstones:
            return records
        oldest = (now or utcnow()) - self.keep if self.keep else None
        return [r for r in records if not self._forbidden(r, oldest)]

    def _forbidden(self, record: Record, oldest: datetime | None) -> bool:
        if oldest is not None and _record_time(record) < oldest:
            return True
        if self._key is None:
            return False
        event = record.event
        return any(number and digest(self._key, digits_of(number)) in self._tombstones
                   for number in (event.sender, event.recipient))


def _record_time(record: Record) -> datetime:
    """A record's time (docs/lifecycle.md): occurred_at, else created_at (else its checkpoint position)."""
    return record.event.occurred_at or record.event.created_at or record.at
