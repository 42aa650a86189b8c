"""Shared fixtures: a throwaway PostgreSQL 15 cluster, per-test databases on both
backends, and the simulated providers on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

from archiver.db.connect import create_engine, migrate
from archiver.db.store import Store
from archiver.simulator import FakeInfobip, FakeSendZen
from tests.pgcluster import PostgresCluster


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive.db'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    engine = create_engine(db_url)
    await migrate(engine)
    store = Store(engine)
    yield store
    await store.close()
    await engine.dispose()


@pytest.fixture
async def fake_sendzen() -> AsyncIterator[FakeSendZen]:
    server = await FakeSendZen().start()
    yield server
    await server.stop()


@pytest.fixture
async def fake_infobip() -> AsyncIterator[FakeInfobip]:
    server = await FakeInfobip().start()
    yield server
    await server.stop()


@pytest.fixture(autouse=True, scope="session")
def quiet_logs() -> None:
    """Tests read results, not log lines; keep only warnings and errors on the console."""
    from archiver import logs

    logs.configure("console", "warning")


def _aioresponses_compat() -> None:
    """aioresponses 0.7.x builds ClientResponse without aiohttp 3.14's new ``stream_writer``
    argument (pnuckowski/aioresponses#289). Supply one until a release fixes it, rather
    than pinning aiohttp below a security release."""
    import inspect
    from unittest.mock import Mock

    import aioresponses.core
    from aiohttp import ClientResponse

    if "stream_writer" not in inspect.signature(ClientResponse.__init__).parameters:
        return

    class CompatResponse(ClientResponse):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            kwargs.setdefault("stream_writer", Mock(output_size=0))
            super().__init__(*args, **kwargs)

    aioresponses.core.ClientResponse = CompatResponse  # type: ignore[misc]


_aioresponses_compat()
