"""Each account's tally equals its rows, through every way rows come and go."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select

from archiver.db import models as m
from archiver.db.store import Store
from archiver.lifecycle.erase import erase_phone
from archiver.lifecycle.prune import prune
from archiver.simulator import sendzen_log
from archiver.sources.sendzen import parse_log
from archiver.times import utcnow

NOW = utcnow().replace(microsecond=0)


async def rows(store: Store, account: str) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(m.records)
                                     .where(m.records.c.source == "sendzen", m.records.c.account == account)) or 0)


async def agree(store: Store, *accounts: str) -> list[int]:
    counted = [await rows(store, a) for a in accounts]
    assert [await store.count_records("sendzen", a) for a in accounts] == counted
    return counted


async def test_the_tally_follows_saves_prunes_and_erasures(store: Store) -> None:
    logs = [sendzen_log(i, NOW - timedelta(days=10 - i)) for i in range(10)]
    records = [parse_log(log) for log in logs]
    await store.save("sendzen", "a", records[:6])
    await store.save("sendzen", "b", records[4:])
    assert await agree(store, "a", "b") == [6, 6]

    await store.save("sendzen", "a", records[:6] + records[:2])  # served again, some twice in one page
    await store.save("sendzen", "a", [replace(records[0], raw={**logs[0], "flyout_url": "x"})])  # a new version
    assert await agree(store, "a", "b") == [6, 6]

    gone = await prune(store.engine, keep_days=7, now=NOW)
    assert gone["records"] == 3 and await agree(store, "a", "b") == [3, 6]

    erased = await erase_phone(store.engine, str(records[8].event.recipient))
    assert erased["records"] >= 1 and await agree(store, "a", "b") == [3, 6 - erased["records"]]
