"""Which process polls which account, when several ``archiver run`` share one PostgreSQL.

A lease row per (source, account) holds ``owner`` ("host:pid"), ``expires_at`` and an
``epoch`` that grows with every change of owner (a fencing token). Time is the
database's (``now()``), never a machine's. Each process, every third of a lease:
- beats its worker row, and counts the live workers (beaten within a lease);
- renews what it holds (``WHERE owner = me AND epoch = mine``: a process that was frozen
  past its lease finds it lost before it writes anything);
- gives back what exceeds its fair share, ⌈accounts ÷ live workers⌉, and claims free or
  expired accounts up to it (one ``UPDATE … WHERE expires_at < now()``: two claimants
  never both win).
A process stopping on SIGTERM releases its leases at once. Every write that matters
(``Store.save``) checks the lease in its own statement (``fence``, ``archiver.db.fencing``),
so a process that lost an account writes nothing more to it, whatever it was doing when
it froze.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
import zlib
from contextlib import asynccontextmanager
from typing import AsyncIterator
from dataclasses import dataclass, field

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from archiver.db.dialect import is_sqlite
from archiver.db.fencing import Fence, lost
from archiver.errors import one_line

log = structlog.get_logger(__name__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, under another user
    return True


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Held:
    epoch: int
    until: float
    """Local monotonic deadline: past it, the lease may have been taken (we were frozen)."""


@dataclass
class PostgresLeases:
    engine: AsyncEngine
    accounts: list[tuple[str, str]]
    lease_seconds: float = 30.0
    owner: str = field(default_factory=this_process)
    held: dict[tuple[str, str], Held] = field(default_factory=dict)
    _rows_made: bool = field(default=False, repr=False)

    async def hold(self, source: str, account: str) -> bool:
        """Whether to poll now: held, and renewed recently enough that nobody can have taken it."""
        mine = self.held.get((source, account))
        return mine is not None and time.monotonic() < mine.until

    async def tick(self) -> None:
        """Beat, renew, balance, claim: one round of the protocol."""
        try:
            await self._ensure_rows()
            async with self.engine.begin() as conn:
                live = await self._beat(conn)
            await self._renew()
            fair = math.ceil(len(self.accounts) / max(live, 1))
            await self._give_back(fair)
            await self._claim(fair)
        except (DBAPIError, OSError) as exc:
            log.warning("lease round failed: the database is unreachable", error=one_line(str(exc)))
            self._expire_locally()

    async def _ensure_rows(self) -> None:
        """A lease row per account, once per process (committed rows outlive restarts of
        either side; until the insert commits, every round tries again)."""
        if self._rows_made:
            return
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO leases (source, account, owner, epoch, expires_at) "
                "VALUES (:s, :a, NULL, 0, now()) ON CONFLICT DO NOTHING"), [{"s": s, "a": a} for s, a in self.accounts])
        self._rows_made = True

    async def _beat(self, conn: AsyncConnection) -> int:
        await conn.execute(text(
            "INSERT INTO workers (owner, beat_at) VALUES (:me, now()) "
            "ON CONFLICT (owner) DO UPDATE SET beat_at = now()"), {"me": self.owner})
        await conn.execute(text("DELETE FROM workers WHERE beat_at < now() - make_interval(secs => :ttl * 10)"),
                           {"ttl": self.lease_seconds})
        return int(await conn.scalar(text(
            "SELECT count(*) FROM workers WHERE beat_at > now() - make_interval(secs => :ttl)"),
            {"ttl": self.lease_seconds}) or 1)

    async def _renew(self) -> None:
        """Every held lease in one statement; each one not renewed (taken, or expired while
        we were frozen) is dropped before anything more is written to its account."""
        if not self.held:
            return
        keys = list(self.held)
        started = time.monotonic()
        async with self.engine.begin() as conn:
            renewed = {(r.source, r.account) for r in await conn.execute(text(
                "UPDATE leases l SET expires_at = now() + make_interval(secs => :ttl) "
                "FROM unnest(CAST(:s AS text[]), CAST(:a AS text[]), CAST(:e AS bigint[])) AS mine(s, a, e) "
                "WHERE l.source = mine.s AND l.account = mine.a AND l.epoch = mine.e AND l.owner = :me "
                "AND l.expires_at > now() RETURNING l.source, l.account"),
                {"ttl": self.lease_seconds, "me": self.owner, "s": [k[0] for k in keys], "a": [k[1] for k in keys],
                 "e": [self.held[k].epoch for k in keys]})}
        for key in keys:
            if key in renewed:
                self.held[key].until = started + self.lease_seconds * 0.9
            else:
                del self.held[key]
                log.warning("lost an account: another process polls it now", source=key[0], account=key[1])

    async def _give_back(self, fair: int) -> None:
        for key in sorted(self.held)[fair:]:
            await self._release(key)
            log.info("handed an account over to balance the load", source=key[0], account=key[1])

    async def _free_the_dead(self) -> None:
        """Leases of processes on this machine that no longer exist (kill -9) are free at
        once; another machine's wait for their expiry (we cannot see their processes)."""
        host = self.owner.rsplit(":", 1)[0]
        async with self.engine.begin() as conn:
            owners = set(await conn.scalars(text(
                "SELECT owner FROM leases WHERE owner LIKE :host AND expires_at > now() "
                "UNION SELECT owner FROM workers WHERE owner LIKE :host"), {"host": host.replace("%", "") + ":%"}))
            for owner in owners - {self.owner}:
                if not _alive(int(owner.rsplit(":", 1)[1])):
                    await conn.execute(text("UPDATE leases SET owner = NULL, expires_at = now() WHERE owner = :o"),
                                       {"o": owner})
                    await conn.execute(text("DELETE FROM workers WHERE owner = :o"), {"o": owner})
                    log.info("freed the accounts of a process that is gone", owner=owner)

    async def _claim(self, fair: int) -> None:
        await self._free_the_dead()
        for key in self._rotation():
            if len(self.held) >= fair:
                return
            if key in self.held:
                continue
            started = time.monotonic()
            async with self.engine.begin() as conn:
                epoch = await conn.scalar(text(
                    "UPDATE leases SET owner = :me, epoch = epoch + 1, "
                    "expires_at = now() + make_interval(secs => :ttl) "
                    "WHERE source = :s AND account = :a AND (owner IS NULL OR expires_at < now()) "
                    "RETURNING epoch"), {"me": self.owner, "ttl": self.lease_seconds, "s": key[0], "a": key[1]})
            if epoch is not None:
                self.held[key] = Held(int(epoch), started + self.lease_seconds * 0.9)
                log.info("became the active poller", source=key[0], account=key[1], epoch=epoch)

    def _rotation(self) -> list[tuple[str, str]]:
        """Accounts in an order that differs per process, so claimants spread out."""
        start = zlib.crc32(self.owner.encode()) % max(len(self.accounts), 1)
        return self.accounts[start:] + self.accounts[:start]

    async def _release(self, key: tuple[str, str]) -> None:
        mine = self.held.pop(key, None)
        if mine is None:
            return
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "UPDATE leases SET owner = NULL, expires_at = now() "
                "WHERE source = :s AND account = :a AND owner = :me AND epoch = :epoch"),
                {"s": key[0], "a": key[1], "me": self.owner, "epoch": mine.epoch})

    def _expire_locally(self) -> None:
        """Unsure whether we still hold anything: poll nothing until a renewal says so."""
        for mine in self.held.values():
            mine.until = 0.0

    def fence(self, source: str, account: str) -> Fence:
        """What a write must still find in ``leases`` to be made (``archiver.db.fencing``);
        ``LeaseLost`` at once if this process knows it no longer holds the account."""
        mine = self.held.get((source, account))
        if mine is None:
            raise lost(source, account)
        return Fence(self.owner, mine.epoch)

    async def close(self) -> None:
        """SIGTERM: hand every account over at once."""
        for key in list(self.held):
            try:
                await self._release(key)
            except (DBAPIError, OSError):
                pass
        try:
            async with self.engine.begin() as conn:
                await conn.execute(text("DELETE FROM workers WHERE owner = :me"), {"me": self.owner})
        except (DBAPIError, OSError):
            pass


@asynccontextmanager
async def backfill_claims(engine: AsyncEngine, accounts: list[tuple[str, str]],
                          lease_seconds: float) -> AsyncIterator[PostgresLeases | None]:
    """A one-shot backfill takes the free accounts under the same leases as the daemons
    (renewed while it runs, released when it ends); accounts a live process polls stay
    with it. ``None`` on SQLite, where the daemon's flock already keeps writers apart."""
    if is_sqlite(engine):
        yield None
        return
    leases = PostgresLeases(engine, accounts, lease_seconds)
    await leases._ensure_rows()
    await leases._claim(len(accounts))

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease_seconds / 3)
            await leases._renew()

    keeper = asyncio.create_task(renew())
    try:
        yield leases
    finally:
        keeper.cancel()
        await leases.close()
