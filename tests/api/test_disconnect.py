"""A client that hangs up mid-page costs nothing lasting: no pooled connection is held,
nothing is logged as an error, the archive is unchanged, the next client is served."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from sqlalchemy import func, select

from archiver.db import models as m
from archiver.db.store import Store
from archiver.simulator import infobip_message
from archiver.sources.infobip import parse_message
from archiver.times import utcnow
from tests.api.conftest import EVERYTHING, ReadSide


async def rows(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(m.records)) or 0)


async def hang_up(base_url: str, path: str, after_bytes: int) -> None:
    """Send the request, read ``after_bytes`` of the answer (0: none), close the socket."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: App {EVERYTHING}\r\n\r\n".encode())
    await writer.drain()
    if after_bytes:
        await reader.readexactly(after_bytes)
    writer.transport.abort()  # a reset, not a polite close


async def test_clients_that_hang_up_mid_page_cost_nothing(store: Store, read_side: ReadSide) -> None:
    now = utcnow()
    await store.save("infobip", "default", [parse_message(infobip_message(i, now)) for i in range(3000)])
    before = await rows(store)
    with structlog.testing.capture_logs() as logged:
        for i in range(30):
            await hang_up(read_side.base_url, "/messenger/1/logs?limit=1000", after_bytes=(i % 3) * 700)
        status, body = await read_side.get("/messenger/1/logs", scheme="App", limit="1000")
        assert status == 200 and len(body["results"]) == 1000, "the next client is served in full"
        pool: Any = store.engine.pool
        for _ in range(200):  # the abandoned handlers finish their page and give the connection back
            if pool.checkedout() == 0:
                break
            await asyncio.sleep(0.05)
        assert pool.checkedout() == 0, "no connection held by an abandoned request"
    assert [e for e in logged if e["log_level"] in ("error", "critical")] == []
    assert await rows(store) == before
