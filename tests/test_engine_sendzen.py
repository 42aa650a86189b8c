"""End to end through the engine: the SendZen simulator over real HTTP into both databases."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import aiohttp

from archiver.db.store import Store
from archiver.engine import run_pass
from archiver.export import export
from archiver.simulator import FakeSendZen, sendzen_log, spread
from archiver.times import utcnow
from tests.helpers import canonical, sendzen_source


async def exported(store: Store, source: str = "sendzen") -> list[dict]:
    out = io.StringIO()
    await export(store, source, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def fill(fake: FakeSendZen, count: int, *, days: float = 7, start_n: int = 0, ties_every: int = 0) -> None:
    now = utcnow()
    moments = spread(count, now - timedelta(days=days) + timedelta(minutes=5), now - timedelta(seconds=5))
    for i, at in enumerate(moments):
        if ties_every and i % ties_every:
            at = moments[i - i % ties_every]  # runs of equal created_at, straddling page boundaries
        fake.add(sendzen_log(start_n + i, at))


async def test_backfill_archives_every_log_exactly_once(store: Store, fake_sendzen: FakeSendZen) -> None:
    """A first pass archives the whole 7-day retention; export equals what the provider serves."""
    fill(fake_sendzen, 300, ties_every=7)
    async with aiohttp.ClientSession() as session:
        source = sendzen_source(session, fake_sendzen.base_url, window_seconds=6 * 3600)
        result = await run_pass(source, store, kind="backfill")
    rows = await exported(store)
    assert sorted(canonical(r["raw"]) for r in rows) == sorted(canonical(l) for l in fake_sendzen.served_logs())
    assert result.records >= 300
    assert await store.count_records("sendzen", "default") == 300


async def test_rerun_adds_nothing_and_asks_only_for_the_tail(store: Store, fake_sendzen: FakeSendZen) -> None:
    """The second pass starts at the checkpoint (now − overlap), not at retention's start."""
    fill(fake_sendzen, 200)
    async with aiohttp.ClientSession() as session:
        source = sendzen_source(session, fake_sendzen.base_url)
        await run_pass(source, store)
        first_requests = len(fake_sendzen.requests)
        fake_sendzen.add(sendzen_log(10_000, utcnow() - timedelta(seconds=1)))
        second = await run_pass(source, store)
    assert first_requests >= 10, "200 records are at least ten pages"
    assert len(fake_sendzen.requests) - first_requests <= 2
    assert second.windows == 1
    assert await store.count_records("sendzen", "default") == 201


async def test_polls_keep_the_coverage_ledger_one_row(store: Store, fake_sendzen: FakeSendZen) -> None:
    """A daemon's polls each log a window; the pass folds them, so the ledger does not grow."""
    fill(fake_sendzen, 100)
    async with aiohttp.ClientSession() as session:
        source = sendzen_source(session, fake_sendzen.base_url, window_seconds=6 * 3600)
        first = await run_pass(source, store, kind="backfill")
        for _ in range(5):
            await run_pass(source, store)
    assert first.windows >= 5
    (covered,) = await store.coverage("sendzen", "default")
    assert covered[1] - covered[0] >= timedelta(days=7)


async def test_late_commit_inside_the_overlap_is_caught(store: Store, fake_sendzen: FakeSendZen) -> None:
    """A record that appears after a pass with an older created_at (within the overlap) is archived."""
    fill(fake_sendzen, 20, days=1)
    async with aiohttp.ClientSession() as session:
        source = sendzen_source(session, fake_sendzen.base_url)
        await run_pass(source, store)
        late = sendzen_log(777, utcnow() - timedelta(minutes=3))
        fake_sendzen.add(late)
        await run_pass(source, store)
    assert canonical(late) in {canonical(r["raw"]) for r in await exported(store)}


async def test_checkpoint_stops_at_now_minus_overlap(store: Store, fake_sendzen: FakeSendZen) -> None:
    """The checkpoint never reaches now: the overlap tail is re-read next time."""
    fill(fake_sendzen, 10, days=1)
    now = utcnow()
    async with aiohttp.ClientSession() as session:
        await run_pass(sendzen_source(session, fake_sendzen.base_url, overlap_seconds=300), store, now=now)
    assert await store.checkpoint("sendzen", "default") == now - timedelta(seconds=300)


async def test_explicit_range_rereads_and_leaves_checkpoint(store: Store, fake_sendzen: FakeSendZen) -> None:
    """--since/--until re-read exactly that range and do not move the checkpoint."""
    fill(fake_sendzen, 50, days=2)
    now = utcnow()
    async with aiohttp.ClientSession() as session:
        source = sendzen_source(session, fake_sendzen.base_url)
        result = await run_pass(source, store, since=now - timedelta(days=1), until=now)
    assert await store.checkpoint("sendzen", "default") is None
    assert 20 <= result.records <= 30


async def test_a_long_backfill_fetches_the_live_tail_first(store: Store, fake_sendzen: FakeSendZen) -> None:
    """Catching up on days of backlog, the last minutes are requested before anything else."""
    fill(fake_sendzen, 100)
    now = utcnow()
    async with aiohttp.ClientSession() as session:
        await run_pass(sendzen_source(session, fake_sendzen.base_url, overlap_seconds=300), store, now=now)
    first = fake_sendzen.requests[0]
    assert int(first["toDate"]) - int(first["fromDate"]) == 300 * 10_000_000
    assert await store.count_records("sendzen", "default") == 100


async def test_server_order_does_not_matter(store: Store) -> None:
    """Oldest-first paging gives the same archive as newest-first."""
    fake = await FakeSendZen(oldest_first=True).start()
    try:
        fill(fake, 150, ties_every=5)
        async with aiohttp.ClientSession() as session:
            await run_pass(sendzen_source(session, fake.base_url), store)
        rows = await exported(store)
        assert sorted(canonical(r["raw"]) for r in rows) == sorted(canonical(l) for l in fake.served_logs())
    finally:
        await fake.stop()


async def test_records_past_retention_are_not_expected(store: Store, fake_sendzen: FakeSendZen) -> None:
    """The provider no longer serves logs older than 7 days; everything younger is archived."""
    now = utcnow()
    fake_sendzen.add(*(sendzen_log(i, now - timedelta(days=8, minutes=i)) for i in range(5)))
    fill(fake_sendzen, 40, start_n=100)
    async with aiohttp.ClientSession() as session:
        await run_pass(sendzen_source(session, fake_sendzen.base_url), store)
    assert len(fake_sendzen.served_logs()) == 40
    assert await store.count_records("sendzen", "default") == 40


async def test_concurrent_backfill_equals_sequential(db_url: str, tmp_path, request,  # type: ignore[no-untyped-def]
                                                     fake_sendzen: FakeSendZen) -> None:
    """max_concurrency = 8 and = 1 archive the same records, field for field."""
    from archiver.db.connect import create_engine, migrate

    fill(fake_sendzen, 500, ties_every=4)
    exports = []
    for concurrency in (1, 8):
        if db_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path}/c{concurrency}.db"
        else:
            url = request.getfixturevalue("postgres").new_database()
        engine = create_engine(url)
        await migrate(engine)
        async with aiohttp.ClientSession() as session:
            source = sendzen_source(session, fake_sendzen.base_url, max_concurrency=concurrency,
                                    window_seconds=3 * 3600)
            store = Store(engine)
            await run_pass(source, store)
            await store.close()
        exports.append(sorted(canonical(r) for r in await exported(Store(engine))))
        await engine.dispose()
    assert exports[0] == exports[1] and len(exports[0]) == 500


async def test_a_window_is_saved_in_batches_of_its_store_s_size(store: Store, fake_sendzen: FakeSendZen,
                                                                 monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The engine holds what the store's writer asks for (SQLite's 250, PostgreSQL's 500),
    a page more at most, and saves the rest with the window's end."""
    assert store.write_batch == (250 if store._sqlite else 500)
    monkeypatch.setattr(store._writer, "batch", 50)
    mid_window: list[int] = []
    window_ends: list[int] = []
    save = store.save

    async def counted(source, account, records, **kwargs):  # type: ignore[no-untyped-def]
        (window_ends if kwargs.get("window") else mid_window).append(len(records))
        await save(source, account, records, **kwargs)

    monkeypatch.setattr(store, "save", counted)
    fill(fake_sendzen, 230, days=0.5)
    async with aiohttp.ClientSession() as session:
        await run_pass(sendzen_source(session, fake_sendzen.base_url, window_seconds=86400), store, kind="backfill")
    assert await store.count_records("sendzen", "default") == 230
    assert len(mid_window) >= 3 and all(50 <= n < 50 + 20 for n in mid_window), mid_window
    assert all(n < 50 + 20 for n in window_ends), window_ends
