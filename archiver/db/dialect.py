"""Everything that differs between SQLite and PostgreSQL, in one place.

The rest of ``archiver.db`` asks this module instead of testing ``dialect.name``:
which ``INSERT … ON CONFLICT`` to build, how a time is stored, how text is searched,
and which errors the drivers raise (turned into ``DatabaseError`` by
``translated_errors``).
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from types import ModuleType
from typing import Any, Callable, Iterator

from sqlalchemy import Boolean, String, Text, case, cast, func, lateral, literal_column, select, table, true, type_coerce
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from archiver.errors import DatabaseError, one_line
from archiver.times import sqlite_text


def is_sqlite(bind: Any) -> bool:
    """``bind``: an engine, a connection or a dialect."""
    return getattr(bind, "dialect", bind).name == "sqlite"


def postgresql() -> ModuleType:
    """SQLAlchemy's PostgreSQL dialect, imported when first used: with its drivers'
    dialects it is 40 ms that no SQLite command needs to pay."""
    from sqlalchemy.dialects import postgresql as module

    return module


def insert(bind: Any) -> Callable[..., Any]:
    """The dialect's ``insert`` (both have ``on_conflict_do_update``/``_do_nothing``)."""
    return sqlite.insert if is_sqlite(bind) else postgresql().insert


def as_utc(value: datetime) -> datetime:
    """Aware UTC; a naive time is a bug upstream, never silently guessed."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value if value.tzinfo is timezone.utc else value.astimezone(timezone.utc)


def stored_time(value: datetime | None, on_sqlite: bool) -> Any:
    """A time as the database stores it: SQLite text (which sorts as time does) or an
    aware datetime for PostgreSQL's ``timestamptz``. The one formatter of both the
    ``UTCDateTime`` column type and the bulk writer's rows."""
    if value is None:
        return None
    utc = value if value.tzinfo is timezone.utc else as_utc(value)  # the hot path: already UTC
    return sqlite_text(utc) if on_sqlite else utc


def time_text(column: Any, on_sqlite: bool) -> Any:
    """``column`` (a time) read as text in SQLite's stored form, ``YYYY-MM-DD
    HH:MM:SS.ffffff`` UTC: as stored on SQLite, formatted by PostgreSQL. Named after
    the column, so a row still answers to ``row.<name>``."""
    if on_sqlite:
        return type_coerce(column, String).label(column.name)
    utc = func.timezone("UTC", column)
    return func.to_char(utc, "YYYY-MM-DD HH24:MI:SS.US", type_=String).label(column.name)


def json_objects(objects: dict[str, list[tuple[str, Any]]], table: Any, on_sqlite: bool) -> tuple[list[Any], Any]:
    """Each of ``objects`` (a label → its members: name and SQL expression of ``table``'s
    columns, in order) as a column of compact JSON text (``{"a":1,"b":null}``: the
    separators and escapes orjson writes), and the FROM clause they need. SQLite's
    ``json_object`` needs only ``table``; PostgreSQL's ``json_build_object`` puts spaces
    around its separators, so there each object is ``row_to_json`` of a lateral row.
    Booleans come out as ``true``/``false`` on both (SQLite stores them as 0 and 1).
    SQLite's JSON takes a third off an export; PostgreSQL's costs its server about what
    orjson costs the archiver (0.5 s a 100k export), so there it is one path, not faster."""
    if on_sqlite:
        columns = [func.json_object(*[part for name, value in members for part in (name, _sqlite_json(value))])
                   .label(label) for label, members in objects.items()]
        return columns, table
    rows = [lateral(select(*[value.label(name) for name, value in members]).correlate(table), name=label)
            for label, members in objects.items()]
    for row in rows:
        table = table.join(row, true())
    return [cast(func.row_to_json(row.table_valued()), Text).label(row.name) for row in rows], table


def _sqlite_json(value: Any) -> Any:
    if isinstance(getattr(value, "type", None), Boolean):
        return case((value, func.json("true")), (~value, func.json("false")))  # NULL: neither
    return value


def loaded_time(value: datetime | str | None) -> datetime | None:
    """A stored time back as aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


@contextmanager
def translated_errors() -> Iterator[None]:
    """Driver errors (SQLAlchemy's wrapped ones, and sqlite3's from the writer process)
    leave as ``DatabaseError`` with the driver's first line."""
    try:
        yield
    except (DBAPIError, sqlite3.Error) as exc:
        raise DatabaseError(f"database error: {one_line(str(getattr(exc, 'orig', None) or exc))}") from exc


async def refresh_statistics(conn: AsyncConnection, *tables: str) -> None:
    """PostgreSQL: ``ANALYZE`` before a large batched job. Right after a big backfill,
    before autovacuum has looked, the planner takes the tables for tiny and scans them
    per batch: a prune of 25,000 records took 58 s instead of 1.2 s. (SQLite plans by
    its indexes alone here.)"""
    if not is_sqlite(conn):
        for name in tables:
            await conn.exec_driver_sql(f"ANALYZE {name}")


def contains_pattern(text: str) -> str:
    """A ``LIKE … ESCAPE '\\'`` pattern for a lower-cased substring, ``%`` and ``_`` literal."""
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def text_contains(records: Any, text: str, on_sqlite: bool) -> Any:
    """Rows of ``records`` whose text contains ``text``, ignoring case, through the
    trigram index of migration 0008. PostgreSQL: ``lower(text) LIKE`` (pg_trgm).
    SQLite: the FTS5 table, matched as a phrase of trigrams (its LIKE cannot use the
    index once an ESCAPE is needed); under three characters no trigram exists, and a
    LIKE over the FTS table answers instead."""
    if not on_sqlite:
        return func.lower(records.c.text).like(contains_pattern(text), escape="\\")
    fts = literal_column("events_text")
    found = (fts.op("MATCH")('"' + text.replace('"', '""') + '"') if len(text) >= 3
             else literal_column("events_text.text").like(contains_pattern(text), escape="\\"))
    return records.c.id.in_(select(literal_column("rowid")).select_from(table("events_text")).where(found))
