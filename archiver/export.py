"""``archiver export``: one line per archived record, streamed, JSONL or CSV.

The normalized field names are a contract (docs/export-format.md): scripts read them. Fields may
be added; none may be renamed.
"""

from __future__ import annotations

import csv
import os
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, TextIO

from sqlalchemy import Select, Text, cast, select

from archiver import jsoncodec
from archiver.db import dialect, models as m
from archiver.db.store import Store, records_of
from archiver.times import rfc3339

CONTRACT_FIELDS = [
    "source", "account", "event_type", "message_id", "direction", "status", "status_detail",
    "occurred_at", "done_at", "sender", "recipient", "content_type", "text", "error_code",
    "error_title", "created_at",
]
EXTRA_FIELDS = [
    "price", "currency", "conversation_id", "conversation_origin", "pricing_category", "billable",
    "reaction", "interactive_id", "media_id", "media_mime_type", "is_final", "parse_error",
]
FIELDS = CONTRACT_FIELDS + EXTRA_FIELDS + ["raw"]


OBJECTS = {"head": CONTRACT_FIELDS[:7], "body": CONTRACT_FIELDS[9:15], "tail": EXTRA_FIELDS[1:]}
"""The runs of a line's fields that the database writes as JSON objects, one each. The
others are written here: the three times (reformatted by SQLite's text functions, they
took a fifth of a 100k export) and ``price`` (SQLite's JSON writes a float with 15
digits, not the 17 a double may need)."""
assert CONTRACT_FIELDS[7:9] == ["occurred_at", "done_at"] and CONTRACT_FIELDS[15:] == ["created_at"]
assert EXTRA_FIELDS[0] == "price"
TIME_FIELDS = ("occurred_at", "done_at", "created_at")


def line_query(on_sqlite: bool) -> Select[Any]:
    """The records as export lines' columns (``raw``, ``head``, ``occurred_at``,
    ``done_at``, ``body``, ``created_at``, ``price``, ``tail``), to be narrowed and
    ordered by the caller. The database writes most normalized fields as JSON itself:
    per record that is three columns, not 26 values turned into Python objects, a dict
    and JSON again."""
    r = m.records
    (head, body, tail), from_clause = dialect.json_objects(
        {label: [(name, r.c[name]) for name in names] for label, names in OBJECTS.items()}, r, on_sqlite)
    occurred, done, created = (dialect.time_text(r.c[name], on_sqlite) for name in TIME_FIELDS)
    return select(cast(r.c.raw, Text).label("raw"), head, occurred, done, body, created, r.c.price,
                  tail).select_from(from_clause)


def line_text(row: Any) -> str:
    """A JSONL line of a row of ``line_query``: ``raw`` as stored, last."""
    raw, head, occurred, done, body, created, price, tail = row
    return (f'{head[:-1]},"occurred_at":{_time(occurred)},"done_at":{_time(done)},{body[1:-1]},'
            f'"created_at":{_time(created)},"price":{"null" if price is None else jsoncodec.dumps(price)},'
            f'{tail[1:-1]},"raw":{raw}}}\n')


def _time(stored: str | None) -> str:
    return "null" if stored is None else f'"{rfc3339(stored)}"'


def line_fields(row: Any) -> dict[str, Any]:
    """The normalized fields of a row of ``line_query``, by name, in ``FIELDS``' order."""
    _, head, occurred, done, body, created, price, tail = row
    return {**jsoncodec.loads(head), "occurred_at": rfc3339(occurred), "done_at": rfc3339(done),
            **jsoncodec.loads(body), "created_at": rfc3339(created), "price": price, **jsoncodec.loads(tail)}


async def export(store: Store, source: str, out: TextIO, *, fmt: str = "jsonl",
                 since: datetime | None = None, until: datetime | None = None, account: str | None = None) -> int:
    """Write every record of ``source`` (optionally a time range); the count written.

    ``raw`` is the record's stored JSON text, written as is: in JSONL as the last
    member of each object, in CSV as the column's string.
    """
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer:
        writer.writerow(FIELDS)
    count = 0
    async for row in store.stream(records_of(line_query(dialect.is_sqlite(store.engine)), source, since, until, account)):
        if writer:
            writer.writerow([*line_fields(row).values(), row.raw])  # line_fields: in FIELDS' order
        else:
            out.write(line_text(row))
        count += 1
    return count


async def export_quarantined(store: Store, source: str, out: TextIO) -> int:
    """The quarantine of ``source`` as JSONL (``raw``, ``reason``, ``seen_at``, ``account``),
    for whoever fixes the parser; ``raw`` is the record as served."""
    count = 0
    async for row in store.quarantine.rows(source):
        line = {"account": row.account, "reason": row.reason, "seen_at": rfc3339(row.seen_at)}
        out.write(f"{jsoncodec.dumps(line)[:-1]},\"raw\":{row.raw}}}\n")
        count += 1
    return count


@contextmanager
def atomic_output(path: str) -> Iterator[TextIO]:
    """A file that appears at ``path`` only once fully written: a failed export leaves
    no half-written file behind (nor clobbers an older complete one). A path that is not
    a regular file (``/dev/null``, ``/dev/stdout``, a named pipe) is written as it is:
    renaming over it would replace the device with a file."""
    target = Path(path)
    if target.exists() and not target.is_file():
        with open(target, "w", encoding="utf-8", newline="") as out:
            yield out
        return
    tmp = target.with_name(f".{target.name}.partial")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)

