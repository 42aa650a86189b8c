"""Migrations that rewrite data: an archive made by an older version stays one row per record."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator

import pytest
from alembic import command
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from archiver.db import dialect, models as m, tallies
from archiver.db.connect import alembic_config, create_engine
from archiver.db.store import Store
from archiver.simulator import infobip_message, sendzen_log
from archiver.sources.infobip import parse_message
from archiver.sources.sendzen import parse_log

T = datetime(2024, 5, 1, tzinfo=timezone.utc)


async def to_revision(engine: AsyncEngine, revision: str, *, down: bool = False) -> None:
    def run(connection) -> None:  # type: ignore[no-untyped-def]
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


class OldStore(Store):
    """The store as it wrote before a migration: without the tallies (0007) and the text
    index (0008) it lacks then."""

    async def save(self, *args: Any, **kwargs: Any) -> None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tallies, "add", _none)
            patch.setattr(dialect, "index_text", _none)
            await super().save(*args, **kwargs)


async def _none(*args: Any) -> int:
    return 0


async def keys(engine: AsyncEngine, table: object) -> set[tuple[str, str]]:
    async with engine.connect() as conn:
        return {(r.source, r.natural_key) for r in await conn.execute(select(table.c.source, table.c.natural_key))}  # type: ignore[attr-defined]


async def test_0002_prefixes_archived_sendzen_keys_with_their_ticks(engine: AsyncEngine) -> None:
    await to_revision(engine, "0001")
    store = OldStore(engine)
    current = [parse_log(sendzen_log(i, T + timedelta(seconds=i))) for i in range(5)]
    # as version 0001 keyed them: the bare content hash
    await store.save("sendzen", "default", [replace(r, key=r.key.split(":")[1]) for r in current])
    infobip = [parse_message(infobip_message(i, T)) for i in range(2)]
    await store.save("infobip", "default", infobip)

    await to_revision(engine, "head")
    store = Store(engine)

    expected = {("sendzen", r.key) for r in current} | {("infobip", r.key) for r in infobip}
    assert await keys(engine, m.records) == expected
    assert await keys(engine, m.events) == expected, "events follow their records"
    await store.save("sendzen", "default", current)  # the same logs served again
    assert await store.count_records("sendzen", "default") == 5, "no second row per log"

    await to_revision(engine, "0001", down=True)
    assert {k for s, k in await keys(engine, m.events) if s == "sendzen"} == {r.key.split(":")[1] for r in current}


async def test_a_part_1_archive_becomes_account_default_and_downgrades_back(engine: AsyncEngine) -> None:
    """Rows and checkpoint written at 0002 belong to account 'default' at head, nothing re-fetched;
    every later migration (quarantine, read indexes, lifecycle, leases) also goes back down."""
    await to_revision(engine, "0002")
    store = OldStore(engine)
    records = [parse_log(sendzen_log(i, T + timedelta(minutes=i))) for i in range(7)]
    await store.save("sendzen", "default", records, checkpoint=T + timedelta(minutes=5))

    await to_revision(engine, "head")
    store = Store(engine)
    assert await store.count_records("sendzen", "default") == 7, "the tally starts from the rows there"
    assert await store.checkpoint("sendzen", "default") == T + timedelta(minutes=5)
    assert await store.owners() == {}
    await store.save("sendzen", "default", records)
    assert await store.count_records("sendzen", "default") == 7, "served again: no second row"
    async with engine.connect() as conn:  # the text index (0008) was filled from the rows already there
        found = await conn.scalars(select(m.events.c.text).where(
            dialect.text_contains(m.events, "NUMBER 6", dialect.is_sqlite(engine))))
        assert list(found) == ["Hello number 6"]

    await to_revision(engine, "0002", down=True)
    assert await keys(engine, m.records) == {("sendzen", r.key) for r in records}
