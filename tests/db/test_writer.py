"""The write path's pure parts: a batch's rows, and the SQLite transaction made of them."""

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


def test_a_sqlite_save_is_one_transaction_of_its_rows_tally_checkpoint_and_window() -> None:
    now = T + timedelta(hours=1)
    batch = writer.rows_of([status("a", "m1", "sent", 1), status("b", "m1", "read", 3)], writer.SqliteWriter.time)
    save = writer.Save(("sendzen", "shop"), batch, now, checkpoint=T, window=writer.Window(T, now, 2, 1))
    tx = writer.SqliteWriter.transaction(save)
    assert tx.rows == 2 and tx.count.fixed == ("sendzen", "shop", '["a","b"]') and tx.tally.fixed == ("sendzen", "shop")
    assert [step.sql for step in tx.steps] == [writer.SqliteWriter.RECORDS, writer.SqliteWriter.TEXT_OUT,
                                               writer.SqliteWriter.TEXT_IN, writer.SqliteWriter.MESSAGES,
                                               writer.SqliteWriter.HISTORY, writer.SqliteWriter.CHECKPOINT,
                                               writer.SqliteWriter.COVERAGE]
    assert tx.steps[0].rows == batch.rows and tx.steps[0].fixed == ("sendzen", "shop", *[writer.SqliteWriter.time(now)] * 2)
    assert tx.steps[-2].fixed[2] == "2024-05-01 00:00:00.000000", "the checkpoint in the stored time form"


def test_a_save_of_nothing_but_a_checkpoint_counts_nothing() -> None:
    tx = writer.SqliteWriter.transaction(writer.Save(("sendzen", "shop"), None, T, checkpoint=T))
    assert tx.count is None and tx.tally is None and tx.rows == 0 and len(tx.steps) == 1
