"""Retention: records older than keep_days leave with their events, messages and history,
never come back from a provider that still serves them, and the daemon prunes by itself."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select, text

from archiver.db import history, models as m, tallies
from archiver.db.connect import create_engine, migrate
from archiver.db.store import Store
from archiver.domain import Event, Record
from archiver.engine import run_pass
from archiver.lifecycle import prune as prune_mod
from archiver.lifecycle.admission import Admission
from archiver.lifecycle.prune import prune
from archiver.simulator import FakeSendZen, sendzen_log, spread
from archiver.times import utcnow
from tests.cli_helpers import archiver, read_until, start_daemon, wait_for
from tests.helpers import free_port, sendzen_source, status_record, write_config

NOW = utcnow().replace(microsecond=0)


async def oldest_event(store: Store) -> Any:
    async with store.engine.connect() as conn:
        return await conn.scalar(select(func.min(func.coalesce(m.events.c.occurred_at, m.events.c.created_at))))


async def total(store: Store, table: Any) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


class TestPrune:
    async def test_old_records_go_with_everything_of_theirs(self, store: Store, fake_sendzen: FakeSendZen,
                                                             monkeypatch: Any) -> None:
        """A week archived, keep_days=3: the older four days go, in batches; nothing younger."""
        monkeypatch.setattr(prune_mod, "BATCH", 25)
        fake_sendzen.add(*(sendzen_log(i, at) for i, at in enumerate(spread(300, NOW - timedelta(days=6, hours=23), NOW))))
        async with aiohttp.ClientSession() as session:
            await run_pass(sendzen_source(session, fake_sendzen.base_url), store, now=NOW)
        before = await total(store, m.records)
        counts = await prune(store.engine, keep_days=3, now=NOW)
        assert 150 < counts["records"] == counts["events"] < 200
        assert await total(store, m.records) == before - counts["records"]
        assert await oldest_event(store) >= NOW - timedelta(days=3)
        async with store.engine.connect() as conn:
            orphans = await conn.scalar(select(func.count()).select_from(m.messages).where(
                ~select(m.events.c.id).where(m.events.c.message_id == m.messages.c.message_id).exists()))
        assert orphans == 0 and await prune(store.engine, keep_days=3, now=NOW) == dict.fromkeys(counts, 0)

    async def test_a_re_read_of_the_week_archives_nothing_older(self, store: Store, fake_sendzen: FakeSendZen) -> None:
        """With keep_days=2 a backfill of the provider's week keeps only two days."""
        fake_sendzen.add(*(sendzen_log(i, at) for i, at in enumerate(spread(140, NOW - timedelta(days=7), NOW))))
        keeping = Store(store.engine, Admission(keep_days=2))
        async with aiohttp.ClientSession() as session:
            await run_pass(sendzen_source(session, fake_sendzen.base_url), keeping, now=NOW,
                           since=NOW - timedelta(days=7), until=NOW)
        await keeping.close()
        assert 30 < await total(store, m.records) <= 41
        assert await oldest_event(store) >= NOW - timedelta(days=2, minutes=1)


async def test_the_daemon_prunes_on_its_own(tmp_path: Path, fake_sendzen: FakeSendZen) -> None:
    """keep_days set: the running daemon prunes at start and then daily; status shows the next prune."""
    fake_sendzen.add(*(sendzen_log(i, at) for i, at in enumerate(spread(50, NOW - timedelta(days=6), NOW))))
    db = f"sqlite:///{tmp_path}/a.db"
    plain = write_config(tmp_path / "plain.toml", db, sendzen=fake_sendzen.base_url)
    assert (await archiver(plain, "backfill")).code == 0
    config = write_config(tmp_path / "c.toml", db, sendzen=fake_sendzen.base_url, port=free_port(),
                          extra="\n[archive]\nkeep_days = 1\n")
    daemon = await start_daemon(config)
    try:
        event = await read_until(daemon, lambda e: e.get("event") == "pruned", timeout=60)
        assert event["records"] > 30
    finally:
        daemon.terminate()
        assert await daemon.wait() == 0
    status = json.loads((await archiver(config, "status", "--json")).stdout)["sendzen"]
    assert status["next_prune"] > NOW.isoformat()[:10] and status["oldest_record"] >= (NOW - timedelta(days=1, minutes=5)).isoformat()[:10]


async def test_keep_days_out_of_range_is_refused(tmp_path: Path) -> None:
    """Negative or absurd keep_days stops the start, naming the key."""
    for bad in ("-1", "40000"):
        config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/a.db", sendzen="http://127.0.0.1:9",
                              extra=f"\n[archive]\nkeep_days = {bad}\n")
        done = await archiver(config, "prune")
        assert done.code == 2 and "[archive] keep_days" in done.stderr


async def test_kill_9_mid_prune_leaves_it_consistent_and_a_re_run_finishes(tmp_path: Path) -> None:
    """A real ``archiver prune`` killed between batches: no message without its records,
    and the next prune finishes the job."""
    import asyncio
    import signal

    from archiver.db.connect import create_engine, migrate
    from archiver.simulator import infobip_message
    from archiver.sources.infobip import parse_message
    from tests.cli_helpers import ARCHIVER, cli_env

    url = f"sqlite:///{tmp_path}/a.db"
    engine = create_engine(url)
    await migrate(engine)
    store = Store(engine)
    old = [parse_message(infobip_message(i, NOW - timedelta(days=30, minutes=i), final=True)) for i in range(60_000)]
    for start in range(0, len(old), 5000):
        await store.save("infobip", "default", old[start:start + 5000])
    await store.save("infobip", "default", [parse_message(infobip_message(10**6 + i, NOW, final=True)) for i in range(100)])
    config = write_config(tmp_path / "c.toml", url, infobip="http://127.0.0.1:9", extra="\n[archive]\nkeep_days = 7\n")
    proc = await asyncio.create_subprocess_exec(*ARCHIVER, "--config", str(config), "prune",
                                                stdout=asyncio.subprocess.DEVNULL, env=cli_env())
    while await total(store, m.records) > 60_100 - 10_000 and proc.returncode is None:
        await asyncio.sleep(0.005)  # watching the archive shrink: the first batch has committed
    proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL
    assert 100 < await total(store, m.records) < 60_100
    async with engine.connect() as conn:
        orphans = await conn.scalar(select(func.count()).select_from(m.messages).where(
            ~select(m.events.c.id).where(m.events.c.message_id == m.messages.c.message_id).exists()))
    assert orphans == 0
    assert (await archiver(config, "prune")).code == 0
    assert await total(store, m.records) == await total(store, m.messages) == 100
    await store.close()
    await engine.dispose()


async def test_a_record_s_age_is_its_occurred_at_else_created_at(store: Store) -> None:
    """SPEC's retention clock: ``occurred_at``, else ``created_at``; never the position
    the record was fetched by (``record_at``), which can lie on the other side of the cutoff."""
    old, young = NOW - timedelta(days=10), NOW - timedelta(days=1)
    await store.save("sendzen", "default", [
        Record(key="happened-long-ago", at=young, raw={"k": 1}, event=Event(occurred_at=old, created_at=young)),
        Record(key="logged-long-ago", at=young, raw={"k": 2}, event=Event(created_at=old)),
        Record(key="positioned-long-ago", at=old, raw={"k": 3}, event=Event(occurred_at=young, created_at=old))])
    assert (await prune(store.engine, keep_days=3, now=NOW))["records"] == 2
    async with store.engine.connect() as conn:
        assert list(await conn.scalars(select(m.records.c.natural_key))) == ["positioned-long-ago"]


async def test_a_prune_and_a_save_of_the_same_message_never_deadlock(postgres, monkeypatch: Any) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL: prune keeps the statuses of a message it leaves a record of while a save
    changes that record's status, whose trigger keeps the same status: each inserts the
    same ``past_statuses`` row, and the save holds its account's tally. Prune takes the
    tally first, so the save waits for it instead of each waiting for the other."""
    engine = create_engine(postgres.new_database())
    await migrate(engine)
    store = Store(engine)
    old, young = NOW - timedelta(days=10), NOW - timedelta(days=1)
    await store.save("infobip", "default", [status_record("gone", "m9", "sent", old),
                                            status_record("stays", "m9", "delivered", young)])
    keep, saved = history.keep, []

    async def keep_then_save(conn: Any, messages: Any) -> None:
        await keep(conn, messages)  # m9's "delivered", not committed yet
        saving = asyncio.ensure_future(store.save("infobip", "default", [status_record("stays", "m9", "read", young)]))
        saved.append(saving)
        await wait_for(_waiting_for_a_lock(engine), timeout=10, every=0.01)  # blocked on this transaction

    monkeypatch.setattr(history, "keep", keep_then_save)
    counts = await prune(engine, keep_days=3, now=NOW)
    await saved[0]  # no DeadlockDetectedError on either side
    assert counts["records"] == 1 and counts["status_history"] == 0
    async with engine.connect() as conn:
        statuses = set(await conn.scalars(select(m.status_history.c.status)))
    assert statuses == {"sent", "delivered", "read"}
    await store.close()
    await engine.dispose()


async def test_a_prune_and_a_save_of_the_record_it_deletes_never_deadlock(postgres, monkeypatch: Any) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL: a save changing a record prune is deleting takes the record's row, then
    the tally. Prune holds its batch's records before it takes the tally, so the save
    waits for the whole prune instead of each waiting for the other."""
    engine = create_engine(postgres.new_database())
    await migrate(engine)
    store = Store(engine)  # admits old records (no retention), as a re-read could
    old = NOW - timedelta(days=10)
    await store.save("infobip", "default", [status_record("gone", "m9", "sent", old)])
    lock, saved = tallies.lock, []

    async def lock_then_save(conn: Any, owners: Any) -> None:
        await lock(conn, owners)  # the tally is prune's now
        if not saved:  # the first batch only
            saved.append(asyncio.ensure_future(
                store.save("infobip", "default", [status_record("gone", "m9", "read", old)])))
            await wait_for(_waiting_for_a_lock(engine), timeout=10, every=0.01)  # blocked on this transaction

    monkeypatch.setattr(tallies, "lock", lock_then_save)
    counts = await prune(engine, keep_days=3, now=NOW)
    await saved[0]  # no DeadlockDetectedError on either side
    async with engine.connect() as conn:
        left = list(await conn.execute(select(m.records.c.natural_key, m.records.c.status)))
    # the save ran once prune's first batch had committed: prune's next batch took its
    # record again, or prune had ended and it stays
    assert counts["records"] + len(left) == 2 and set(left) <= {("gone", "read")}
    await store.close()
    await engine.dispose()


def _waiting_for_a_lock(engine: Any):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        async with engine.connect() as conn:
            return bool(await conn.scalar(select(func.count()).select_from(text("pg_stat_activity"))
                                          .where(text("wait_event_type = 'Lock'"))))
    return check
