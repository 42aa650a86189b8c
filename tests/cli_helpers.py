"""Running the real ``archiver`` console script as a subprocess while fakes serve in-process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ARCHIVER = [sys.executable, "-m", "archiver"]


@dataclass
class Completed:
    code: int
    stdout: str
    stderr: str


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("ARCHIVER_")}
    env.update(extra)
    return env


async def archiver(config: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Completed:
    """Run one command to completion; the event loop keeps serving the fakes meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        *ARCHIVER, "--config", str(config), "--log-format", "json", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env or cli_env())
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return Completed(proc.returncode or 0, out.decode(), err.decode())


async def start_daemon(config: Path, *args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *ARCHIVER, "--config", str(config), "--log-format", "json", *args, "run",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env or cli_env())


async def wait_for(predicate, timeout: float = 30.0, every: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    """Poll an observable condition (a count, a file) until it holds; fail loudly if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)


async def read_until(proc: asyncio.subprocess.Process, predicate, timeout: float = 20) -> dict:  # type: ignore[no-untyped-def]
    """Read the process's JSON log lines until one satisfies ``predicate``."""
    async def scan() -> dict:
        while True:
            line = await proc.stderr.readline()  # type: ignore[union-attr]
            if not line:
                raise AssertionError("process ended before the expected log line")
            event = json.loads(line)
            if predicate(event):
                return event
    return await asyncio.wait_for(scan(), timeout)
