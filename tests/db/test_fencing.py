"""PostgreSQL: a save by a process sharing the database is made only while its lease holds
(``archiver.db.fencing``), and a refused save writes nothing at all."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, text

from archiver.db import models as m
from archiver.db.fencing import Fence, LeaseLost
from archiver.db.store import Store, Window
from archiver.leases import Held, PostgresLeases
from tests.helpers import status_record

T = datetime(2024, 5, 1, tzinfo=timezone.utc)
MINE = Fence("host-a:100", 3)


@pytest.fixture
def db_url(postgres: Any) -> str:
    """Leases are PostgreSQL's: conftest's ``store`` on PostgreSQL alone."""
    return postgres.new_database()


@pytest.fixture
async def store(store: Store) -> Store:
    """conftest's store, of a process that holds sendzen/default as ``MINE``."""
    store.fence = lambda source, account: MINE
    async with store.engine.begin() as conn:
        await conn.execute(text("INSERT INTO leases (source, account, owner, epoch, expires_at) "
                                "VALUES ('sendzen', 'default', :owner, :epoch, now() + interval '1 minute')"),
                           {"owner": MINE.owner, "epoch": MINE.epoch})
    return store


async def _lease(store: Store, sql: str) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text(f"UPDATE leases SET {sql} WHERE source = 'sendzen' AND account = 'default'"))


async def _archived(store: Store) -> tuple[int, int, datetime | None, int, set[str]]:
    """Records (counted and tallied), checkpoint, ledger entries, messages' statuses."""
    async with store.engine.connect() as conn:
        rows = await conn.scalar(select(func.count()).select_from(m.records))
        covered = await conn.scalar(select(func.count()).select_from(m.coverage))
        statuses = set(await conn.scalars(select(m.messages.c.status)))
    return (rows, await store.count_records("sendzen", "default"), await store.checkpoint("sendzen", "default"),
            covered, statuses)


async def _save(store: Store, key: str, status: str, hours: int) -> None:
    rank = {"sent": 1, "read": 3}[status]
    await store.save("sendzen", "default", [status_record(key, "wamid.1", status, T, rank=rank)],
                     checkpoint=T + timedelta(hours=hours), window=Window(T, T + timedelta(hours=hours), 1, 1))


async def test_a_save_is_made_while_the_lease_holds_and_refused_whole_once_it_moved(store: Store) -> None:
    await _save(store, "a", "sent", 1)
    made = (1, 1, T + timedelta(hours=1), 1, {"sent"})
    assert await _archived(store) == made
    for lease in ("owner = 'host-b:200', epoch = 4", "owner = 'host-a:100', epoch = 4",
                  "epoch = 3, expires_at = now() - interval '1 second'"):  # taken; re-won since; expired
        await _lease(store, lease)
        with pytest.raises(LeaseLost, match="^sendzen/default: this process no longer holds the account"):
            await _save(store, "b", "read", 2)
        assert await _archived(store) == made, f"{lease}: nothing of the refused save was written"


async def test_a_claim_under_way_is_waited_for_and_then_seen(store: Store) -> None:
    """Another process's claim holds the lease row when the save starts: the save waits
    for its commit (no write slips in between) and finds the account gone."""
    async with store.engine.connect() as claim:
        await claim.execute(text("UPDATE leases SET owner = 'host-b:200', epoch = epoch + 1"))
        saving = asyncio.ensure_future(_save(store, "a", "sent", 1))
        async with store.engine.connect() as watch:
            while not await watch.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%leases%'")):
                assert not saving.done(), "the save went ahead of the claim's commit"
                await watch.rollback()  # a transaction sees one snapshot of pg_stat_activity
                await asyncio.sleep(0.01)
        await claim.commit()
    with pytest.raises(LeaseLost):
        await saving
    assert await _archived(store) == (0, 0, None, 0, set())


async def test_the_fence_is_the_lease_as_won_and_a_known_loss_refuses_before_the_database(store: Store) -> None:
    leases = PostgresLeases(store.engine, [("sendzen", "default")], owner=MINE.owner)
    leases.held[("sendzen", "default")] = Held(epoch=7, until=float("inf"))
    assert leases.fence("sendzen", "default") == Fence(MINE.owner, 7)
    leases.held.clear()  # a renewal found it gone
    with pytest.raises(LeaseLost):
        leases.fence("sendzen", "default")
