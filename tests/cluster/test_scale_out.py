"""Three real ``archiver run`` processes sharing six accounts on one PostgreSQL: each
account polled by exactly one, balanced; kill -9 taken over; SIGTERM handed over at once;
a process frozen past its lease (SIGSTOP) finds out before it writes; a database restart
under them loses nothing."""

from __future__ import annotations

import asyncio
import json
import math
import signal
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import pytest

from archiver.simulator import FakeSendZen, sendzen_log, spread
from archiver.times import utcnow
from tests.cli_helpers import ARCHIVER, archiver, cli_env
from tests.helpers import free_port

LEASE = 3
KEYS = [f"sz-key-{i}" for i in range(6)]


@dataclass
class Daemon:
    proc: asyncio.subprocess.Process
    events: list[dict[str, Any]] = field(default_factory=list)
    pid: int = 0
    reader: asyncio.Task[None] | None = None

    async def collect(self) -> None:
        while line := await self.proc.stderr.readline():  # type: ignore[union-attr]
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass


def config_text(db_url: str, base_url: str) -> str:
    accounts = "".join(f'\n[[sendzen.accounts]]\nname = "acct-{i}"\napi_key = "{key}"\n' for i, key in enumerate(KEYS))
    return (f'[database]\nurl = "{db_url}"\n\n[cluster]\nlease_seconds = {LEASE}\n\n'
            f'[sendzen]\nbase_url = "{base_url}"\npoll_interval_seconds = 1\n{accounts}')


async def start(config: Path) -> Daemon:
    port = free_port()
    path = config.with_name(f"d{port}.toml")
    path.write_text(config.read_text() + f'\n[server]\nhost = "127.0.0.1"\nport = {port}\n')
    proc = await asyncio.create_subprocess_exec(*ARCHIVER, "--config", str(path), "--log-format", "json", "run",
                                                stderr=asyncio.subprocess.PIPE, env=cli_env())
    daemon = Daemon(proc, pid=proc.pid)
    daemon.reader = asyncio.get_running_loop().create_task(daemon.collect())
    return daemon


async def owners(config: Path) -> dict[str, str | None]:
    done = await archiver(config, "status", "--json")
    assert done.code == 0, done.stderr
    return {name: a["owner"] for name, a in json.loads(done.stdout)["sendzen"]["accounts"].items()}


async def until(check: Callable[[], Any], timeout: float) -> Any:
    """Re-check an observable condition (status, logs) until it holds, or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert loop.time() < deadline, f"not within {timeout}s"
        await asyncio.sleep(0.25)


def pids(table: dict[str, str | None]) -> list[int]:
    return [int(o.rsplit(":", 1)[1]) for o in table.values() if o]


def balanced(table: dict[str, str | None], alive: list[Daemon]) -> bool:
    """Every account owned by a live process, none holding more than ⌈6 ÷ n⌉ + 1."""
    live = {d.pid for d in alive}
    held = pids(table)
    fair = math.ceil(len(KEYS) / len(alive)) + 1
    return len(held) == len(KEYS) and set(held) <= live and all(held.count(p) <= fair for p in live)


@pytest.fixture
async def cluster(tmp_path: Path, postgres: Any) -> Any:
    fake = await FakeSendZen(api_key=KEYS[0], other_keys=tuple(KEYS[1:])).start()
    now = utcnow()
    fake.add(*(sendzen_log(i, at) for i, at in enumerate(spread(40, now - timedelta(days=1), now))))
    config = tmp_path / "c.toml"
    config.write_text(config_text(postgres.new_database(), fake.base_url))
    daemons = [await start(config) for _ in range(3)]
    yield config, daemons, fake
    for d in daemons:
        if d.proc.returncode is None:
            d.proc.send_signal(signal.SIGCONT)
            d.proc.send_signal(signal.SIGTERM)
            await d.proc.wait()
    await fake.stop()


async def test_accounts_are_divided_and_move_when_a_process_goes(cluster: Any) -> None:
    """Balance; kill -9 taken over within a lease and a poll; SIGTERM handed over at once."""
    config, daemons, fake = cluster
    # ⌈6 ÷ 3⌉ + 1 allows 3 + 3 + 0 for a moment, until the first two give back their extra one
    table = await until(lambda: _when(owners(config), lambda t: balanced(t, daemons) and len(set(pids(t))) == 3),
                        timeout=4 * LEASE + 10)
    assert len(set(pids(table))) == 3, "all three processes poll"
    killed = daemons[0]
    killed.proc.kill()
    await killed.proc.wait()
    await until(lambda: _when(owners(config), lambda t: balanced(t, daemons[1:])), timeout=LEASE + 1 + 5)
    stopping = daemons[1]
    stopping.proc.send_signal(signal.SIGTERM)
    assert await stopping.proc.wait() == 0
    await until(lambda: _when(owners(config), lambda t: balanced(t, daemons[2:])), timeout=5)
    everything = {f"acct-{i}" for i in range(6)}
    await until(lambda: _async(lambda: {e["account"] for e in daemons[2].events
                                        if e.get("event") == "pass finished"} == everything), timeout=5)


async def test_a_frozen_process_finds_out_before_it_writes(cluster: Any) -> None:
    """SIGSTOP for two leases: its accounts move; on SIGCONT it writes and polls nothing of them."""
    config, daemons, fake = cluster
    await until(lambda: _when(owners(config), lambda t: balanced(t, daemons)), timeout=4 * LEASE + 10)
    frozen = daemons[0]
    before = {a for a, o in (await owners(config)).items() if o and o.endswith(f":{frozen.pid}")}
    assert before
    frozen.proc.send_signal(signal.SIGSTOP)
    await until(lambda: _when(owners(config), lambda t: balanced(t, daemons[1:])), timeout=2 * LEASE + 5)
    resumed_at, resumed = len(frozen.events), utcnow()
    frozen.proc.send_signal(signal.SIGCONT)
    lost = await until(lambda: _when(_async(lambda: [e for e in frozen.events[resumed_at:]
                                                     if e.get("event", "").startswith("lost an account")]),
                                     lambda found: {e["account"] for e in found} >= before), timeout=2 * LEASE)
    assert lost
    # balancing gives it its share back (new epochs); until then it must poll none of them.
    # A pass under way at the SIGSTOP may still end well: its writes were made before it
    # (each later one is fenced, and fails the pass), so only passes begun since count.
    assert await until(lambda: _when(owners(config), lambda t: balanced(t, daemons)), timeout=4 * LEASE)
    reclaimed: set[str] = set()
    for event in frozen.events[resumed_at:]:
        if event.get("event") == "became the active poller":
            reclaimed.add(event["account"])
        if event.get("event") == "pass finished" and event.get("account") in before and \
                datetime.fromisoformat(event["timestamp"]) - timedelta(seconds=event["seconds"]) > resumed:
            assert event["account"] in reclaimed, "a write under the lost lease"


async def _when(value: Any, predicate: Callable[[Any], bool]) -> Any:
    result = await value
    return result if predicate(result) else None


async def _async(make: Callable[[], Any]) -> Any:
    return make()



async def rows(config: Path) -> dict[str, int]:
    done = await archiver(config, "status", "--json")
    return {name: a["rows"] for name, a in json.loads(done.stdout)["sendzen"]["accounts"].items()} \
        if done.code == 0 else {}


async def test_a_database_restart_loses_nothing(cluster: Any, postgres: Any) -> None:
    """PostgreSQL goes away under three daemons and comes back: every account ends owned
    exactly once, and what the provider served meanwhile is archived."""
    config, daemons, fake = cluster
    await until(lambda: _when(owners(config), lambda t: balanced(t, daemons)), timeout=4 * LEASE + 10)
    await until(lambda: _when(rows(config), lambda r: set(r.values()) == {40}), timeout=20)
    await asyncio.to_thread(postgres.pause)
    noticed = [len(d.events) for d in daemons]
    now = utcnow()
    fake.add(*(sendzen_log(100 + i, at) for i, at in enumerate(spread(10, now - timedelta(seconds=5), now))))
    await until(lambda: _async(lambda: all(any(e.get("event", "").startswith("lease round failed")
                                               for e in d.events[n:]) for d, n in zip(daemons, noticed))),
                timeout=3 * LEASE)
    await asyncio.to_thread(postgres.resume)
    await until(lambda: _when(owners(config), lambda t: balanced(t, daemons)), timeout=4 * LEASE + 10)
    await until(lambda: _when(rows(config), lambda r: set(r.values()) == {50}), timeout=20)
    assert all(d.proc.returncode is None for d in daemons), "the daemons outlived the outage"
