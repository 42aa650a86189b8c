"""Every read and write the archiver makes, as short transactions of batched statements.

Writes are upserts on natural keys, so any page may be written any number of times
with the same result. ``save`` commits a page's rows, and optionally the checkpoint
and the coverage-ledger entry that they complete, in one transaction: the checkpoint
can never cover a record that is not committed.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, AsyncIterator, Callable, Sequence

from sqlalchemy import Select, Text, and_, cast, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from archiver import ledger
from archiver.db import dialect, fencing, models as m, tallies
from archiver.db.dialect import translated_errors
from archiver.db.fencing import Fence
from archiver.db.writer import PostgresWriter, Save, SqliteWriter, Window
from archiver.db.quarantine import QuarantineLog
from archiver.lifecycle.admission import Admission
from archiver.ledger import Covered
from archiver.domain import Gap, Record
from archiver.times import utcnow

class Store:
    def __init__(self, engine: AsyncEngine, admission: Admission | None = None) -> None:
        self.engine = engine
        self.admission = admission or Admission()
        """What retention and erasure forbid never enters (see ``archiver.lifecycle.admission``)."""
        self._insert = dialect.insert(engine)
        self._sqlite = dialect.is_sqlite(engine)
        self._writer: SqliteWriter | PostgresWriter = (
            SqliteWriter(os.path.abspath(engine.url.database or "")) if self._sqlite else PostgresWriter(engine))
        self.quarantine = QuarantineLog(engine, self._insert)
        self.fence: Callable[[str, str], Fence] | None = None
        """Set by a process sharing PostgreSQL: the lease each save must still find
        (``archiver.leases``); it raises ``LeaseLost`` if this process knows it lost it."""

    @property
    def write_batch(self) -> int:
        """How many records the engine holds before it saves: its writer's batch."""
        return self._writer.batch

    def start_writing(self) -> None:
        """Start SQLite's writer process now, for a command that will save: its start then
        overlaps the command's own instead of the first save's."""
        if isinstance(self._writer, SqliteWriter):
            self._writer.process.start()

    async def close(self) -> None:
        """Stop SQLite's writer process, if one was started (it commits what it runs first),
        or close PostgreSQL's writing connections."""
        await self._writer.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed on leaving; the one place where the drivers' errors
        become the archiver's own (``DatabaseError``), as ``http.py`` does for HTTP's."""
        with translated_errors():
            async with self.engine.begin() as conn:
                yield conn

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        with translated_errors():
            async with self.engine.connect() as conn:
                yield conn

    async def _begin_writing(self, conn: AsyncConnection) -> None:
        """On SQLite, take the write lock first, in aiosqlite's thread: if another process
        holds it, the wait (up to the busy timeout) happens there, never on the event loop."""
        if self._sqlite:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")

    async def save(
        self,
        source: str,
        account: str,
        records: Sequence[Record],
        *,
        checkpoint: datetime | None = None,
        window: Window | None = None,
    ) -> None:
        """Upsert ``records``; move the checkpoint and log the window in the same transaction."""
        now = utcnow()
        save = Save((source, account), _unique_by_key(self.admission.admit(records, now)), now, checkpoint, window)
        if isinstance(self._writer, SqliteWriter):  # no fence: leases are PostgreSQL's
            with translated_errors():
                await self._writer.save(save)
        else:
            await self._save_postgres(self._writer, save)

    async def _save_postgres(self, writer: PostgresWriter, save: Save) -> None:
        """One statement, its own transaction (``PostgresWriter``); with a fence, made only
        if the account is still this process's."""
        fence = self.fence(*save.owner) if self.fence is not None else None
        with translated_errors():
            held = await writer.save(save, fence)
        if not held:
            raise fencing.lost(*save.owner)

    async def checkpoint(self, source: str, account: str) -> datetime | None:
        async with self._reading() as conn:
            return await conn.scalar(select(m.checkpoints.c.position).where(_owned(m.checkpoints, source, account)))

    async def set_checkpoint(self, source: str, account: str, position: datetime) -> None:
        """Force the checkpoint (tests, operators rewinding); ``save`` only moves it forward."""
        async with self._transaction() as conn:
            await conn.execute(m.checkpoints.delete().where(_owned(m.checkpoints, source, account)))
            await conn.execute(m.checkpoints.insert(), {"source": source, "account": account,
                                                        "position": position, "updated_at": utcnow()})

    async def add_gap(self, source: str, account: str, gap: Gap) -> None:
        async with self._transaction() as conn:
            await conn.execute(self._insert(m.gaps).on_conflict_do_nothing(), {
                "source": source, "account": account, "gap_from": gap.start, "gap_to": gap.end,
                "reason": gap.reason, "detected_at": utcnow()})

    async def gaps(self, source: str, account: str) -> list[Gap]:
        query = select(m.gaps).where(_owned(m.gaps, source, account)).order_by(m.gaps.c.gap_from)
        async with self._reading() as conn:
            return [Gap(r.gap_from, r.gap_to, r.reason) for r in await conn.execute(query)]

    async def pending_messages(self, source: str, account: str, since: datetime) -> list[tuple[str, datetime]]:
        """Messages whose latest version is not final and that the provider still serves
        (by position), with when they were sent. Grouped here, not in SQL: a GROUP BY
        drew SQLite's planner into reading the whole message id index in order instead of
        the time index's range."""
        r = m.records
        query = select(r.c.message_id, r.c.occurred_at).where(
            r.c.record_at >= since, r.c.source == source, r.c.account == account, r.c.is_final.is_(False))
        first: dict[str, datetime] = {}
        async with self._reading() as conn:
            for message_id, at in await conn.execute(query):
                if message_id is not None and (message_id not in first or (at is not None and at < first[message_id])):
                    first[message_id] = at
        return sorted(first.items())

    async def start_run(self, source: str, account: str, kind: str) -> int:
        async with self._transaction() as conn:
            result = await conn.execute(m.runs.insert().values(source=source, account=account, kind=kind,
                                                               started_at=utcnow()).returning(m.runs.c.id))
            return int(result.scalar_one())

    async def finish_run(self, run_id: int, *, ok: bool, records: int, requests: int, error: str | None = None) -> None:
        async with self._transaction() as conn:
            await conn.execute(m.runs.update().where(m.runs.c.id == run_id).values(
                finished_at=utcnow(), ok=ok, records=records, requests=requests, error=error))

    async def last_runs(self, source: str, account: str) -> tuple[Any, Any]:
        """The latest successful run and the latest failed one (rows or ``None``).

        Ordered by start, which ``ix_runs_source`` serves, so this stays one index probe
        when a daemon has logged a run a minute for months."""
        r = m.runs
        async with self._reading() as conn:
            ok = (await conn.execute(select(r).where(_owned(r, source, account), r.c.ok.is_(True))
                                     .order_by(r.c.started_at.desc()).limit(1))).first()
            bad = (await conn.execute(select(r).where(_owned(r, source, account), r.c.ok.is_(False))
                                      .order_by(r.c.started_at.desc()).limit(1))).first()
        return ok, bad

    async def owners(self) -> dict[tuple[str, str], str]:
        """Which process polls each account now (scale-out on PostgreSQL; empty otherwise)."""
        async with self._reading() as conn:
            rows = await conn.execute(select(m.leases.c.source, m.leases.c.account, m.leases.c.owner)
                                      .where(m.leases.c.owner.is_not(None), m.leases.c.expires_at > utcnow()))
            return {(r.source, r.account): r.owner for r in rows}

    async def count_records(self, source: str, account: str) -> int:
        """The account's tally (``archiver.db.tallies``): one row read, however large the archive."""
        async with self._reading() as conn:
            return await tallies.count(conn, source, account)

    async def coverage(self, source: str, account: str) -> list[tuple[datetime, datetime]]:
        c = m.coverage
        query = select(c.c.window_from, c.c.window_to).where(_owned(c, source, account)).order_by(c.c.window_from)
        async with self._reading() as conn:
            return [(a, b) for a, b in await conn.execute(query)]

    async def compact_coverage(self, source: str, account: str) -> int:
        """Fold ledger rows that overlap or touch into one (see ``archiver.ledger``);
        the number of rows left. Safe next to another process doing the same: the rows
        read are locked (PostgreSQL) or the write lock is held (SQLite) until commit."""
        c = m.coverage
        query = select(c).where(_owned(c, source, account)).with_for_update()
        async with self._transaction() as conn:
            await self._begin_writing(conn)
            rows = (await conn.execute(query)).all()
            merged = ledger.merge(Covered(r.window_from, r.window_to, r.records, r.pages, r.finished_at) for r in rows)
            if len(merged) < len(rows):
                ids = [r.id for r in rows]
                for i in range(0, len(ids), 1000):  # the first compaction of a long-lived ledger is large
                    await conn.execute(c.delete().where(c.c.id.in_(ids[i:i + 1000])))
                await conn.execute(c.insert(), [
                    {"source": source, "account": account, "window_from": w.start, "window_to": w.end,
                     "records": w.records, "pages": w.pages, "finished_at": w.finished_at} for w in merged])
            return len(merged)

    async def export_rows(self, source: str, since: datetime | None, until: datetime | None,
                          account: str | None = None) -> AsyncIterator[Any]:
        """Records with their normalized fields, oldest first, streamed from the server;
        ``raw`` as the stored JSON text (compact, as written)."""
        r = m.records
        query = select(cast(r.c.raw, Text).label("raw"), r.c.account, r.c.record_at, *[r.c[c] for c in m.EVENT_COLUMNS])
        async for row in self.stream(records_of(query, source, since, until, account)):
            yield row

    async def stream(self, query: Select[Any]) -> AsyncIterator[Any]:
        """The rows of a read ``query``, streamed from the server: one hop to the driver per
        1,000 rows, not per row."""
        async with self._reading() as conn:
            result = await conn.stream(query.execution_options(yield_per=1000))
            async for rows in result.partitions():
                for row in rows:
                    yield row


def records_of(query: Select[Any], source: str, since: datetime | None = None, until: datetime | None = None,
               account: str | None = None) -> Select[Any]:
    """``query`` (of ``records``' columns) restricted to ``source``'s records (optionally a
    time range and an account), oldest first: the order of every export."""
    r = m.records
    query = query.where(r.c.source == source).order_by(r.c.record_at, r.c.id)
    if since is not None:
        query = query.where(r.c.record_at >= since)
    if until is not None:
        query = query.where(r.c.record_at <= until)
    if account is not None:
        query = query.where(r.c.account == account)
    return query


def _owned(table: Any, source: str, account: str) -> Any:
    return and_(table.c.source == source, table.c.account == account)


def _unique_by_key(records: Sequence[Record]) -> list[Record]:
    """One row per natural key (the last served wins: one statement may not touch a row
    twice), in key order. Providers serve newest first; inserted in that order, each key
    lands left of the one before and SQLite's index pages split half full. In key order
    (time order, for time-prefixed keys) they fill: 0.1× fewer bytes per record."""
    unique = {r.key: r for r in records}
    return [unique[key] for key in sorted(unique)]
