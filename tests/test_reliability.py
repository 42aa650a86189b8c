"""Faults, crashes, stale checkpoints, standbys and graceful stops: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import stat
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from archiver.db.store import Store
from archiver.engine import run_pass
from archiver.simulator import FakeInfobip, FakeSendZen, Faults, infobip_message, sendzen_log, spread
from archiver.times import utcnow
from tests.db.test_writer_process import alive
from tests.fakes.peak_rss import children
from tests.cli_helpers import ARCHIVER, archiver, read_until, start_daemon, wait_for
from tests.helpers import canonical, free_port, infobip_source, sendzen_source, write_config
from tests.test_engine_sendzen import exported


def seed_sendzen(fake: FakeSendZen, count: int, days: float = 6.9) -> None:
    now = utcnow()
    for i, at in enumerate(spread(count, now - timedelta(days=days), now - timedelta(seconds=2))):
        fake.add(sendzen_log(i, at))


async def test_faulty_sendzen_loses_nothing(store: Store) -> None:
    """500/503, timeouts and truncated 200s on a third of the requests: the archive is still exact."""
    fake = await FakeSendZen(faults=Faults(error_rate=0.15, timeout_rate=0.05, truncated_rate=0.1,
                                           timeout_seconds=1.5, seed=3)).start()
    try:
        seed_sendzen(fake, 400)
        async with aiohttp.ClientSession() as session:
            source = sendzen_source(session, fake.base_url, timeout_seconds=0.5, window_seconds=12 * 3600)
            await run_pass(source, store)
        assert fake.served.get(500, 0) + fake.served.get(503, 0) > 0
        rows = await exported(store)
        assert sorted(canonical(r["raw"]) for r in rows) == sorted(canonical(l) for l in fake.served_logs())
    finally:
        await fake.stop()


async def test_faulty_infobip_loses_nothing(store: Store) -> None:
    fake = await FakeInfobip(faults=Faults(error_rate=0.2, truncated_rate=0.1, seed=5)).start()
    try:
        now = utcnow()
        fake.add(*(infobip_message(i, at) for i, at in enumerate(spread(3000, now - timedelta(hours=40), now))))
        async with aiohttp.ClientSession() as session:
            await run_pass(infobip_source(session, fake.base_url, window_seconds=8 * 3600), store)
        rows = await exported(store, "infobip")
        assert sorted(r["message_id"] for r in rows) == sorted(fake.messages)
    finally:
        await fake.stop()


async def test_faulty_provider_cli_backfill_exits_zero(tmp_path: Path) -> None:
    fake = await FakeSendZen(faults=Faults(error_rate=0.25, truncated_rate=0.1, seed=11)).start()
    try:
        seed_sendzen(fake, 100)
        config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/a.db", sendzen=fake.base_url,
                              extra="window_seconds = 86400\n")
        done = await archiver(config, "backfill")
        assert done.code == 0, done.stderr
        retries = [json.loads(l) for l in done.stderr.splitlines() if "retrying" in l]
        assert retries and all(r["reason"] for r in retries), "each retry is logged with its reason"
        out = await archiver(config, "export", "--source", "sendzen")
        assert sorted(canonical(json.loads(l)["raw"]) for l in out.stdout.splitlines()) == \
            sorted(canonical(l) for l in fake.served_logs())
    finally:
        await fake.stop()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_kill_9_mid_backfill_then_rerun_is_complete(tmp_path: Path, db_url: str, seed: int) -> None:
    """SIGKILL at a random moment of a long backfill; the rerun resumes: complete, no duplicates."""
    fake = await FakeSendZen(faults=Faults(latency=0.003)).start()
    try:
        seed_sendzen(fake, 1500)
        config = write_config(tmp_path / "c.toml", db_url, sendzen=fake.base_url)
        proc = await asyncio.create_subprocess_exec(
            *ARCHIVER, "--config", str(config), "backfill",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        over, sqlite = _requests_over(fake, random.Random(seed).randint(5, 60)), db_url.startswith("sqlite")

        async def due() -> bool:  # on SQLite, once its writer runs too: the check below then tests something
            return await over() and (not sqlite or bool(running(proc.pid, "archiver.db.sqlite_writer")))
        await wait_for(due, timeout=60, every=0.01)
        writers = running(proc.pid, "archiver.db.sqlite_writer")
        assert len(writers) == sqlite
        proc.kill()
        assert await proc.wait() == -signal.SIGKILL
        await wait_for(_all_gone(writers), timeout=30, every=0.05)  # SQLite's writer ends with its parent
        done = await archiver(config, "backfill")
        assert done.code == 0, done.stderr
        out = await archiver(config, "export", "--source", "sendzen")
        raws = [canonical(json.loads(l)["raw"]) for l in out.stdout.splitlines()]
        assert len(raws) == len(set(raws)) == 1500
        assert sorted(raws) == sorted(canonical(l) for l in fake.served_logs())
    finally:
        await fake.stop()


def running(parent: int, program: str) -> list[int]:
    """The pids of ``parent``'s children running ``program``."""
    def command(pid: int) -> bytes:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return b""
    return [pid for pid in children(parent) if program.encode() in command(pid)]


def _all_gone(pids: list[int]):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return not any(alive(pid) for pid in pids)
    return check


def _requests_over(fake: FakeSendZen, n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return len(fake.requests) >= n
    return check


async def test_stale_checkpoint_is_a_gap_in_status(tmp_path: Path, db_url: str, store: Store,
                                                   fake_sendzen: FakeSendZen) -> None:
    seed_sendzen(fake_sendzen, 20)
    stale = utcnow() - timedelta(days=9)
    await store.set_checkpoint("sendzen", "default", stale)
    config = write_config(tmp_path / "c.toml", db_url, sendzen=fake_sendzen.base_url)
    done = await archiver(config, "backfill")
    assert done.code == 0
    assert any(json.loads(l).get("event") == "gap in the archive" and json.loads(l)["level"] == "error"
               for l in done.stderr.splitlines())
    status = json.loads((await archiver(config, "status", "--json")).stdout)["sendzen"]
    (gap,) = status["gaps"]
    assert gap["reason"] == "checkpoint older than the provider's retention"
    assert gap["from"].startswith(stale.strftime("%Y-%m-%dT%H:%M")) and gap["to"].endswith("Z")
    assert status["rows"] == 20


async def test_sqlite_file_is_private(tmp_path: Path, fake_sendzen: FakeSendZen) -> None:
    config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/private.db")
    assert (await archiver(config, "migrate")).code == 0
    assert stat.S_IMODE(os.stat(tmp_path / "private.db").st_mode) == 0o600


async def test_standby_takes_over_when_the_leader_dies(tmp_path: Path, postgres) -> None:  # type: ignore[no-untyped-def]
    """Two daemons on one PostgreSQL: the standby sends nothing while the leader lives,
    and polls once the leader is killed. Each daemon has its own key, so the fake can tell them apart."""
    fake = await FakeSendZen(api_key="leader-key", other_keys=("standby-key",)).start()
    seed_sendzen(fake, 5)
    url = postgres.new_database()
    leader_cfg = write_config(tmp_path / "a.toml", url, sendzen=fake.base_url, port=free_port(),
                              sendzen_key="leader-key", extra="\n[cluster]\nlease_seconds = 3\n")
    standby_cfg = write_config(tmp_path / "b.toml", url, sendzen=fake.base_url, port=free_port(),
                               sendzen_key="standby-key", extra="\n[cluster]\nlease_seconds = 3\n")
    leader = await start_daemon(leader_cfg, "--log-level", "debug")
    standby = None
    try:
        await wait_for(_requests_by(fake, "leader-key", 1), timeout=30)
        standby = await start_daemon(standby_cfg, "--log-level", "debug")
        for _ in range(3):  # three ticks of the standby, each deciding to stand by
            await read_until(standby, lambda e: e.get("event") == "standing by: another process polls this source")
        assert not [r for r in fake.requests if r["__key"] == "standby-key"]
        leader.kill()
        await leader.wait()
        await read_until(standby, lambda e: e.get("event") == "became the active poller", timeout=30)
        await wait_for(_requests_by(fake, "standby-key", 1), timeout=30)
    finally:
        for proc in (leader, standby):
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await proc.wait()
        await fake.stop()


def _requests_by(fake: FakeSendZen, key: str, n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return len([r for r in fake.requests if r["__key"] == key]) >= n
    return check
