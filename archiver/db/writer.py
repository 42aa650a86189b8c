"""The hot path: a batch of records into ``records`` and ``messages``.

``archiver.db.rows`` (pure) turns records into plain tuples (``wire``, ``crossing``), and those into
a batch of rows. Then, per database, as few round trips as the batch allows:

* SQLite (``SqliteWriter.save``): the records go to a writer process
  (``archiver.db.sqlite_writer``), which builds the rows and runs the whole
  transaction (write lock, multi-row ``INSERT … VALUES`` upserts, text index, tally,
  checkpoint, ledger, commit): the database works while the event loop fetches and
  parses the next pages, without sharing its GIL.
* PostgreSQL (``PostgresWriter.save``): one statement, its own transaction: the records
  as one JSON text beside their raw texts; the upserts, the tally, the checkpoint and the
  ledger entry as CTEs; the lease checked first when the database is shared.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import orjson
from sqlalchemy import BigInteger, DateTime, Integer, String, Text, bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from archiver.db import dialect, fencing, models as m
from archiver.db.connect import autocommit_twin
from archiver.db.fencing import Fence
from archiver.db.rows import (EVENT_PLAIN, EVENT_TIMES, MESSAGE, MESSAGE_ID, OCCURRED, ROW, STATUS, UPDATED,
                              crossing, micros, wire)
from archiver.db.sqlite_writer import SqliteSave
from archiver.db.writer_process import WriterProcess
from archiver.domain import Record
from archiver.errors import DatabaseError


@dataclass(frozen=True)
class Window:
    """A coverage-ledger entry: a window fetched whole."""

    start: datetime
    end: datetime
    records: int
    pages: int


@dataclass(frozen=True)
class Save:
    """One ``Store.save``: its records (one per natural key, in key order), and the
    checkpoint and window it completes."""

    owner: tuple[str, str]
    records: Sequence[Record]
    now: datetime
    checkpoint: datetime | None = None
    window: Window | None = None


class SqliteWriter:
    """Sends each save to SQLite's writer process, and waits for its commit."""

    batch = 250
    """Records a save should hold (``Store.write_batch``). A save is held twice while it
    crosses (the loop's records, the writer's rows): 250, not 500, keep a backfill with its
    writer 2.6 MB lower, as fast (interleaved, 7 rounds: 9.38 → 9.01 s)."""

    def __init__(self, database: str) -> None:
        self.process = WriterProcess(database)

    async def save(self, save: Save) -> None:
        await self.process.run(self.request(save))

    async def close(self) -> None:
        await self.process.close()

    @staticmethod
    def request(save: Save) -> SqliteSave:
        """The save as the writer process reads it: times as microseconds (marshal, which
        sends it, has no datetimes; pickle took three times as long for one)."""
        w = save.window
        return SqliteSave(save.owner, micros(save.now), crossing(save.records),
                          None if save.checkpoint is None else micros(save.checkpoint),
                          None if w is None else (micros(w.start), micros(w.end), w.records, w.pages))


class PostgresWriter:
    """One statement a save, committed alone (``connect.autocommit_twin``): the wired records
    as one JSON array (``jsonb_array_elements``) zipped with their raw texts (a
    ``text[]``); the upserts of ``records`` and ``messages``, the tally, the checkpoint
    and the coverage entry as data-modifying CTEs over them; and, for a process sharing
    the database, its lease checked first (``archiver.db.fencing``). Two round trips (the
    pool's ping, the statement), and the rows every save of the account locks (lease,
    tally, checkpoint) are held until the statement's own commit, never across a wait for
    this process's event loop.

    Each message's newest status is picked in SQL, from the batch itself, with
    ``rows_of``'s rules. The raw texts travel beside the JSON, not in it: inside it, each
    would be escaped by orjson and unescaped by the server again. The stored text is
    exactly the one ``rows.wire`` encoded."""

    batch = 500
    """Records a save should hold: a commit each (with ``fsync``), and memory bounded by
    this, not the backlog (eight windows of 1,000 took a 100k backfill to 101 MB; of 500,
    95 MB). With the saves one statement each, 250 took 90-93 MB and about a tenth longer."""

    sending = 3
    """Saves sent at once; the others wait before their batch is encoded (its JSON text,
    then the driver's message of it). Eight at once took a 100k backfill to 98-101 MB,
    no faster: on two cores they ran against the event loop."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = autocommit_twin(engine)
        self._sending = asyncio.Semaphore(self.sending)
        times = {name: DateTime(timezone=True) for name in ("now", "checkpoint", "window_from", "window_to")}
        types = {"source": String(), "account": String(), "rows": Text(),
                 "raws": dialect.postgresql().ARRAY(Text()), "window_records": Integer(), "window_pages": Integer(),
                 "owner": String(), "epoch": BigInteger(), **times}
        self._statements = {fenced: text(_statement(fenced)).bindparams(
            *[bindparam(name, type_=kind) for name, kind in types.items() if fenced or name not in ("owner", "epoch")])
            for fenced in (False, True)}

    async def save(self, save: Save, fence: Fence | None) -> bool:
        """Make the save; False if ``fence`` no longer holds (then nothing was written)."""
        async with self._sending, self.engine.connect() as conn:
            return bool(await conn.scalar(self._statements[fence is not None], self._params(save, fence)))

    @staticmethod
    def _params(save: Save, fence: Fence | None) -> dict[str, Any]:
        wired = wire(save.records) if save.records else []
        w = save.window
        params: dict[str, Any] = {
            "source": save.owner[0], "account": save.owner[1], "now": save.now,
            "rows": _json_rows([x[:-1] for x in wired]), "raws": [x[-1] for x in wired],
            "checkpoint": save.checkpoint, "window_from": w and w.start, "window_to": w and w.end,
            "window_records": w and w.records, "window_pages": w and w.pages}
        if fence is not None:
            params.update(owner=fence.owner, epoch=fence.epoch)
        return params

    async def close(self) -> None:
        await self.engine.dispose()


def _json_rows(rows: list[Any]) -> str:
    """``rows`` as one JSON array; times as RFC 3339 with their offset, which ``timestamptz`` reads."""
    try:
        return orjson.dumps(rows).decode()
    except orjson.JSONEncodeError as exc:  # parsing leaves nothing orjson refuses: a bug, said as one line
        raise DatabaseError(f"database error: a batch value cannot be sent ({exc})") from exc


def _statement(fenced: bool) -> str:
    """The statement (see ``PostgresWriter``); it answers whether the fence held. A batch
    row ``v`` is a wired record without its raw text: ``v->>0`` the key, ``v->>1`` the
    position, ``p = v->2`` the plain values, ``t = v->3`` the times (each taken out once a
    row, not once a column), ``v->>4`` the status rank.

    Every write reads ``fence`` (once, first), so a lost lease writes nothing. The main
    query reads ``tally`` (which reads ``written``), so the locks come in a save's order
    (``tallies.lock``): its records, its account's tally, then the rest at the statement's
    end (messages, checkpoint, coverage, and what the trigger keeps)."""
    values = ["v->>0", "CAST(v->>1 AS timestamptz)",
              *[_cast(f"p->>{i}", m.records.c[name]) for i, name in enumerate(EVENT_PLAIN)],
              *[f"CAST(t->>{i} AS timestamptz)" for i in range(len(EVENT_TIMES))], "CAST(raw AS json)"]
    message_id, status = f"p->>{MESSAGE_ID}", f"p->>{STATUS}"
    reached = f"{message_id} <> '' AND {status} <> ''"
    return f"""
WITH fence AS MATERIALIZED ({fencing.HELD if fenced else "SELECT 1"}
), batch AS MATERIALIZED (
    SELECT b.value AS v, b.value->2 AS p, b.value->3 AS t, b.raw, b.n
    FROM ROWS FROM (jsonb_array_elements(CAST(:rows AS jsonb)), unnest(:raws)) WITH ORDINALITY AS b(value, raw, n)
    WHERE EXISTS (SELECT FROM fence)
), written AS (
    INSERT INTO records (source, account, first_seen_at, updated_at, {", ".join(ROW)})
    SELECT :source, :account, :now, :now, {", ".join(values)} FROM batch ORDER BY n
    ON CONFLICT (source, account, natural_key) DO UPDATE SET updated_at = excluded.updated_at,
        version = records.version + 1, {", ".join(f"{c} = excluded.{c}" for c in UPDATED)}
    WHERE CAST(records.raw AS text) != CAST(excluded.raw AS text)
    RETURNING (xmax = 0) AS fresh
), tally AS (
    INSERT INTO tallies (source, account, records)
    SELECT :source, :account, count(*) FILTER (WHERE fresh) FROM written HAVING count(*) FILTER (WHERE fresh) > 0
    ON CONFLICT (source, account) DO UPDATE SET records = tallies.records + excluded.records
    RETURNING 1
), statuses AS (
    INSERT INTO messages (source, account, updated_at, {", ".join(MESSAGE)})
    SELECT DISTINCT ON ({message_id}) :source, :account, :now, {message_id}, {status}, CAST(v->>4 AS integer),
        CAST(t->>{OCCURRED} AS timestamptz)
    FROM batch WHERE {reached}
    ORDER BY {message_id}, CAST(v->>4 AS integer) DESC, n DESC
    ON CONFLICT (source, account, message_id) DO UPDATE SET status = excluded.status,
        status_rank = excluded.status_rank, status_at = excluded.status_at, updated_at = excluded.updated_at
    WHERE messages.status_rank <= excluded.status_rank
), moved AS (
    INSERT INTO checkpoints (source, account, position, updated_at)
    SELECT :source, :account, :checkpoint, :now FROM fence WHERE :checkpoint IS NOT NULL
    ON CONFLICT (source, account) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
    WHERE checkpoints.position < excluded.position
), covered AS (
    INSERT INTO coverage (source, account, window_from, window_to, records, pages, finished_at)
    SELECT :source, :account, :window_from, :window_to, :window_records, :window_pages, :now
    FROM fence WHERE :window_from IS NOT NULL
)
SELECT EXISTS (SELECT FROM fence) FROM (SELECT count(*) FROM tally) AS in_lock_order"""


def _cast(value: str, column: Any) -> str:
    """A JSON value as ``column`` holds it: text as it is (a cast to ``varchar(n)`` would
    cut it short silently), the rest cast."""
    kind = column.type
    if isinstance(kind, String):  # Text is a String
        return value
    return f"CAST({value} AS {kind.compile(dialect=dialect.postgresql().dialect())})"
