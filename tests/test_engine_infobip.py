"""Infobip through the engine into both databases: paging with ties, rate limit, late updates."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select

from archiver.db import models as m
from archiver.db.store import Store
from archiver.engine import run_pass
from archiver.errors import AuthFailed
from archiver.ratelimit import RateLimiter
from archiver.refresh import RefreshSchedule
from archiver.simulator import FakeInfobip, infobip_message, spread
from archiver.times import utcnow
from tests.helpers import canonical, infobip_source
from tests.test_engine_sendzen import exported


def fill(fake: FakeInfobip, count: int, *, tie_run: int = 0, final_every: int = 2) -> None:
    """``count`` messages over 47 h; optionally runs of ``tie_run`` equal sentAt values."""
    now = utcnow()
    moments = spread(count, now - timedelta(hours=47), now - timedelta(seconds=5))
    for i, at in enumerate(moments):
        if tie_run:
            at = moments[i - i % tie_run]
        fake.add(infobip_message(i, at, offset="+0100", final=i % final_every == 0))


async def test_backfill_many_thousands_exactly_once_with_zero_429s(store: Store, fake_infobip: FakeInfobip) -> None:
    """Runs of equal sentAt straddle the 1000 boundary; the limiter matches the server's limit."""
    fake_infobip.rate_limit, fake_infobip.rate_period = 8, 1.0
    fill(fake_infobip, 6000, tie_run=150)
    async with aiohttp.ClientSession() as session:
        limiter = RateLimiter(8, 1.0)
        source = infobip_source(session, fake_infobip.base_url, window_seconds=24 * 3600, limiter=limiter)
        result = await run_pass(source, store, kind="backfill")
    rows = await exported(store, "infobip")
    assert sorted(canonical(r["raw"]) for r in rows) == sorted(canonical(x) for x in fake_infobip.served_messages())
    assert len({r["message_id"] for r in rows}) == len(rows) == 6000
    assert fake_infobip.served.get(429, 0) == 0
    assert limiter.waited_seconds > 0, "the limit was actually reached and respected"
    assert result.gaps == []


async def test_cursor_paging_gives_the_same_archive(store: Store) -> None:
    fake = await FakeInfobip(supports_cursor=True).start()
    try:
        fill(fake, 2500, tie_run=1200)
        async with aiohttp.ClientSession() as session:
            source = infobip_source(session, fake.base_url, window_seconds=48 * 3600)
            await run_pass(source, store)
        assert any("cursor" in q for q in fake.requests)
        assert await store.count_records("infobip", "default") == 2500
        assert not await store.gaps("infobip", "default"), "a cursor pages through ties of any size"
    finally:
        await fake.stop()


async def test_a_full_page_of_ties_is_a_gap_and_the_rest_is_archived(store: Store, fake_infobip: FakeInfobip) -> None:
    now = utcnow()
    tie = now - timedelta(hours=2)
    fake_infobip.add(*(infobip_message(i, tie) for i in range(1200)))
    fake_infobip.add(*(infobip_message(5000 + i, now - timedelta(hours=3, minutes=i)) for i in range(50)))
    fake_infobip.add(*(infobip_message(6000 + i, now - timedelta(minutes=i + 1)) for i in range(50)))
    async with aiohttp.ClientSession() as session:
        source = infobip_source(session, fake_infobip.base_url, window_seconds=48 * 3600)
        result = await run_pass(source, store)
    (gap,) = result.gaps
    assert gap.start == gap.end and abs((gap.start - tie).total_seconds()) < 0.001
    ids = {r["message_id"] for r in await exported(store, "infobip")}
    assert {f"MSG-{5000 + i:09d}" for i in range(50)} <= ids, "older messages beyond the tie are archived"
    assert {f"MSG-{6000 + i:09d}" for i in range(50)} <= ids
    assert len([i for i in ids if int(i[4:]) < 1200]) == 1000, "as many of the tie as the API can serve"
    assert [g.reason for g in await store.gaps("infobip", "default")] == [gap.reason]


async def test_late_status_updates_and_history(store: Store, fake_infobip: FakeInfobip) -> None:
    """Non-final messages are re-read until final; final ones are not re-read."""
    fill(fake_infobip, 40, final_every=2)  # 20 pending, 20 delivered
    async with aiohttp.ClientSession() as session:
        source = infobip_source(session, fake_infobip.base_url, window_seconds=48 * 3600)
        await run_pass(source, store)
        first_refresh = [q for q in fake_infobip.requests if "messageId" in q]
        assert len(first_refresh) == 1 and len(first_refresh[0]["messageId"].split(",")) == 20

        pending = sorted(mid for mid, msg in fake_infobip.messages.items() if msg["status"]["groupName"] == "PENDING")
        fake_infobip.set_status(pending[0], 3, "DELIVERED", "DELIVERED_TO_OPERATOR")
        for mid in pending[1:]:
            fake_infobip.set_status(mid, 3, "DELIVERED", "DELIVERED_TO_HANDSET", done_at=utcnow())
        fake_infobip.requests.clear()
        await run_pass(source, store)
        await run_pass(source, store)

    refreshes = [q["messageId"].split(",") for q in fake_infobip.requests if "messageId" in q]
    assert refreshes[0] == pending, "the second pass re-reads every pending message"
    assert refreshes[1] == [pending[0]], "the third re-reads only the one still not final"
    rows = {r["message_id"]: r for r in await exported(store, "infobip")}
    assert rows[pending[1]]["status"] == "delivered" and rows[pending[1]]["done_at"] is not None
    assert rows[pending[1]]["raw"]["status"]["name"] == "DELIVERED_TO_HANDSET", "raw is the latest version"
    assert rows[pending[0]]["status_detail"] == "DELIVERED_TO_OPERATOR" and rows[pending[0]]["is_final"] is False
    async with store.engine.connect() as conn:
        history = (await conn.execute(select(m.status_history.c.status_detail)
                                      .where(m.status_history.c.message_id == pending[1])
                                      .order_by(m.status_history.c.seen_at))).scalars().all()
        version = await conn.scalar(select(m.records.c.version).where(m.records.c.natural_key == pending[1]))
    assert history == ["PENDING_ENROUTE", "DELIVERED_TO_HANDSET"]
    assert version == 2


async def test_a_schedule_rereads_old_pending_messages_rarely(store: Store, fake_infobip: FakeInfobip) -> None:
    """The daemon's schedule: every pending message at first, then the young ones each poll,
    and all again once the longest interval (an hour) has passed."""
    fill(fake_infobip, 40, final_every=2)  # 20 pending, sent over 47 h
    t0 = utcnow()
    fake_infobip.add(infobip_message(99, t0 - timedelta(seconds=10)))  # and one pending, sent just now
    schedule = RefreshSchedule(timedelta(minutes=1))
    reread = []
    async with aiohttp.ClientSession() as session:
        source = infobip_source(session, fake_infobip.base_url, window_seconds=48 * 3600)
        for at in (t0, t0 + timedelta(minutes=1), t0 + timedelta(minutes=62)):
            fake_infobip.requests.clear()
            await run_pass(source, store, now=at, schedule=schedule)
            reread.append([mid for q in fake_infobip.requests if "messageId" in q for mid in q["messageId"].split(",")])
    assert len(reread[0]) == 21
    assert reread[1] == ["MSG-000000099"], "a minute later only the message sent a minute ago is due"
    assert sorted(reread[2]) == sorted(reread[0])


async def test_401_leaves_the_checkpoint_untouched(store: Store, fake_infobip: FakeInfobip) -> None:
    fill(fake_infobip, 10)
    async with aiohttp.ClientSession() as session:
        good = infobip_source(session, fake_infobip.base_url)
        await run_pass(good, store)
        before = await store.checkpoint("infobip", "default")
        bad = infobip_source(session, fake_infobip.base_url, api_key="nope")
        with pytest.raises(AuthFailed):
            await run_pass(bad, store)
    assert await store.checkpoint("infobip", "default") == before
    _, failed = await store.last_runs("infobip", "default")
    assert failed is not None and "401" in failed.error
