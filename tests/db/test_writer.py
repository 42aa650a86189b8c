"""What each writer makes of a save before it reaches the database."""

from __future__ import annotations

from datetime import timedelta

import orjson

from archiver.db import rows, writer
from archiver.db.rows import micros
from archiver.db.sqlite_writer import SqliteSave, decode, encode
from tests.db.test_rows import T, status


def test_a_sqlite_save_crosses_to_the_writer_with_its_times_as_microseconds_and_raw_as_parsed() -> None:
    now = T + timedelta(hours=1)
    save = writer.Save(("sendzen", "shop"), [status("a", "m1", "sent", 1)], now, checkpoint=T,
                       window=writer.Window(T, now, 1, 1))
    request = writer.SqliteWriter.request(save)
    assert request.now == micros(now) and request.checkpoint == micros(T)
    assert request.window == (micros(T), micros(now), 1, 1)
    [(key, at, plain, times, rank, raw)] = request.records
    assert (key, at, raw, rank) == ("a", micros(T), {"k": "a"}, 1) and times[0] == micros(T + timedelta(seconds=1))
    assert decode(encode(request)) == request and isinstance(decode(encode(request)), SqliteSave)


def test_postgresql_reads_the_wired_records_where_the_statement_says() -> None:
    """``v->>4`` the rank, ``v->3->>0`` the occurred time, ``v->2->>1`` the message id:
    the positions the statement was built with."""
    [wired] = rows.wire([status("a", "m1", "sent", 1)])
    row = orjson.loads(writer._json_rows([wired[:-1]]))[0]
    assert row[4] == 1 and row[3][0] == "2024-05-01T00:00:01+00:00"
    assert row[2][rows.MESSAGE_ID] == "m1" and row[2][rows.STATUS] == "sent" and wired[-1] == '{"k":"a"}'
