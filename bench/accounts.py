"""``make bench-accounts``: many accounts, and several daemons sharing them on PostgreSQL.

Real ``archiver run`` processes against one SendZen fake (every account has its own key;
every key sees the same logs, so every account archives all of them):

1. one daemon, 50 accounts, a backlog and live traffic: records/s, CPU seconds per 1,000
   records and peak RSS, beside the same daemon with one account (the baseline);
2. three daemons, 60 accounts: seconds until every account is owned (at start and after
   a kill -9), and requests per account per poll beside one daemon polling all 60;
3. ``archiver status`` on 10,000,000 archived rows, beside the ``count(*)`` it replaced.

    python bench/accounts.py            # full sizes (a few minutes)
    python bench/accounts.py --quick    # smaller sizes, for a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from archiver.config import load  # noqa: E402
from archiver.runtime import opened  # noqa: E402
from archiver.status import provider_statuses  # noqa: E402
from archiver.db.connect import create_engine, migrate  # noqa: E402
from archiver.simulator import FakeSendZen, sendzen_log, spread  # noqa: E402
from archiver.times import utcnow  # noqa: E402
from tests.helpers import free_port  # noqa: E402
from tests.pgcluster import PostgresCluster  # noqa: E402

POLL = 2
LEASE = 6


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


def config(tmp: Path, name: str, db_url: str, base_url: str, accounts: int) -> Path:
    tables = "".join(f'\n[[sendzen.accounts]]\nname = "a{i:03}"\napi_key = "key-{i}"\n' for i in range(accounts))
    path = tmp / f"{name}.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n\n[cluster]\nlease_seconds = {LEASE}\n\n'
                    f'[sendzen]\nbase_url = "{base_url}"\npoll_interval_seconds = {POLL}\n'
                    f'requests_per_minute = 100000\n{tables}')
    return path


def start(path: Path) -> Daemon:
    """A daemon on ``path``'s config, with a port of its own for /healthz and /metrics."""
    port = free_port()
    own = path.with_name(f"{path.stem}-{port}.toml")
    own.write_text(path.read_text() + f'\n[server]\nhost = "127.0.0.1"\nport = {port}\n')
    return Daemon(subprocess.Popen([sys.executable, "-m", "archiver", "--config", str(own), "--log-level", "warning",
                                    "run"], stderr=subprocess.DEVNULL))


async def until(check, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while (result := await check()) is None or result is False:
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: not within {timeout}s")
        await asyncio.sleep(0.1)
    return result


async def new_database(cluster: PostgresCluster) -> tuple[str, asyncpg.Connection]:
    """A migrated database (as the daemons' first start would leave it) and a connection to watch it."""
    url = cluster.new_database()
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()
    return url, await asyncpg.connect(url)


async def archived(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT coalesce(sum(records), 0) FROM tallies") or 0)


async def live_traffic(fake: FakeSendZen, per_second: int, stop: asyncio.Event) -> None:
    n = 10_000_000
    while not stop.is_set():
        fake.add(sendzen_log(n, utcnow()))
        n += 1
        await asyncio.sleep(1 / per_second)


async def one_daemon(cluster: PostgresCluster, tmp: Path, accounts: int, backlog: int) -> dict[str, float]:
    """Archive a backlog per account, then follow live traffic for a while."""
    keys = [f"key-{i}" for i in range(accounts)]
    fake = await FakeSendZen(api_key=keys[0], other_keys=tuple(keys[1:])).start()
    now = utcnow()
    fake.add(*(sendzen_log(i, at) for i, at in enumerate(spread(backlog, now - timedelta(hours=6), now))))
    url, db = await new_database(cluster)
    stop = asyncio.Event()
    traffic = asyncio.get_running_loop().create_task(live_traffic(fake, 5, stop))
    daemon = start(config(tmp, f"one{accounts}", url, fake.base_url, accounts))
    started = time.monotonic()
    try:
        await until(lambda: _ge(archived(db), accounts * backlog), timeout=900)
        wall = time.monotonic() - started
        cpu = daemon.cpu_seconds()
        records = await archived(db)
        stop.set()
        await traffic
        total = len(fake.logs)
        await until(lambda: _ge(archived(db), accounts * total), timeout=60)  # caught up with the live tail
        return {"records": records, "wall": wall, "rate": records / wall, "cpu_per_1000": cpu / records * 1000,
                "rss": daemon.peak_rss_mb()}
    finally:
        stop.set()
        daemon.stop()
        await db.close()
        await fake.stop()


async def _ge(value, target: int) -> bool:  # type: ignore[no-untyped-def]
    return (await value) >= target


async def owned(db: asyncpg.Connection, daemons: list[Daemon]) -> Counter[int]:
    rows = await db.fetch("SELECT owner FROM leases WHERE owner IS NOT NULL AND expires_at > now()")
    live = {d.proc.pid for d in daemons if d.proc.poll() is None}
    return Counter(p for p in (int(r["owner"].rsplit(":", 1)[1]) for r in rows) if p in live)


async def requests_per_poll(fake: FakeSendZen, db: asyncpg.Connection, seconds: float) -> tuple[float, float]:
    """Over ``seconds`` of steady state: requests per account poll (requests ÷ the polls the
    ``runs`` table logged), and polls per account per poll interval (1.0: none skipped)."""
    accounts = await db.fetchval("SELECT count(*) FROM leases")
    since = await db.fetchval("SELECT now()")
    fake.requests.clear()
    await asyncio.sleep(seconds)
    requests = len(fake.requests)
    polls = await db.fetchval("SELECT count(*) FROM runs WHERE kind = 'poll' AND started_at >= $1", since)
    return requests / max(polls, 1), polls / accounts / (seconds / POLL)


async def scale_out(cluster: PostgresCluster, tmp: Path, accounts: int, steady: float) -> dict[str, float]:
    keys = [f"key-{i}" for i in range(accounts)]
    fake = await FakeSendZen(api_key=keys[0], other_keys=tuple(keys[1:])).start()
    now = utcnow()
    fake.add(*(sendzen_log(i, at) for i, at in enumerate(spread(200, now - timedelta(hours=1), now))))
    result: dict[str, float] = {}
    try:
        url, db = await new_database(cluster)
        single = [start(config(tmp, "single", url, fake.base_url, accounts))]
        await until(lambda: _ge(archived(db), accounts * 200), timeout=300)
        result["single_rpp"], result["single_polls"] = await requests_per_poll(fake, db, steady)
        for d in single:
            d.stop()
        await db.close()

        url, db = await new_database(cluster)
        path = config(tmp, "three", url, fake.base_url, accounts)
        started = time.monotonic()
        daemons = [start(path) for _ in range(3)]
        await until(lambda: _eq(_total(owned(db, daemons)), accounts), timeout=120)
        result["owned_at_start"] = time.monotonic() - started
        fair = -(-accounts // len(daemons)) + 1
        await until(lambda: _balanced(owned(db, daemons), accounts, fair), timeout=120)
        result["balanced_at_start"] = time.monotonic() - started
        await until(lambda: _ge(archived(db), accounts * 200), timeout=300)
        epochs = await db.fetchval("SELECT sum(epoch) FROM leases")
        result["three_rpp"], result["three_polls"] = await requests_per_poll(fake, db, steady)
        result["moves"] = await db.fetchval("SELECT sum(epoch) FROM leases") - epochs
        result["spread"] = max((await owned(db, daemons)).values())
        daemons[0].proc.kill()
        daemons[0].proc.wait()
        killed = time.monotonic()
        await until(lambda: _eq(_total(owned(db, daemons[1:])), accounts), timeout=120)
        result["owned_after_kill"] = time.monotonic() - killed
        for d in daemons:
            d.stop()
        await db.close()
        return result
    finally:
        await fake.stop()


async def _total(counter) -> int:  # type: ignore[no-untyped-def]
    return sum((await counter).values())


async def _balanced(counter, accounts: int, fair: int) -> bool:  # type: ignore[no-untyped-def]
    held = await counter
    return sum(held.values()) == accounts and max(held.values()) <= fair


async def _eq(value, target: int) -> bool:  # type: ignore[no-untyped-def]
    return (await value) == target


async def status_on(cluster: PostgresCluster, tmp: Path, rows: int) -> dict[str, float]:
    """``status`` over ``rows`` records in 10 accounts (in-process, as the command computes it),
    and the per-account ``count(*)`` it no longer runs."""
    url, db = await new_database(cluster)
    path = config(tmp, "status", url, "http://127.0.0.1:9", 10)
    try:
        await db.execute(
            "INSERT INTO records (source, account, natural_key, record_at, raw, first_seen_at, updated_at) "
            "SELECT 'sendzen', 'a' || lpad((g % 10)::text, 3, '0'), g::text, now() - g * interval '1 ms', "
            "'{\"n\": 1}', now(), now() FROM generate_series(1, $1) g", rows)
        await db.execute("INSERT INTO tallies SELECT source, account, count(*) FROM records GROUP BY 1, 2 "
                         "ON CONFLICT (source, account) DO UPDATE SET records = excluded.records")
        await db.execute("VACUUM ANALYZE records")
        async with opened(load(path)) as rt:
            started = time.monotonic()
            statuses = await provider_statuses(rt.select(None), rt.store)
            status = time.monotonic() - started
        assert statuses["sendzen"]["rows"] == rows
        started = time.monotonic()
        for i in range(10):
            await db.fetchval("SELECT count(*) FROM records WHERE source = 'sendzen' AND account = $1", f"a{i:03}")
        return {"status": status, "count": time.monotonic() - started}
    finally:
        await db.close()


async def main(quick: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="archiver-bench-accounts-"))
    cluster = PostgresCluster()
    cluster.start()
    try:
        backlog = 200 if quick else 1000
        base = await one_daemon(cluster, tmp, 1, backlog * 10)
        many = await one_daemon(cluster, tmp, 50, backlog)
        print(f"{'one daemon':<24} {'records':>8} {'wall s':>7} {'rec/s':>7} {'CPU s/1k':>9} {'peak MB':>8}")
        for label, r in (("1 account (baseline)", base), ("50 accounts", many)):
            print(f"{label:<24} {r['records']:>8.0f} {r['wall']:>7.1f} {r['rate']:>7.0f} "
                  f"{r['cpu_per_1000']:>9.3f} {r['rss']:>8.0f}")
        print(f"    50 accounts / 1 account: records/s ×{many['rate'] / base['rate']:.2f}, "
              f"CPU per record ×{many['cpu_per_1000'] / base['cpu_per_1000']:.2f}")
        out = await scale_out(cluster, tmp, 60, steady=5 * POLL if quick else 15 * POLL)
        print(f"three daemons, 60 accounts (lease {LEASE}s, poll {POLL}s):")
        print(f"    every account owned {out['owned_at_start']:.1f}s after start, balanced (≤ 20 + 1 each) after "
              f"{out['balanced_at_start']:.1f}s (target ≤ lease + poll = {LEASE + POLL}s); most held by one "
              f"in steady state: {out['spread']:.0f}")
        print(f"    after kill -9 of one: every account owned again in {out['owned_after_kill']:.1f}s "
              f"(target ≤ lease + poll = {LEASE + POLL}s)")
        print(f"    requests per account poll: three daemons {out['three_rpp']:.3f}, one daemon "
              f"{out['single_rpp']:.3f} → ratio {out['three_rpp'] / out['single_rpp']:.3f} (target ≤ 1.05); "
              f"polls per account per interval {out['three_polls']:.2f} vs {out['single_polls']:.2f}; "
              f"owner changes meanwhile: {out['moves']}")
        rows = 1_000_000 if quick else 10_000_000
        st = await status_on(cluster, tmp, rows)
        print(f"status on {rows:,} rows in 10 accounts: {st['status']:.3f}s (target < 1s); the count(*) per "
              f"account it used to run: {st['count']:.2f}s → ×{st['count'] / st['status']:.0f}")
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
