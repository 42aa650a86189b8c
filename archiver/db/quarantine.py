"""The quarantine: served records the archiver cannot read, kept as served with the reason.

Outside the normalized tables on purpose: nothing there can be queried as a message,
but nothing is lost either, and whoever fixes the parser can replay them
(``archiver export --quarantined``).
"""

from __future__ import annotations

import hashlib
from typing import Any, AsyncIterator, Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from archiver import jsoncodec
from archiver.db import models as m
from archiver.db.dialect import translated_errors
from archiver.domain import Quarantined
from archiver.times import utcnow


class QuarantineLog:
    def __init__(self, engine: AsyncEngine, insert: Any) -> None:
        self._engine, self._insert = engine, insert

    async def add(self, source: str, account: str, items: Sequence[Quarantined]) -> None:
        """Keep each record once (by content), however often the provider serves it."""
        if not items:
            return
        now = utcnow()
        rows = [_row(source, account, item, now) for item in items]
        with translated_errors():
            async with self._engine.begin() as conn:
                await conn.execute(self._insert(m.quarantine).on_conflict_do_nothing(), rows)

    async def count(self, source: str, account: str | None = None) -> int:
        query = select(func.count()).select_from(m.quarantine).where(m.quarantine.c.source == source)
        if account is not None:
            query = query.where(m.quarantine.c.account == account)
        with translated_errors():
            async with self._engine.connect() as conn:
                return int(await conn.scalar(query) or 0)

    async def rows(self, source: str) -> AsyncIterator[Any]:
        query = (select(m.quarantine.c.account, m.quarantine.c.raw, m.quarantine.c.reason, m.quarantine.c.seen_at)
                 .where(m.quarantine.c.source == source).order_by(m.quarantine.c.id))
        with translated_errors():
            async with self._engine.connect() as conn:
                async for row in await conn.stream(query):
                    yield row


def _row(source: str, account: str, item: Quarantined, now: Any) -> dict[str, Any]:
    raw = item.raw if isinstance(item.raw, str) else jsoncodec.dumps(item.raw)
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
    return {"source": source, "account": account, "digest": digest, "raw": raw, "reason": item.reason,
            "seen_at": now}
