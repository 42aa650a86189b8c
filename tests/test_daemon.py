"""The daemon as a process: graceful stops, health and metrics, secrets kept out of output."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from archiver.simulator import FakeInfobip, FakeSendZen, Faults, infobip_message, sendzen_log, spread
from archiver.times import utcnow
from tests.cli_helpers import read_until, start_daemon, wait_for
from tests.helpers import free_port, write_config


async def stop_and_time(proc: asyncio.subprocess.Process) -> tuple[int, float]:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), 15)
    return code, time.monotonic() - started


async def test_sigterm_during_retry_backoff_exits_promptly(tmp_path: Path) -> None:
    fake = await FakeSendZen(faults=Faults(error_rate=1.0)).start()
    try:
        config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/a.db", sendzen=fake.base_url,
                              port=free_port())
        daemon = await start_daemon(config)
        await read_until(daemon, lambda e: e.get("event") == "retrying request" and e.get("attempt", 0) >= 3,
                         timeout=30)
        code, took = await stop_and_time(daemon)
        assert code == 0 and took < 10
    finally:
        await fake.stop()


async def test_sigterm_while_waiting_for_the_rate_limiter(tmp_path: Path) -> None:
    """A 429 with a long Retry-After pauses the limiter; SIGTERM still stops at once."""
    fake = await FakeInfobip(rate_limit=1, rate_period=120).start()
    try:
        now = utcnow()
        fake.add(*(infobip_message(i, at) for i, at in enumerate(spread(30, now - timedelta(hours=40), now))))
        config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/a.db", infobip=fake.base_url,
                              port=free_port())
        daemon = await start_daemon(config)
        await wait_for(_served(fake, 429), timeout=30)
        code, took = await stop_and_time(daemon)
        assert code == 0 and took < 10
        stderr = (await daemon.stderr.read()).decode()  # type: ignore[union-attr]
        paused = [json.loads(l) for l in stderr.splitlines() if "rate limited (429)" in l]
        assert paused and "E429 Too many requests" in paused[0]["reason"], "the provider's words are kept"
        assert "stopped" in [json.loads(l)["event"] for l in stderr.splitlines()]
        errors = [json.loads(l) for l in stderr.splitlines() if json.loads(l).get("level") in ("error", "critical")]
        assert errors == [], "a pass cut short by SIGTERM is a clean stop, not an error"
    finally:
        await fake.stop()


def _served(fake, status: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return fake.served.get(status, 0) > 0
    return check


async def test_healthz_and_metrics_move_with_archiving(tmp_path: Path, fake_sendzen: FakeSendZen,
                                                       fake_infobip: FakeInfobip) -> None:
    now = utcnow()
    for i, at in enumerate(spread(25, now - timedelta(days=2), now)):
        fake_sendzen.add(sendzen_log(i, at))
    fake_infobip.add(*(infobip_message(i, now - timedelta(minutes=i + 1)) for i in range(7)))
    port = free_port()
    config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/a.db", sendzen=fake_sendzen.base_url,
                          infobip=fake_infobip.base_url, port=port)
    daemon = await start_daemon(config)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async def archived(sendzen: int, infobip: int = 0):  # type: ignore[no-untyped-def]
                async def check() -> bool:
                    try:
                        values = await scrape(http, base)
                    except aiohttp.ClientError:
                        return False
                    return (values.get(("archiver_records_archived_total", "default", "sendzen"), 0) >= sendzen
                            and values.get(("archiver_records_archived_total", "default", "infobip"), 0) >= infobip
                            # the gauges follow a pass's end, a moment after its records
                            and ("archiver_checkpoint_lag_seconds", "default", "sendzen") in values)
                return check

            # the two sources poll independently: wait for both first passes
            await wait_for(await archived(25, 7), timeout=30)
            values = await scrape(http, base)
            assert values[("archiver_requests_total", "infobip", "200")] >= 1
            assert 250 < values[("archiver_checkpoint_lag_seconds", "default", "sendzen")] < 400
            assert values[("archiver_gaps", "default", "sendzen")] == 0
            assert values[("archiver_last_success_timestamp_seconds", "default", "sendzen")] > time.time() - 60
            async with http.get(f"{base}/healthz") as resp:
                body = await resp.json()
                assert resp.status == 200 and body["healthy"] is True
                assert set(body["sources"]) == {"sendzen", "infobip"}

            fake_sendzen.add(*(sendzen_log(100 + i, utcnow()) for i in range(5)))
            await wait_for(await archived(30), timeout=30)
    finally:
        code, _ = await stop_and_time(daemon)
    assert code == 0


async def scrape(http: aiohttp.ClientSession, base: str) -> dict[tuple[str, ...], float]:
    """Parse the exposition format into {(sample name, *label values): value}."""
    async with http.get(f"{base}/metrics") as resp:
        text = await resp.text()
    values: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, *sample.labels.values())] = sample.value
    return values


async def test_unhealthy_when_credentials_are_refused(tmp_path: Path, fake_sendzen: FakeSendZen,
                                                      fake_infobip: FakeInfobip) -> None:
    """A refused source stops and turns /healthz 503; the other source keeps being polled."""
    port = free_port()
    config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/a.db", sendzen=fake_sendzen.base_url,
                          infobip=fake_infobip.base_url, port=port, sendzen_key="sz-revoked-key-42")
    daemon = await start_daemon(config)
    try:
        await read_until(daemon, lambda e: e.get("event") == "source stopped: credentials refused", timeout=30)
        mark = len(fake_infobip.requests)
        await wait_for(lambda_count(fake_infobip, mark + 2), timeout=30)
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            body = await resp.json()
        assert resp.status == 503 and body["sources"]["sendzen"]["stopped"] is True
        assert body["sources"]["infobip"]["healthy"] is True
        assert "sz-revoked-key-42" not in json.dumps(body)
    finally:
        code, _ = await stop_and_time(daemon)
        rest = (await daemon.stderr.read()).decode()  # type: ignore[union-attr]
    assert code == 0 and "sz-revoked-key-42" not in rest


def lambda_count(fake, n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return len(fake.requests) >= n
    return check
