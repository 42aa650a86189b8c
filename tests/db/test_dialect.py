"""The one place SQLite and PostgreSQL differ."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from archiver.db import dialect, models as m, tallies
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
