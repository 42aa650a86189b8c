"""Retention: records older than ``keep_days`` (by ``occurred_at``, else ``created_at``)
leave the archive, with their messages and status history once no record of a message
is left.

Batches of at most ``BATCH`` records per transaction, so polling and reads go on while a
large prune runs. A message goes once none of its events is left: a crash between
batches leaves every remaining message with its records, and a re-run finishes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from archiver.db import dialect, history, models as m, tallies
from archiver.db.where import owned_keys, records_of_messages
from archiver.times import utcnow

BATCH = 2_000
"""Records per transaction: short enough that a poll waiting to write waits little."""
r = m.records


async def prune(engine: AsyncEngine, keep_days: int, now: datetime | None = None) -> dict[str, int]:
    """Rows deleted per table; a no-op when ``keep_days`` is 0 (keep forever)."""
    counts = {"records": 0, "events": 0, "messages": 0, "status_history": 0}
    if keep_days <= 0:
        return counts
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    async with engine.begin() as conn:
        await dialect.refresh_statistics(conn, "records", "messages", "past_statuses")
    while True:
        async with engine.begin() as conn:
            batch = list(await conn.execute(  # locked first (PostgreSQL): see tallies.lock
                select(r.c.source, r.c.account, r.c.natural_key, r.c.message_id)
                .where(func.coalesce(r.c.occurred_at, r.c.created_at) < cutoff).limit(BATCH).with_for_update()))
            if not batch:
                return counts
            for name, count in (await _delete_batch(conn, batch)).items():
                counts[name] += count


async def _delete_batch(conn: Any, batch: list[Any]) -> dict[str, int]:
    keys = [(b.source, b.account, b.natural_key) for b in batch]
    messages = list({(b.source, b.account, b.message_id) for b in batch if b.message_id})
    await tallies.lock(conn, {(source, account) for source, account, _ in keys})  # after the records, before keep()
    left = await _keeping_records(conn, messages, set(keys)) if messages else set()
    finished = [mid for mid in messages if mid not in left]
    if staying := [mid for mid in messages if mid in left]:
        await history.keep(conn, staying)  # their statuses outlive the records going
    statuses = await history.count(conn, finished) if finished else 0  # the view: before the records go
    gone = await tallies.delete_records(conn, keys)
    counts = {"records": gone, "events": gone, "messages": 0, "status_history": statuses}  # events: a view
    if finished:
        counts["messages"] = await _delete(conn, m.messages, owned_keys(m.messages, "message_id", finished))
        await history.forget(conn, finished)
    return counts


async def _keeping_records(conn: Any, messages: list[tuple[str, str, str]],
                           going: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """Which of ``messages`` have records besides those ``going``."""
    rows = await conn.execute(select(r.c.source, r.c.account, r.c.message_id, r.c.natural_key)
                              .where(records_of_messages(r, messages)))
    return {(row.source, row.account, row.message_id) for row in rows
            if (row.source, row.account, row.natural_key) not in going}


async def _delete(conn: Any, table: Any, where: Any) -> int:
    return int((await conn.execute(delete(table).where(where))).rowcount or 0)


async def oldest_record(engine: AsyncEngine, source: str, account: str) -> datetime | None:
    """The oldest archived record's position (served by the records time index)."""
    async with engine.connect() as conn:
        return await conn.scalar(select(func.min(r.c.record_at)).where(r.c.source == source, r.c.account == account))
