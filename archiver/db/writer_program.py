"""The program of SQLite's writer process: every bulk save runs here.

In a thread of the archiver's process, a save competed with the event loop for the
GIL: ``sqlite3`` binds every value of a statement holding it (a batch is 18,000
values) and takes it back after each statement, while the loop, busy fetching and
parsing, held it the rest of the time. The two took turns more than they overlapped
(a 100k backfill's transactions spent 4.2 s to do 1.7 s of work). Here the parent
pickles a transaction (a millisecond a batch) and the child does all of it: the
write lock, the statements, the commit.

The child is ``python -m archiver.db.writer_program DATABASE`` (started by
``archiver.db.writer_process``), and imports nothing heavier than ``sqlite3``. It
reads length-prefixed pickled ``Transaction``\\ s on stdin and answers each on stdout
once it is committed (or with the error that rolled it back). It ignores SIGINT and
SIGTERM (a Ctrl-C or a ``systemctl stop`` reaches the whole process group: the parent
decides when it stops) and ends at end of input, after committing the transaction it
is running, so a parent killed with SIGKILL leaves nothing half-written behind it either.
"""

from __future__ import annotations

import pickle
import signal
import sqlite3
import struct
import sys
from itertools import chain
from typing import IO, Any, NamedTuple, Sequence

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

CHUNK = 256
"""Most rows in one ``VALUES`` statement. Every statement size is prepared and cached by
sqlite3 with its bytecode (about 1 KB a row), so a batch goes as full chunks and the
rest in power-of-two pieces: a dozen sizes in all. Arbitrary sizes (up to 800 rows)
made a 160 MB process; 50-row chunks paid a GIL hand-off per statement, twice the time."""

HEADER = struct.Struct(">I")


class Step(NamedTuple):
    """A statement; with ``rows``, ``sql`` is a template whose ``{rows}`` takes a
    ``VALUES`` list: ``fixed`` are its ``?1``… (source, account, the write's time) and
    each row's values follow."""

    sql: str
    fixed: tuple[Any, ...]
    rows: Sequence[Sequence[Any]] | None = None


class Transaction(NamedTuple):
    steps: list[Step]
    count: Step | None = None
    """Counts the batch's keys already archived; run first, under the write lock."""
    tally: Step | None = None
    """Adds the batch's new records (``rows`` less ``count``) to the tally: its last parameter."""
    rows: int = 0


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
    handle.execute("BEGIN IMMEDIATE")
    try:
        present = 0
        if transaction.count is not None:
            present = handle.execute(transaction.count.sql, transaction.count.fixed).fetchone()[0]
        for step in transaction.steps:
            for sql, params in values(step):
                handle.execute(sql, params)
        fresh = transaction.rows - present
        if transaction.tally is not None and fresh:
            handle.execute(transaction.tally.sql, (*transaction.tally.fixed, fresh))
        handle.execute("COMMIT")
    except BaseException:
        if handle.in_transaction:
            handle.execute("ROLLBACK")
        raise


def serve(database: str, requests: IO[bytes], answers: IO[bytes]) -> None:
    """Open ``database``, say whether that worked, then run transactions until end of input."""
    try:
        handle = sqlite3.connect(database, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        configure(handle)
    except Exception as exc:  # noqa: BLE001 — told to the parent, which says it in words
        _answer(answers, exc)
        return
    _answer(answers, None)
    while (transaction := _receive(requests)) is not None:
        try:
            run(handle, transaction)
        except Exception as exc:  # noqa: BLE001
            _answer(answers, exc)
        else:
            _answer(answers, None)
    handle.close()


def _receive(stream: IO[bytes]) -> Any:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    return pickle.loads(stream.read(HEADER.unpack(header)[0]))


def _answer(stream: IO[bytes], error: BaseException | None) -> None:
    try:
        body = pickle.dumps(error)
    except Exception:  # noqa: BLE001 — an error that does not pickle still gets said
        body = pickle.dumps(RuntimeError(str(error)))
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
