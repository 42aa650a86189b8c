"""The engine against an in-memory source whose timing the test controls."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Sequence

from archiver.db.store import Store
from archiver.engine import run_pass
from archiver.domain import Event, Page, Record

UTC = timezone.utc
NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)


class ScriptedSource:
    """Three one-hour windows; each window's fetch waits for the test's go-ahead."""

    name = "scripted"
    account = "default"
    retention = timedelta(hours=3)
    overlap = timedelta(minutes=5)
    window = timedelta(hours=1)
    max_concurrency = 3
    poll_interval = timedelta(seconds=60)

    def __init__(self) -> None:
        self.release = {i: asyncio.Event() for i in range(3)}
        self.requests = 0

    def _index(self, start: datetime) -> int:
        return int((start - (NOW - self.retention)) / self.window)

    async def fetch(self, start: datetime, end: datetime) -> AsyncIterator[Page]:
        if end - start == self.overlap:  # the live tail, fetched first on a long pass: empty here
            yield Page([])
            return
        index = self._index(start)
        await self.release[index].wait()
        self.requests += 1
        yield Page([{"id": f"w{index}", "at": (start + timedelta(minutes=1)).isoformat()}])

    async def refresh(self, message_ids: Sequence[str]) -> AsyncIterator[Page]:
        return
        yield  # pragma: no cover

    def parse(self, raw: dict[str, Any]) -> Record:
        at = datetime.fromisoformat(raw["at"])
        return Record(key=raw["id"], at=at, raw=raw, event=Event(message_id=raw["id"], occurred_at=at))


async def test_out_of_order_windows_never_move_the_checkpoint_past_an_unfinished_one(store: Store) -> None:
    source = ScriptedSource()
    passing = asyncio.create_task(run_pass(source, store, now=NOW))
    source.release[2].set()
    source.release[1].set()
    await _until(lambda: source.requests == 2)
    await _settle(store, expected_rows=2)
    assert await store.checkpoint("scripted", "default") is None, "windows 1 and 2 done, window 0 not"
    source.release[0].set()
    result = await passing
    assert result.windows == 3 and result.records == 3
    assert await store.checkpoint("scripted", "default") == NOW - source.overlap


async def test_failed_window_keeps_the_checkpoint_before_it(store: Store) -> None:
    source = ScriptedSource()

    async def broken(start: datetime, end: datetime) -> AsyncIterator[Page]:
        if source._index(start) == 1 and end - start == source.window:
            raise RuntimeError("provider fell over")
        yield Page([{"id": f"ok{source._index(start)}", "at": (start + timedelta(minutes=1)).isoformat()}])

    source.fetch = broken  # type: ignore[method-assign]
    try:
        await run_pass(source, store, now=NOW)
    except RuntimeError as exc:
        assert str(exc) == "provider fell over"
    else:
        raise AssertionError("the failure must surface")
    checkpoint = await store.checkpoint("scripted", "default")
    assert checkpoint is None or checkpoint <= NOW - timedelta(hours=2), "never past the failed window"
    _, failed = await store.last_runs("scripted", "default")
    assert failed.error == "provider fell over"


async def _until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def _settle(store: Store, expected_rows: int) -> None:
    async with asyncio.timeout(5):
        while await store.count_records("scripted", "default") < expected_rows:
            await asyncio.sleep(0.01)
