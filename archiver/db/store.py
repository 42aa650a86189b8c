"""Every read and write the archiver makes, as short transactions of batched statements.

Writes are upserts on natural keys, so any page may be written any number of times
with the same result. ``save`` commits a page's rows, and optionally the checkpoint
and the coverage-ledger entry that they complete, in one transaction: the checkpoint
can never cover a record that is not committed.
"""

from __future__ import annotations

import operator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

from sqlalchemy import JSON, DateTime, String, Text, and_, bindparam, cast, func, literal_column, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from archiver import jsoncodec, ledger
from archiver.db import dialect, models as m, tallies
from archiver.db.dialect import is_sqlite, translated_errors
from archiver.db.quarantine import QuarantineLog
from archiver.lifecycle.admission import Admission
from archiver.ledger import Covered
from archiver.domain import Gap, Record
from archiver.times import utcnow

EVENT_COLUMNS = [c.name for c in m.events.columns if c.name not in ("id", "source", "account", "natural_key")]
_EVENT_TIMES = [c for c in EVENT_COLUMNS if isinstance(m.events.c[c].type, m.UTCDateTime)]
_EVENT_PLAIN = [c for c in EVENT_COLUMNS if c not in _EVENT_TIMES]
_event_plain = operator.attrgetter(*_EVENT_PLAIN)

# The hot path's rows are tuples in these column orders (see ``_Upserts``).
UPSERT_COLUMNS = {
    "records": ("source", "account", "natural_key", "record_at", "raw", "first_seen_at", "updated_at"),
    "events": ("source", "account", "natural_key", *_EVENT_PLAIN, *_EVENT_TIMES),
    "messages": ("source", "account", "message_id", "status", "status_rank", "status_at", "updated_at"),
    "history": ("source", "account", "message_id", "status", "status_detail", "seen_at"),
}


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    records: int
    pages: int


class Store:
    def __init__(self, engine: AsyncEngine, admission: Admission | None = None) -> None:
        self.engine = engine
        self.admission = admission or Admission()
        """What retention and erasure forbid never enters (see ``archiver.lifecycle.admission``)."""
        self._insert = dialect.insert(engine)
        self._upserts = _Upserts(self._insert, engine.dialect)
        self._sqlite = dialect.is_sqlite(engine)
        self.quarantine = QuarantineLog(engine, self._insert)
        self.fence: Callable[[AsyncConnection, str, str], Awaitable[None]] | None = None
        """Set by a daemon sharing PostgreSQL: every write first proves the account is still
        this process's (``archiver.leases``), inside the write's own transaction."""

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
        holds it, the wait (up to the busy timeout) happens there, never on the event loop
        (the bulk upserts that follow run on the loop's thread, see ``_Upserts.run``)."""
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
        records = self.admission.admit(records, now)
        async with self._transaction() as conn:
            await self._begin_writing(conn)
            if self.fence is not None:
                await self.fence(conn, source, account)
            if records:
                fresh = await self._upsert_records(conn, (source, account), _unique_by_key(records), now)
                await tallies.add(conn, source, account, fresh)
            if checkpoint is not None:
                await self._advance_checkpoint(conn, source, account, checkpoint, now)
            if window is not None:
                await conn.execute(m.coverage.insert(), {
                    "source": source, "account": account, "window_from": window.start, "window_to": window.end,
                    "records": window.records, "pages": window.pages, "finished_at": now})

    async def _upsert_records(self, conn: AsyncConnection, owner: tuple[str, str], records: Sequence[Record],
                              now: datetime) -> int:
        """Write the batch; how many of its keys are new to the account (for its tally)."""
        t, dumps = self._upserts.timer(), jsoncodec.dumps
        now_t = t(now)
        fresh = await self._upserts.records(conn, owner, [
            (*owner, r.key, t(r.at), dumps(r.raw), now_t, now_t) for r in records])
        await self._upserts.run(conn, "events", [
            (*owner, r.key, *_event_plain(e), t(e.occurred_at), t(e.done_at), t(e.created_at))
            for r in records for e in (r.event,)])
        await dialect.index_text(conn, owner, [r.key for r in records])
        await self._advance_messages(conn, owner, records, now_t, t)
        return fresh

    async def _advance_messages(self, conn: AsyncConnection, owner: tuple[str, str], records: Sequence[Record], now: Any,
                                t: Callable[[datetime | None], Any]) -> None:
        """Current status only moves forward; every status a message reached is kept once."""
        best: dict[str, Record] = {}
        history: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        for r in records:
            e = r.event
            if not e.message_id or not e.status:
                continue
            if e.message_id not in best or best[e.message_id].status_rank <= r.status_rank:
                best[e.message_id] = r
            change = (e.message_id, e.status, e.status_detail or "")
            if change not in history:
                history[change] = (*owner, *change, now)
        if not best:
            return
        await self._upserts.run(conn, "messages", [
            (*owner, mid, r.event.status, r.status_rank, t(r.event.occurred_at), now) for mid, r in best.items()])
        await self._upserts.run(conn, "history", list(history.values()))

    async def _advance_checkpoint(self, conn: AsyncConnection, source: str, account: str, position: datetime,
                                  now: datetime) -> None:
        stmt = self._insert(m.checkpoints).values(source=source, account=account, position=position, updated_at=now)
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=["source", "account"],
            set_={"position": stmt.excluded.position, "updated_at": stmt.excluded.updated_at},
            where=m.checkpoints.c.position < stmt.excluded.position,
        ))

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
        """Messages whose latest version is not final and that the provider still serves,
        with when they were sent."""
        e = m.events
        query = (select(e.c.message_id, func.min(e.c.occurred_at))
                 .where(_owned(e, source, account), e.c.is_final.is_(False), e.c.occurred_at >= since)
                 .group_by(e.c.message_id).order_by(e.c.message_id))
        async with self._reading() as conn:
            return [(mid, at) for mid, at in await conn.execute(query)]

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
        """Records joined to their events, oldest first, streamed from the server.

        ``raw`` comes back as the stored JSON text (compact, as written): the export
        copies it out instead of decoding and re-encoding the largest field."""
        r, e = m.records, m.events
        query = (select(cast(r.c.raw, Text).label("raw"), r.c.account, r.c.record_at, *[e.c[c] for c in EVENT_COLUMNS])
                 .join(e, and_(e.c.source == r.c.source, e.c.account == r.c.account, e.c.natural_key == r.c.natural_key))
                 .where(r.c.source == source).order_by(r.c.record_at, r.c.id))
        if since is not None:
            query = query.where(r.c.record_at >= since)
        if until is not None:
            query = query.where(r.c.record_at <= until)
        if account is not None:
            query = query.where(r.c.account == account)
        async with self._reading() as conn:
            result = await conn.stream(query.execution_options(yield_per=1000))
            async for rows in result.partitions():  # one hop to the driver per 1,000 rows, not per row
                for row in rows:
                    yield row


class _Upserts:
    """The hot path's statements, compiled once and run as plain driver ``executemany``.

    Rows arrive as tuples in ``UPSERT_COLUMNS`` order, times already converted by
    ``time``: going around SQLAlchemy's per-row parameter processing, and building no
    dict per row, keeps a record's write cost mostly inside the database driver.
    Everything else in ``Store`` uses Core.
    """

    def __init__(self, insert: Any, sql_dialect: Any) -> None:
        self._sqlite = is_sqlite(sql_dialect)
        self._pg_records = None if self._sqlite else _pg_records_from_arrays()
        self._compiled: dict[str, tuple[str, Any]] = {}
        for name, statement in _upsert_statements(insert).items():
            columns = UPSERT_COLUMNS[name]
            compiled = statement.values({c: bindparam(c) for c in columns}).compile(dialect=sql_dialect)
            order = [columns.index(k) for k in compiled.positiontup or []]  # the driver's parameter order
            reorder = None if order == list(range(len(columns))) else operator.itemgetter(*order)
            self._compiled[name] = (str(compiled), reorder)

    async def records(self, conn: AsyncConnection, owner: tuple[str, str], rows: list[tuple[Any, ...]]) -> int:
        """The records upsert; how many rows it inserted. PostgreSQL: one statement over
        arrays, ``RETURNING (xmax = 0)`` (true for an inserted row). SQLite: the keys
        already present are counted first (the write lock is held, so that is exact).
        A look-up before the upsert on PostgreSQL let a planner with a young table's
        statistics walk the account's whole time index per batch."""
        if self._pg_records is not None:
            columns = UPSERT_COLUMNS["records"]
            result = await conn.execute(self._pg_records, {c: [row[i] for row in rows] for i, c in enumerate(columns)})
            return sum(1 for (inserted,) in result if inserted)
        present = await dialect.count_present(conn, m.records, owner, [row[2] for row in rows])
        await self.run(conn, "records", rows)
        return len(rows) - present

    async def run(self, conn: AsyncConnection, name: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        sql, reorder = self._compiled[name]
        params = rows if reorder is None else [reorder(row) for row in rows]
        handle = await dialect.sqlite3_connection(conn) if self._sqlite else None
        if handle is not None:
            # On the loop's thread, synchronously: a few ms per 1,000 rows, and the write
            # lock is already held (``Store._begin_writing``). In aiosqlite's thread, the
            # driver's per-row GIL hand-offs with a busy event loop cost more CPU than
            # the statements: a 100k backfill took 11.5-14 s that way, 9-9.5 s this way.
            handle.executemany(sql, params)
        else:
            await conn.exec_driver_sql(sql, params)

    def timer(self) -> Callable[[datetime | None], Any]:
        """``time``, memoized for one batch: a record's times repeat (SendZen's position is
        its created_at; a message's status time is its event's), and a lookup costs a
        twentieth of formatting one."""
        memo: dict[datetime, Any] = {}
        convert = self.time

        def time(value: datetime | None) -> Any:
            if value is None:
                return None
            converted = memo.get(value)
            if converted is None:
                converted = memo[value] = convert(value)
            return converted

        return time

    def time(self, value: datetime | None) -> Any:
        return dialect.stored_time(value, self._sqlite)


def _pg_records_from_arrays() -> Any:
    """PostgreSQL's records upsert: the batch as one array per column, unnested into rows."""
    columns = UPSERT_COLUMNS["records"]
    when = DateTime(timezone=True)
    types = {"raw": Text(), "record_at": when, "first_seen_at": when, "updated_at": when}
    rows = select(*[func.unnest(bindparam(c, type_=ARRAY(types.get(c, String())))).label(c) for c in columns]).subquery()
    stmt = postgresql.insert(m.records).from_select(
        list(columns), select(*[cast(rows.c.raw, JSON) if c == "raw" else rows.c[c] for c in columns]))
    return _newest_version(stmt).returning(literal_column("xmax = 0"))


def _newest_version(stmt: Any) -> Any:
    """A record's upsert: its newest version, counted only when its raw text changed."""
    return stmt.on_conflict_do_update(
        index_elements=["source", "account", "natural_key"],
        set_={"raw": stmt.excluded.raw, "record_at": stmt.excluded.record_at,
              "updated_at": stmt.excluded.updated_at, "version": m.records.c.version + literal_column("1")},
        where=cast(m.records.c.raw, Text) != cast(stmt.excluded.raw, Text),
    )


def _upsert_statements(insert: Any) -> dict[str, Any]:
    """The four upserts of a batch, on natural keys: a record's newest version, its
    normalized event, the message's status (forward only) and the statuses it reached
    (each once)."""
    records = _newest_version(insert(m.records))
    stmt = insert(m.events)
    events = stmt.on_conflict_do_update(index_elements=["source", "account", "natural_key"],
                                        set_={c: stmt.excluded[c] for c in EVENT_COLUMNS})
    stmt = insert(m.messages)
    messages = stmt.on_conflict_do_update(
        index_elements=["source", "account", "message_id"],
        set_={"status": stmt.excluded.status, "status_rank": stmt.excluded.status_rank,
              "status_at": stmt.excluded.status_at, "updated_at": stmt.excluded.updated_at},
        where=m.messages.c.status_rank <= stmt.excluded.status_rank,
    )
    history = insert(m.status_history).on_conflict_do_nothing()
    return {"records": records, "events": events, "messages": messages, "history": history}


def _owned(table: Any, source: str, account: str) -> Any:
    return and_(table.c.source == source, table.c.account == account)


def _unique_by_key(records: Sequence[Record]) -> list[Record]:
    """One row per natural key (the last served wins): one statement may not touch a row twice."""
    return list({r.key: r for r in records}.values())
