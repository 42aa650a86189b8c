"""The archive's connections as the daemon's shutdown treats them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STOPPED_TWICE = """
import asyncio, sys
from sqlalchemy import event, text
from archiver.db.connect import create_engine

SLOW = ("WITH RECURSIVE n(i) AS (SELECT running() UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
        "SELECT count(*) FROM n")

async def main(url):
    engine, loop, running = create_engine(url), asyncio.get_running_loop(), asyncio.Event()
    event.listen(engine.sync_engine, "connect", lambda dbapi, _: dbapi.create_function(
        "running", 0, lambda: loop.call_soon_threadsafe(running.set) or 1))
    async def reader():
        async with engine.connect() as conn:
            await conn.execute(text(SLOW))
    task = asyncio.ensure_future(reader())
    await running.wait()  # the query runs in the driver's thread (about a second)
    others = len(asyncio.all_tasks())
    task.cancel()  # the daemon stops: SQLAlchemy closes the connection the read held, in a task of its own
    while len(asyncio.all_tasks()) <= others:  # that close has begun (it waits behind the query)
        await asyncio.sleep(0)
    task.cancel()  # and is stopped again while it does (asyncio.run's own cancellation, at its end)
    await asyncio.wait([task], timeout=10)
    await engine.dispose()

asyncio.run(main(sys.argv[1]))
"""


def test_a_read_cancelled_twice_while_its_connection_closes_does_not_hang_the_process(tmp_path: Path) -> None:
    """``archiver run`` hung after SIGTERM, now and then, until killed: with aiosqlite 0.22,
    a connection stopped while it was being closed waits for its own thread, which has
    already ended (pinned below 0.22 in pyproject.toml). The process must end."""
    done = subprocess.run([sys.executable, "-c", STOPPED_TWICE, f"sqlite:///{tmp_path / 'archive.db'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr[-2000:]
