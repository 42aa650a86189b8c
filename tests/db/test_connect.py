"""The archive's connections as the daemon's shutdown treats them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STOPPED_TWICE = """
import asyncio, sys
from sqlalchemy import text
from archiver.db.connect import create_engine

SLOW = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) SELECT count(*) FROM n"

async def main(url):
    engine = create_engine(url)
    async def reader():
        async with engine.connect() as conn:
            await conn.execute(text(SLOW))
    task = asyncio.ensure_future(reader())
    await asyncio.sleep(0.2)  # the query runs in the driver's thread
    task.cancel()  # the daemon stops: SQLAlchemy closes the connection the read held
    await asyncio.sleep(0.05)
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
