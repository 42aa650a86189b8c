"""Export mechanics that the CLI tests do not reach."""

import csv
import io
import json
import os
import stat
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from archiver.db.store import Store
from archiver.export import FIELDS, atomic_output, export
from archiver.domain import Event, Record
from archiver.times import rfc3339


def test_output_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("older complete export\n")
    with pytest.raises(RuntimeError):
        with atomic_output(str(target)) as out:
            out.write('{"half": ')
            raise RuntimeError("database went away")
    assert target.read_text() == "older complete export\n", "a failed export clobbers nothing"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"], "no partial file left"
    with atomic_output(str(target)) as out:
        out.write("new\n")
    assert target.read_text() == "new\n"


def test_a_device_or_pipe_is_written_not_replaced(tmp_path: Path) -> None:
    """``--output /dev/null`` or a named pipe: renaming over it would turn the device into a file."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    with atomic_output(str(fifo)) as out:
        out.write("through the pipe\n")
    reader.join(10)
    assert received == ["through the pipe\n"] and stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


async def test_raw_goes_out_as_stored_whatever_its_characters(store: Store) -> None:
    """raw is copied out as the stored JSON text: quotes, backslashes, emoji, newlines survive."""
    raw = {"b": "héllo 👋 \"quoted\" \\ back\nslash", "a": [1, 2.5, None, True], "nested": {"z": {}, "y": []}}
    at = datetime(2024, 5, 1, tzinfo=timezone.utc)
    await store.save("sendzen", "default", [Record(key="k", at=at, raw=raw, event=Event(text="héllo", occurred_at=at))])
    jsonl, as_csv = io.StringIO(), io.StringIO()
    assert await export(store, "sendzen", jsonl) == 1
    await export(store, "sendzen", as_csv, fmt="csv")
    (line,) = [json.loads(text) for text in jsonl.getvalue().splitlines()]
    assert line["raw"] == raw and list(line["raw"]) == ["b", "a", "nested"], "key order as served"
    assert line["text"] == "héllo" and line["occurred_at"] == "2024-05-01T00:00:00Z" and list(line)[-1] == "raw"
    (row,) = csv.DictReader(io.StringIO(as_csv.getvalue()))
    assert json.loads(row["raw"]) == raw and row["text"] == "héllo"


async def test_times_go_out_as_rfc3339_utc_whatever_their_fraction(store: Store) -> None:
    """The export reads times as text in one stored form on both databases and
    reformats them unparsed: the same text ``times.rfc3339`` makes of the time itself."""
    times = [datetime(2024, 5, 1, 23, 59, 59, tzinfo=timezone.utc), datetime(2024, 5, 2, 0, 0, 0, 120, tzinfo=timezone.utc),
             datetime(2024, 5, 2, 0, 0, 1, 999999, tzinfo=timezone.utc)]
    await store.save("sendzen", "default", [
        Record(key=f"k{i}", at=at, raw={"i": i}, event=Event(occurred_at=at, done_at=at, created_at=at))
        for i, at in enumerate(times)])
    out = io.StringIO()
    assert await export(store, "sendzen", out) == 3
    lines = [json.loads(text) for text in out.getvalue().splitlines()]
    assert [line["occurred_at"] for line in lines] == ["2024-05-01T23:59:59Z", "2024-05-02T00:00:00.00012Z",
                                                       "2024-05-02T00:00:01.999999Z"]
    assert all(line["occurred_at"] == line["done_at"] == line["created_at"] for line in lines)


TRICKY_TEXTS = ['"quoted" \\ back\\slash', "\x01\x1f\n\t\r\b\f\x7f", "é€😀\u2028\u2029", "</script>&<>", "", "x" * 10_000]
TRICKY_PRICES = [0.1 + 0.2, 1e-05, 123456789.123, 0.0147, None, 5.0]  # 0.1 + 0.2 needs all 17 digits


async def test_the_database_writes_the_fields_as_orjson_would(store: Store) -> None:
    """The export's JSON objects are written by the database (SQLite's json_object,
    PostgreSQL's row_to_json): escapes, booleans, numbers and times come out byte for
    byte as orjson and ``times.rfc3339`` write them from the values themselves."""
    at = datetime(2024, 5, 1, 12, 0, 0, 120, tzinfo=timezone.utc)
    events = [Event(event_type="Message Status", message_id=f"wamid.{i}", direction="outbound", status="delivered",
                    sender=text[:64], recipient="15551234567", text=text, error_code=[2**53 + 1, -1, 0][i % 3],
                    error_title=text, occurred_at=at, done_at=None if i % 2 else at.replace(microsecond=999999),
                    created_at=at.replace(microsecond=0), price=price, currency="EUR" if price else None,
                    billable=[True, False, None][i % 3], is_final=[None, True, False][i % 3], reaction=text[:64],
                    parse_error=None if i % 2 else text)
              for i, (text, price) in enumerate(zip(TRICKY_TEXTS, TRICKY_PRICES))]
    await store.save("sendzen", "default", [Record(key=f"k{i}", at=at + timedelta(seconds=i), raw={"i": i}, event=event)
                                            for i, event in enumerate(events)])
    jsonl, as_csv = io.StringIO(), io.StringIO()
    assert await export(store, "sendzen", jsonl) == len(events)
    await export(store, "sendzen", as_csv, fmt="csv")
    lines, rows = jsonl.getvalue().split("\n")[:-1], list(csv.DictReader(io.StringIO(as_csv.getvalue())))
    for i, (line, row, event) in enumerate(zip(lines, rows, events, strict=True)):
        fields = {"source": "sendzen", "account": "default",
                  **{name: getattr(event, name) for name in FIELDS[2:-1]}}
        fields.update({name: rfc3339(fields[name]) for name in ("occurred_at", "done_at", "created_at")})
        assert line == orjson.dumps(fields).decode()[:-1] + f',"raw":{{"i":{i}}}}}', f"record {i}"
        assert row == {**{name: "" if value is None else str(value) for name, value in fields.items()},
                       "raw": f'{{"i":{i}}}'}, f"record {i} as CSV"
