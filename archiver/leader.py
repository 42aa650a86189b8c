"""One active poller per account across processes.

On PostgreSQL, leases with fencing divide the accounts among every running process
(``archiver.leases``). On SQLite, which only one machine can share, an exclusive
``flock`` on a file beside the database: one process polls, the others wait as hot
standbys.
"""

from __future__ import annotations

import fcntl
from typing import IO, Callable, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from archiver.db.dialect import is_sqlite
from archiver.db.fencing import Fence
from archiver.leases import PostgresLeases

log = structlog.get_logger(__name__)


class Leadership(Protocol):
    fence: Callable[[str, str], Fence] | None
    """What every write must still find in ``leases`` (None: nothing to check)."""

    async def hold(self, source: str, account: str) -> bool:
        """True if this process is (or has just become) the poller of that account."""
        ...

    async def tick(self) -> None:
        """One round of heartbeats and claims (called every third of a lease)."""
        ...

    async def close(self) -> None: ...


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

    async def tick(self) -> None:
        """Nothing to renew: the kernel holds the lock for as long as the process lives."""

    fence = None
    """No fencing needed: a frozen process keeps its flock, so nobody else can poll."""


def leadership_for(engine: AsyncEngine, accounts: list[tuple[str, str]], lease_seconds: float) -> Leadership:
    if not is_sqlite(engine):
        return PostgresLeases(engine, accounts, lease_seconds)
    return FileLeadership(engine.url.database or "archive.db")
