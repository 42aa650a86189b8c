"""``status_history`` (a view since migration 0010), on both databases: each status a
message reached, once, first seen when the archiver first saw it, whether its record
still shows it, changed since, or was pruned while the message lives on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select

from archiver.db import models as m
from archiver.db.store import Store
from archiver.domain import Record
from archiver.lifecycle.prune import prune
from archiver.times import utcnow
from tests.helpers import status_record

NOW = utcnow().replace(microsecond=0)
h = m.status_history


def log(key: str, message: str, status: str, detail: str | None = None, at: datetime = NOW, **raw: Any) -> Record:
    return status_record(key, message, status, at, detail, **raw)


async def history(store: Store, message: str = "m1") -> list[tuple[str, str, datetime]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(h.c.status, h.c.status_detail, h.c.seen_at)
                                  .where(h.c.message_id == message).order_by(h.c.seen_at, h.c.status))
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def record_times(store: Store, key: str) -> tuple[datetime, datetime]:
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(m.records.c.first_seen_at, m.records.c.updated_at)
                                  .where(m.records.c.natural_key == key))).one()
    return row.first_seen_at, row.updated_at


async def kept(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(m.past_statuses)) or 0)


async def test_statuses_that_records_show_are_read_from_them_and_kept_nowhere_else(store: Store) -> None:
    await store.save("sendzen", "default", [log("a", "m1", "sent"), log("b", "m1", "delivered"),
                                            log("c", "m1", "sent"), log("d", "m2", "read"), log("e", "", "sent")])
    first, _ = await record_times(store, "a")
    assert await history(store) == [("delivered", "", first), ("sent", "", first)], "each status once"
    assert await history(store, "m2") == [("read", "", first)]
    assert await kept(store) == 0, "no second copy of what the records say"


async def test_a_status_a_record_changed_from_stays_with_when_each_was_first_seen(store: Store) -> None:
    """Infobip updates a message's log in place: PENDING, then DELIVERED."""
    await store.save("infobip", "default", [log("k", "m1", "PENDING", "ENROUTE")])
    pending_seen, _ = await record_times(store, "k")
    await store.save("infobip", "default", [log("k", "m1", "DELIVERED", "TO_HANDSET", v=2)])
    _, delivered_seen = await record_times(store, "k")
    assert delivered_seen > pending_seen
    expected = [("PENDING", "ENROUTE", pending_seen), ("DELIVERED", "TO_HANDSET", delivered_seen)]
    assert await history(store) == expected
    await store.save("infobip", "default", [log("k", "m1", "DELIVERED", "TO_HANDSET", v=3)])  # status unchanged
    await store.save("infobip", "default", [log("k", "m1", "DELIVERED", "TO_HANDSET", v=3)])  # nothing changed
    assert await history(store) == expected


async def test_a_status_an_earlier_record_showed_keeps_that_first_time(store: Store) -> None:
    await store.save("infobip", "default", [log("a", "m1", "sent")])
    sent_seen, _ = await record_times(store, "a")
    await store.save("infobip", "default", [log("b", "m1", "pending")])
    pending_seen, _ = await record_times(store, "b")
    await store.save("infobip", "default", [log("b", "m1", "sent", v=2)])  # b reaches what a showed first
    await store.save("infobip", "default", [log("a", "m1", "read", v=2)])  # and a moves on
    _, read_seen = await record_times(store, "a")
    assert await history(store) == [("sent", "", sent_seen), ("pending", "", pending_seen), ("read", "", read_seen)]


async def test_prune_keeps_the_statuses_of_a_message_it_leaves_records_of(store: Store) -> None:
    old, young = NOW - timedelta(days=10), NOW - timedelta(days=1)
    await store.save("sendzen", "default", [log("a", "m1", "sent", at=old), log("b", "m1", "read", at=young),
                                            log("c", "m2", "sent", at=old)])
    before = await history(store)
    counts = await prune(store.engine, keep_days=3, now=NOW)
    assert counts["records"] == 2 and counts["messages"] == 1 and counts["status_history"] == 1, "m2 went whole"
    assert await history(store) == before, "m1's sent outlives its record"
    assert await history(store, "m2") == []
    counts = await prune(store.engine, keep_days=3, now=NOW + timedelta(days=3))
    assert counts["status_history"] == 2 and await history(store) == [] and await kept(store) == 0


async def test_times_are_utc_on_both_databases(store: Store) -> None:
    await store.save("sendzen", "default", [log("a", "m1", "sent")])
    ((_, _, seen),) = await history(store)
    assert seen.tzinfo is not None and seen.utcoffset() == timezone.utc.utcoffset(seen)
