"""SQLite's writer process, as a real child process of the archiver."""

from __future__ import annotations

import array
import asyncio
import fcntl
import gc
import os
import signal
import sqlite3
import subprocess
import sys
import termios
from pathlib import Path
from typing import AsyncIterator

import pytest

from archiver.db.connect import create_engine, migrate
from archiver.db.store import Store
from archiver.db.rows import crossing, micros
from archiver.db.sqlite_writer import HEADER, SqliteSave, encode
from archiver.errors import DatabaseError
from tests.cli_helpers import wait_for
from tests.db.test_rows import T, status


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    engine = create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    await migrate(engine)
    store = Store(engine)
    yield store
    await store.close()
    await engine.dispose()


def writer_pid(store: Store) -> int:
    process = store._writer.process._process  # type: ignore[union-attr]
    assert process is not None, "started by the first save"
    return process.pid


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def gone(pid: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return not alive(pid)
    return check


async def test_a_cancelled_save_still_waits_until_the_writer_has_committed(sqlite_store: Store, tmp_path: Path) -> None:
    """SIGTERM cancels a save while the writer runs it: the cancellation waits for its
    answer (else the next save would read this one's), the save is whole, the next works."""
    await sqlite_store.save("sendzen", "default", [status("a", "m1", "sent", 1)])
    blocker = sqlite3.connect(tmp_path / "archive.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the writer's BEGIN IMMEDIATE waits for this
    save = asyncio.ensure_future(sqlite_store.save("sendzen", "default", [status("b", "m2", "sent", 1)]))
    await asyncio.sleep(0)
    save.cancel()
    done, _ = await asyncio.wait([save], timeout=0.5)
    assert not done, "the cancellation waits for the writer, which waits for the lock"
    blocker.execute("COMMIT")
    with pytest.raises(asyncio.CancelledError):
        await save
    assert await sqlite_store.count_records("sendzen", "default") == 2, "the cancelled save had committed whole"
    await sqlite_store.save("sendzen", "default", [status("c", "m3", "sent", 1)])
    assert await sqlite_store.count_records("sendzen", "default") == 3


def unread_bytes(store: Store) -> int:
    """What the parent has written to the writer's pipe and the writer has not read yet."""
    count = array.array("i", [0])
    fcntl.ioctl(store._writer.process._process.stdin.fileno(), termios.FIONREAD, count)  # type: ignore[union-attr]
    return count[0]


async def blocked_saves(store: Store, tmp_path: Path, names: str) -> tuple[sqlite3.Connection, list[asyncio.Future]]:
    """Saves made while another connection holds the write lock: the writer waits in the
    first; the others are already in its pipe, whole (pipelined, not sent one by one)."""
    await store.save("sendzen", "default", [status("a", "m1", "sent", 1)])
    blocker = sqlite3.connect(tmp_path / "archive.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    batches = [[status(f"{n}{i}", f"m-{n}{i}", "sent", 1) for i in range(300)] for n in names]  # > its read buffer
    saves = [asyncio.ensure_future(store.save("sendzen", "default", batch)) for batch in batches]

    async def queued() -> bool:
        return unread_bytes(store) > 0
    await wait_for(queued, timeout=10, every=0.01)
    assert not any(save.done() for save in saves)
    return blocker, saves


async def test_saves_wait_in_the_writer_s_pipe_and_are_each_answered(sqlite_store: Store, tmp_path: Path) -> None:
    blocker, saves = await blocked_saves(sqlite_store, tmp_path, "bcd")
    blocker.execute("COMMIT")
    await asyncio.wait_for(asyncio.gather(*saves), 10)
    assert await sqlite_store.count_records("sendzen", "default") == 1 + 3 * 300


async def test_a_killed_writer_fails_every_save_in_flight(sqlite_store: Store, tmp_path: Path) -> None:
    blocker, saves = await blocked_saves(sqlite_store, tmp_path, "bcd")
    os.kill(writer_pid(sqlite_store), signal.SIGKILL)
    for save in saves:
        with pytest.raises(DatabaseError, match="the SQLite writer process stopped"):
            await asyncio.wait_for(save, 10)
    blocker.execute("ROLLBACK")
    await sqlite_store.save("sendzen", "default", [status("e", "m-e", "sent", 1)])
    assert await sqlite_store.count_records("sendzen", "default") == 2, "none of those in flight half-written"


async def test_a_killed_writer_fails_one_save_with_a_clear_error_and_the_next_starts_another(
        sqlite_store: Store) -> None:
    await sqlite_store.save("sendzen", "default", [status("a", "m1", "sent", 1)])
    first = writer_pid(sqlite_store)
    os.kill(first, signal.SIGKILL)
    await wait_for(gone(first), timeout=10, every=0.01)
    with pytest.raises(DatabaseError, match="the SQLite writer process stopped"):
        await sqlite_store.save("sendzen", "default", [status("b", "m2", "sent", 1)])
    await sqlite_store.save("sendzen", "default", [status("b", "m2", "sent", 1)])
    assert writer_pid(sqlite_store) != first
    assert await sqlite_store.count_records("sendzen", "default") == 2


async def test_the_writer_leaves_stopping_to_its_parent(sqlite_store: Store) -> None:
    """A Ctrl-C or ``systemctl stop`` signals the whole group: the writer carries on, and
    goes when the store closes."""
    await sqlite_store.save("sendzen", "default", [status("a", "m1", "sent", 1)])
    pid = writer_pid(sqlite_store)
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    await sqlite_store.save("sendzen", "default", [status("b", "m2", "sent", 1)])
    assert alive(pid) and await sqlite_store.count_records("sendzen", "default") == 2
    await sqlite_store.close()
    assert not alive(pid)


async def test_a_database_the_writer_cannot_write_is_a_database_error(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    await migrate(engine)
    store = Store(engine)
    try:
        (tmp_path / "archive.db").chmod(0o400)
        if os.geteuid() == 0:  # root writes anyway: make the writer open a file that cannot exist
            store._writer.process._database = str(tmp_path / "gone" / "archive.db")  # type: ignore[union-attr]
        with pytest.raises(DatabaseError, match="database error: .*(readonly|unable to open)"):
            await store.save("sendzen", "default", [status("a", "m1", "sent", 1)])
    finally:
        (tmp_path / "archive.db").chmod(0o600)
        await store.close()
        await engine.dispose()


async def test_at_end_of_input_the_writer_commits_what_it_was_given_and_exits(tmp_path: Path) -> None:
    """What a parent killed with SIGKILL leaves: the save it had sent is committed whole,
    and the writer ends instead of lingering."""
    database = tmp_path / "archive.db"
    engine = create_engine(f"sqlite:///{database}")
    await migrate(engine)
    await engine.dispose()
    child = subprocess.Popen([sys.executable, "-m", "archiver.db.sqlite_writer", str(database)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    body = encode(SqliteSave(("sendzen", "default"), micros(T), crossing([status("x", "m1", "sent", 1)])))
    child.stdin.write(HEADER.pack(len(body)) + body)  # type: ignore[union-attr]
    child.stdin.close()  # type: ignore[union-attr]
    assert await asyncio.to_thread(child.wait, 30) == 0
    assert sqlite3.connect(database).execute("SELECT natural_key FROM records").fetchall() == [("x",)]


async def test_the_writer_runs_this_archiver_whatever_the_working_directory_holds(
        sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory named ``archiver`` where the daemon runs (another checkout) is not
    what the writer imports: it would not read this version's saves."""
    impostor = tmp_path / "elsewhere" / "archiver"
    (impostor / "db").mkdir(parents=True)
    (impostor / "__init__.py").write_text("raise SystemExit('the wrong archiver')\n")
    monkeypatch.chdir(impostor.parent)
    await sqlite_store.save("sendzen", "default", [status("a", "m1", "sent", 1)])
    assert await sqlite_store.count_records("sendzen", "default") == 1


async def test_a_writer_started_before_the_first_save_is_the_one_that_runs_it(sqlite_store: Store) -> None:
    """``start_writing`` (a command that will save) starts the child at once; the first
    save waits for it to open the archive, then goes to that child."""
    sqlite_store.start_writing()
    pid = writer_pid(sqlite_store)
    sqlite_store.start_writing()  # a second call starts nothing more
    assert writer_pid(sqlite_store) == pid and alive(pid)
    await sqlite_store.save("sendzen", "default", [status("a", "m1", "sent", 1)])
    assert writer_pid(sqlite_store) == pid
    assert await sqlite_store.count_records("sendzen", "default") == 1


async def test_a_writer_started_early_that_dies_before_any_save_is_replaced_quietly(sqlite_store: Store) -> None:
    """Its first answer (that it opened the archive) never comes: the save starts another
    child, and the lost answer is not reported as an error nobody retrieved."""
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        sqlite_store.start_writing()
        first = writer_pid(sqlite_store)
        os.kill(first, signal.SIGKILL)

        async def noticed() -> bool:  # its end of output read: no child is left to send to
            return sqlite_store._writer.process._process is None  # type: ignore[union-attr]

        await wait_for(noticed, timeout=10, every=0.01)
        gc.collect()
        await sqlite_store.save("sendzen", "default", [status("a", "m1", "sent", 1)])
        assert writer_pid(sqlite_store) != first
        assert await sqlite_store.count_records("sendzen", "default") == 1
        gc.collect()
        await asyncio.sleep(0)
        assert reported == []
    finally:
        loop.set_exception_handler(None)


async def test_a_writer_started_early_that_cannot_open_the_archive_fails_the_first_save(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    await migrate(engine)
    store = Store(engine)
    store._writer.process._database = str(tmp_path / "gone" / "archive.db")  # type: ignore[union-attr]
    try:
        store.start_writing()
        with pytest.raises(DatabaseError, match="database error: .*unable to open"):
            await store.save("sendzen", "default", [status("a", "m1", "sent", 1)])
    finally:
        await store.close()
        await engine.dispose()
