"""The right to be forgotten, on both databases: everything about a number goes from every
table (and from raw), nothing else does, and no later re-read brings it back."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from archiver.db import models as m
from archiver.db.store import Store
from archiver.domain import Quarantined
from archiver.engine import run_pass
from archiver.lifecycle import erase as erase_mod
from archiver.lifecycle.erase import erase_phone
from archiver.simulator import FakeInfobip, FakeSendZen, infobip_message, sendzen_log, spread
from archiver.times import utcnow
from tests.api.test_search import incoming, status_log

NOW = utcnow().replace(microsecond=0)
NUMBER = "491701234567"
TABLES = {"records": m.records, "events": m.events, "messages": m.messages, "status_history": m.status_history,
          "quarantine": m.quarantine}


async def counts(store: Store) -> dict[str, int]:
    async with store.engine.connect() as conn:
        return {name: int(await conn.scalar(select(func.count()).select_from(t)) or 0) for name, t in TABLES.items()}


async def raw_mentions(store: Store, digits: str = NUMBER) -> int:
    """Rows whose raw text still holds the number anywhere (as a whole number: the other
    customer 4917012345678 merely starts with the same digits)."""
    whole = re.compile(rf"(?<!\d){digits}(?!\d)")
    async with store.engine.connect() as conn:
        found = 0
        for table in (m.records, m.quarantine):
            rows = await conn.execute(select(table.c.raw))
            found += sum(bool(whole.search(r.raw if isinstance(r.raw, str) else json.dumps(r.raw))) for r in rows)
        return found


@pytest.fixture
async def world(store: Store) -> Any:
    """Both providers serving the customer among 80 others; everything archived."""
    sz = await FakeSendZen().start()
    ib = await FakeInfobip(rate_limit=10_000).start()
    t = NOW - timedelta(hours=5)
    sz.add(incoming(1, t, NUMBER, "Where is my parcel?"),
           status_log(2, t + timedelta(minutes=1), "wamid.OUT1", NUMBER, "sent"),
           status_log(3, t + timedelta(minutes=2), "wamid.OUT1", NUMBER, "read"),
           *(sendzen_log(100 + i, at) for i, at in enumerate(spread(40, NOW - timedelta(days=2), NOW))))
    ib.add({**infobip_message(7, t, final=True), "destination": NUMBER},
           *(infobip_message(200 + i, at, final=True) for i, at in enumerate(spread(40, NOW - timedelta(hours=30), NOW))))
    await archive_all(store, sz, ib)
    await store.quarantine.add("sendzen", "default", [Quarantined({"created_at": "x", "from": f"+{NUMBER}"}, "test"),
                                                      Quarantined({"created_at": "x", "from": "4917012345678"}, "test")])
    yield sz, ib
    await sz.stop()
    await ib.stop()


async def archive_all(store: Store, sz: FakeSendZen, ib: FakeInfobip) -> None:
    async with aiohttp.ClientSession() as session:
        from tests.helpers import infobip_source, sendzen_source

        await run_pass(sendzen_source(session, sz.base_url), store, since=NOW - timedelta(days=7), until=NOW)
        await run_pass(infobip_source(session, ib.base_url), store, since=NOW - timedelta(hours=47), until=NOW)


class TestErase:
    async def test_everything_about_the_number_goes_and_nothing_else(self, world: Any, store: Store) -> None:
        """Three SendZen logs, one Infobip message, their messages, history and a quarantined record."""
        before = await counts(store)
        erased = await erase_phone(store.engine, "+49 170-123 4567")
        assert erased == {"records": 4, "events": 4, "messages": 3, "status_history": 4, "quarantine": 1}
        after = await counts(store)
        assert {k: before[k] - after[k] for k in before} == erased, "other rows untouched"
        assert await raw_mentions(store) == 0

    async def test_a_re_read_of_the_week_does_not_bring_them_back(self, world: Any, store: Store) -> None:
        """The providers still serve her records; the tombstone keeps them out."""
        sz, ib = world
        await erase_phone(store.engine, NUMBER)
        after_erase = await counts(store)
        await archive_all(store, sz, ib)
        assert await counts(store) == after_erase and await raw_mentions(store) == 0

    async def test_a_second_erase_is_a_no_op_and_a_dry_run_changes_nothing(self, world: Any, store: Store) -> None:
        """Dry run counts what would go; the erase does it; a repeat finds nothing."""
        before = await counts(store)
        dry = await erase_phone(store.engine, NUMBER, dry_run=True)
        assert await counts(store) == before and dry["records"] == 4
        assert await erase_phone(store.engine, NUMBER) == dry
        assert set((await erase_phone(store.engine, NUMBER)).values()) == {0}

    async def test_the_number_is_kept_nowhere_only_its_keyed_hash(self, world: Any, store: Store) -> None:
        """Tombstones and the erasure log hold an HMAC, never the digits."""
        await erase_phone(store.engine, NUMBER)
        async with store.engine.connect() as conn:
            stones = list(await conn.scalars(select(m.tombstones.c.digest)))
            log = list(await conn.execute(select(m.erasure_log.c.digest, m.erasure_log.c.counts)))
        assert len(stones) == 1 and len(stones[0]) == 64 and NUMBER not in stones[0]
        assert log[0].digest == stones[0] and json.loads(log[0].counts)["records"] == 4

    async def test_a_crash_half_way_is_finished_by_a_re_run(self, world: Any, store: Store,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
        """A failure after the first batch committed: nothing half-erased, and a re-run completes."""
        monkeypatch.setattr(erase_mod, "BATCH", 1)
        real = erase_mod._erase_batch
        calls = {"n": 0}

        async def failing(conn: Any, batch: Any, dry_run: bool) -> Any:
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("killed")
            return await real(conn, batch, dry_run)

        monkeypatch.setattr(erase_mod, "_erase_batch", failing)
        with pytest.raises(RuntimeError):
            await erase_phone(store.engine, NUMBER)
        async with store.engine.connect() as conn:
            orphans = await conn.scalar(select(func.count()).select_from(m.messages).where(
                ~select(m.events.c.id).where(m.events.c.message_id == m.messages.c.message_id).exists()))
        assert orphans == 0, "no message left without its records"
        monkeypatch.setattr(erase_mod, "_erase_batch", real)
        await erase_phone(store.engine, NUMBER)
        assert await raw_mentions(store) == 0

    @pytest.mark.parametrize("phone", ["", "abc", "+", "12"])
    async def test_a_phone_that_is_not_one_is_refused(self, phone: str, store: Store) -> None:
        """Empty or non-numeric: a clear refusal, nothing erased."""
        with pytest.raises(ValueError, match="not a phone number"):
            await erase_phone(store.engine, phone)


async def test_kill_9_mid_erase_then_a_re_run_finishes(tmp_path: Any) -> None:
    """A real ``archiver erase`` killed with SIGKILL between batches: every message left is
    whole (no message without its records), and a re-run leaves nothing of the number."""
    import asyncio
    import signal

    from archiver.db.connect import create_engine, migrate
    from archiver.sources.infobip import parse_message
    from tests.cli_helpers import ARCHIVER, cli_env
    from tests.helpers import write_config

    url = f"sqlite:///{tmp_path}/a.db"
    engine = create_engine(url)
    await migrate(engine)
    store = Store(engine)
    mine = [parse_message({**infobip_message(i, NOW - timedelta(minutes=i), final=True), "destination": NUMBER})
            for i in range(6000)]
    others = [parse_message(infobip_message(10_000 + i, NOW - timedelta(minutes=i), final=True)) for i in range(500)]
    for start in range(0, len(mine), 1000):
        await store.save("infobip", "default", mine[start:start + 1000])
    await store.save("infobip", "default", others)
    config = write_config(tmp_path / "c.toml", url, infobip="http://127.0.0.1:9")
    proc = await asyncio.create_subprocess_exec(*ARCHIVER, "--config", str(config), "erase", "--phone", NUMBER,
                                                stdout=asyncio.subprocess.DEVNULL, env=cli_env())
    while (await counts(store))["records"] > 6500 - 500 and proc.returncode is None:
        await asyncio.sleep(0.005)  # watching the archive shrink: the first batches have committed
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    print("killed with", (await counts(store))["records"], "records left, exit", proc.returncode)
    assert 500 < (await counts(store))["records"] <= 6500 - 500 and proc.returncode == -signal.SIGKILL
    async with engine.connect() as conn:
        orphans = await conn.scalar(select(func.count()).select_from(m.messages).where(
            ~select(m.events.c.id).where(m.events.c.message_id == m.messages.c.message_id).exists()))
        lonely = await conn.scalar(select(func.count()).select_from(m.events).where(
            ~select(m.records.c.id).where(m.records.c.natural_key == m.events.c.natural_key).exists()))
    assert orphans == 0 and lonely == 0, "nothing half-erased"
    await erase_phone(engine, NUMBER)
    assert await counts(store) == {"records": 500, "events": 500, "messages": 500, "status_history": 500,
                                   "quarantine": 0}
    await store.close()
    await engine.dispose()
