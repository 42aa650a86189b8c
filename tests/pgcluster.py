"""A throwaway PostgreSQL cluster on 127.0.0.1 and a free port (tests and benchmarks)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.helpers import free_port

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


def _as_postgres(args: list[str]) -> None:
    """initdb and pg_ctl refuse to run as root: run them as the postgres user then."""
    command = ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class PostgresCluster:
    def __init__(self, *, durable: bool = False) -> None:
        """``durable``: fsync and synchronous commits on, as in production (the bench);
        the tests' throwaway cluster runs without them."""
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="archiver-pg-"))
        self.data, self.sockets = self.root / "data", self.root / "sock"
        self.sockets.mkdir()
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
        self._names = itertools.count(1)

    def start(self) -> None:
        _as_postgres([_pg_tool("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--no-sync"])
        self.resume()

    def pause(self) -> None:
        """Stop the server (connections drop, as in a database restart or failover); ``resume``
        starts it again on the same port and data."""
        _as_postgres([_pg_tool("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def resume(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.sockets}"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off"
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
