"""SQLite's writer program, run in this process: statements, transactions, the protocol."""

from __future__ import annotations

import io
import pickle
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from archiver.db import sqlite_writer as program
from archiver.db.sqlite_writer import SqliteSave, Step, Transaction
from archiver.db.rows import crossing, from_micros, micros
from archiver.times import sqlite_text
from tests.db.test_rows import T, status

TABLE = "CREATE TABLE t (a TEXT, b TEXT, c INTEGER, d INTEGER)"
INSERT = "INSERT INTO t (a, b, c, d) VALUES {rows}"


def test_statements_come_in_a_few_sizes_only() -> None:
    """Full chunks, then power-of-two pieces: sqlite3 caches a statement per size, so the
    sizes must stay few whatever the batch (the process's memory depends on it)."""
    sizes = set()
    for n in (1, 3, 255, 256, 1000, 1001, 2047):
        rows = [[i, f"k{i}"] for i in range(n)]
        statements = program.values(Step(INSERT, ("src", "acct"), rows))
        assert [v for _, params in statements for v in params[2:]] == [v for row in rows for v in row], \
            "each row once, in order"
        for sql, params in statements:
            assert params[:2] == ("src", "acct") and sql.count("(?1, ?2, ?, ?)") == (len(params) - 2) // 2
            sizes.add(sql.count("(?1"))
    assert sizes <= {program.CHUNK, *(1 << i for i in range(program.CHUNK.bit_length()))}


def test_a_step_without_rows_is_one_statement_and_no_rows_is_none() -> None:
    assert program.values(Step("DELETE FROM t WHERE a = ?1", ("x",))) == [("DELETE FROM t WHERE a = ?1", ("x",))]
    assert program.values(Step(INSERT, ("x", "y"), [])) == []


def connected(path: Path) -> sqlite3.Connection:
    handle = sqlite3.connect(path, isolation_level=None)
    handle.execute(TABLE)
    return handle


def test_a_failed_statement_rolls_the_whole_transaction_back(tmp_path: Path) -> None:
    handle = connected(tmp_path / "a.db")
    steps = [Step(INSERT, ("a", "b"), [[1, 1]]), Step("INSERT INTO missing VALUES (1)", ())]
    with pytest.raises(sqlite3.OperationalError):
        program.run(handle, Transaction(steps))
    assert handle.execute("SELECT count(*) FROM t").fetchone()[0] == 0 and not handle.in_transaction


def frames(*saves: SqliteSave) -> io.BytesIO:
    out = b"".join(program.HEADER.pack(len(body)) + body for body in map(program.encode, saves))
    return io.BytesIO(out)


def answers(stream: io.BytesIO) -> list[BaseException | None]:
    stream.seek(0)
    found = []
    while header := stream.read(program.HEADER.size):
        found.append(pickle.loads(stream.read(program.HEADER.unpack(header)[0])))
    return found


def test_a_save_crosses_marshalled_and_arrives_equal_raw_in_its_key_order() -> None:
    """Exactly what was sent: big and negative numbers, floats, booleans, None, any text,
    and raw's keys in the order served (the writer encodes raw from it)."""
    raw = {"z": 1, "a": [2**70, -3, 0.1, True, None], "é": {"nested": "ü\u2028"}}
    save = SqliteSave(("sendzen", "default"), micros(T), [("k", 1, ("x", None, 2.5, False), (1, None, 1), 3, raw)],
                      micros(T), (1, 2, 3, 4))
    body = program.encode(save)
    assert body[:1] == b"m"
    arrived = program.decode(body)
    assert arrived == save and isinstance(arrived, SqliteSave) and list(arrived.records[0][5]) == ["z", "a", "é"]


class Label(str):
    """A source's own kind of text."""


def test_a_value_marshal_refuses_sends_the_save_pickled() -> None:
    """A subclass of a core type (a source's own ``str``) still crosses, whole."""
    save = SqliteSave(("sendzen", "default"), micros(T), [("k", 1, (Label("x"),), (1, None, 1), 3, {"a": 1})])
    body = program.encode(save)
    assert body[:1] == b"p" and program.decode(body) == save


def save_of(*records, owner=("sendzen", "default"), checkpoint=None) -> SqliteSave:  # type: ignore[no-untyped-def]
    return SqliteSave(owner, micros(T), crossing(records), checkpoint)


def test_a_save_is_one_transaction_of_its_rows_text_index_messages_tally_checkpoint_and_window() -> None:
    wired = crossing([status("a", "m1", "sent", 1), status("b", "m1", "read", 3)])
    save = SqliteSave(("sendzen", "shop"), micros(T), wired, micros(T), (micros(T), micros(T), 2, 1))
    tx = program.transaction(save)
    assert tx.rows == 2 and tx.keys == ("sendzen", "shop", '["a","b"]')
    assert [step.sql for step in tx.steps] == [program.RECORDS, program.TEXT_OUT, program.TEXT_IN, program.MESSAGES,
                                               program.CHECKPOINT, program.COVERAGE]
    assert [row[0] for row in tx.steps[0].rows] == ["a", "b"]
    assert tx.steps[0].fixed == ("sendzen", "shop", "2024-05-01 00:00:00.000000", "2024-05-01 00:00:00.000000")
    assert tx.steps[-2].fixed[2] == "2024-05-01 00:00:00.000000", "the checkpoint in the stored time form"


def test_a_save_of_nothing_but_a_checkpoint_counts_nothing() -> None:
    tx = program.transaction(SqliteSave(("sendzen", "shop"), micros(T), [], micros(T)))
    assert tx.keys is None and tx.rows == 0 and len(tx.steps) == 1


async def archive(path: Path) -> None:
    from archiver.db.connect import create_engine, migrate

    engine = create_engine(f"sqlite:///{path}")
    await migrate(engine)
    await engine.dispose()


async def test_a_transaction_counts_what_was_there_before_and_tallies_the_rest(tmp_path: Path) -> None:
    await archive(tmp_path / "a.db")
    handle = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    program.run(handle, program.transaction(save_of(status("a", "m1", "sent", 1))))
    program.run(handle, program.transaction(save_of(status("a", "m1", "sent", 1), status("b", "m2", "sent", 1),
                                                    status("c", "m3", "sent", 1))))
    assert handle.execute("SELECT count(*) FROM records").fetchone()[0] == 3
    assert handle.execute("SELECT records FROM tallies").fetchall() == [(3,)], "three rows, one already archived"


async def test_serve_answers_each_save_in_order_and_ends_at_end_of_input(tmp_path: Path) -> None:
    """The first answer says the database opened; then one per save, an error as the
    exception itself (the parent raises it), and the program goes on after it."""
    await archive(tmp_path / "a.db")
    out = io.BytesIO()
    program.serve(str(tmp_path / "a.db"), frames(
        save_of(status("a", "m1", "sent", 1)),
        save_of(status("b", "m2", "sent", 1), owner=("sendzen", None)),  # type: ignore[arg-type]  # no account
        save_of(status("c", "m3", "sent", 1), checkpoint=micros(T))), out)
    got = answers(out)
    assert got[0] is None and got[1] is None and got[3] is None
    assert isinstance(got[2], sqlite3.IntegrityError) and "NOT NULL" in str(got[2])
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("SELECT natural_key FROM records ORDER BY 1").fetchall() == [("a",), ("c",)]
    assert db.execute("SELECT records FROM tallies").fetchall() == [(2,)], "the failed save rolled back whole"
    assert db.execute("SELECT position FROM checkpoints").fetchall() == [("2024-05-01 00:00:00.000000",)]


async def test_a_save_cut_off_in_the_middle_is_not_run(tmp_path: Path) -> None:
    """What a parent killed while sending leaves: the frames before it are run, the short
    one is not, and the program ends as at end of input."""
    await archive(tmp_path / "a.db")
    whole = frames(save_of(status("a", "m1", "sent", 1))).getvalue()
    cut = frames(save_of(status("b", "m2", "sent", 1))).getvalue()
    out = io.BytesIO()
    program.serve(str(tmp_path / "a.db"), io.BytesIO(whole + cut[:len(cut) // 2]), out)
    assert answers(out) == [None, None], "opened, the first save; nothing for the cut one"
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("SELECT natural_key FROM records").fetchall() == [("a",)]


def test_serve_says_why_a_database_cannot_be_opened(tmp_path: Path) -> None:
    out = io.BytesIO()
    program.serve(str(tmp_path / "no such dir" / "a.db"), io.BytesIO(), out)
    [error] = answers(out)
    assert isinstance(error, sqlite3.OperationalError) and "unable to open" in str(error)


def test_the_archive_is_set_up_as_the_pool_sets_it_up(tmp_path: Path) -> None:
    handle = sqlite3.connect(tmp_path / "a.db")
    program.configure(handle)
    assert handle.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert handle.execute("PRAGMA busy_timeout").fetchone()[0] == program.BUSY_TIMEOUT_MS
    assert handle.execute("PRAGMA page_size").fetchone()[0] == program.PAGE_SIZE


@given(st.integers(min_value=micros(datetime.min.replace(tzinfo=timezone.utc)),
                   max_value=micros(datetime.max.replace(tzinfo=timezone.utc))))
def test_a_time_is_written_as_the_text_sqlite_columns_hold(value: int) -> None:
    """Built from the number (not ``isoformat``), the text is the one SQLAlchemy reads
    and compares: any microsecond of years 1 to 9999, either side of 1970."""
    assert program.time(value) == sqlite_text(from_micros(value))


def test_none_and_booleans_bind_as_they_did_without_an_adapter() -> None:
    """``bind_plainly`` only skips sqlite3's adapter search: NULL stays NULL, booleans
    stay the integers 1 and 0, and other values are untouched."""
    handle = sqlite3.connect(":memory:")
    handle.execute("CREATE TABLE t (a, b, c, d, e)")
    row = (None, True, False, 7, "x")
    handle.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)", row)
    before = handle.execute("SELECT a, typeof(a), b, typeof(b), c, d, e FROM t").fetchall()
    program.bind_plainly()
    assert {(type(None), sqlite3.PrepareProtocol), (bool, sqlite3.PrepareProtocol)} <= sqlite3.adapters.keys(), \
        "found in the adapter registry, not searched for"
    handle.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)", row)
    assert handle.execute("SELECT a, typeof(a), b, typeof(b), c, d, e FROM t").fetchall() == before * 2
    assert before == [(None, "null", 1, "integer", 0, 7, "x")]
