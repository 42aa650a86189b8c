"""A batch's rows, built from records as they cross to a writer (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from archiver import jsoncodec
from archiver.db import models as m, rows, sqlite_writer
from archiver.domain import Event, Record

T = datetime(2024, 5, 1, tzinfo=timezone.utc)


def status(key: str, message_id: str, state: str, rank: int, detail: str | None = None) -> Record:
    event = Event(message_id=message_id, status=state, status_detail=detail, occurred_at=T + timedelta(seconds=rank))
    return Record(key=key, at=T, raw={"k": key}, event=event, status_rank=rank)


def sqlite_batch(records: list[Record]) -> rows.Batch:
    """As SQLite's writer builds it: wired with microseconds, rows with its stored text."""
    return rows.rows_of(rows.crossing(records), sqlite_writer.time)


def test_a_batch_keeps_each_message_newest_status() -> None:
    batch = sqlite_batch([status("a", "m1", "read", 3), status("b", "m1", "sent", 1),
                          status("c", "m1", "sent", 1, "via x"), status("d", "m2", "delivered", 2),
                          Record(key="e", at=T, raw={}, event=Event())])
    assert [row[0] for row in batch.rows] == ["a", "b", "c", "d", "e"]
    assert [row[-1] for row in batch.rows][:2] == ['{"k":"a"}', '{"k":"b"}'], "raw as compact JSON text"
    assert batch.messages == [["m1", "read", 3, "2024-05-01 00:00:03.000000"],
                              ["m2", "delivered", 2, "2024-05-01 00:00:02.000000"]], "forward only, in key order"


def test_a_row_holds_every_column_of_the_statement() -> None:
    [row] = sqlite_batch([status("a", "m1", "sent", 1)]).rows
    assert len(row) == len(rows.ROW)
    values = dict(zip(rows.ROW, row))
    assert values["record_at"] == "2024-05-01 00:00:00.000000" and values["occurred_at"] == "2024-05-01 00:00:01.000000"
    assert values["message_id"] == "m1" and values["status"] == "sent" and values["text"] is None


def test_in_the_archiver_s_own_process_times_stay_datetimes_and_raw_becomes_text() -> None:
    """PostgreSQL's path: nothing in between to cross a process boundary."""
    [(key, at, _, times, _, raw)] = rows.wire([status("a", "m1", "sent", 1)])
    assert at == T and times[0] == T + timedelta(seconds=1) and raw == '{"k":"a"}'


def test_raw_crosses_to_the_writer_process_as_parsed_and_is_written_as_compact_json() -> None:
    raw = {"b": [1, 2.5, None, True], "a": "é \ud800"}  # key order kept; a lone surrogate stays an escape
    [wired] = rows.crossing([Record(key="a", at=T, raw=raw, event=Event())])
    assert wired[-1] is raw
    [row] = rows.rows_of([wired], sqlite_writer.time).rows
    assert row[-1] == '{"b":[1,2.5,null,true],"a":"é \\ud800"}'
    assert row[-1] == jsoncodec.dumps(raw), "the text the archiver's own process would have written"


def test_the_row_names_every_normalized_column_of_the_table() -> None:
    """The event's fields are the table's columns, times among them, in one order: the
    writer process knows them without SQLAlchemy, so a new column must be added to both."""
    assert [*rows.EVENT_PLAIN, *rows.EVENT_TIMES] == [c for c in m.EVENT_COLUMNS if c not in m.EVENT_TIMES] + \
        list(m.EVENT_TIMES)
    assert list(rows.EVENT_TIMES) == m.EVENT_TIMES


@given(st.datetimes(timezones=st.just(timezone.utc)) | st.datetimes(timezones=st.timezones()))
def test_microseconds_carry_every_time_exactly(moment: datetime) -> None:
    """The same instant, whatever the zone (compared in UTC: a local time in a DST fold is
    never equal to one of another zone, even the same instant)."""
    assert rows.from_micros(rows.micros(moment)) == moment.astimezone(timezone.utc)


def test_wired_times_follow_event_times_whichever_way_they_are_converted() -> None:
    """``crossing`` spells the three times out (its hot loop): they must stay in EVENT_TIMES' order."""
    event = Event(occurred_at=T + timedelta(seconds=1), done_at=T + timedelta(seconds=2),
                  created_at=T + timedelta(seconds=3))
    record = Record(key="a", at=T, raw={}, event=event)
    expected = tuple(getattr(event, name) for name in rows.EVENT_TIMES)
    assert rows.wire([record])[0][3] == expected
    assert rows.crossing([record])[0][3] == tuple(map(rows.micros, expected))
    same = Record(key="b", at=T, raw={}, event=Event(created_at=T))
    assert rows.crossing([same])[0][3] == (None, None, rows.micros(T)), "a position that is its created_at"
