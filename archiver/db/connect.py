"""Opening the database and bringing its schema up to date.

Users write plain ``sqlite:///…`` and ``postgresql://…`` URLs; the async drivers
(aiosqlite, asyncpg) are chosen here. SQLite gets WAL, a busy timeout and
``synchronous=NORMAL`` (crash-safe in WAL mode: ``sqlite_writer.PRAGMAS``, which the
writer process's connection gets too), and its file is created 0600 because it holds
message content.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from archiver.db import snapshot, sqlite_writer
from archiver.db.dialect import is_sqlite

def async_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return parsed.set(drivername="sqlite+aiosqlite")
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+asyncpg")
    return parsed


def create_engine(url: str) -> AsyncEngine:
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        _create_private_file(parsed.database)
        # One connection: SQLite allows one writer at a time anyway, and queueing this
        # process's writers in Python is far cheaper than letting them collide in SQLite's
        # busy handler. (Bulk saves go through the writer process's connection, which
        # waits there, in its own process, while this one holds the lock for a moment.)
        # (``config`` refuses in-memory URLs, whose pool would share one connection.)
        pool = {"pool_size": 1, "max_overflow": 0, "pool_timeout": sqlite_writer.BUSY_TIMEOUT_MS / 1000}
        connect_args = {"timeout": sqlite_writer.BUSY_TIMEOUT_MS / 1000}
        engine = create_async_engine(parsed, connect_args=connect_args, **pool)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(parsed, pool_pre_ping=True)


def autocommit_twin(engine: AsyncEngine) -> AsyncEngine:
    """PostgreSQL: an engine on the same database whose statements each commit alone, for
    saves that are one statement (``archiver.db.writer``). A transaction of one statement
    took five round trips (the pre-ping's own BEGIN, ``;`` and ROLLBACK, then BEGIN and
    COMMIT); here, two (the ping and the statement): a save's client CPU 1.6 → 0.55 ms."""
    return create_async_engine(engine.url, pool_pre_ping=True, isolation_level="AUTOCOMMIT")


def _create_private_file(database: str | None) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        # Creating it would hide a typo in the path (an archive nobody finds); say so instead.
        raise FileNotFoundError(errno.ENOENT, f"the directory {path.parent} does not exist")
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    sqlite_writer.configure(dbapi_connection)


SCHEMA_REVISION = "0010"
"""The newest migration's revision (``tests/db/test_migrations.py`` pins it to the
scripts' head). A database already there is not handed to alembic, whose import is a
fifth of a command's start (50 ms) and 10 MB of its memory."""


def alembic_config() -> Any:
    from alembic.config import Config as AlembicConfig  # imported only to migrate: see SCHEMA_REVISION

    config = AlembicConfig()
    config.set_main_option("script_location", str(resources.files("archiver.migrations")))
    return config


MIGRATION_LOCK_ID = 0x61726368  # "arch": one advisory lock id for schema changes


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade to the latest revision; a no-op when already there.

    Several processes may start at once (replicas, a daemon and a one-shot export):
    a lock makes them migrate one after the other instead of racing to create tables.
    """
    if await schema_revision(engine) == SCHEMA_REVISION:
        return
    if not is_sqlite(engine):
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            await conn.run_sync(_upgrade)
        return
    with _file_lock(engine.url.database):
        async with engine.begin() as conn:
            if not await conn.run_sync(snapshot.create_if_empty, SCHEMA_REVISION):
                await conn.run_sync(_upgrade)


async def schema_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None for one that alembic never touched."""
    async with engine.connect() as conn:
        if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
            return None
        return await conn.scalar(text("SELECT version_num FROM alembic_version"))


@contextmanager
def _file_lock(database: str | None) -> Iterator[None]:
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _upgrade(sync_connection: Any) -> None:
    # Mako, alembic's template engine (``alembic revision``), highlights its HTML error
    # pages with pygments when it can import it, at import: 5 MB and 25 ms of every new
    # archive's start, for pages no migration renders. Without the plugin it escapes
    # them plainly (its own fallback, in mako.exceptions).
    sys.modules.setdefault("mako.ext.pygmentplugin", None)  # type: ignore[arg-type]
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = sync_connection
    command.upgrade(config, "head")

