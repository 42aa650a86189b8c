"""The parent's side of SQLite's writer process (``archiver.db.sqlite_writer``).

Started at the first save a ``Store`` makes; one save at a time. A save is written to
the child's stdin at once (half a megabyte: the child is always reading when one is
sent, so this takes a fraction of a millisecond), and its answer is awaited on the event
loop, which goes on fetching meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sqlite3
import subprocess
import sys
import weakref
from pathlib import Path

from archiver.db.sqlite_writer import HEADER, SqliteSave


class WriterGone(sqlite3.OperationalError):
    """The writer process ended (killed, out of memory) before it answered."""


class WriterProcess:
    """The parent's handle: one save at a time, started at the first."""

    def __init__(self, database: str) -> None:
        self._database = database
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = asyncio.Lock()

    async def run(self, save: SqliteSave) -> None:
        """Send ``save`` and wait until the child has committed it. A cancelled caller
        still waits for the answer: the next save must not read this one's."""
        async with self._lock:
            exchange = asyncio.ensure_future(self._exchange(pickle.dumps(save, protocol=5)))
            try:
                await asyncio.shield(exchange)
            except asyncio.CancelledError:
                await asyncio.wait([exchange])
                raise

    async def _exchange(self, request: bytes) -> None:
        process = self._process or await self._start()
        try:
            process.stdin.write(HEADER.pack(len(request)) + request)  # type: ignore[union-attr]
            process.stdin.flush()  # type: ignore[union-attr]
            error = await self._answer(process)
        except (OSError, EOFError, pickle.UnpicklingError):
            self._forget()  # the next save starts another
            raise WriterGone(f"the SQLite writer process stopped (exit status {process.poll()})") from None
        if error is not None:
            raise error

    async def _start(self) -> subprocess.Popen[bytes]:
        # The child imports this very archiver, installed or not: its root first, and not the
        # working directory, which ``-m`` would put before it (``-P``).
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        process = subprocess.Popen([sys.executable, "-P", "-m", "archiver.db.sqlite_writer", self._database],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        weakref.finalize(self, _stop, process)
        try:
            error = await self._answer(process)
        except (OSError, EOFError, pickle.UnpicklingError):
            _stop(process)
            raise WriterGone(f"the SQLite writer process did not start (exit status {process.poll()})") from None
        if error is not None:
            _stop(process)
            raise error
        self._process = process
        return process

    @staticmethod
    async def _answer(process: subprocess.Popen[bytes]) -> BaseException | None:
        """The child's next answer, awaited on the event loop (never blocking it)."""
        stream = process.stdout
        assert stream is not None
        loop, readable = asyncio.get_running_loop(), asyncio.Event()
        loop.add_reader(stream.fileno(), readable.set)
        try:
            await readable.wait()
        finally:
            loop.remove_reader(stream.fileno())
        header = stream.read(HEADER.size)
        if len(header) < HEADER.size:
            raise EOFError
        return pickle.loads(stream.read(HEADER.unpack(header)[0]))

    async def close(self) -> None:
        """End the child, once no save is under way, and wait for it to exit."""
        async with self._lock:
            self._forget()

    def _forget(self) -> None:
        if self._process is not None:
            _stop(self._process)
            self._process = None


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
