"""The parent's side of SQLite's writer process (``archiver.db.sqlite_writer``).

Started at the first save a ``Store`` makes, or before it (``start``): a command that
will save starts it as soon as the archive is migrated, so the child's own start (the
interpreter, ``sqlite3``, opening the archive) overlaps the parent's instead of holding
up the first save.

Saves are pipelined: each is written to the child's stdin whole as soon as it is made,
the child runs them one after another in that order and answers each, and each caller
awaits its own answer (the answers come in the order the saves were sent). So the child
goes from one save to the next without waiting for the event loop: one save at a time,
it sat idle from each answer until the loop, busy fetching and parsing, had read it and
sent the next (in a 100k backfill, its saves took 3.6 s for 2.4 s of its work, and the
windows queued behind them).

Nothing of this is bound to an event loop between saves: the pipes are watched only
while an answer is awaited.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pickle
import sqlite3
import subprocess
import sys
import weakref
from collections import deque
from pathlib import Path

from archiver.db.sqlite_writer import HEADER, SqliteSave, encode

PIPE_BYTES = 1 << 20
"""The request pipe's buffer (Linux's default ceiling): two saves of half a megabyte wait
there while the child runs a third, and a save is written without waiting for it."""


class WriterGone(sqlite3.OperationalError):
    """The writer process ended (killed, out of memory) before it answered."""


class WriterProcess:
    """The parent's handle: saves sent in order, each answered in turn; started at the first."""

    def __init__(self, database: str) -> None:
        self._database = database
        self._process: subprocess.Popen[bytes] | None = None
        self._answers: deque[asyncio.Future[BaseException | None]] = deque()
        """One per request sent and not yet answered, in the order sent."""
        self._received = bytearray()
        self._watching: int | None = None
        """The child's stdout, while an answer is awaited (watched on the event loop)."""
        self._sending = asyncio.Lock()
        self._opened: asyncio.Future[BaseException | None] | None = None
        """The child's first answer (whether it opened the database), until a save checks it."""

    def start(self) -> None:
        """Start the child now, without waiting for it to open the database."""
        if self._process is None:
            self._spawn()

    async def run(self, save: SqliteSave) -> None:
        """Send ``save`` and wait until the child has committed it. A cancelled caller
        still waits for the answer: its save is whole in the pipe, and will be run."""
        exchange = asyncio.ensure_future(self._exchange(encode(save)))
        try:
            await asyncio.shield(exchange)
        except asyncio.CancelledError:
            await asyncio.wait([exchange])
            raise

    async def _exchange(self, request: bytes) -> None:
        async with self._sending:  # one frame at a time into the pipe, whole
            process = self._process or self._spawn()
            if (opened := self._opened) is not None:
                await self._check_opened(process, opened)
            answer = self._expect(process)
            try:
                await _write(process.stdin.fileno(), HEADER.pack(len(request)) + request)  # type: ignore[union-attr]
            except OSError:
                self._gone(process)
        error = await answer
        if error is not None:
            raise error

    def _spawn(self) -> subprocess.Popen[bytes]:
        # The child imports this very archiver, installed or not: its root first, and not the
        # working directory, which ``-m`` would put before it (``-P``).
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        process = subprocess.Popen([sys.executable, "-P", "-m", "archiver.db.sqlite_writer", self._database],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        weakref.finalize(self, _stop, process)
        for stream in (process.stdin, process.stdout):
            os.set_blocking(stream.fileno(), False)  # type: ignore[union-attr]
        try:
            fcntl.fcntl(process.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # type: ignore[union-attr]
        except (OSError, AttributeError):  # another kernel, or a lower ceiling: 64 KB pieces still work
            pass
        self._process = process
        self._opened = self._expect(process)
        # Retrieved here too: a child that dies before any save checked it is replaced at
        # the next save, and its answer's error must not be logged as never retrieved.
        self._opened.add_done_callback(lambda opened: opened.cancelled() or opened.exception())
        return process

    async def _check_opened(self, process: subprocess.Popen[bytes],
                            opened: asyncio.Future[BaseException | None]) -> None:
        """Wait for the child's first answer; a child that could not open the database is
        ended, and its error is the save's (the next save starts another)."""
        try:
            error = await opened
        except WriterGone:
            raise WriterGone(f"the SQLite writer process did not start (exit status {process.poll()})") from None
        finally:
            self._opened = None
        if error is not None:
            self._forget()
            raise error

    def _expect(self, process: subprocess.Popen[bytes]) -> asyncio.Future[BaseException | None]:
        """A future for the child's next answer but those already awaited; its stdout is
        watched while any is awaited."""
        answer = asyncio.get_running_loop().create_future()
        if self._watching is None:
            self._watching = process.stdout.fileno()  # type: ignore[union-attr]
            asyncio.get_running_loop().add_reader(self._watching, self._read, process)
        self._answers.append(answer)
        return answer

    def _unwatch(self) -> None:
        if self._watching is not None:
            asyncio.get_running_loop().remove_reader(self._watching)
            self._watching = None

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        """What the child answered so far, each whole answer to the oldest awaiting it."""
        try:
            while chunk := os.read(process.stdout.fileno(), 1 << 16):  # type: ignore[union-attr]
                self._received += chunk
        except BlockingIOError:
            chunk = b"more"
        except OSError:
            chunk = b""
        while len(self._received) >= HEADER.size:
            end = HEADER.size + HEADER.unpack_from(self._received)[0]
            if len(self._received) < end:
                break
            try:
                error = pickle.loads(self._received[HEADER.size:end])
            except (pickle.UnpicklingError, EOFError, ValueError):
                return self._gone(process)
            del self._received[:end]
            answer = self._answers.popleft()
            if not answer.done():
                answer.set_result(error)
        if not chunk:  # end of file: the child is gone, and what it had not answered with it
            return self._gone(process)
        if not self._answers:
            self._unwatch()

    def _gone(self, process: subprocess.Popen[bytes]) -> None:
        """Every save not answered fails; the next save starts another child."""
        self._forget()
        message = f"the SQLite writer process stopped (exit status {process.poll()})"
        while self._answers:
            answer = self._answers.popleft()
            if not answer.done():
                answer.set_exception(WriterGone(message))

    async def close(self) -> None:
        """End the child once every save sent is answered, and wait for it to exit."""
        async with self._sending:
            if self._answers:
                await asyncio.wait(list(self._answers))
            self._forget()

    def _forget(self) -> None:
        self._opened = None
        self._unwatch()
        self._received.clear()
        if self._process is not None:
            _stop(self._process)
            self._process = None


async def _write(fd: int, frame: bytes) -> None:
    """All of ``frame`` into the pipe, waiting (on the loop) while it is full."""
    view, loop = memoryview(frame), asyncio.get_running_loop()
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            writable = loop.create_future()
            loop.add_writer(fd, lambda: writable.done() or writable.set_result(None))
            try:
                await writable
            finally:
                loop.remove_writer(fd)


def _stop(process: subprocess.Popen[bytes]) -> None:
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
