"""A new SQLite archive is created at the newest revision in one step, not migration by migration.

``migrations/sqlite_head.sql`` holds the schema the migrations build, as SQLite keeps it
(``sqlite_master``'s statements, in their order): run on an empty database, with the
revision stamped, it makes the same schema (``tests/db/test_snapshot.py`` compares the
two, table contents too). Alembic is then neither imported nor run: its import and the
ten migrations took 160-180 ms and 7 MB of every new archive's first command. Alembic's
own advice for a new database is the same (create the schema, stamp the head).

After adding a migration: ``python -m archiver.db.snapshot`` writes the file again.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

HEADER = "-- archiver's SQLite schema at revision "
SEPARATOR = ";\n\n"
SHADOW = ("_data", "_idx", "_content", "_docsize", "_config")
"""The tables an FTS5 table makes for itself (its ``CREATE VIRTUAL TABLE`` makes them again)."""


def path() -> Path:
    return Path(str(resources.files("archiver.migrations") / "sqlite_head.sql"))


def statements(sync_connection: Any) -> list[str]:
    """The statements that make this database's schema, in the order SQLite made it."""
    rows = sync_connection.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                                           "ORDER BY rowid").all()
    virtual = [name for name, sql in rows if sql.upper().startswith("CREATE VIRTUAL TABLE")]
    return [sql for name, sql in rows
            if not name.startswith("sqlite_") and not any(name == v + s for v in virtual for s in SHADOW)]


def create_if_empty(sync_connection: Any, revision: str) -> bool:
    """On a database without tables, make the schema at ``revision`` and stamp it; False
    (nothing done) if it has tables, or if the file is of another revision."""
    if sync_connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
        return False
    text, header = path().read_text(), f"{HEADER}{revision}\n"
    if not text.startswith(header):
        return False
    for statement in text.removeprefix(header).split(SEPARATOR)[:-1]:
        sync_connection.exec_driver_sql(statement)
    sync_connection.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES (?)", (revision,))
    return True


def render(revision: str, schema: list[str]) -> str:
    assert not any(SEPARATOR in statement for statement in schema)
    return f"{HEADER}{revision}\n" + "".join(statement + SEPARATOR for statement in schema)


async def _migrated_schema() -> list[str]:
    """The schema the migrations build, on a new archive in a temporary directory."""
    from archiver.db.connect import _upgrade, create_engine

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/archive.db")
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade)
                return await conn.run_sync(statements)
        finally:
            await engine.dispose()


def main() -> int:
    from archiver.db.connect import SCHEMA_REVISION

    path().write_text(render(SCHEMA_REVISION, asyncio.run(_migrated_schema())))
    print(f"wrote {path()} (revision {SCHEMA_REVISION})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
