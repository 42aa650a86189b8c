"""Hostile providers and hostile input, met as an operator meets them: the real
``archiver`` command against a server that answers badly.

Each test asserts what matters on call at 3 a.m.: the good records archived, no
checkpoint moved by a failed pass, the exit code and its one line, a bounded number
of requests, bounded memory.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from archiver.http import retry_after_seconds

from archiver.simulator import infobip_message, sendzen_log, spread
from archiver.times import utcnow
from tests.fakes.peak_rss import reading
from tests.cli_helpers import Completed, cli_env, read_until, start_daemon
from tests.fakes.hostile import HostileServer, gzip_bomb, stream
from tests.helpers import free_port, write_config

FAST_ARCHIVER = [sys.executable, "-m", "tests.fakes.fast_archiver"]
NOW = utcnow()


async def run(config: Path, *args: str, timeout: float = 120, measure: bool = False) -> Completed:
    """The real command (fast retries), to completion; with ``measure``, its memory is
    the last stderr line (see ``tests/fakes/peak_rss.py``)."""
    wrapper = ["-m", "tests.fakes.peak_rss"] if measure else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *wrapper, *FAST_ARCHIVER[1:], "--config", str(config), "--log-format", "json", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env())
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return Completed(proc.returncode or 0, out.decode(), err.decode())


def peak_rss_mb(done: Completed) -> float:
    """The archiver's and its SQLite writer's peak together: SPEC bounds the backfill's memory."""
    mb = reading(done.stderr)["tree_rss_kb"] / 1024
    print(f"peak RSS {mb:.0f} MB")
    return mb


def reason_line(done: Completed) -> str:
    """The one line a failed command leaves for the operator."""
    lines = [l for l in done.stderr.splitlines() if l.startswith("archiver: ")]
    assert len(lines) == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return lines[0]


async def status(config: Path) -> dict[str, Any]:
    done = await run(config, "status", "--json")
    assert done.code == 0, done.stderr
    return json.loads(done.stdout)


def sendzen_page(logs: list[Any], token: str | None = None) -> dict[str, Any]:
    return {"message": "Notification logs retrieved successfully", "data": {"logs": logs, "next_page_token": token}}


@pytest.fixture
async def serve():
    """Start hostile servers for a test; stop them after it."""
    servers: list[HostileServer] = []

    async def start(answer: Any) -> HostileServer:
        servers.append(await HostileServer(answer).start())
        return servers[-1]

    yield start
    for server in servers:
        await server.stop()


def config_for(tmp_path: Path, provider: str, base_url: str) -> Path:
    return write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/a.db", **{provider: base_url})


class TestRedirects:
    @pytest.mark.parametrize("provider", ["sendzen", "infobip"])
    async def test_a_redirect_is_never_followed(self, provider: str, tmp_path: Path, serve: Any) -> None:
        """A 302 elsewhere: exit 1 naming status and host, the other origin never asked, no checkpoint."""
        other = await serve(lambda request: _json({"results": [], "data": {"logs": []}}))

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPFound(f"http://other.example:{other.port}/v1/logs")

        server = await serve(redirect)
        config = config_for(tmp_path, provider, server.base_url)
        done = await run(config, "backfill")
        assert done.code == 1
        assert "answered 302, a redirect to other.example" in reason_line(done)
        assert "not followed; check base_url" in reason_line(done)
        assert other.requests == [] and len(server.requests) <= 4
        assert (await status(config))[provider]["checkpoint"] is None


class TestOversizedAnswers:
    async def test_a_gzip_bomb_is_abandoned_and_memory_stays_bounded(self, tmp_path: Path, serve: Any) -> None:
        """4 MB of gzip inflating to 1 GiB: malformed (retried, reported), peak RSS well under 400 MB."""
        bomb = gzip_bomb(1 << 30)

        async def answer(request: web.Request) -> web.Response:
            return web.Response(body=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

        server = await serve(answer)
        config = config_for(tmp_path, "infobip", server.base_url)
        done = await run(config, "backfill", timeout=300, measure=True)
        assert done.code == 1
        assert "more than max_response_bytes" in reason_line(done)
        assert peak_rss_mb(done) < 400, f"{peak_rss_mb(done):.0f} MB"
        assert (await status(config))["infobip"]["checkpoint"] is None

    async def test_an_oversized_plain_answer_is_abandoned(self, tmp_path: Path, serve: Any) -> None:
        """A 300 MB answer without Content-Length is cut off at the cap; the window is not believed."""
        server = await serve(lambda request: stream(request, 300, b" " * (1 << 20)))
        config = config_for(tmp_path, "sendzen", server.base_url)
        done = await run(config, "backfill", timeout=300, measure=True)
        assert done.code == 1 and "more than max_response_bytes" in reason_line(done)
        assert peak_rss_mb(done) < 400, f"{peak_rss_mb(done):.0f} MB"
        assert (await status(config))["sendzen"]["checkpoint"] is None


class TestUnreadableRecords:
    async def test_sendzen_poison_logs_are_quarantined_and_the_rest_archived(self, tmp_path: Path, serve: Any) -> None:
        """Logs with no integer time or one beyond year 9999 go to quarantine; the good ones and the checkpoint move."""
        good = [sendzen_log(i, at) for i, at in enumerate(spread(30, NOW - timedelta(days=6), NOW))]
        poison = [{**good[0], "created_at": "soon"}, {**good[1], "created_at": 4 * 10**18}]  # year 12675

        async def answer(request: web.Request) -> web.Response:
            return _json(sendzen_page(poison + good if "nextPageToken" not in request.query else []))

        server = await serve(answer)
        config = config_for(tmp_path, "sendzen", server.base_url)
        done = await run(config, "backfill")
        assert done.code == 0, done.stderr
        st = (await status(config))["sendzen"]
        assert st["rows"] == 30 and st["quarantined"] == 2 and st["checkpoint"] is not None
        warnings = [json.loads(l) for l in done.stderr.splitlines() if "record quarantined" in l]
        assert {w["reason"] for w in warnings} == {"created_at is not an integer tick count",
                                                   "created_at is outside the dates a calendar holds (year 1 to 9999)"}
        assert all("payload" not in json.dumps(w) and "Hello" not in json.dumps(w) for w in warnings), "no content"
        exported = await run(config, "export", "--source", "sendzen", "--quarantined")
        lines = [json.loads(l) for l in exported.stdout.splitlines()]
        assert sorted(str(l["raw"]["created_at"]) for l in lines) == [str(4 * 10**18), "soon"]
        assert all(set(l) == {"account", "reason", "seen_at", "raw"} for l in lines)

    async def test_infobip_messages_without_an_id_do_not_block_the_page(self, tmp_path: Path, serve: Any) -> None:
        """A message without messageId is quarantined once however often served; the others are archived."""
        good = [infobip_message(i, at, final=True) for i, at in enumerate(spread(20, NOW - timedelta(hours=40), NOW))]
        nameless = {k: v for k, v in good[0].items() if k != "messageId"}
        server = await serve(lambda request: _json({"results": [nameless, *good[::-1]]}))
        config = config_for(tmp_path, "infobip", server.base_url)
        assert (await run(config, "backfill")).code == 0
        assert (await run(config, "backfill")).code == 0
        st = (await status(config))["infobip"]
        assert st["rows"] == 20 and st["quarantined"] == 1



class TestTextNoDatabaseHolds:
    """JSON may escape NUL and lone surrogates; PostgreSQL's text refuses NUL and UTF-8 cannot
    encode a lone surrogate. Once, either failed the whole batch, and the pass with it, for ever."""

    async def test_sendzen_logs_with_them_are_archived_as_served(self, db_url: str, tmp_path: Path,
                                                                  serve: Any) -> None:
        """Raw exports as served; the normalized text keeps the rest, with U+FFFD in their place."""
        good = [sendzen_log(i, at) for i, at in enumerate(spread(3, NOW - timedelta(days=2), NOW))]
        body = {"entry": [{"changes": [{"value": {"messages": [
            {"id": "wamid.odd", "from": "4915112345678", "timestamp": str(int(NOW.timestamp())), "type": "text",
             "text": {"body": "caf\u00e9 \x00 \ud83d!"}}]}}]}]}
        odd = [{**good[0], "payload": json.dumps(body)}, {**good[1], "flyout_url": "\ud800 \x00"}]
        served = odd + good[2:]

        async def answer(request: web.Request) -> web.Response:
            return _json(sendzen_page(served if "nextPageToken" not in request.query else []))

        server = await serve(answer)
        config = write_config(tmp_path / "c.toml", db_url, sendzen=server.base_url)
        done = await run(config, "backfill")
        assert done.code == 0, done.stderr
        st = (await status(config))["sendzen"]
        assert st["rows"] == 3 and st["quarantined"] == 0
        exported = [json.loads(l) for l in (await run(config, "export", "--source", "sendzen")).stdout.splitlines()]
        assert sorted((l["raw"] for l in exported), key=json.dumps) == sorted(served, key=json.dumps)
        assert [l["text"] for l in exported if l["message_id"] == "wamid.odd"] == ["caf\u00e9 \ufffd \ufffd!"]

    async def test_an_infobip_id_with_them_is_quarantined(self, db_url: str, tmp_path: Path, serve: Any) -> None:
        """An id is the record's identity: with characters no column holds, it is set aside, not mangled."""
        good = [infobip_message(i, at, final=True) for i, at in enumerate(spread(5, NOW - timedelta(hours=40), NOW))]
        odd = {**good[0], "messageId": "id-\x00-1"}
        server = await serve(lambda request: _json({"results": [odd, *good[1:]]}))
        config = write_config(tmp_path / "c.toml", db_url, infobip=server.base_url)
        done = await run(config, "backfill")
        assert done.code == 0, done.stderr
        st = (await status(config))["infobip"]
        assert st["rows"] == 4 and st["quarantined"] == 1
        assert "its id holds characters no database stores" in done.stderr

class TestPagingThatCannotSpin:
    async def test_infobip_ignoring_the_time_range_ends_with_a_gap(self, tmp_path: Path, serve: Any) -> None:
        """A server that serves the same 1000 newest messages for any range: the pass ends, boundedly."""
        served = [infobip_message(i, NOW - timedelta(seconds=i), final=True) for i in range(1000)]
        server = await serve(lambda request: _json({"results": served}))
        config = config_for(tmp_path, "infobip", server.base_url)
        done = await run(config, "backfill", timeout=120)
        assert done.code == 0, done.stderr
        st = (await status(config))["infobip"]
        assert st["rows"] == 1000
        assert any("paging stopped" in g["reason"] for g in st["gaps"])
        assert len(server.requests) < 60, "bounded by windows, not by the server's patience"

    async def test_sendzen_serving_a_page_again_under_new_tokens_ends(self, tmp_path: Path, serve: Any) -> None:
        """Ever-new tokens over the same logs: noticed on the second page, a gap, the pass ends."""
        logs = [sendzen_log(i, NOW - timedelta(minutes=i)) for i in range(20)]
        counter = iter(range(10**6))
        server = await serve(lambda request: _json(sendzen_page(logs, f"T{next(counter)}")))
        config = config_for(tmp_path, "sendzen", server.base_url)
        done = await run(config, "backfill", "--since", (NOW - timedelta(hours=1)).isoformat())
        assert done.code == 0, done.stderr
        assert (await status(config))["sendzen"]["rows"] == 20
        assert len(server.requests) <= 8


class TestRetryAfter:
    @pytest.mark.parametrize("retry_after", ["86400", "Wed, 21 Oct 2099 07:28:00 GMT"])
    async def test_a_long_retry_after_stops_a_backfill_at_once(self, retry_after: str, tmp_path: Path,
                                                               serve: Any) -> None:
        """429 asking for a day (seconds or HTTP-date): exit 1 at once, naming when to come back."""
        server = await serve(lambda request: _json({"errorCode": "E429", "description": "Too many requests"},
                                                   status=429, headers={"Retry-After": retry_after}))
        config = config_for(tmp_path, "infobip", server.base_url)
        started = asyncio.get_running_loop().time()
        done = await run(config, "backfill")
        assert done.code == 1 and asyncio.get_running_loop().time() - started < 60
        line = reason_line(done)
        assert "asked to wait" in line and "longer than the retry budget" in line
        assert ("2099-10-21T07:28:00Z" in line) if "2099" in retry_after else ("until 20" in line)
        assert len(server.requests) <= 2


class TestPathologicalJson:
    @pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"results": [1e999]}',
                                      b'{"results": ["\xff\xfe"]}'])
    async def test_pathological_json_is_a_malformed_response(self, body: bytes, tmp_path: Path, serve: Any) -> None:
        """Nesting too deep, a number no double holds, invalid UTF-8: malformed, one line, no traceback."""
        server = await serve(lambda request: _bytes(body))
        config = config_for(tmp_path, "infobip", server.base_url)
        done = await run(config, "backfill")
        assert done.code == 1
        assert "not JSON" in reason_line(done) or "no results list" in reason_line(done)


class TestOperatorInput:
    @pytest.mark.parametrize("args, named", [
        (["export", "--source", "sendzen", "--since", "2024-02-01", "--until", "2024-01-01"], "--until"),
        (["backfill", "--since", "2024-02-01", "--until", "2024-01-01T00:00:00+05:30"], "--until"),
    ])
    async def test_a_contradictory_range_exits_2_naming_the_argument(self, args: list[str], named: str,
                                                                     tmp_path: Path) -> None:
        """--until before --since is refused before anything is read."""
        config = config_for(tmp_path, "sendzen", "http://127.0.0.1:9")
        done = await run(config, *args)
        assert done.code == 2 and reason_line(done).startswith(f"archiver: {named} ")

    async def test_a_backfill_from_the_future_exits_2(self, tmp_path: Path) -> None:
        """--since tomorrow names the argument instead of silently reading nothing."""
        config = config_for(tmp_path, "sendzen", "http://127.0.0.1:9")
        tomorrow = (utcnow() + timedelta(days=1)).isoformat()
        done = await run(config, "backfill", "--since", tomorrow)
        assert done.code == 2 and "--since" in reason_line(done) and "future" in reason_line(done)

    @pytest.mark.parametrize("url, shown", [
        ("sqlite:////nonexistent-archiver-dir/a.db", "the directory /nonexistent-archiver-dir does not exist"),
        ("postgresql://archiver:hunter2hunter2@127.0.0.1:1/db", "postgresql://archiver:***@127.0.0.1:1/db"),
    ])
    async def test_a_database_that_cannot_be_opened_is_one_line(self, url: str, shown: str, tmp_path: Path) -> None:
        """Missing directory or refused connection: exit 1, the URL with its password masked, no traceback."""
        config = write_config(tmp_path / "c.toml", url, sendzen="http://127.0.0.1:9")
        done = await run(config, "status")
        line = reason_line(done)
        assert done.code == 1 and shown in line and "hunter2" not in done.stderr
        assert not Path("/nonexistent-archiver-dir").exists()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _bytes(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


class TestDaemonUnderALongPause:
    async def test_the_daemon_waits_says_when_and_stays_healthy(self, tmp_path: Path, serve: Any) -> None:
        """429 for a day: the daemon logs when it resumes, status shows the error, /healthz answers 200."""
        server = await serve(lambda request: _json({"errorCode": "E429", "description": "Too many requests"},
                                                   status=429, headers={"Retry-After": "86400"}))
        port = free_port()
        config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/a.db", infobip=server.base_url, port=port)
        daemon = await start_daemon(config)
        try:
            event = await read_until(daemon, lambda e: e.get("event") == "provider asked for a long pause; "
                                                                         "polling resumes then", timeout=60)
            assert event["resumes_at"] > utcnow().isoformat()[:10]
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200 and (await resp.json())["healthy"] is True
            last_error = (await status(config))["infobip"]["last_error"]
            assert "longer than the retry budget" in last_error["message"]
            assert len(server.requests) == 1, "no polling while the provider asked to wait"
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(daemon.wait(), 20) == 0


class TestRetryAfterForms:
    def test_both_forms_are_understood(self) -> None:
        """delta-seconds and HTTP-date (RFC 9110); garbage is no answer rather than an error."""
        now = datetime(2099, 10, 21, 7, 0, tzinfo=timezone.utc)
        assert retry_after_seconds("120", now) == 120.0
        assert retry_after_seconds("Wed, 21 Oct 2099 07:28:00 GMT", now) == 28 * 60
        assert retry_after_seconds("Wed, 21 Oct 2099 06:00:00 GMT", now) == 0.0
        assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None
