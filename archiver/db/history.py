"""Status history, as the lifecycle changes it.

``status_history`` is a view (migration 0010): the statuses each message's records show,
and those kept in ``past_statuses`` (what a record showed before it changed). Deleting
records would take their statuses out of the view with them, so whatever deletes some of
a message's records but keeps others (prune) keeps the message's history first; and
whatever deletes a message whole (prune, erasure) deletes its kept statuses too.
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from archiver.db import dialect, models as m
from archiver.db.where import owned_keys

h, p = m.status_history, m.past_statuses
KEY = ("source", "account", "message_id", "status", "status_detail")


async def keep(conn: AsyncConnection, messages: Iterable[tuple[str, str, str]]) -> None:
    """The history of ``messages`` (source, account, message id) kept in ``past_statuses``,
    so that it outlives their records."""
    history = select(*[h.c[c] for c in KEY], h.c.seen_at).where(owned_keys(h, "message_id", messages))
    # the ones kept already stay as they are, also those a trigger keeps meanwhile (PostgreSQL)
    await conn.execute(dialect.insert(conn)(p).from_select([*KEY, "seen_at"], history).on_conflict_do_nothing())


async def count(conn: AsyncConnection, messages: Iterable[tuple[str, str, str]]) -> int:
    """Rows of ``status_history`` for ``messages``."""
    return int(await conn.scalar(select(func.count()).select_from(h).where(owned_keys(h, "message_id", messages)))
               or 0)


async def forget(conn: AsyncConnection, messages: Iterable[tuple[str, str, str]]) -> None:
    """The kept statuses of ``messages``, whose records are gone or going, deleted."""
    await conn.execute(delete(p).where(owned_keys(p, "message_id", messages)))
