"""A new SQLite archive made from ``migrations/sqlite_head.sql`` is the one the migrations make."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from archiver.db import connect, snapshot
from archiver.db.connect import SCHEMA_REVISION, create_engine
from tests.helpers import to_revision

STALE = "migrations/sqlite_head.sql is not the migrations' schema: run python -m archiver.db.snapshot"


def dump(sync_connection: Any) -> dict[str, Any]:
    """Everything a schema is: SQLite's own record of it in order, every table's rows
    (FTS5's shadow tables too), the page size."""
    run = sync_connection.exec_driver_sql
    master = run("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid").all()
    tables = [name for kind, name, _, _ in master if kind == "table"]
    return {"master": master, "rows": {t: sorted(run(f'SELECT * FROM "{t}"').all(), key=repr) for t in tables},
            "page_size": run("PRAGMA page_size").scalar()}


async def dumped(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(dump)


async def test_a_new_archive_is_made_at_the_head_as_the_migrations_make_it(tmp_path: Path) -> None:
    """Made from the snapshot (of the revision a start checks for, or it is not used at
    all and migrate falls back to alembic), it is the migrated archive."""
    migrated, made = create_engine(f"sqlite:///{tmp_path}/migrated.db"), create_engine(f"sqlite:///{tmp_path}/made.db")
    try:
        await to_revision(migrated, "head")
        async with made.begin() as conn:
            assert await conn.run_sync(snapshot.create_if_empty, SCHEMA_REVISION), STALE
        assert await dumped(made) == await dumped(migrated), STALE
        assert (await dumped(made))["rows"]["alembic_version"] == [(SCHEMA_REVISION,)]
        assert await connect.schema_revision(made) == SCHEMA_REVISION, "migrate leaves it alone"
    finally:
        await migrated.dispose()
        await made.dispose()


async def test_only_an_empty_database_of_the_snapshot_s_revision_is_made_from_it(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/archive.db")
    try:
        async with engine.begin() as conn:
            assert not await conn.run_sync(snapshot.create_if_empty, "0011"), "a snapshot of another revision"
            assert (await conn.run_sync(dump))["master"] == []
            await conn.exec_driver_sql("CREATE TABLE mine (x)")
            assert not await conn.run_sync(snapshot.create_if_empty, SCHEMA_REVISION), "a database with tables"
            assert [row[1] for row in (await conn.run_sync(dump))["master"]] == ["mine"]
    finally:
        await engine.dispose()
