"""One active poller per source across processes: the others wait as hot standbys.

On PostgreSQL a session-level ``pg_try_advisory_lock`` per (source, account), held on
a dedicated connection: when the holder dies, its connection drops and the server
releases the lock, so a standby takes over on its next tick. On SQLite, which only
one machine can share, an exclusive ``flock`` on a file beside the database.
"""

from __future__ import annotations

import asyncio
import fcntl
import zlib
from typing import IO, Protocol

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from archiver.errors import one_line

log = structlog.get_logger(__name__)


class Leadership(Protocol):
    async def hold(self, source: str, account: str) -> bool:
        """True if this process is (or has just become) the poller of that source."""
        ...

    async def close(self) -> None: ...


def lock_id(source: str, account: str) -> int:
    """A stable signed 64-bit id per (source, account) for pg advisory locks."""
    return zlib.crc32(f"archiver:{source}:{account}".encode()) | (0x6172 << 32)


class PostgresLeadership:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._held: set[int] = set()
        self._lock = asyncio.Lock()

    async def hold(self, source: str, account: str) -> bool:
        async with self._lock:  # one connection, used by every source's job in turn
            return await self._hold(source, account)

    async def _hold(self, source: str, account: str) -> bool:
        key = lock_id(source, account)
        try:
            conn = await self._connection()
            if key in self._held:
                await conn.execute(text("SELECT 1"))  # still connected means still holding
                await conn.commit()
                return True
            got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
            await conn.commit()
        except (DBAPIError, OSError) as exc:
            log.warning("lost the leadership connection", source=source, error=one_line(str(exc)))
            await self._reset()
            return False
        if got:
            self._held.add(key)
            log.info("became the active poller", source=source, account=account)
        return got

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self._engine.connect()
        return self._conn

    async def _reset(self) -> None:
        self._held.clear()
        if self._conn is not None:
            try:
                await self._conn.invalidate()
            except Exception:  # the connection is already gone; nothing to release
                pass
            self._conn = None

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()  # closing the session releases its advisory locks
            self._conn = None
        self._held.clear()


class FileLeadership:
    def __init__(self, database: str) -> None:
        self._base = database
        self._files: dict[str, IO[str]] = {}

    async def hold(self, source: str, account: str) -> bool:
        path = f"{self._base}.{source}.{account}.lock"
        if path in self._files:
            return True
        handle = open(path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._files[path] = handle
        log.info("became the active poller", source=source, account=account)
        return True

    async def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()


def leadership_for(engine: AsyncEngine) -> Leadership:
    if engine.dialect.name == "postgresql":
        return PostgresLeadership(engine)
    return FileLeadership(engine.url.database or "archive.db")
