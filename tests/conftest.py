"""Shared fixtures: a throwaway PostgreSQL 15 cluster, per-test databases on both
backends, and the simulated providers on 127.0.0.1."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

from archiver.db.connect import create_engine, migrate
from archiver.db.store import Store
from archiver.simulator import FakeInfobip, FakeSendZen

PG_BIN_DIRS = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/local/bin", "/usr/bin"]


def _pg_tool(name: str) -> str:
    for directory in PG_BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql-15)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str]) -> None:
    """initdb and pg_ctl refuse to run as root: run them as the postgres user then."""
    command = ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class PostgresCluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="archiver-pg-"))
        self.data, self.sockets = self.root / "data", self.root / "sock"
        self.sockets.mkdir()
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
        self._names = itertools.count(1)

    def start(self) -> None:
        _as_postgres([_pg_tool("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--no-sync"])
        options = f"-p {self.port} -h 127.0.0.1 -k {self.sockets} -c fsync=off -c synchronous_commit=off"
        _as_postgres([_pg_tool("pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-l",
                      str(self.root / "log"), "start"])

    def stop(self) -> None:
        _as_postgres([_pg_tool("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = f"archive_{os.getpid()}_{next(self._names)}"
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q", "-c",
                        f"CREATE DATABASE {name}"], check=True, stdout=subprocess.DEVNULL)
        return self.url(name)


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
    yield Store(engine)
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
