"""The ``archiver`` console script, run as a real subprocess against the simulators."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
from datetime import timedelta
from pathlib import Path

from archiver.db.connect import create_engine
from archiver.db.store import Store
from archiver.export import CONTRACT_FIELDS
from archiver.simulator import FakeInfobip, FakeSendZen, infobip_message, sendzen_log, spread
from archiver.times import utcnow
from tests.cli_helpers import ARCHIVER, archiver, cli_env, start_daemon, wait_for
from tests.helpers import canonical, free_port, to_revision, write_config


def seed(fake: FakeSendZen, count: int) -> None:
    now = utcnow()
    for i, at in enumerate(spread(count, now - timedelta(days=6), now - timedelta(seconds=2))):
        fake.add(sendzen_log(i, at))


async def test_backfill_status_export(tmp_path: Path, db_url: str, fake_sendzen: FakeSendZen) -> None:
    """backfill → status --json → export (JSONL and CSV) equals the provider's data."""
    seed(fake_sendzen, 120)
    config = write_config(tmp_path / "config.toml", db_url, sendzen=fake_sendzen.base_url)
    done = await archiver(config, "backfill")
    assert done.code == 0, done.stderr
    assert "backfill summary" in done.stdout and "sendzen" in done.stdout
    assert "\x1b[" not in done.stdout + done.stderr, "no control characters without a TTY"

    status = await archiver(config, "status", "--json")
    assert status.code == 0, status.stderr
    body = json.loads(status.stdout)["sendzen"]
    assert body["rows"] == 120 and body["gaps"] == [] and body["last_error"] is None
    assert body["checkpoint"].endswith("Z") and body["last_success"] is not None
    assert 290 <= body["lag_seconds"] < 400
    assert 6.9 * 86400 < body["retention_headroom_seconds"] <= 7 * 86400

    out = tmp_path / "out.jsonl"
    exported = await archiver(config, "export", "--source", "sendzen", "--output", str(out))
    assert exported.code == 0, exported.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(canonical(l["raw"]) for l in lines) == sorted(canonical(l) for l in fake_sendzen.served_logs())
    assert all(set(CONTRACT_FIELDS) | {"raw"} <= set(l) for l in lines)
    served = {canonical(l): json.dumps(l) for l in fake_sendzen.served_logs()}
    assert all(json.dumps(l["raw"]) == served[canonical(l["raw"])] for l in lines), "raw keeps the served key order"
    assert {l["source"] for l in lines} == {"sendzen"} and {l["account"] for l in lines} == {"default"}
    assert all(l["occurred_at"].endswith("Z") and l["created_at"].endswith("Z") and l["done_at"] is None
               for l in lines), "UTC RFC 3339 times; done_at does not apply to SendZen"

    as_csv = await archiver(config, "export", "--source", "sendzen", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == 120 and json.loads(rows[0]["raw"]) in [l["raw"] for l in lines]


async def test_export_time_range(tmp_path: Path, fake_sendzen: FakeSendZen) -> None:
    seed(fake_sendzen, 60)
    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path}/a.db", sendzen=fake_sendzen.base_url)
    assert (await archiver(config, "backfill")).code == 0
    since = (utcnow() - timedelta(days=3)).isoformat()
    part = await archiver(config, "export", "--source", "sendzen", "--since", since)
    assert 25 <= len(part.stdout.splitlines()) <= 35


async def test_backfill_one_source_and_an_exact_range(tmp_path: Path, fake_sendzen: FakeSendZen,
                                                      fake_infobip: FakeInfobip) -> None:
    """--source limits the backfill to one provider; --since/--until re-read that range only,
    leaving the checkpoint where it was (SPEC: backfill)."""
    seed(fake_sendzen, 60)
    fake_infobip.add(*(infobip_message(i, utcnow() - timedelta(hours=i + 1)) for i in range(5)))
    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path}/a.db", sendzen=fake_sendzen.base_url,
                          infobip=fake_infobip.base_url)
    done = await archiver(config, "backfill", "--source", "infobip")
    assert done.code == 0, done.stderr
    assert fake_sendzen.requests == [] and fake_infobip.requests, "only Infobip was asked"

    now = utcnow()
    since, until = (now - timedelta(days=3)).isoformat(), (now - timedelta(days=1)).isoformat()
    done = await archiver(config, "backfill", "--source", "sendzen", "--since", since, "--until", until)
    assert done.code == 0, done.stderr
    status = json.loads((await archiver(config, "status", "--json")).stdout)
    assert status["sendzen"]["checkpoint"] is None, "an explicit range does not move the checkpoint"
    assert 15 <= status["sendzen"]["rows"] <= 25, "two of the six days: about a third of 60"
    assert status["infobip"]["rows"] == 5 and status["infobip"]["checkpoint"] is not None


async def test_bad_credentials_exit_nonzero_without_touching_checkpoint(tmp_path: Path, fake_sendzen: FakeSendZen) -> None:
    seed(fake_sendzen, 5)
    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path}/a.db", sendzen=fake_sendzen.base_url,
                          sendzen_key="sz-wrong-key-123")
    done = await archiver(config, "backfill")
    assert done.code != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("archiver: ") and "401" in last and "check the API key" in last
    assert "sz-wrong-key-123" not in done.stdout + done.stderr
    status = json.loads((await archiver(config, "status", "--json")).stdout)["sendzen"]
    assert status["checkpoint"] is None and status["rows"] == 0
    assert "401" in status["last_error"]["message"]


async def test_bad_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[sendzen]\napi_key = "k"\npoll_interval = 5\n')
    done = await archiver(config, "backfill")
    assert done.code == 2
    assert done.stderr.strip() == ("archiver: unknown key [sendzen] poll_interval (known: account, api_key, api_key_env, base_url, "
                                   "event_types, max_concurrency, max_response_bytes, overlap_seconds, page_size, phone_number_id, "
                                   "poll_interval_seconds, requests_per_minute, timeout_seconds, url, window_seconds)")


async def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.toml", "postgresql://u:topsecretpw@127.0.0.1:1/db",
                          sendzen="http://127.0.0.1:9")
    done = await archiver(config, "migrate")
    assert done.code == 1 and "topsecretpw" not in done.stderr
    assert done.stderr.startswith("archiver: cannot open the database postgresql://u:***@127.0.0.1:1/db")
    assert len(done.stderr.strip().splitlines()) == 1


async def test_migrate_is_idempotent(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "config.toml", db_url)
    for _ in range(2):
        done = await archiver(config, "migrate")
        assert done.code == 0 and "up to date" in done.stdout


async def test_env_secret_used_and_never_printed(tmp_path: Path, fake_sendzen: FakeSendZen) -> None:
    """SENDZEN_API_KEY overrides the file; debug logs never show it."""
    seed(fake_sendzen, 3)
    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path}/a.db", sendzen=fake_sendzen.base_url,
                          sendzen_key="file-key-is-wrong")
    done = await archiver(config, "--log-level", "debug", "backfill",
                          env=cli_env(SENDZEN_API_KEY="sz-test-key"))
    assert done.code == 0, done.stderr
    assert "sz-test-key" not in done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert all(isinstance(line, dict) for line in lines), "JSON log lines when not on a TTY"
    windows = [l for l in lines if l["event"] == "window archived"]
    assert windows and all({"source", "window_from", "window_to", "records", "pages"} <= set(l) for l in windows)
    (summary,) = [l for l in lines if l["event"] == "pass finished"]
    assert summary["source"] == "sendzen" and summary["records"] >= 3 and 0 < summary["seconds"] < 60


async def test_daemon_archives_new_records_and_stops_on_sigterm(tmp_path: Path, db_url: str, store: Store,
                                                                fake_sendzen: FakeSendZen) -> None:
    seed(fake_sendzen, 30)
    config = write_config(tmp_path / "config.toml", db_url, sendzen=fake_sendzen.base_url, port=free_port())
    daemon = await start_daemon(config)
    try:
        async def archived(n: int):  # type: ignore[no-untyped-def]
            async def check() -> bool:
                return await store.count_records("sendzen", "default") >= n
            return check

        await wait_for(await archived(30), timeout=60)
        fake_sendzen.add(sendzen_log(5000, utcnow()))
        await wait_for(await archived(31), timeout=60)
    finally:
        if daemon.returncode is None:
            daemon.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(daemon.wait(), 15)
    stderr = (await daemon.stderr.read()).decode()  # type: ignore[union-attr]
    assert code == 0, stderr
    events = [json.loads(line)["event"] for line in stderr.splitlines()]
    assert "stopped" in events


async def test_concurrent_starts_migrate_once(tmp_path: Path, db_url: str) -> None:
    """Replicas starting together do not race each other's schema changes."""
    config = write_config(tmp_path / "config.toml", db_url)
    results = await asyncio.gather(*(archiver(config, "migrate") for _ in range(3)))
    assert [r.code for r in results] == [0, 0, 0], [r.stderr for r in results]


async def test_backfill_on_a_terminal_shows_live_progress(tmp_path: Path, fake_sendzen: FakeSendZen) -> None:
    """On a TTY: a progress bar per source (drawn with control codes), then the summary."""
    import os
    import pty

    seed(fake_sendzen, 200)
    config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/a.db", sendzen=fake_sendzen.base_url)
    controller, terminal = pty.openpty()
    proc = await asyncio.create_subprocess_exec(*ARCHIVER, "--config", str(config), "backfill",
                                                stdin=terminal, stdout=terminal, stderr=terminal, env=cli_env())
    os.close(terminal)
    output = b""
    loop = asyncio.get_running_loop()
    while True:
        try:
            chunk = await loop.run_in_executor(None, os.read, controller, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert await proc.wait() == 0
    text = output.decode(errors="replace")
    assert "\x1b[" in text, "drawn live on the terminal"
    assert "100%" in text and "records" in text and "requests" in text
    assert "backfill summary" in text


async def test_global_options_also_after_the_command(tmp_path: Path) -> None:
    import sys

    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path}/a.db")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "archiver", "migrate", "--config", str(config),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env=cli_env(), cwd=tmp_path.parent)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert (tmp_path / "a.db").exists()


async def test_commands_that_only_touch_the_archive_never_load_the_http_stack(tmp_path: Path,
                                                                              fake_sendzen: FakeSendZen) -> None:
    """``migrate``, ``export``, ``prune``, ``erase`` start without aiohttp, tenacity or the
    engine (0.1 s and 10 MB less a start: an export in a cron job is mostly its start);
    ``backfill`` loads them. A new SQLite archive is made without alembic
    (``archiver.db.snapshot``); upgrading an older one loads alembic, but not the pygments
    lexers its template engine would highlight error pages with (5 MB). Nothing else on SQLite
    loads SQLAlchemy's PostgreSQL dialects (40 ms; alembic imports every dialect)."""
    seed(fake_sendzen, 20)
    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path}/a.db", sendzen=fake_sendzen.base_url)
    probe = ("import sys; from archiver.cli import main; code = main(sys.argv[1:]); "
             "print(sorted(m for m in ('aiohttp', 'tenacity', 'archiver.engine', 'alembic', 'pygments.lexers.web', "
             "'sqlalchemy.dialects.postgresql') "
             "if m in sys.modules), "
             "file=sys.stderr); sys.exit(code)")

    async def loaded(*args: str, config: Path = config) -> str:
        proc = await asyncio.create_subprocess_exec(
            ARCHIVER[0], "-c", probe, "--config", str(config), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env())
        _, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
        return err.decode().strip().splitlines()[-1]

    assert await loaded("migrate") == "[]", "a new archive's migration"
    older = create_engine(f"sqlite:///{tmp_path}/older.db")
    await to_revision(older, "0009")
    await older.dispose()
    at_0009 = write_config(tmp_path / "older.toml", f"sqlite:///{tmp_path}/older.db", sendzen=fake_sendzen.base_url)
    assert await loaded("migrate", config=at_0009) == "['alembic', 'sqlalchemy.dialects.postgresql']", "an upgrade"
    assert await loaded("backfill") == "['aiohttp', 'archiver.engine', 'tenacity']"
    for command in (["export", "--source", "sendzen", "--output", str(tmp_path / "out.jsonl")], ["prune"],
                    ["erase", "--phone", "+49 170 1234567", "--dry-run"]):
        assert await loaded(*command) == "[]", command
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 20
