"""SendZen request shapes (aioresponses, no network) and pure parsing."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from aioresponses import aioresponses

from archiver.errors import AuthFailed, BadRequest, MalformedResponse, RetriesExhausted
from archiver.simulator import sendzen_log
from archiver.sources.sendzen import natural_key, parse_log, parse_logs_page
from archiver.sources.sendzen.ticks import datetime_to_ticks
from tests.helpers import sendzen_source

BASE = "https://sz.example"
URL = re.compile(r"^https://sz\.example/v1/logs\?.*$")
T1 = datetime(2024, 1, 1, tzinfo=timezone.utc)
T2 = datetime(2024, 1, 1, 1, tzinfo=timezone.utc)


def page(logs: list, token: str | None = None) -> dict:
    return {"message": "Notification logs retrieved successfully", "data": {"logs": logs, "next_page_token": token}}


async def collect(source, start=T1, end=T2) -> list:
    return [log for p in [p async for p in source.fetch(start, end)] for log in p.raws]


async def test_params_headers_and_token_paging() -> None:
    logs = [sendzen_log(i, T1) for i in range(3)]
    with aioresponses() as mocked:
        mocked.get(URL, payload=page(logs[:2], "TOKEN-1"))
        mocked.get(URL, payload=page(logs[2:]))
        async with aiohttp.ClientSession() as session:
            source = sendzen_source(session, BASE, event_types=("Message Status", "Other"), phone_number_id="555")
            got = await collect(source)
        calls = [c for calls in mocked.requests.values() for c in calls]
    assert got == logs
    first, second = (c.kwargs for c in calls)
    assert first["headers"]["Authorization"] == "Bearer sz-test-key"
    assert first["params"] == {"fromDate": str(datetime_to_ticks(T1)), "toDate": str(datetime_to_ticks(T2)),
                               "pageSize": "20", "eventTypes": "Message Status,Other", "phoneNumberId": "555"}
    assert second["params"]["nextPageToken"] == "TOKEN-1"
    assert second["params"]["fromDate"] == first["params"]["fromDate"], "paging keeps the original filters"


async def test_401_is_auth_failure_without_retry() -> None:
    with aioresponses() as mocked:
        mocked.get(URL, status=401, payload={"message": "Unauthorized"})
        async with aiohttp.ClientSession() as session:
            source = sendzen_source(session, BASE, api_key="sz-very-secret")
            with pytest.raises(AuthFailed) as err:
                await collect(source)
    assert "401" in str(err.value) and "Unauthorized" in str(err.value)
    assert "sz-very-secret" not in str(err.value)
    assert source.requests == 1


async def test_400_names_the_parameters() -> None:
    with aioresponses() as mocked:
        mocked.get(URL, status=400, payload={"message": "Invalid request parameters", "data": None})
        async with aiohttp.ClientSession() as session:
            with pytest.raises(BadRequest, match="fromDate"):
                await collect(sendzen_source(session, BASE))


async def test_500_and_garbage_are_retried_then_succeed() -> None:
    with aioresponses() as mocked:
        mocked.get(URL, status=500, payload={"message": "Internal server error", "data": None})
        mocked.get(URL, body='{"message": "ok", "data": {"lo')
        mocked.get(URL, payload={"message": "ok", "data": {"items": []}})
        mocked.get(URL, payload=page([sendzen_log(1, T1)]))
        async with aiohttp.ClientSession() as session:
            source = sendzen_source(session, BASE)
            got = await collect(source)
    assert len(got) == 1 and source.requests == 4


async def test_retries_are_bounded() -> None:
    with aioresponses() as mocked:
        mocked.get(URL, status=503, repeat=True)
        async with aiohttp.ClientSession() as session:
            source = sendzen_source(session, BASE)
            with pytest.raises(RetriesExhausted, match="503"):
                await collect(source)
    assert source.requests == 6


async def test_repeated_token_is_not_an_endless_loop() -> None:
    """A token served twice ends the walk with a gap for the window; what was read is kept."""
    with aioresponses() as mocked:
        mocked.get(URL, payload=page([sendzen_log(1, T1)], "SAME"), repeat=True)
        mocked.get(URL, payload=page([sendzen_log(2, T1)], "SAME"), repeat=True)
        async with aiohttp.ClientSession() as session:
            source = sendzen_source(session, BASE)
            pages = [p async for p in source.fetch(T1, T2)]
    assert [log for p in pages for log in p.raws] == [sendzen_log(1, T1)]
    assert [g.reason for p in pages for g in p.gaps] == [
        "sendzen server served a page again; paging stopped, the window may be incomplete"]
    assert source.requests == 2


class TestParsing:
    def test_page_shape_is_checked(self) -> None:
        assert parse_logs_page(page([], "")) == ([], [], None)
        for bad in [None, [], {"data": None}, {"data": {"logs": {}}}, {"data": {"logs": [], "next_page_token": 5}}]:
            with pytest.raises(MalformedResponse):
                parse_logs_page(bad)

    def test_unreadable_logs_are_set_aside_not_fatal(self) -> None:
        """A log without a usable time is quarantined with the reason; its page's good logs stay."""
        good = sendzen_log(1, T1)
        logs, bad, _ = parse_logs_page(page([{"created_at": "x"}, good, {"created_at": 10**20}, "text"]))
        assert logs == [good]
        assert [q.reason for q in bad] == [
            "created_at is not an integer tick count",
            "created_at is outside the dates a calendar holds (year 1 to 9999)",
            "a log entry is not an object"]

    def test_natural_key_is_content_identity(self) -> None:
        log = sendzen_log(1, T1)
        reordered = dict(reversed(list(log.items())))
        assert natural_key(log) == natural_key(reordered) == natural_key(json.loads(json.dumps(log)))
        assert natural_key(log) != natural_key({**log, "created_at": log["created_at"] + 1})
        assert natural_key(log) != natural_key({**log, "payload": log["payload"] + " "})
        assert natural_key(log) == natural_key({**log, "flyout_delivery_status": "changed"}), \
            "only the identity fields count"

    def test_natural_keys_sort_in_time_order(self) -> None:
        """So a backfill appends to the unique indexes instead of writing all over them."""
        logs = [sendzen_log(n, T1 + timedelta(microseconds=step)) for n, step in enumerate([0, 1, 10**6, 10**12])]
        assert [natural_key(log) for log in logs] == sorted(natural_key(log) for log in logs)
        assert natural_key(logs[0]).startswith(f"{logs[0]['created_at']:019d}:")

    def test_documented_example_normalizes(self) -> None:
        log = {"project_id": "12345", "phone_number_id": "123456789012345", "event_type": "Incoming Message",
               "payload": json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
                   {"field": "messages", "value": {"metadata": {"display_phone_number": "15551234567"},
                    "messages": [{"from": "1234567890", "id": "wamid.HB", "timestamp": "1704067200", "type": "text",
                                  "text": {"body": "Hello, this is a test message"}}]}}]}]}),
               "created_at": 638500000100000000, "direction": 1}
        record = parse_log(log)
        assert record.event.message_id == "wamid.HB" and record.event.text == "Hello, this is a test message"
        assert record.event.created_at == datetime(2024, 4, 29, 15, 6, 50, tzinfo=timezone.utc)
        assert record.at == record.event.created_at and record.status_rank == 0

    def test_unknown_payload_is_kept_with_a_reason(self) -> None:
        record = parse_log({"event_type": "Other", "payload": "{oops", "created_at": 638500000000000000})
        assert record.event.parse_error and record.event.occurred_at == record.at
        assert record.raw["payload"] == "{oops"


async def test_tls_certificates_are_verified(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A self-signed certificate is refused at once, with a clear message, and not retried."""
    import ssl
    import subprocess

    from aiohttp import web

    from archiver.errors import TLSFailed

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-subj", "/CN=127.0.0.1", "-days", "1"], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()
    async def empty(request: web.Request) -> web.Response:
        return web.json_response(page([]))

    app.router.add_get("/v1/logs", empty)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            source = sendzen_source(session, f"https://127.0.0.1:{port}")
            with pytest.raises(TLSFailed, match="certificate"):
                await collect(source)
        assert source.requests == 1
    finally:
        await runner.cleanup()
