"""``archiver demo``: the simulators and the daemon, end to end, for a fixed time."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.cli_helpers import cli_env


async def test_demo_archives_both_sources_and_stops_by_itself(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "archiver", "--log-format", "json", "demo", "--dir", str(demo), "--seconds", "8",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env())
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    reports = [l for l in out.decode().splitlines() if l.startswith("demo: archived rows")]
    assert reports, out.decode()
    status = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "archiver", "--config", str(demo / "config.toml"), "status", "--json",
        stdout=asyncio.subprocess.PIPE, env=cli_env())
    body = json.loads((await status.communicate())[0])
    assert body["sendzen"]["rows"] >= 1500 and body["infobip"]["rows"] >= 2500
    assert body["sendzen"]["gaps"] == [] and body["infobip"]["last_error"] is None
