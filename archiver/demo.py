"""``archiver demo``: the simulated providers with live traffic, and the real daemon on SQLite.

No credentials, no network: a newcomer sees records flow into ``demo/archive.db``
and can poke at it with ``archiver --config demo/config.toml status`` meanwhile.
"""

from __future__ import annotations

import asyncio
import random
import signal
import socket
from datetime import timedelta
from pathlib import Path

import structlog

from archiver import config as config_mod
from archiver.runtime import opened
from archiver.scheduler import Daemon
from archiver.simulator import FakeInfobip, FakeSendZen, infobip_message, sendzen_log, spread
from archiver.times import utcnow

log = structlog.get_logger(__name__)


async def run_demo(directory: Path, seconds: float = 0) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    sendzen, infobip = await _start_simulators()
    config_file = _write_config(directory, sendzen.base_url, infobip.base_url)
    config = config_mod.load(config_file, env={})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if seconds:
        loop.call_later(seconds, stop.set)
    print(f"demo: simulated SendZen at {sendzen.base_url}, Infobip at {infobip.base_url}")
    print(f"demo: archiving into {directory / 'archive.db'}; metrics on http://127.0.0.1:{config.server.port}/metrics")
    print(f"demo: try `archiver --config {config_file} status` in another terminal; Ctrl-C stops")
    traffic = asyncio.create_task(_traffic(sendzen, infobip, stop))
    try:
        async with opened(config, writes=True) as rt:
            reporter = asyncio.create_task(_report(rt, stop))
            await Daemon(rt).run(stop)
            await reporter
    finally:
        traffic.cancel()
        await sendzen.stop()
        await infobip.stop()
    return 0


async def _start_simulators() -> tuple[FakeSendZen, FakeInfobip]:
    now = utcnow()
    sendzen = FakeSendZen(api_key="demo-sendzen-key")
    for i, at in enumerate(spread(1500, now - timedelta(days=7) + timedelta(minutes=10), now)):
        sendzen.add(sendzen_log(i, at))
    infobip = FakeInfobip(api_key="demo-infobip-key", offset="+0100")
    for i, at in enumerate(spread(2500, now - timedelta(hours=47), now)):
        infobip.add(infobip_message(i, at, offset="+0100", final=i % 10 != 0))
    return await sendzen.start(), await infobip.start()


async def _traffic(sendzen: FakeSendZen, infobip: FakeInfobip, stop: asyncio.Event) -> None:
    """New records every second, and pending Infobip messages that get delivered."""
    rng = random.Random(7)
    n = 100_000
    while not stop.is_set():
        await asyncio.sleep(1)
        n += 1
        sendzen.add(sendzen_log(n, utcnow(), rng))
        infobip.add(infobip_message(n, utcnow(), offset="+0100"))
        pending = [m for m in infobip.messages.values() if m["status"]["groupName"] == "PENDING"]
        for message in rng.sample(pending, min(3, len(pending))):
            infobip.set_status(message["messageId"], 3, "DELIVERED", "DELIVERED_TO_HANDSET", done_at=utcnow())


async def _report(rt, stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 5)
        except asyncio.TimeoutError:
            pass
        rows = {s.name: await rt.store.count_records(s.name, s.account) for s in rt.sources}
        print("demo: archived rows " + ", ".join(f"{name}={count}" for name, count in rows.items()), flush=True)


def _write_config(directory: Path, sendzen_url: str, infobip_url: str) -> Path:
    path = directory / "config.toml"
    path.write_text(f"""# written by `archiver demo`: simulated providers on 127.0.0.1
[database]
url = "sqlite:///{(directory / 'archive.db').resolve()}"

[sendzen]
base_url = "{sendzen_url}"
api_key = "demo-sendzen-key"
poll_interval_seconds = 5

[infobip]
base_url = "{infobip_url}"
api_key = "demo-infobip-key"
poll_interval_seconds = 5

[server]
host = "127.0.0.1"
port = {_port(9108)}
""")
    return path


def _port(preferred: int) -> int:
    """The preferred port if it is free, else any free one."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
