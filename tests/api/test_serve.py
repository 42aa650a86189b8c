"""``archiver serve`` and ``archiver run`` with ``[api]``, as real processes: they answer,
log one access line per request without the token, and stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp
import pytest

from archiver.simulator import FakeSendZen, sendzen_log
from archiver.times import utcnow
from tests.cli_helpers import ARCHIVER, archiver, cli_env, read_until
from tests.helpers import free_port, write_config

TOKEN = "a-read-token-for-support-0123456789"


def api_section(port: int) -> str:
    return (f'\n[api]\nhost = "127.0.0.1"\nport = {port}\n\n[[api.tokens]]\nname = "support"\n'
            f'token_env = "ARCHIVER_TOKEN_SUPPORT"\n')


async def answered(url: str, headers: dict[str, str]) -> tuple[int, str]:
    """The first answer once the server listens (it starts while we ask)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url, headers=headers) as resp:
                    return resp.status, await resp.text()
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


@pytest.mark.parametrize("command", ["serve", "run"])
async def test_the_read_side_as_a_process(command: str, tmp_path: Path, fake_sendzen: FakeSendZen) -> None:
    """serve (read only) and run (polling too) both serve the API; the access log names the
    token, never shows it; SIGTERM ends with exit 0."""
    fake_sendzen.add(sendzen_log(1, utcnow()))
    port = free_port()
    config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/a.db", sendzen=fake_sendzen.base_url,
                          port=free_port(), extra=api_section(port))
    env = cli_env(ARCHIVER_TOKEN_SUPPORT=TOKEN)
    if command == "serve":
        assert (await archiver(config, "backfill", env=env)).code == 0
    proc = await asyncio.create_subprocess_exec(*ARCHIVER, "--config", str(config), "--log-format", "json", command,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        assert (await answered(f"{base}/healthz", {}))[0] == 200
        assert (await answered(f"{base}/api/v1/messages", {}))[0] == 401
        # The 401's log line and (run) the first pass's come in either order: a line read
        # while waiting for the one is not there any more when waiting for the other.
        wanted, seen = {"401", "pass finished"} if command == "run" else {"401"}, set()

        def logged(event: dict) -> bool:
            if event.get("event") == "api request" and event.get("status") == 401:
                seen.add("401")
            if event.get("event") == "pass finished":
                seen.add("pass finished")
            return seen >= wanted

        await read_until(proc, logged)
        status, body = await answered(f"{base}/v1/logs", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and len(json.loads(body)["data"]["logs"]) == 1
        line = await read_until(proc, lambda e: e.get("event") == "api request" and e.get("path") == "/v1/logs")
        assert line["token"] == "support" and line["status"] == 200 and "duration_ms" in line
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), 20)
        except asyncio.TimeoutError:
            proc.kill()  # a hung process must not outlive its test
            await proc.wait()
            raise AssertionError("SIGTERM did not end the process within 20 s") from None
        rest = (await proc.stderr.read()).decode()  # type: ignore[union-attr]
    assert code == 0 and TOKEN not in rest


async def test_serve_without_api_section_says_so(tmp_path: Path) -> None:
    """No [api]: one line, exit 2."""
    config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/a.db", sendzen="http://127.0.0.1:9")
    done = await archiver(config, "serve")
    assert done.code == 2 and "[api] is missing" in done.stderr
