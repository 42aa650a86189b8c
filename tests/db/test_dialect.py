"""The one place SQLite and PostgreSQL differ, and the one reach into aiosqlite's insides."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from archiver.db import dialect, models as m, tallies
from archiver.db.connect import create_engine
from archiver.db.store import Store
from archiver.domain import Event, Record
from tests.db.test_store import T, status_event

IST = timezone(timedelta(hours=5, minutes=30))


def test_one_time_format_for_both_databases() -> None:
    moment = datetime(2024, 5, 1, 5, 30, 0, 7, tzinfo=IST)
    assert dialect.stored_time(moment, on_sqlite=True) == "2024-05-01 00:00:00.000007"
    assert dialect.stored_time(moment, on_sqlite=False) == moment and \
        dialect.stored_time(moment, on_sqlite=False).tzinfo is timezone.utc
    assert dialect.loaded_time("2024-05-01 00:00:00.000007") == moment
    assert dialect.loaded_time(datetime(2024, 5, 1)) == datetime(2024, 5, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="naive"):
        dialect.stored_time(datetime(2024, 5, 1), on_sqlite=True)


async def test_a_time_reads_back_as_written(store: Store) -> None:
    """Through the column type (Core) and the bulk writer alike, on both databases."""
    record = status_event("a", "sent", 0)
    await store.save("sendzen", "default", [record])
    async with store.engine.connect() as conn:
        got = await conn.scalar(select(m.records.c.record_at).where(m.records.c.record_at == record.at))
    assert got == record.at and got.tzinfo is timezone.utc


async def test_the_sqlite3_connection_under_aiosqlite_is_reachable(tmp_path: Path) -> None:
    """Fails loudly if aiosqlite moves its connection: the bulk writes' fast path needs it."""
    engine = create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    try:
        async with engine.connect() as conn:
            assert isinstance(await dialect.sqlite3_connection(conn), sqlite3.Connection)
    finally:
        await engine.dispose()


async def test_without_the_fast_path_writes_still_work(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    async def hidden(conn: object) -> None:
        return None

    monkeypatch.setattr("archiver.db.dialect.sqlite3_connection", hidden)
    await store.save("sendzen", "default", [status_event("a", "sent", 0), status_event("b", "read", 1)])
    await store.save("sendzen", "default", [status_event("a", "sent", 0), status_event("c", "read", 2)])
    assert await store.count_records("sendzen", "default") == 3


def texted(key: str, text: str) -> Record:
    return Record(key=key, at=T, raw={"k": key, "text": text}, event=Event(message_id=f"m-{key}", text=text))


async def matching(store: Store, text: str) -> set[str]:
    e = m.records
    async with store.engine.connect() as conn:
        return set(await conn.scalars(select(e.c.natural_key).where(
            dialect.text_contains(e, text, dialect.is_sqlite(store.engine)))))


async def test_text_search_follows_every_change_to_the_rows(store: Store) -> None:
    """Case-insensitive substrings; % and _ are literal; a new version of a record, a
    deletion (prune, erase) and a record without text keep the trigram index in step."""
    await store.save("sendzen", "default", [texted("a", "Hello World"), texted("b", "50% off_today"),
                                            Record(key="c", at=T, raw={}, event=Event(message_id="m-c"))])
    assert await matching(store, "WORLD") == {"a"} and await matching(store, "lo w") == {"a"}
    assert await matching(store, "LO") == {"a"} and await matching(store, "%") == {"b"}, "shorter than a trigram"
    assert await matching(store, 'say "hi') == set()
    assert await matching(store, "50%") == {"b"} and await matching(store, "f_t") == {"b"}
    assert await matching(store, "0_o") == set(), "_ is a character, not a wildcard"
    await store.save("sendzen", "default", [texted("a", "Goodbye")])  # the provider's newer version
    assert await matching(store, "world") == set() and await matching(store, "goodbye") == {"a"}
    async with store.engine.begin() as conn:
        await tallies.delete_records(conn, [("sendzen", "default", "b")])
    assert await matching(store, "off") == set()


async def test_text_search_uses_the_trigram_index(store: Store) -> None:
    e = m.records
    query = select(e.c.id).where(dialect.text_contains(e, "hello", dialect.is_sqlite(store.engine)))
    async with store.engine.connect() as conn:
        compiled = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        if dialect.is_sqlite(store.engine):
            plan = " ".join(str(row) for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
            assert "events_text VIRTUAL TABLE INDEX 0:M" in plan, plan  # M: a MATCH the index answers
        else:
            await conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(str(row) for row in await conn.exec_driver_sql(f"EXPLAIN {compiled}"))
            assert "ix_records_text_trgm" in plan, plan
