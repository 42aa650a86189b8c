"""SQLite's writer: the program of a process of its own, where every bulk save runs.

In a thread of the archiver's process, a save competed with the event loop for the
GIL: ``sqlite3`` binds every value of a statement holding it (a batch is 18,000
values) and takes it back after each statement, while the loop, busy fetching and
parsing, held it the rest of the time. The two took turns more than they overlapped
(a 100k backfill's transactions spent 4.2 s to do 1.7 s of work). Here the parent
sends the records (``rows.crossing``, marshalled: under half a millisecond a batch) and
the child does the rest: the rows, the write lock, the statements, the commit.

The child is ``python -m archiver.db.sqlite_writer DATABASE`` (started by
``archiver.db.writer_process``), and imports nothing heavier than ``sqlite3``. It
reads length-prefixed ``SqliteSave``\\ s on stdin (``encode``) and answers each on stdout
once it is committed (or with the error that rolled it back). It ignores SIGINT and
SIGTERM (a Ctrl-C or a ``systemctl stop`` reaches the whole process group: the parent
decides when it stops) and ends at end of input, after committing the transaction it
is running, so a parent killed with SIGKILL leaves nothing half-written behind it either.
"""

from __future__ import annotations

import marshal
import pickle
import signal
import sqlite3
import struct
import sys
from functools import lru_cache
from itertools import chain
from typing import IO, Any, NamedTuple, Sequence

from archiver.collector import collect_rarely
from archiver.db.rows import MESSAGE, ROW, UPDATED, Wired, from_micros, memoized, rows_of
from archiver.jsoncodec import dumps as jsondumps
from archiver.times import sqlite_text

BUSY_TIMEOUT_MS = 30_000
PAGE_SIZE = 8192
PRAGMAS = (
    # A new archive's page size (an existing file keeps its own): a record row is about
    # 1.2 KB, and 4 KB pages hold three of them with a sixth of the page left empty.
    f"PRAGMA page_size={PAGE_SIZE}",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",  # crash-safe in WAL mode
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
    "PRAGMA wal_autocheckpoint=10000",  # ~80 MB: fewer, larger checkpoints
)
"""Every connection to an archive, the pool's and the writer's, is set up so."""

WRITER_PRAGMA = "PRAGMA temp_store=MEMORY"
"""The writer's own. A statement that may fail half-way inside a transaction (an upsert
of 64 rows, a text-index insert) keeps the pages it changes in a statement journal, to
undo just that statement; past 64 KB SQLite spills it to a temporary file. A 100k
backfill's saves wrote 470 MB into such files (110,000 ``pwrite`` calls), more than
into the WAL (320 MB). Kept in memory (one statement's pages at a time), the writer's
write calls halve, 206,000 → 97,000; its CPU moved within the noise (system time
0.52 → 0.49 s, medians of six)."""

CHUNK = 64
"""Most rows in one ``VALUES`` statement. Every statement size is prepared and cached by
sqlite3 with its bytecode (about 1 KB a row), so a batch goes as full chunks and the
rest in power-of-two pieces: seven sizes a table. Arbitrary sizes (up to 800 rows) made
a 160 MB process. In this process no GIL is shared, so smaller statements cost no time
(measured: 64 rows as fast as 256) and keep the statement cache 2 MB smaller."""

HEADER = struct.Struct(">I")


PRESENT = ("SELECT count(*) FROM records WHERE source = ?1 AND account = ?2 "
           "AND natural_key IN (SELECT value FROM json_each(?3))")
# The text index follows the rows this write changed (new ones have version 1).
TEXT_OUT = ("DELETE FROM events_text WHERE rowid IN (SELECT id FROM records WHERE source = ?1 AND account = ?2 "
            "AND natural_key IN (SELECT value FROM json_each(?3)) AND updated_at = ?4 AND version > 1)")
TEXT_IN = ("INSERT INTO events_text (rowid, text) SELECT id, text FROM records WHERE source = ?1 AND account = ?2 "
           "AND natural_key IN (SELECT value FROM json_each(?3)) AND updated_at = ?4 AND text IS NOT NULL")
RECORDS = (f"INSERT INTO records (source, account, first_seen_at, updated_at, {', '.join(ROW)}) VALUES {{rows}} "
           "ON CONFLICT (source, account, natural_key) DO UPDATE SET updated_at = excluded.updated_at, "
           f"version = records.version + 1, {', '.join(f'{c} = excluded.{c}' for c in UPDATED)} "
           "WHERE records.raw != excluded.raw")
MESSAGES = (f"INSERT INTO messages (source, account, updated_at, {', '.join(MESSAGE)}) VALUES {{rows}} "
            "ON CONFLICT (source, account, message_id) DO UPDATE SET status = excluded.status, "
            "status_rank = excluded.status_rank, status_at = excluded.status_at, updated_at = excluded.updated_at "
            "WHERE messages.status_rank <= excluded.status_rank")
# The rest of a save, as ``Store``'s Core statements say it for PostgreSQL.
TALLY = ("INSERT INTO tallies (source, account, records) VALUES (?1, ?2, ?3) ON CONFLICT (source, account) "
         "DO UPDATE SET records = tallies.records + excluded.records")
CHECKPOINT = ("INSERT INTO checkpoints (source, account, position, updated_at) VALUES (?1, ?2, ?3, ?4) "
              "ON CONFLICT (source, account) DO UPDATE SET position = excluded.position, "
              "updated_at = excluded.updated_at WHERE checkpoints.position < excluded.position")
COVERAGE = ("INSERT INTO coverage (source, account, window_from, window_to, records, pages, finished_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")


class SqliteSave(NamedTuple):
    """One ``Store.save``, as the archiver's process sends it; times as ``rows.micros``."""

    owner: tuple[str, str]
    now: int
    records: list[Wired]
    checkpoint: int | None = None
    window: tuple[int, int, int, int] | None = None
    """The coverage-ledger entry it completes: start, end, records, pages."""


class Step(NamedTuple):
    """A statement; with ``rows``, ``sql`` is a template whose ``{rows}`` takes a
    ``VALUES`` list: ``fixed`` are its ``?1``… (source, account, the write's time) and
    each row's values follow."""

    sql: str
    fixed: tuple[Any, ...]
    rows: Sequence[Sequence[Any]] | None = None


class Transaction(NamedTuple):
    steps: list[Step]
    keys: tuple[str, str, str] | None = None
    """Source, account and the batch's natural keys (a JSON list): counted under the write
    lock before the steps run (``PRESENT``), so the tally goes up by the new ones only."""
    rows: int = 0


def encode(save: SqliteSave) -> bytes:
    """A save as the child reads it (``decode``): marshalled, which costs the event loop a
    third of pickling (0.8 µs a record, not 2.3: the records are plain tuples, strings,
    numbers and raw as parsed) and the child the same to read. Both ends run the same
    interpreter, so its format is the same. A value marshal refuses (a subclass of a
    core type) sends the save pickled instead; a tag byte says which."""
    try:
        return b"m" + marshal.dumps(tuple(save))
    except ValueError:
        return b"p" + pickle.dumps(tuple(save), protocol=5)


def decode(body: bytes) -> SqliteSave:
    data = memoryview(body)[1:]
    return SqliteSave(*(marshal.loads(data) if body[:1] == b"m" else pickle.loads(data)))


def time(value: int | None) -> str | None:
    """A time (``rows.micros``) as SQLite stores it: ``times.sqlite_text``'s text, from the
    number, its minute remembered. ``datetime.isoformat`` parses its keyword arguments
    and formats each field through ``sprintf``: it was a tenth of this process's work,
    five times this."""
    if value is None:
        return None
    minute, rest = divmod(value, 60_000_000)
    return "%s%02d.%06d" % (_minute(minute), rest // 1_000_000, rest % 1_000_000)


@lru_cache(maxsize=4096)
def _minute(minutes: int) -> str:
    """``YYYY-MM-DD HH:MM:`` of the minute ``minutes`` after 1970 (a batch's times share few)."""
    return sqlite_text(from_micros(minutes * 60_000_000))[:17]


def transaction(save: SqliteSave) -> Transaction:
    """The save's statements; the account's tally goes up by the batch's keys that were
    not archived before (counted under the write lock)."""
    owner, now, steps = save.owner, time(save.now), []
    keys = None
    if save.records:
        batch = rows_of(save.records, memoized(time))
        keys = (*owner, jsondumps([row[0] for row in batch.rows]))
        steps += [Step(RECORDS, (*owner, now, now), batch.rows), Step(TEXT_OUT, (*keys, now)),
                  Step(TEXT_IN, (*keys, now)), Step(MESSAGES, (*owner, now), batch.messages)]
    if save.checkpoint is not None:
        steps.append(Step(CHECKPOINT, (*owner, time(save.checkpoint), now)))
    if save.window is not None:
        start, end, records, pages = save.window
        steps.append(Step(COVERAGE, (*owner, time(start), time(end), records, pages, now)))
    return Transaction(steps, keys, len(save.records))


def configure(connection: Any) -> None:
    """``PRAGMAS`` on a DB-API connection (sqlite3's own, or aiosqlite's adapter)."""
    cursor = connection.cursor()
    for pragma in PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def values(step: Step) -> list[tuple[str, tuple[Any, ...]]]:
    """``step`` as statements: plain, or its rows in chunks (``CHUNK``)."""
    if step.rows is None:
        return [(step.sql, step.fixed)]
    rows, statements, start = step.rows, [], 0
    while start < len(rows):
        size = CHUNK if len(rows) - start >= CHUNK else 1 << ((len(rows) - start).bit_length() - 1)
        chunk = rows[start:start + size]
        one = "(" + ", ".join([f"?{i + 1}" for i in range(len(step.fixed))] + ["?"] * len(chunk[0])) + ")"
        statements.append((step.sql.format(rows=", ".join([one] * size)), (*step.fixed, *chain.from_iterable(chunk))))
        start += size
    return statements


def run(handle: sqlite3.Connection, transaction: Transaction) -> None:
    """The write lock first (waiting for another process happens here), the keys already
    present counted under it, every statement, the tally, the commit; or a rollback."""
    keys = transaction.keys
    handle.execute("BEGIN IMMEDIATE")
    try:
        present = handle.execute(PRESENT, keys).fetchone()[0] if keys else 0
        for step in transaction.steps:
            for sql, params in values(step):
                handle.execute(sql, params)
        if keys and (fresh := transaction.rows - present):
            handle.execute(TALLY, (*keys[:2], fresh))
        handle.execute("COMMIT")
    except BaseException:
        if handle.in_transaction:
            handle.execute("ROLLBACK")
        raise


def bind_plainly() -> None:
    """Let ``sqlite3`` bind None and booleans without looking for an adapter. It looks for
    one for every value that is not exactly an int, float or str, and the look-up raises
    and clears an ``AttributeError`` each time: a record has a dozen or more empty
    columns, and that was a seventh of this process's work. Registered, the two bind
    as they did (NULL; 1 and 0), at a dict look-up and a call each."""
    sqlite3.register_adapter(type(None), _null)
    sqlite3.register_adapter(bool, int)


def _null(_: None) -> None:
    return None


def serve(database: str, requests: IO[bytes], answers: IO[bytes]) -> None:
    """Open ``database``, say whether that worked, then run saves until end of input."""
    bind_plainly()
    try:
        handle = sqlite3.connect(database, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        configure(handle)
        handle.execute(WRITER_PRAGMA)
    except Exception as exc:  # noqa: BLE001 — told to the parent, which says it in words
        _answer(answers, exc)
        return
    _answer(answers, None)
    while (save := _receive(requests)) is not None:
        try:
            run(handle, transaction(save))
        except Exception as exc:  # noqa: BLE001
            _answer(answers, exc)
        else:
            _answer(answers, None)
    handle.close()


def _receive(stream: IO[bytes]) -> Any:
    """The next save, or None at end of input (a parent killed halfway through sending
    one leaves a short frame: nothing of it is run)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    size = HEADER.unpack(header)[0]
    body = stream.read(size)
    return decode(body) if len(body) == size else None


def _answer(stream: IO[bytes], error: BaseException | None) -> None:
    try:
        body = pickle.dumps(error)
    except Exception:  # noqa: BLE001 — an error that does not pickle still gets said
        body = pickle.dumps(RuntimeError(str(error)))
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def main() -> None:
    collect_rarely()  # as the archiver's own process does
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
