"""The hot path: a batch of records into ``records`` and ``messages``.

``archiver.db.rows`` (pure) turns records into plain tuples (``wire``, ``crossing``), and those into
a batch of rows. Then, per database, as few round trips as the batch allows:

* SQLite (``SqliteWriter.save``): the records go to a writer process
  (``archiver.db.sqlite_writer``), which builds the rows and runs the whole
  transaction (write lock, multi-row ``INSERT … VALUES`` upserts, text index, tally,
  checkpoint, ledger, commit): the database works while the event loop fetches and
  parses the next pages, without sharing its GIL.
* PostgreSQL (``PostgresWriter.write``, inside ``Store``'s transaction): one statement,
  the records as one JSON text beside their raw texts, the upserts and the tally as CTEs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import orjson
from sqlalchemy import DateTime, String, Text, bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from archiver.db import models as m
from archiver.db.rows import (EVENT_PLAIN, EVENT_TIMES, MESSAGE, MESSAGE_ID, OCCURRED, ROW, STATUS, UPDATED,
                              Wired, crossing, micros)
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

    @staticmethod
    def request(save: Save) -> SqliteSave:
        """The save as the writer process reads it: times as microseconds (marshal, which
        sends it, has no datetimes; pickle took three times as long for one)."""
        w = save.window
        return SqliteSave(save.owner, micros(save.now), crossing(save.records),
                          None if save.checkpoint is None else micros(save.checkpoint),
                          None if w is None else (micros(w.start), micros(w.end), w.records, w.pages))


class PostgresWriter:
    """One statement a save: the wired records as one JSON array (``jsonb_array_elements``)
    zipped with their raw texts (a ``text[]``), and the upserts of ``records``,
    ``messages`` and the tally as data-modifying CTEs over them. One round trip, and the
    tally's row lock (which every save of the account takes) is held from that statement
    to the commit only.

    Each message's newest status is picked in SQL, from the batch itself, with
    ``rows_of``'s rules. The raw texts travel beside the JSON, not in it: inside it, each
    would be escaped by orjson and unescaped by the server again. The stored text is
    exactly the one ``rows.wire`` encoded."""

    batch = 500
    """Records a save should hold: a commit each (with ``fsync``), and memory bounded by
    this, not the backlog (eight windows of 1,000 took a 100k backfill to 101 MB; of 500,
    95 MB). 250 measured the same (10.36 → 10.42 s) here, where an fsync is cheap."""

    def __init__(self) -> None:
        self._statement = text(_upserts()).bindparams(
            bindparam("source", type_=String()), bindparam("account", type_=String()),
            bindparam("now", type_=DateTime(timezone=True)), bindparam("rows", type_=Text()),
            bindparam("raws", type_=postgresql.ARRAY(Text())))

    async def write(self, conn: AsyncConnection, owner: tuple[str, str], wired: list[Wired], now: datetime) -> None:
        """Upsert the batch and add its new records to the account's tally."""
        await conn.execute(self._statement, {
            "source": owner[0], "account": owner[1], "now": now,
            "rows": _json_rows([w[:-1] for w in wired]), "raws": [w[-1] for w in wired]})


def _json_rows(rows: list[Any]) -> str:
    """``rows`` as one JSON array; times as RFC 3339 with their offset, which ``timestamptz`` reads."""
    try:
        return orjson.dumps(rows).decode()
    except orjson.JSONEncodeError as exc:  # parsing leaves nothing orjson refuses: a bug, said as one line
        raise DatabaseError(f"database error: a batch value cannot be sent ({exc})") from exc


def _upserts() -> str:
    """The statement (see ``PostgresWriter``). A batch row ``v`` is a wired record without
    its raw text: ``v->>0`` the key, ``v->>1`` the position, ``p = v->2`` the plain values,
    ``t = v->3`` the times (each taken out once a row, not once a column), ``v->>4`` the
    status rank."""
    values = ["v->>0", "CAST(v->>1 AS timestamptz)",
              *[_cast(f"p->>{i}", m.records.c[name]) for i, name in enumerate(EVENT_PLAIN)],
              *[f"CAST(t->>{i} AS timestamptz)" for i in range(len(EVENT_TIMES))], "CAST(raw AS json)"]
    message_id, status = f"p->>{MESSAGE_ID}", f"p->>{STATUS}"
    reached = f"{message_id} <> '' AND {status} <> ''"
    return f"""
WITH batch AS MATERIALIZED (
    SELECT b.value AS v, b.value->2 AS p, b.value->3 AS t, b.raw, b.n
    FROM ROWS FROM (jsonb_array_elements(CAST(:rows AS jsonb)), unnest(:raws)) WITH ORDINALITY AS b(value, raw, n)
), written AS (
    INSERT INTO records (source, account, first_seen_at, updated_at, {", ".join(ROW)})
    SELECT :source, :account, :now, :now, {", ".join(values)} FROM batch ORDER BY n
    ON CONFLICT (source, account, natural_key) DO UPDATE SET updated_at = excluded.updated_at,
        version = records.version + 1, {", ".join(f"{c} = excluded.{c}" for c in UPDATED)}
    WHERE CAST(records.raw AS text) != CAST(excluded.raw AS text)
    RETURNING (xmax = 0) AS fresh
), statuses AS (
    INSERT INTO messages (source, account, updated_at, {", ".join(MESSAGE)})
    SELECT DISTINCT ON ({message_id}) :source, :account, :now, {message_id}, {status}, CAST(v->>4 AS integer),
        CAST(t->>{OCCURRED} AS timestamptz)
    FROM batch WHERE {reached}
    ORDER BY {message_id}, CAST(v->>4 AS integer) DESC, n DESC
    ON CONFLICT (source, account, message_id) DO UPDATE SET status = excluded.status,
        status_rank = excluded.status_rank, status_at = excluded.status_at, updated_at = excluded.updated_at
    WHERE messages.status_rank <= excluded.status_rank
)
INSERT INTO tallies (source, account, records) SELECT :source, :account, count(*) FILTER (WHERE fresh) FROM written
ON CONFLICT (source, account) DO UPDATE SET records = tallies.records + excluded.records"""


def _cast(value: str, column: Any) -> str:
    """A JSON value as ``column`` holds it: text as it is (a cast to ``varchar(n)`` would
    cut it short silently), the rest cast."""
    kind = column.type
    if isinstance(kind, String):  # Text is a String
        return value
    return f"CAST({value} AS {kind.compile(dialect=postgresql.dialect())})"
