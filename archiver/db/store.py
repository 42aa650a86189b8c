"""Every read and write the archiver makes, as short transactions of batched statements.

Writes are upserts on natural keys, so any page may be written any number of times
with the same result. ``save`` commits a page's rows, and optionally the checkpoint
and the coverage-ledger entry that they complete, in one transaction: the checkpoint
can never cover a record that is not committed.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Sequence

from sqlalchemy import Text, and_, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from archiver import jsoncodec
from archiver.db import models as m
from archiver.sources.base import Gap, Record
from archiver.times import utcnow

EVENT_COLUMNS = [c.name for c in m.events.columns if c.name not in ("id", "source", "account", "natural_key")]


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    records: int
    pages: int


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._upserts = _Upserts(self._insert, engine.dialect)

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
        owner = {"source": source, "account": account}
        async with self.engine.begin() as conn:
            if records:
                await self._upsert_records(conn, owner, _unique_by_key(records), now)
            if checkpoint is not None:
                await self._advance_checkpoint(conn, owner, checkpoint, now)
            if window is not None:
                await conn.execute(m.coverage.insert(), {
                    **owner, "window_from": window.start, "window_to": window.end,
                    "records": window.records, "pages": window.pages, "finished_at": now})

    async def _upsert_records(self, conn: AsyncConnection, owner: dict[str, str], records: Sequence[Record], now: datetime) -> None:
        await self._upserts.run(conn, "records", [
            {**owner, "natural_key": r.key, "record_at": r.at, "raw": jsoncodec.dumps(r.raw), "first_seen_at": now,
             "updated_at": now} for r in records])
        await self._upserts.run(conn, "events", [{**owner, "natural_key": r.key, **_event_row(r)} for r in records])
        await self._advance_messages(conn, owner, records, now)

    async def _advance_messages(self, conn: AsyncConnection, owner: dict[str, str], records: Sequence[Record], now: datetime) -> None:
        """Current status only moves forward; every status a message reached is kept once."""
        best: dict[str, Record] = {}
        history: dict[tuple[str, str, str], dict[str, Any]] = {}
        for r in records:
            e = r.event
            if not e.message_id or not e.status:
                continue
            if e.message_id not in best or best[e.message_id].status_rank <= r.status_rank:
                best[e.message_id] = r
            change = (e.message_id, e.status, e.status_detail or "")
            history.setdefault(change, {**owner, "message_id": change[0], "status": change[1],
                                        "status_detail": change[2], "seen_at": now})
        if not best:
            return
        await self._upserts.run(conn, "messages", [
            {**owner, "message_id": mid, "status": r.event.status, "status_rank": r.status_rank,
             "status_at": r.event.occurred_at, "updated_at": now} for mid, r in best.items()])
        await self._upserts.run(conn, "history", list(history.values()))

    async def _advance_checkpoint(self, conn: AsyncConnection, owner: dict[str, str], position: datetime, now: datetime) -> None:
        stmt = self._insert(m.checkpoints).values(**owner, position=position, updated_at=now)
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=["source", "account"],
            set_={"position": stmt.excluded.position, "updated_at": stmt.excluded.updated_at},
            where=m.checkpoints.c.position < stmt.excluded.position,
        ))

    async def checkpoint(self, source: str, account: str) -> datetime | None:
        async with self.engine.connect() as conn:
            return await conn.scalar(select(m.checkpoints.c.position).where(_owned(m.checkpoints, source, account)))

    async def set_checkpoint(self, source: str, account: str, position: datetime) -> None:
        """Force the checkpoint (tests, operators rewinding); ``save`` only moves it forward."""
        async with self.engine.begin() as conn:
            await conn.execute(m.checkpoints.delete().where(_owned(m.checkpoints, source, account)))
            await conn.execute(m.checkpoints.insert(), {"source": source, "account": account,
                                                        "position": position, "updated_at": utcnow()})

    async def add_gap(self, source: str, account: str, gap: Gap) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(self._insert(m.gaps).on_conflict_do_nothing(), {
                "source": source, "account": account, "gap_from": gap.start, "gap_to": gap.end,
                "reason": gap.reason, "detected_at": utcnow()})

    async def gaps(self, source: str, account: str) -> list[Gap]:
        query = select(m.gaps).where(_owned(m.gaps, source, account)).order_by(m.gaps.c.gap_from)
        async with self.engine.connect() as conn:
            return [Gap(r.gap_from, r.gap_to, r.reason) for r in await conn.execute(query)]

    async def pending_message_ids(self, source: str, account: str, since: datetime) -> list[str]:
        """Messages whose latest version is not final and that the provider still serves."""
        e = m.events
        query = (select(e.c.message_id).distinct()
                 .where(_owned(e, source, account), e.c.is_final.is_(False), e.c.occurred_at >= since)
                 .order_by(e.c.message_id))
        async with self.engine.connect() as conn:
            return list(await conn.scalars(query))

    async def start_run(self, source: str, account: str, kind: str) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(m.runs.insert().values(source=source, account=account, kind=kind,
                                                               started_at=utcnow()).returning(m.runs.c.id))
            return int(result.scalar_one())

    async def finish_run(self, run_id: int, *, ok: bool, records: int, requests: int, error: str | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(m.runs.update().where(m.runs.c.id == run_id).values(
                finished_at=utcnow(), ok=ok, records=records, requests=requests, error=error))

    async def last_runs(self, source: str, account: str) -> tuple[Any, Any]:
        """The latest successful run and the latest failed one (rows or ``None``)."""
        r = m.runs
        async with self.engine.connect() as conn:
            ok = (await conn.execute(select(r).where(_owned(r, source, account), r.c.ok.is_(True))
                                     .order_by(r.c.finished_at.desc()).limit(1))).first()
            bad = (await conn.execute(select(r).where(_owned(r, source, account), r.c.ok.is_(False))
                                      .order_by(r.c.finished_at.desc()).limit(1))).first()
        return ok, bad

    async def count_records(self, source: str, account: str) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(m.records)
                                         .where(_owned(m.records, source, account))) or 0)

    async def coverage(self, source: str, account: str) -> list[tuple[datetime, datetime]]:
        c = m.coverage
        query = select(c.c.window_from, c.c.window_to).where(_owned(c, source, account)).order_by(c.c.window_from)
        async with self.engine.connect() as conn:
            return [(a, b) for a, b in await conn.execute(query)]

    async def export_rows(self, source: str, since: datetime | None, until: datetime | None) -> AsyncIterator[Any]:
        """Records joined to their events, oldest first, streamed from the server."""
        r, e = m.records, m.events
        query = (select(r.c.raw, r.c.account, *[e.c[c] for c in EVENT_COLUMNS])
                 .join(e, and_(e.c.source == r.c.source, e.c.account == r.c.account, e.c.natural_key == r.c.natural_key))
                 .where(r.c.source == source).order_by(r.c.record_at, r.c.id))
        if since is not None:
            query = query.where(r.c.record_at >= since)
        if until is not None:
            query = query.where(r.c.record_at <= until)
        async with self.engine.connect() as conn:
            result = await conn.stream(query.execution_options(yield_per=1000))
            async for row in result:
                yield row


class _Upserts:
    """The hot path's statements, compiled once and run as plain driver ``executemany``.

    Going around SQLAlchemy's per-row parameter processing halves the CPU a page costs;
    the values are converted here instead (UTC datetimes; JSON as text, which both
    SQLite and asyncpg's json codec take). Everything else in ``Store`` uses Core.
    """

    def __init__(self, insert: Any, dialect: Any) -> None:
        self._sqlite = dialect.name == "sqlite"
        stmt = insert(m.records)
        records = stmt.on_conflict_do_update(
            index_elements=["source", "account", "natural_key"],
            set_={"raw": stmt.excluded.raw, "record_at": stmt.excluded.record_at,
                  "updated_at": stmt.excluded.updated_at, "version": m.records.c.version + 1},
            where=cast(m.records.c.raw, Text) != cast(stmt.excluded.raw, Text),  # only real changes
        )
        stmt = insert(m.events)
        events = stmt.on_conflict_do_update(
            index_elements=["source", "account", "natural_key"],
            set_={c: stmt.excluded[c] for c in EVENT_COLUMNS},
        )
        stmt = insert(m.messages)
        messages = stmt.on_conflict_do_update(
            index_elements=["source", "account", "message_id"],
            set_={"status": stmt.excluded.status, "status_rank": stmt.excluded.status_rank,
                  "status_at": stmt.excluded.status_at, "updated_at": stmt.excluded.updated_at},
            where=m.messages.c.status_rank <= stmt.excluded.status_rank,  # forward only
        )
        history = insert(m.status_history).on_conflict_do_nothing()
        self._compiled = {}
        for name, statement, table in (("records", records, m.records), ("events", events, m.events),
                                       ("messages", messages, m.messages), ("history", history, m.status_history)):
            columns = [c.name for c in table.columns if c.name not in ("id", "version")]
            compiled = statement.values({c: bindparam(c) for c in columns}).compile(dialect=dialect)
            constants = {k: b.value for k, b in compiled.binds.items() if k not in columns}
            times = {c.name for c in table.columns if isinstance(c.type, m.UTCDateTime)}
            order = list(compiled.positiontup or [])
            self._compiled[name] = (str(compiled), operator.itemgetter(*order), constants,
                                    [i for i, k in enumerate(order) if k in times])

    async def run(self, conn: AsyncConnection, name: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        sql, values_of, constants, time_positions = self._compiled[name]
        when = functools.lru_cache(maxsize=64)(self._time)  # rows share "now" and equal timestamps
        params = []
        for row in rows:
            row.update(constants)
            values = list(values_of(row))
            for i in time_positions:
                values[i] = when(values[i])
            params.append(tuple(values))
        await conn.exec_driver_sql(sql, params)

    def _time(self, value: datetime | None) -> Any:
        """UTC; on SQLite in the very text form SQLAlchemy's DateTime stores and compares."""
        if value is None:
            return None
        utc = value if value.tzinfo is timezone.utc else value.astimezone(timezone.utc)
        return utc.isoformat(sep=" ", timespec="microseconds")[:26] if self._sqlite else utc


def _owned(table: Any, source: str, account: str) -> Any:
    return and_(table.c.source == source, table.c.account == account)


def _unique_by_key(records: Sequence[Record]) -> list[Record]:
    """One row per natural key (the last served wins): one statement may not touch a row twice."""
    return list({r.key: r for r in records}.values())


def _event_row(record: Record) -> dict[str, Any]:
    return {c: getattr(record.event, c) for c in EVENT_COLUMNS}
