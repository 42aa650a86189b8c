"""The write path's pure parts: a batch's rows, and SQLite's statements over them."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from archiver.db import writer
from archiver.db.connect import create_engine, migrate
from archiver.db.store import Store
from archiver.domain import Event, Record

T = datetime(2024, 5, 1, tzinfo=timezone.utc)


def status(key: str, message_id: str, state: str, rank: int, detail: str | None = None) -> Record:
    event = Event(message_id=message_id, status=state, status_detail=detail, occurred_at=T + timedelta(seconds=rank))
    return Record(key=key, at=T, raw={"k": key}, event=event, status_rank=rank)


def test_a_batch_keeps_each_message_newest_status_and_every_status_once() -> None:
    batch = writer.rows_of([status("a", "m1", "read", 3), status("b", "m1", "sent", 1),
                            status("c", "m1", "sent", 1, "via x"), status("d", "m2", "delivered", 2),
                            Record(key="e", at=T, raw={}, event=Event())], writer.SqliteWriter.time)
    assert [row[0] for row in batch.rows] == ["a", "b", "c", "d", "e"]
    assert [row[-1] for row in batch.rows][:2] == ['{"k":"a"}', '{"k":"b"}'], "raw as compact JSON text"
    assert batch.messages == [["m1", "read", 3, "2024-05-01 00:00:03.000000"],
                              ["m2", "delivered", 2, "2024-05-01 00:00:02.000000"]], "forward only, in key order"
    assert batch.history == [["m1", "read", ""], ["m1", "sent", ""], ["m1", "sent", "via x"], ["m2", "delivered", ""]]


def test_a_row_holds_every_column_of_the_statement() -> None:
    [row] = writer.rows_of([status("a", "m1", "sent", 1)], writer.SqliteWriter.time).rows
    assert len(row) == len(writer.ROW)
    values = dict(zip(writer.ROW, row))
    assert values["record_at"] == "2024-05-01 00:00:00.000000" and values["occurred_at"] == "2024-05-01 00:00:01.000000"
    assert values["message_id"] == "m1" and values["status"] == "sent" and values["text"] is None


def test_sqlite_statements_come_in_a_few_sizes_only() -> None:
    """Full chunks, then power-of-two pieces: sqlite3 caches a statement per size, so the
    sizes must stay few whatever the batch (the process's memory depends on it)."""
    sizes = set()
    for n in (1, 3, 255, 256, 1000, 1001, 2047):
        rows = [[i, f"k{i}"] for i in range(n)]
        steps = writer._values("INSERT INTO t (a, b, c, d) VALUES {rows}", ("src", "acct"), rows)
        assert [v for _, params in steps for v in params[2:]] == [v for row in rows for v in row], "each row once, in order"
        for sql, params in steps:
            assert params[:2] == ("src", "acct") and sql.count("(?1, ?2, ?, ?)") == (len(params) - 2) // 2
            sizes.add(sql.count("(?1"))
    assert sizes <= {writer.CHUNK, *(1 << i for i in range(writer.CHUNK.bit_length()))}


async def test_a_cancelled_sqlite_save_finishes_its_transaction_before_giving_back_the_connection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM cancels a save while its worker thread holds the connection: the
    cancellation waits for the thread's commit, so the pool never hands out a connection
    that another thread is still using, and the next save works."""
    engine = create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    await migrate(engine)
    store = Store(engine)
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()
    real = writer._transaction

    def held(*args: Any) -> None:
        entered.set()
        release.wait(10)
        real(*args)
        finished.set()

    monkeypatch.setattr(writer, "_transaction", held)
    try:
        save = asyncio.ensure_future(store.save("sendzen", "default", [status("a", "m1", "sent", 1)]))
        await asyncio.to_thread(entered.wait, 10)
        save.cancel()
        done, _ = await asyncio.wait([save], timeout=1)  # unfixed, it ends at once, the thread still writing
        assert not done, "the cancellation waits for the thread"
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await save
        assert finished.is_set()
        monkeypatch.setattr(writer, "_transaction", real)
        await store.save("sendzen", "default", [status("b", "m2", "sent", 1)])
        assert await store.count_records("sendzen", "default") == 2, "the first save had committed whole"
    finally:
        release.set()
        await engine.dispose()
