"""The write path's pure parts: a batch's rows, and SQLite's statements over them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from archiver.db import writer
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
