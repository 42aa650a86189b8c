"""The store's guarantees, on both databases: forward-only status, idempotent upserts, history."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Text, select

from archiver import jsoncodec
from archiver.db import models as m
from archiver.db.models import EVENT_COLUMNS
from archiver.db.connect import create_engine, migrate
from archiver.db.store import Store, Window
from archiver.domain import Event, Gap, Record
from archiver.errors import DatabaseError
from tests.helpers import status_record

UTC = timezone.utc
T = datetime(2024, 5, 1, tzinfo=UTC)
RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}


def status_event(key: str, status: str, minutes: int, message: str = "wamid.1") -> Record:
    return status_record(key, message, status, T + timedelta(minutes=minutes), rank=RANK[status])


async def current_status(store: Store, message: str = "wamid.1") -> str:
    async with store.engine.connect() as conn:
        return await conn.scalar(select(m.messages.c.status).where(m.messages.c.message_id == message))


async def test_status_only_moves_forward_whatever_the_arrival_order(store: Store) -> None:
    """read arrives before delivered (late), delivered never arrives for another: read wins."""
    await store.save("sendzen", "default", [status_event("a", "sent", 0)])
    await store.save("sendzen", "default", [status_event("c", "read", 2)])
    await store.save("sendzen", "default", [status_event("b", "delivered", 1)])
    assert await current_status(store) == "read"
    await store.save("sendzen", "default", [status_event("d", "failed", 3)])
    await store.save("sendzen", "default", [status_event("e", "delivered", 4)])
    assert await current_status(store) == "failed", "failed is terminal"
    assert await store.count_records("sendzen", "default") == 5, "every event is kept"


async def test_one_batch_with_several_events_of_a_message(store: Store) -> None:
    """Several statuses of one message in one statement: the highest wins, no conflict error."""
    await store.save("sendzen", "default", [status_event("x", "read", 2), status_event("y", "sent", 0),
                                            status_event("z", "delivered", 1)])
    assert await current_status(store) == "read"
    async with store.engine.connect() as conn:
        statuses = (await conn.scalars(select(m.status_history.c.status).order_by(m.status_history.c.status))).all()
    assert statuses == ["delivered", "read", "sent"]


async def test_upserts_are_idempotent_and_track_versions(store: Store) -> None:
    record = status_event("k", "sent", 0)
    for _ in range(3):
        await store.save("sendzen", "default", [record, record])
    changed = Record(key="k", at=record.at, raw={"k": "k", "status": "sent", "extra": 1}, event=record.event)
    await store.save("sendzen", "default", [changed])
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(m.records.c.version, m.records.c.raw))).all()
    assert len(rows) == 1 and rows[0].version == 2 and rows[0].raw["extra"] == 1


async def test_every_column_reads_back_as_saved(store: Store) -> None:
    """Each kind of value the writer carries (PostgreSQL: inside one JSON text per table)
    comes back as it went in: text with quotes, escapes and emoji, big integers, floats,
    false booleans, times to the microsecond, and raw's own text, key order and all."""
    at = T + timedelta(microseconds=123456)
    event = Event(event_type='say "hi"\\n', message_id="wamid.é😀", direction="outbound", status="failed",
                  status_detail="x", occurred_at=at, done_at=T, sender="+49 151", recipient="15551234567",
                  content_type="text", text='line\nnext "q" \\ 😀', error_code=2**62, error_title="Über",
                  created_at=T + timedelta(days=1), price=0.1, currency="EUR", billable=False, is_final=True,
                  parse_error=None)
    raw = {"z": 1, "a": [1.5, None, True], "é": "😀 \" \\u0000"}
    await store.save("sendzen", "default", [Record(key="k1", at=at, raw=raw, event=event, status_rank=4)])
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(m.records))).one()._mapping
        raw_text = await conn.scalar(select(m.records.c.raw.cast(Text)))
        status = (await conn.execute(select(m.messages))).one()._mapping
    for name in EVENT_COLUMNS:
        assert row[name] == getattr(event, name), name
    assert row["record_at"] == at and row["natural_key"] == "k1" and row["raw"] == raw
    assert raw_text == jsoncodec.dumps(raw), "raw's text exactly as the writer made it"
    assert (status["message_id"], status["status"], status["status_rank"], status["status_at"]) == (
        "wamid.é😀", "failed", 4, at)


async def test_checkpoint_never_moves_back(store: Store) -> None:
    await store.save("s", "default", [], checkpoint=T + timedelta(hours=2))
    await store.save("s", "default", [], checkpoint=T + timedelta(hours=1))
    assert await store.checkpoint("s", "default") == T + timedelta(hours=2)
    await store.save("s", "other-account", [], checkpoint=T)
    assert await store.checkpoint("s", "other-account") == T, "accounts are separate"


async def test_ledger_and_gaps_round_trip(store: Store) -> None:
    await store.save("s", "default", [], window=Window(T, T + timedelta(hours=1), 0, 1))
    assert await store.coverage("s", "default") == [(T, T + timedelta(hours=1))]
    gap = Gap(T - timedelta(days=1), T, "checkpoint older than the provider's retention")
    await store.add_gap("s", "default", gap)
    await store.add_gap("s", "default", gap)
    assert await store.gaps("s", "default") == [gap], "recording the same gap twice keeps one"


async def test_a_failed_save_leaves_nothing_behind(store: Store) -> None:
    """Records are written before events: an event the driver refuses rolls the records back too."""
    good = status_event("ok", "sent", 0)
    bad = Record(key="bad", at=T, raw={"k": "bad"}, event=Event(error_code=object()))  # type: ignore[arg-type]
    with pytest.raises(DatabaseError, match="^database error: ") as refused:
        await store.save("sendzen", "default", [good, bad], checkpoint=T + timedelta(hours=1))
    assert "\n" not in str(refused.value), "one line, whatever the driver said"
    assert await store.count_records("sendzen", "default") == 0
    assert await store.checkpoint("sendzen", "default") is None
    await store.save("sendzen", "default", [good])
    assert await store.count_records("sendzen", "default") == 1, "the connection is usable afterwards"


async def test_waiting_for_another_writer_does_not_block_the_event_loop(tmp_path: Path) -> None:
    """SQLite: another process holds the write lock; the save waits for it off the loop."""
    path = tmp_path / "archive.db"
    engine = create_engine(f"sqlite:///{path}")
    await migrate(engine)
    store = Store(engine)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        save = asyncio.create_task(store.save("sendzen", "default", [status_event("a", "sent", 0)]))
        ticks = 0
        for _ in range(20):  # the loop keeps running while the save waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not save.done()
        other.execute("COMMIT")
        await asyncio.wait_for(save, 10)
        assert await store.count_records("sendzen", "default") == 1
    finally:
        other.close()
        await store.close()
        await engine.dispose()


async def test_the_ledger_is_compacted_without_hiding_holes(store: Store) -> None:
    for hour in [0, 1, 2, 1, 5, 6]:  # 1h is fetched twice (an overlap); 3h..5h never
        await store.save("s", "default", [], window=Window(T + timedelta(hours=hour), T + timedelta(hours=hour + 1), 2, 1))
    await store.save("t", "default", [], window=Window(T, T + timedelta(hours=1), 0, 1))
    assert await store.compact_coverage("s", "default") == 2
    assert await store.coverage("s", "default") == [(T, T + timedelta(hours=3)), (T + timedelta(hours=5), T + timedelta(hours=7))]
    async with store.engine.connect() as conn:
        counts = (await conn.execute(select(m.coverage.c.records, m.coverage.c.pages).where(m.coverage.c.source == "s")
                                     .order_by(m.coverage.c.window_from))).all()
    assert [tuple(c) for c in counts] == [(8, 4), (4, 2)]
    assert await store.coverage("t", "default") == [(T, T + timedelta(hours=1))], "other sources untouched"
    assert await store.compact_coverage("s", "default") == 2, "idempotent"
