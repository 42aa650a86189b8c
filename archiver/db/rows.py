"""A batch of records as plain rows for ``records`` and ``messages``.

Pure, and free of SQLAlchemy: SQLite's writer process (``archiver.db.sqlite_writer``)
builds its rows here (``rows_of``), from records as the archiver's process sends them
(``crossing``): the event loop only picks each record's values, and the writer encodes
raw and builds the rows. PostgreSQL's writer sends ``wire``'s tuples as they are, and its
statement builds the rows by the same rules.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence

from archiver import jsoncodec
from archiver.domain import Event, Record

EVENT_TIMES = ("occurred_at", "done_at", "created_at")  # in this order in ``wire`` and ``crossing``
EVENT_PLAIN = tuple(f.name for f in fields(Event) if f.name not in EVENT_TIMES)
ROW = ("natural_key", "record_at", *EVENT_PLAIN, *EVENT_TIMES, "raw")
"""A record's values in a batch, in this order; source, account and the write's time
are the statement's own parameters."""
UPDATED = [c for c in ROW if c != "natural_key"]
"""What a new version of a record replaces (and ``version`` counts)."""
MESSAGE = ("message_id", "status", "status_rank", "status_at")

Wired = tuple[str, Any, tuple[Any, ...], tuple[Any, ...], int, Any]
"""A record on its way to a writer: natural key, position, the event's plain values
(``EVENT_PLAIN``) and times (``EVENT_TIMES``), status rank, raw (its JSON text; on its
way to SQLite's writer process, as parsed)."""

_plain, _times = operator.attrgetter(*EVENT_PLAIN), operator.attrgetter(*EVENT_TIMES)
MESSAGE_ID, STATUS = (EVENT_PLAIN.index(n) for n in ("message_id", "status"))
OCCURRED = EVENT_TIMES.index("occurred_at")
"""Where ``rows_of`` (and PostgreSQL's statement, reading a wired record) finds these."""
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)


@dataclass
class Batch:
    """Rows in ``ROW`` order (one per record) and ``MESSAGE`` order."""

    rows: list[list[Any]]
    messages: list[list[Any]]


def wire(records: Sequence[Record]) -> list[Wired]:
    """``records`` as plain tuples in the archiver's own process (PostgreSQL's writer):
    times as they are, raw as its JSON text."""
    dumps = jsoncodec.dumps
    return [(r.key, r.at, _plain(r.event), _times(r.event), r.status_rank, dumps(r.raw)) for r in records]


def crossing(records: Sequence[Record]) -> list[Wired]:
    """``records`` as plain tuples to cross to SQLite's writer process (marshalled:
    ``sqlite_writer.encode``): times as ``micros``, raw as parsed, which that process
    encodes (``rows_of``): sending it costs the event loop less than encoding it would."""
    wired = []
    for r in records:
        e, at = r.event, micros(r.at)
        occurred, done, created = e.occurred_at, e.done_at, e.created_at  # EVENT_TIMES, spelt out: the hot loop
        times = (occurred and micros(occurred), done and micros(done),
                 at if created is r.at else created and micros(created))
        wired.append((r.key, at, _plain(e), times, r.status_rank, r.raw))
    return wired


def rows_of(records: Sequence[Wired], time: Callable[[Any], Any]) -> Batch:
    """The batch's rows, raw as JSON text, and each message's newest status (status only
    moves forward; the statuses it reached are read from ``records``: the view
    ``status_history``); records as ``crossing`` sent them to SQLite's writer process.
    ``time`` turns a time into the database's (``memoized``, where that costs more than a
    dict lookup)."""
    rows, best, dumps = [], {}, jsoncodec.dumps
    for key, at, plain, times, rank, raw in records:
        rows.append([key, time(at), *plain, *map(time, times), dumps(raw)])
        message_id, status = plain[MESSAGE_ID], plain[STATUS]
        if message_id and status:
            if message_id not in best or best[message_id][1] <= rank:
                best[message_id] = (status, rank, times[OCCURRED])
    messages = [[mid, status, rank, time(at)] for mid, (status, rank, at) in sorted(best.items())]
    return Batch(rows, messages)  # key order: see Store


def memoized(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert``, remembered for one batch: a record's times repeat (SendZen's position
    is its created_at; a status's time is its event's), and looking up a number costs a
    twentieth of formatting it. (Not for datetimes: hashing an aware one costs more than
    turning it into microseconds.)"""
    memo: dict[Any, Any] = {None: None}
    get = memo.get

    def time(value: Any) -> Any:
        converted = get(value, memo)
        if converted is memo:
            converted = memo[value] = convert(value)
        return converted

    return time


def micros(moment: datetime) -> int:
    """An aware time as microseconds since 1970 (exact; a naive time raises TypeError)."""
    return (moment - EPOCH) // MICROSECOND


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)
