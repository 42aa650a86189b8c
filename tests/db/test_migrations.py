"""Migrations that rewrite data: an archive made by an older version stays one row per record."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from archiver import jsoncodec
from archiver.db import dialect, models as m
from archiver.db import connect
from archiver.db.connect import alembic_config, create_engine
from archiver.db.store import Store
from archiver.simulator import infobip_message, sendzen_log
from archiver.domain import Record
from archiver.sources.infobip import parse_message
from archiver.sources.sendzen import parse_log
from archiver.sources.sendzen.source import content_digest
from tests.helpers import to_revision

T = datetime(2024, 5, 1, tzinfo=timezone.utc)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


async def save_old(engine: AsyncEngine, source: str, records: list[Record], checkpoint: datetime | None = None) -> None:
    """As the versions before 0009 wrote: a ``records`` row (raw) and an ``events`` row
    (normalized) per record, for account 'default'; and the checkpoint."""
    sqlite = dialect.is_sqlite(engine)
    when = lambda value: dialect.stored_time(value, sqlite)  # noqa: E731
    raw = ":raw" if sqlite else "CAST(:raw AS json)"
    async with engine.begin() as conn:
        for r in records:
            owner = {"source": source, "account": "default", "natural_key": r.key}
            await conn.execute(text(
                "INSERT INTO records (source, account, natural_key, record_at, raw, version, first_seen_at, updated_at) "
                f"VALUES (:source, :account, :natural_key, :at, {raw}, 1, :at, :at)"),
                {**owner, "at": when(r.at), "raw": jsoncodec.dumps(r.raw)})
            fields = {k: when(v) if isinstance(v, datetime) else v for k, v in asdict(r.event).items()}
            await conn.execute(text(f"INSERT INTO events (source, account, natural_key, {', '.join(fields)}) "
                                    f"VALUES (:source, :account, :natural_key, {', '.join(':' + k for k in fields)})"),
                               {**owner, **fields})
        if checkpoint is not None:
            await conn.execute(text("INSERT INTO checkpoints (source, account, position, updated_at) "
                                    "VALUES (:source, 'default', :at, :at)"), {"source": source, "at": when(checkpoint)})


async def keys(engine: AsyncEngine, table: object) -> set[tuple[str, str]]:
    async with engine.connect() as conn:
        return {(r.source, r.natural_key) for r in await conn.execute(select(table.c.source, table.c.natural_key))}  # type: ignore[attr-defined]


async def test_0002_prefixes_archived_sendzen_keys_with_their_ticks(engine: AsyncEngine) -> None:
    await to_revision(engine, "0001")
    current = [parse_log(sendzen_log(i, T + timedelta(seconds=i))) for i in range(5)]
    # as version 0001 keyed them: the bare content hash
    await save_old(engine, "sendzen", [replace(r, key=content_digest(r.raw)) for r in current])
    infobip = [parse_message(infobip_message(i, T)) for i in range(2)]
    await save_old(engine, "infobip", infobip)

    await to_revision(engine, "head")
    store = Store(engine)

    expected = {("sendzen", r.key) for r in current} | {("infobip", r.key) for r in infobip}
    assert await keys(engine, m.records) == expected
    assert await keys(engine, m.events) == expected, "events follow their records"
    await store.save("sendzen", "default", current)  # the same logs served again
    assert await store.count_records("sendzen", "default") == 5, "no second row per log"
    await store.close()

    await to_revision(engine, "0001", down=True)
    assert {k for s, k in await keys(engine, m.events) if s == "sendzen"} == {content_digest(r.raw) for r in current}
    assert {k for s, k in await keys(engine, m.records) if s == "sendzen"} == {content_digest(r.raw) for r in current}


async def test_a_part_1_archive_becomes_account_default_and_downgrades_back(engine: AsyncEngine) -> None:
    """Rows and checkpoint written at 0002 belong to account 'default' at head, nothing re-fetched;
    every later migration (quarantine, read indexes, lifecycle, leases) also goes back down."""
    await to_revision(engine, "0002")
    records = [parse_log(sendzen_log(i, T + timedelta(minutes=i))) for i in range(7)]
    # as 0002 keyed them: ticks and the whole hash
    old = [replace(r, key=f"{r.key.split(':')[0]}:{content_digest(r.raw)}") for r in records]
    await save_old(engine, "sendzen", old, checkpoint=T + timedelta(minutes=5))

    await to_revision(engine, "head")
    store = Store(engine)
    assert await store.count_records("sendzen", "default") == 7, "the tally starts from the rows there"
    assert await store.checkpoint("sendzen", "default") == T + timedelta(minutes=5)
    assert await store.owners() == {}
    await store.save("sendzen", "default", records)
    assert await store.count_records("sendzen", "default") == 7, "served again: no second row"
    await store.close()
    async with engine.connect() as conn:  # the text index (0008) was filled from the rows already there
        found = await conn.scalars(select(m.events.c.text).where(
            dialect.text_contains(m.events, "NUMBER 6", dialect.is_sqlite(engine))))
        assert list(found) == ["Hello number 6"]

    await to_revision(engine, "0002", down=True)
    assert await keys(engine, m.records) == {("sendzen", r.key) for r in old}, "the whole hash again"


async def test_0009_folds_events_into_records_and_back(engine: AsyncEngine) -> None:
    """Each record's two rows become one (its normalized fields beside ``raw``), SendZen
    keys keep 64 bits of their hash, the view ``events`` reads as the table did, and the
    text index follows; down again, the two tables and the whole keys come back."""
    await to_revision(engine, "0008")
    sendzen = [parse_log(sendzen_log(i, T + timedelta(minutes=i))) for i in range(6)]  # 2: "Hello number 2"
    whole = [replace(r, key=f"{r.key.split(':')[0]}:{content_digest(r.raw)}") for r in sendzen]
    infobip = [parse_message(infobip_message(i, T)) for i in range(3)]
    await save_old(engine, "sendzen", whole)
    await save_old(engine, "infobip", infobip)
    async with engine.begin() as conn:  # 0008's text index, as its writer kept it
        await conn.execute(text("INSERT INTO events_text (rowid, text) SELECT id, text FROM events "
                                "WHERE text IS NOT NULL") if dialect.is_sqlite(engine) else text("SELECT 1"))

    await to_revision(engine, "0009")
    expected = {("sendzen", r.key) for r in sendzen} | {("infobip", r.key) for r in infobip}
    assert await keys(engine, m.records) == expected == await keys(engine, m.events)
    assert all(len(k) == 36 for s, k in await keys(engine, m.records) if s == "sendzen")
    async with engine.connect() as conn:
        rows = {r.natural_key: r for r in await conn.execute(select(m.records))}
        found = await conn.scalars(select(m.records.c.natural_key).where(
            dialect.text_contains(m.records, "number 2", dialect.is_sqlite(engine))))
        assert list(found) == [sendzen[2].key]
    for r in [*sendzen, *infobip]:
        row = rows[r.key]
        assert (row.message_id, row.status, row.text, row.occurred_at) == (
            r.event.message_id, r.event.status, r.event.text, r.event.occurred_at)
    store = Store(engine)
    await store.save("sendzen", "default", sendzen)  # served again after the upgrade
    await store.close()
    assert await keys(engine, m.records) == expected, "no second row per record"

    await to_revision(engine, "0008", down=True)
    assert await keys(engine, m.records) == await keys(engine, m.events) == \
        {("sendzen", r.key) for r in whole} | {("infobip", r.key) for r in infobip}


async def test_0010_reads_status_history_from_records_and_keeps_only_what_they_do_not_say(engine: AsyncEngine) -> None:
    """0009's history rows read the same through the view; those the records say the same
    way (same status, same first time) are not kept twice; down again, the table is back."""
    await to_revision(engine, "0009")
    infobip = [parse_message(infobip_message(i, T)) for i in range(3)]
    store = Store(engine)
    await store.save("infobip", "default", infobip)
    await store.close()
    sqlite = dialect.is_sqlite(engine)
    when = lambda value: dialect.stored_time(value, sqlite)  # noqa: E731
    async with engine.begin() as conn:
        r = m.records
        shown = [tuple(row) for row in await conn.execute(select(
            r.c.source, r.c.account, r.c.message_id, r.c.status, func.coalesce(r.c.status_detail, ""),
            r.c.first_seen_at).order_by(r.c.message_id))]
        assert len(shown) == 3
        changed = ("infobip", "default", shown[0][2], "PENDING", "PENDING_ENROUTE", T - timedelta(hours=1))
        earlier = (*shown[1][:5], T - timedelta(hours=2))  # its first record was pruned since: seen before this one
        old_rows = [*shown[:1], changed, earlier, *shown[2:]]
        for row in old_rows:
            await conn.execute(text("INSERT INTO status_history (source, account, message_id, status, status_detail, "
                                    "seen_at) VALUES (:s, :a, :m, :st, :d, :at)"),
                               dict(zip(("s", "a", "m", "st", "d"), row[:5]), at=when(row[5])))

    def rows(result: Any) -> set[tuple[Any, ...]]:
        return {(*row[:5], row[5].astimezone(timezone.utc)) for row in result}

    expected = rows(old_rows)
    query = select(*[m.status_history.c[c] for c in ("source", "account", "message_id", "status", "status_detail",
                                                     "seen_at")])
    await to_revision(engine, "0010")
    async with engine.connect() as conn:
        assert rows(await conn.execute(query)) == expected
        assert rows(await conn.execute(select(m.past_statuses))) == rows([changed, earlier])
    await to_revision(engine, "0009", down=True)
    async with engine.connect() as conn:
        assert rows(await conn.execute(query)) == expected, "a table again, with every row"


def test_the_revision_a_start_checks_for_is_the_newest_migration() -> None:
    """``migrate`` leaves a database at ``SCHEMA_REVISION`` alone, without alembic: a new
    migration must move it, or no database would ever get it."""
    from alembic.script import ScriptDirectory

    assert connect.SCHEMA_REVISION == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_migrate_brings_an_empty_database_to_the_newest_revision_and_then_leaves_it(engine: AsyncEngine) -> None:
    assert await connect.schema_revision(engine) is None
    await connect.migrate(engine)
    assert await connect.schema_revision(engine) == connect.SCHEMA_REVISION
    await to_revision(engine, "0008", down=True)
    assert await connect.schema_revision(engine) == "0008"
    await connect.migrate(engine)
    assert await connect.schema_revision(engine) == connect.SCHEMA_REVISION, "an older schema is migrated"


async def test_postgresql_s_text_index_keeps_a_short_pending_list(postgres) -> None:  # type: ignore[no-untyped-def]
    """0010: at most 256 KB of the trigram index unmerged (every text search reads it through)."""
    engine = create_engine(postgres.new_database())
    await connect.migrate(engine)
    async with engine.connect() as conn:
        options = await conn.scalar(text("SELECT reloptions FROM pg_class WHERE relname = 'ix_records_text_trgm'"))
    await engine.dispose()
    assert options == ["gin_pending_list_limit=256"]
