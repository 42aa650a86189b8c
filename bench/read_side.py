"""``make bench-read``: the read side and the lifecycle on a large archive, measured.

Messages are generated straight into the database with the real ``Store.save`` (no
HTTP), the read API runs in-process on 127.0.0.1, and every figure is printed beside a
baseline of the same run: each indexed query beside the same query after its index is
dropped (forced to scan); the Parquet export beside the JSONL export.

    python bench/read_side.py                 # 1,000,000 messages, SQLite and PostgreSQL
    python bench/read_side.py --messages 100000 --sqlite-only
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp
from sqlalchemy import func, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archiver import logs  # noqa: E402
from archiver.api import search  # noqa: E402
from archiver.api.serve import start_api  # noqa: E402
from archiver.config import ApiConfig, ApiToken  # noqa: E402
from archiver.db.connect import create_engine, migrate  # noqa: E402
from archiver.db.dialect import contains_pattern, is_sqlite, refresh_statistics, text_contains  # noqa: E402
from archiver.db.store import Store  # noqa: E402
from archiver.export import export  # noqa: E402
from archiver.lifecycle.erase import erase_phone  # noqa: E402
from archiver.lifecycle.prune import prune  # noqa: E402
from archiver.parquet import export_parquet  # noqa: E402
from archiver.simulator import infobip_message  # noqa: E402
from archiver.sources.infobip import parse_message  # noqa: E402
from archiver.times import utcnow  # noqa: E402
from tests.helpers import free_port  # noqa: E402
from tests.pgcluster import PostgresCluster  # noqa: E402

TOKEN = "bench-read-token-0123456789abcdef"
CUSTOMERS = 50_000
READ_INDEXES = {"ix_records_message_id": "records (message_id)", "ix_records_sender": "records (sender)",
                "ix_records_recipient": "records (recipient)", "ix_records_time": "records (record_at, source, id)"}
"""The read side's indexes (migrations 0004, 0009): dropped for the forced-scan baseline, then built again."""
PG_TEXT_INDEX = ("ix_records_text_trgm", "records USING gin (lower(text) gin_trgm_ops)")
"""migration 0008's on PostgreSQL; on SQLite the scan baseline bypasses the FTS5 table instead."""


def scanning_text(records: Any, value: str, on_sqlite: bool) -> Any:
    """Text search as it was before migration 0008: a LIKE over every row."""
    return func.lower(records.c.text).like(contains_pattern(value), escape="\\")


async def fill(store: Store, messages: int) -> None:
    """Infobip-shaped messages over 400 days, 50,000 customers, through the real Store."""
    now, rng = utcnow(), random.Random(7)
    step = timedelta(days=400) / messages
    for start in range(0, messages, 2000):
        batch = []
        for i in range(start, min(start + 2000, messages)):
            raw = infobip_message(i, now - step * (messages - i), final=True)
            raw["destination"] = f"49170{rng.randrange(CUSTOMERS):07d}"
            batch.append(parse_message(raw))
        await store.save("infobip", "default", batch)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


async def timed(call: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def get(http: aiohttp.ClientSession, url: str, auth: str = "Bearer") -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        async with http.get(url, headers={"Authorization": f"{auth} {TOKEN}"}) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.read()
    return call


async def queries(http: aiohttp.ClientSession, base: str, rng: random.Random, repeat: int) -> dict[str, tuple[float, float]]:
    def mid() -> str:
        return f"MSG-{rng.randrange(1000):09d}"

    def phone() -> str:
        return f"49170{rng.randrange(CUSTOMERS):07d}"

    return {
        "message id": await timed(lambda: get(http, f"{base}/api/v1/messages?message_id={mid()}")(), repeat),
        "phone": await timed(lambda: get(http, f"{base}/api/v1/messages?phone=%2B{phone()}&limit=50")(), repeat),
        "text": await timed(get(http, f"{base}/api/v1/messages?text=code%20is%20000123"), max(3, repeat // 10)),
        "infobip page of 1000": await timed(get(http, f"{base}/messenger/1/logs?limit=1000", "App"), repeat),
        "sendzen page of 20": await timed(get(http, f"{base}/v1/logs?pageSize=20"), repeat),
    }


async def walk(http: aiohttp.ClientSession, base: str) -> tuple[int, float]:
    """Every record through /messenger/1/logs, 1000 a page, by cursor."""
    started, count, url = time.perf_counter(), 0, f"{base}/messenger/1/logs?limit=1000&useCursor=true"
    while True:
        async with http.get(url, headers={"Authorization": f"App {TOKEN}"}) as resp:
            body = await resp.json()
        count += len(body["results"])
        nxt = body["cursor"].get("nextCursor")
        if not nxt:
            return count, time.perf_counter() - started
        url = f"{base}/messenger/1/logs?limit=1000&useCursor=true&cursor={nxt}"


def read_indexes(store: Store) -> dict[str, str]:
    return READ_INDEXES if is_sqlite(store.engine) else dict([*READ_INDEXES.items(), PG_TEXT_INDEX])


async def drop_read_indexes(store: Store) -> None:
    search.text_contains = scanning_text  # type: ignore[assignment]
    async with store.engine.begin() as conn:
        for name in read_indexes(store):
            await conn.execute(text(f"DROP INDEX IF EXISTS {name}"))


async def create_read_indexes(store: Store) -> None:
    search.text_contains = text_contains  # type: ignore[assignment]
    async with store.engine.begin() as conn:
        for name, target in read_indexes(store).items():
            await conn.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {target}"))


async def customers(store: Store, n: int) -> list[str]:
    """Numbers that are in the archive (so an erase has something to do)."""
    async with store.engine.connect() as conn:
        return list(await conn.scalars(text("SELECT DISTINCT recipient FROM records ORDER BY recipient LIMIT :n"), {"n": n}))


async def timed_erase(store: Store, number: str) -> float:
    started = time.perf_counter()
    await erase_phone(store.engine, f"+{number}")
    return time.perf_counter() - started


async def lifecycle(store: Store, tmp: Path, messages: int) -> list[str]:
    lines = []
    numbers = await customers(store, 10)
    await erase_phone(store.engine, "+1000000")  # warm: statements compiled, key made
    indexed = [await timed_erase(store, n) for n in numbers[:5]]
    await drop_read_indexes(store)
    scanned = [await timed_erase(store, n) for n in numbers[5:]]
    await create_read_indexes(store)
    ix, sc = statistics.median(indexed), statistics.median(scanned)
    lines.append(f"erase one number (median of 5): {ix * 1000:.0f} ms vs forced scan {sc * 1000:.0f} ms "
                 f"→ {sc / ix:.1f}× faster")
    started = time.perf_counter()
    with open(tmp / "all.jsonl", "w") as out:
        n = await export(store, "infobip", out)
    jsonl_s, jsonl_bytes = time.perf_counter() - started, (tmp / "all.jsonl").stat().st_size
    started = time.perf_counter()
    await export_parquet(store, ["infobip"], tmp / "parquet")
    parquet_s = time.perf_counter() - started
    parquet_bytes = sum(p.stat().st_size for p in (tmp / "parquet").rglob("*.parquet"))
    lines.append(f"parquet export: {n / parquet_s:,.0f} rows/s, {parquet_bytes / 1e6:.1f} MB vs JSONL "
                 f"{n / jsonl_s:,.0f} rows/s, {jsonl_bytes / 1e6:.1f} MB → {parquet_bytes / jsonl_bytes:.2f} of the bytes")
    started = time.perf_counter()
    pruning = asyncio.create_task(prune(store.engine, keep_days=200))
    waits = await polls_during(store, pruning)
    pruned, took = await pruning, time.perf_counter() - started
    lines.append(f"prune of {pruned['records']:,} records (keep_days=200): {pruned['records'] / took:,.0f} records/s "
                 f"in batches of 2,000; a concurrent poll's write waited at most {max(waits) * 1000:.0f} ms "
                 f"(median {statistics.median(waits) * 1000:.0f} ms, {len(waits)} writes of 100 records)")
    return lines


async def polls_during(store: Store, task: asyncio.Task[Any]) -> list[float]:
    """A daemon's writes while ``task`` runs: 100 new records every 50 ms; each one's latency."""
    now, waits, n = utcnow(), [], 0
    while not task.done():
        batch = [parse_message(infobip_message(5_000_000 + n + i, now, final=True)) for i in range(100)]
        started = time.perf_counter()
        await store.save("infobip", "default", batch)
        waits.append(time.perf_counter() - started)
        n += 100
        await asyncio.sleep(0.05)
    return waits or [0.0]


SERVE_CONFIG = """[database]
url = "{url}"

[api]
host = "127.0.0.1"
port = {port}

[[api.tokens]]
name = "bench"
token = "{token}"
"""


async def served_by_a_process(url: str, tmp: Path) -> str:
    """``archiver serve`` as its own process: the whole walk and the queries through it,
    then its peak RSS (the target is 150 MB)."""
    port = free_port()
    config = tmp / "serve.toml"
    config.write_text(SERVE_CONFIG.format(url=url, port=port, token=TOKEN))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "archiver", "--config", str(config),
                                                "--log-level", "warning", "serve")
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(400):
                try:
                    async with http.get(f"{base}/healthz"):
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            count, seconds = await walk(http, base)
            await queries(http, base, random.Random(2), 10)
        peak = next(int(line.split()[1]) / 1024 for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                    if line.startswith("VmHWM:"))
    finally:
        proc.terminate()
        await proc.wait()
    return (f"archiver serve (own process): walk {count / seconds:,.0f} records/s, then the queries; "
            f"peak RSS {peak:.0f} MB (target ≤ 150 MB)")


async def bench(label: str, url: str, messages: int, repeat: int, tmp: Path) -> None:
    engine = create_engine(url)
    await migrate(engine)
    store = Store(engine)
    started = time.perf_counter()
    await fill(store, messages)
    async with engine.begin() as conn:  # as autovacuum leaves a live database (the bench outpaces it)
        await refresh_statistics(conn, "records", "messages", "past_statuses")
    print(f"\n{label}: {messages:,} messages generated in {time.perf_counter() - started:.0f}s")
    port = free_port()
    api = ApiConfig(host="127.0.0.1", port=port, tokens=(ApiToken(name="bench", token=TOKEN),))
    runner = await start_api(api, engine)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            indexed = await queries(http, base, random.Random(1), repeat)
            count, seconds = await walk(http, base)
            await drop_read_indexes(store)
            scanned = await queries(http, base, random.Random(1), max(3, repeat // 10))
            await create_read_indexes(store)
        print(f"{'query':<22} {'p50 ms':>8} {'p95 ms':>8} {'scan p50':>9} {'scan p95':>9} {'speed-up p95':>13}")
        for name, (p50, p95) in indexed.items():
            s50, s95 = scanned[name]
            print(f"{name:<22} {p50:>8.1f} {p95:>8.1f} {s50:>9.1f} {s95:>9.1f} {s95 / p95:>12.1f}×")
        print(f"walk of /messenger/1/logs, 1000 a page: {count:,} records in {seconds:.1f}s = {count / seconds:,.0f} records/s")
        print(await served_by_a_process(url, tmp))
        for line in await lifecycle(store, tmp, messages):
            print(line)
    finally:
        await runner.cleanup()
        await store.close()
        await engine.dispose()


async def main(messages: int, sqlite_only: bool, repeat: int) -> None:
    logs.configure("console", "warning")
    tmp = Path(tempfile.mkdtemp(prefix="archiver-bench-read-"))
    try:
        await bench("SQLite", f"sqlite:///{tmp}/read.db", messages, repeat, tmp)
        if sqlite_only:
            return
        cluster = PostgresCluster()
        cluster.start()
        try:
            await bench("PostgreSQL", cluster.new_database(), messages, repeat, tmp)
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.sqlite_only, args.repeat))
