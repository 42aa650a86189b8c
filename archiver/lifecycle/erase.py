"""``archiver erase --phone``: the right to be forgotten.

Every record in which the number is the sender or the recipient (Infobip ``sender`` and
``destination``; WhatsApp ``from``, whose ``wa_id`` it is, and ``recipient_id``) goes,
with every event, message, status row and quarantined record of it, across providers
and accounts. The tombstone is written first: a poll racing the erasure, or a crash
half-way, can never bring the person back, and a re-run finishes the job. Each batch
of messages is deleted in one transaction, so no message is ever left half-erased.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from archiver import jsoncodec
from archiver.db import history, models as m, tallies
from archiver.db.where import owned_keys, records_of_messages
from archiver.lifecycle.subjects import database_key, digest, normalise
from archiver.times import utcnow

BATCH = 500
"""Messages per transaction (each with all of its records)."""
TABLES = ("records", "events", "messages", "status_history", "quarantine")
r = m.records  # one row per record: its raw JSON and its normalized fields (migration 0009)


async def erase_phone(engine: AsyncEngine, phone: str, *, dry_run: bool = False) -> dict[str, int]:
    """Rows removed per table (with ``dry_run``: rows that would be); idempotent."""
    digits = normalise(phone)
    counts = dict.fromkeys(TABLES, 0)
    if not dry_run:
        await _tombstone(engine, digits)
    while True:
        async with engine.begin() as conn:
            batch = await _next_batch(conn, digits, limit=None if dry_run else BATCH)
            if batch:
                _add(counts, await _erase_batch(conn, batch, dry_run))
        if not batch or dry_run:  # a dry run deletes nothing: it counts everything at once
            break
    _add(counts, await _erase_quarantine(engine, digits, dry_run))
    if not dry_run:
        await _log(engine, digits, counts)
    return counts


async def _next_batch(conn: AsyncConnection, digits: str, limit: int | None) -> list[tuple[str, str, str | None, str]]:
    """(source, account, message_id, natural_key) of events naming the number (no ORDER BY:
    the sender and recipient indexes answer it, where an order would invite a scan)."""
    numbers = [digits, f"+{digits}"]
    rows = await conn.execute(select(r.c.source, r.c.account, r.c.message_id, r.c.natural_key)
                              .where(or_(r.c.sender.in_(numbers), r.c.recipient.in_(numbers))).limit(limit))
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def _erase_batch(conn: AsyncConnection, batch: list[Any], dry_run: bool) -> dict[str, int]:
    """The batch's messages whole: every event of them (statuses too), their records,
    their current status and history."""
    messages = {(s, a, mid) for s, a, mid, _ in batch if mid}
    keys = {(s, a, k) for s, a, _, k in batch}
    if messages:
        keys |= {(row.source, row.account, row.natural_key) for row in await conn.execute(
            select(r.c.source, r.c.account, r.c.natural_key, r.c.message_id).where(records_of_messages(r, messages)))
            if (row.source, row.account, row.message_id) in messages}
    statuses = await history.count(conn, messages)  # a view of the records, among others: before they go
    records = (await _remove(conn, r, owned_keys(r, "natural_key", keys), dry_run) if dry_run
               else await tallies.delete_records(conn, keys))  # type: ignore[arg-type]
    current = await _remove(conn, m.messages, owned_keys(m.messages, "message_id", messages), dry_run)
    if not dry_run:
        await history.forget(conn, messages)
    return {"records": records, "events": records,  # a record and its normalized view are one row
            "messages": current, "status_history": statuses}


async def _remove(conn: AsyncConnection, table: Any, where: Any, dry_run: bool) -> int:
    if dry_run:
        return int(await conn.scalar(select(func.count()).select_from(table).where(where)) or 0)
    return int((await conn.execute(delete(table).where(where))).rowcount or 0)


async def _erase_quarantine(engine: AsyncEngine, digits: str, dry_run: bool) -> dict[str, int]:
    """Quarantined records are unreadable by definition: the number is looked for in the
    raw text itself, as a whole number (not inside a longer one)."""
    q = m.quarantine
    async with engine.begin() as conn:
        rows = list(await conn.execute(select(q.c.id, q.c.raw).where(q.c.raw.contains(digits))))
        ids = [row.id for row in rows if _names(row.raw, digits)]
        if ids and not dry_run:
            await conn.execute(delete(q).where(q.c.id.in_(ids)))
    return {"quarantine": len(ids)}


def _names(raw: str, digits: str) -> bool:
    return re.search(rf"(?<!\d)\+?{digits}(?!\d)", raw) is not None


async def _tombstone(engine: AsyncEngine, digits: str) -> None:
    async with engine.begin() as conn:
        mark = digest(await database_key(conn), digits)
        exists = await conn.scalar(select(func.count()).select_from(m.tombstones).where(m.tombstones.c.digest == mark))
        if not exists:
            await conn.execute(m.tombstones.insert().values(digest=mark, created_at=utcnow()))


async def _log(engine: AsyncEngine, digits: str, counts: dict[str, int]) -> None:
    """The auditor's record: when, whom (by keyed hash only), how much."""
    async with engine.begin() as conn:
        mark = digest(await database_key(conn), digits)
        await conn.execute(m.erasure_log.insert().values(erased_at=utcnow(), digest=mark,
                                                         counts=jsoncodec.dumps(counts)))


def _add(total: dict[str, int], more: dict[str, int]) -> None:
    for name, count in more.items():
        total[name] += count


__all__ = ["erase_phone"]
