"""The search API over an archive of both providers: filters, paging, one message's
events and history, scoping by token, and hostile parameters that change nothing."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from archiver.db import models as m
from archiver.db.store import Store
from archiver.engine import run_pass
from archiver.simulator import FakeInfobip, FakeSendZen, infobip_message, sendzen_log, spread
from archiver.times import utcnow
from tests.api.conftest import ERASER, EVERYTHING, SENDZEN_ONLY, ReadSide
from tests.helpers import infobip_source, sendzen_source

NOW = utcnow().replace(microsecond=0)


def incoming(n: int, at: Any, sender: str, text: str) -> dict[str, Any]:
    log = sendzen_log(n, at)
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": "1"},
        "contacts": [{"wa_id": sender, "profile": {"name": "Customer"}}],
        "messages": [{"from": sender, "id": f"wamid.T{n}", "timestamp": str(int(at.timestamp())),
                      "type": "text", "text": {"body": text}}]}}]}]}
    return {**log, "event_type": "Incoming Message", "payload": json.dumps(payload)}


def status_log(n: int, at: Any, wamid: str, recipient: str, status: str) -> dict[str, Any]:
    log = sendzen_log(n, at)
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": "1"},
        "statuses": [{"id": wamid, "recipient_id": recipient, "status": status,
                      "timestamp": str(int(at.timestamp()))}]}}]}]}
    return {**log, "event_type": "Message Status", "payload": json.dumps(payload)}


@pytest.fixture
async def archive(store: Store) -> Store:
    """A customer +49 170 1234567 on both providers, among 60 other messages."""
    sz = await FakeSendZen().start()
    ib = await FakeInfobip(rate_limit=10_000).start()
    t = NOW - timedelta(hours=5)
    sz.add(incoming(1, t, "491701234567", "My parcel 100% never ARRIVED_"),
           status_log(2, t + timedelta(minutes=1), "wamid.OUT1", "491701234567", "sent"),
           status_log(3, t + timedelta(minutes=3), "wamid.OUT1", "491701234567", "read"),
           status_log(4, t + timedelta(minutes=2), "wamid.OUT1", "491701234567", "delivered"),
           *(sendzen_log(100 + i, at) for i, at in enumerate(spread(30, NOW - timedelta(days=2), NOW))))
    ib.add({**infobip_message(7, t, final=True), "destination": "491701234567"},
           *(infobip_message(200 + i, at, final=True) for i, at in enumerate(spread(30, NOW - timedelta(hours=30), NOW))))
    async with aiohttp.ClientSession() as session:
        await run_pass(sendzen_source(session, sz.base_url), store, now=NOW)
        await run_pass(infobip_source(session, ib.base_url), store, now=NOW)
    await sz.stop()
    await ib.stop()
    return store


async def table_digest(store: Store) -> str:
    """A fingerprint of every table's row count: proves a request changed nothing."""
    counts = []
    async with store.engine.connect() as conn:
        for table in (m.records, m.events, m.messages, m.status_history, m.checkpoints):
            counts.append(await conn.scalar(select(func.count()).select_from(table)))
    return hashlib.sha256(str(counts).encode()).hexdigest()


class TestMessages:
    @pytest.mark.parametrize("phone", ["+49 170 1234567", "49-170-123-4567", "491701234567"])
    async def test_phone_finds_the_customer_on_every_provider(self, phone: str, archive: Store,
                                                               read_side: ReadSide) -> None:
        """Sender or recipient, any spelling of the number: her three messages, newest first."""
        status, body = await read_side.get("/api/v1/messages", phone=phone)
        assert status == 200
        found = [(x["source"], x["message_id"]) for x in body["messages"]]
        assert sorted(found) == sorted([("sendzen", "wamid.T1"), ("sendzen", "wamid.OUT1"), ("infobip", "MSG-000000007")])
        times = [x["occurred_at"] for x in body["messages"]]
        assert times == sorted(times, reverse=True)

    async def test_a_message_carries_its_current_status_only_forward(self, archive: Store, read_side: ReadSide) -> None:
        """sent, read, then a late delivered: the message reads 'read', with all three in history."""
        status, body = await read_side.get("/api/v1/messages", message_id="wamid.OUT1")
        [message] = body["messages"]
        assert message["status"] == "read" and message["recipient"] == "491701234567"
        status, detail = await read_side.get("/api/v1/messages/sendzen/wamid.OUT1")
        assert status == 200 and [h["status"] for h in detail["history"]] == ["sent", "delivered", "read"]
        assert all(h["seen_at"] and h["occurred_at"] for h in detail["history"])
        assert [e["status"] for e in detail["events"]] == ["sent", "delivered", "read"], "oldest event first"
        assert all(isinstance(e["raw"], dict) and "payload" in e["raw"] for e in detail["events"])

    @pytest.mark.parametrize("text, hits", [("parcel 100%", 1), ("arrived_", 1), ("100%%", 0), ("zzz", 0)])
    async def test_text_is_a_case_insensitive_substring(self, text: str, hits: int, archive: Store,
                                                        read_side: ReadSide) -> None:
        """%, _ and case are taken literally: a search for '100%%' finds nothing."""
        status, body = await read_side.get("/api/v1/messages", text=text)
        assert status == 200 and len(body["messages"]) == hits

    async def test_paging_walks_every_message_once(self, archive: Store, read_side: ReadSide) -> None:
        """limit=7 pages through all 63 messages, newest first, none twice."""
        seen, cursor = [], None
        while True:
            params = {"limit": "7", **({"cursor": cursor} if cursor else {})}
            status, body = await read_side.get("/api/v1/messages", **params)
            seen += [(x["source"], x["message_id"]) for x in body["messages"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        status, everything = await read_side.get("/api/v1/messages", limit="500")
        assert seen == [(x["source"], x["message_id"]) for x in everything["messages"]]
        assert len(seen) == len(set(seen)) > 40

    async def test_time_ranges_with_offsets(self, archive: Store, read_side: ReadSide) -> None:
        """since/until with +05:30 and -05:00 offsets mean the same instants as UTC."""
        t = NOW - timedelta(hours=5)
        since = (t - timedelta(minutes=1)).astimezone(__import__("datetime").timezone(timedelta(hours=5, minutes=30)))
        until = (t + timedelta(minutes=1)).astimezone(__import__("datetime").timezone(timedelta(hours=-5)))
        status, body = await read_side.get("/api/v1/messages", since=since.isoformat(), until=until.isoformat())
        assert status == 200 and {x["message_id"] for x in body["messages"]} >= {"wamid.T1", "MSG-000000007"}


class TestAccess:
    @pytest.mark.parametrize("path", ["/api/v1/messages", "/api/v1/messages/sendzen/wamid.T1", "/v1/logs",
                                      "/messenger/1/logs"])
    async def test_no_token_or_a_wrong_one_is_401(self, path: str, archive: Store, read_side: ReadSide) -> None:
        """Every endpoint but /healthz and the page's shell needs a token."""
        for token in (None, "wrong-token-wrong-token-wrong"):
            status, _ = await read_side.get(path, token=token, scheme="App" if "messenger" in path else "Bearer")
            assert status == 401
        assert (await read_side.get("/healthz", token=None))[0] == 200

    async def test_a_scoped_token_sees_only_its_accounts(self, archive: Store, read_side: ReadSide) -> None:
        """The SendZen-only token: no Infobip message in lists, 404 by id, nothing from /messenger/1/logs."""
        status, body = await read_side.get("/api/v1/messages", token=SENDZEN_ONLY, phone="491701234567")
        assert {x["source"] for x in body["messages"]} == {"sendzen"}
        assert (await read_side.get("/api/v1/messages/infobip/MSG-000000007", token=SENDZEN_ONLY))[0] == 404
        assert (await read_side.get("/api/v1/messages/infobip/MSG-000000007"))[0] == 200
        status, body = await read_side.get("/messenger/1/logs", token=SENDZEN_ONLY, scheme="App")
        assert status == 200 and body == {"results": []}

    async def test_erasure_needs_the_erase_permission(self, archive: Store, read_side: ReadSide) -> None:
        """A read-only token gets 403 and the archive is untouched."""
        before = await table_digest(archive)
        async with read_side.session.delete(f"{read_side.base_url}/api/v1/subjects/491701234567",
                                            headers={"Authorization": f"Bearer {EVERYTHING}"}) as resp:
            assert resp.status == 403
        assert await table_digest(archive) == before


    async def test_an_erase_token_erases_the_subject(self, archive: Store, read_side: ReadSide) -> None:
        """DELETE with the erase permission: counts per table, never cached, and she is gone from search."""
        url = f"{read_side.base_url}/api/v1/subjects/+49%20170%20123-4567"
        async with read_side.session.delete(url, headers={"Authorization": f"Bearer {ERASER}"}) as resp:
            assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
            erased = (await resp.json())["erased"]
        assert erased["records"] == 5 and erased["messages"] == 3
        status, body = await read_side.get("/api/v1/messages", phone="491701234567")
        assert body["messages"] == []

    @pytest.mark.parametrize("number", ["12", "49-abc", "1" * 30])
    async def test_erasing_what_is_not_a_number_is_a_400(self, number: str, archive: Store,
                                                         read_side: ReadSide) -> None:
        before = await table_digest(archive)
        async with read_side.session.delete(f"{read_side.base_url}/api/v1/subjects/{number}",
                                            headers={"Authorization": f"Bearer {ERASER}"}) as resp:
            assert resp.status == 400 and "phone" in await resp.text()
        assert await table_digest(archive) == before


class TestHostileParameters:
    @pytest.mark.parametrize("params", [
        {"phone": "1' OR '1'='1"}, {"message_id": "x'; DROP TABLE records; --"}, {"limit": "100000"},
        {"limit": "-1"}, {"since": "not a date"}, {"until": "2024-13-45"}, {"cursor": "Zm9yZ2Vk"},
        {"source": "../../etc/passwd"}, {"text": "%' UNION SELECT raw FROM records --"},
    ])
    async def test_hostile_parameters_are_4xx_or_harmless(self, params: dict, archive: Store,
                                                           read_side: ReadSide) -> None:
        """SQL metacharacters, huge limits, bad dates, forged cursors: a 4xx naming the parameter
        (or no match), never a 500, and the archive unchanged."""
        before = await table_digest(archive)
        status, body = await read_side.get("/api/v1/messages", **params)
        name = next(iter(params))
        assert status == 400 and body["parameter"] == name or status == 200 and body["messages"] == []
        assert await table_digest(archive) == before

    @pytest.mark.parametrize("path", ["/api/v1/messages/sendzen/..%2F..%2Fetc%2Fpasswd",
                                      "/api/v1/messages/../records", "/api/v1/messages/nosuch/1", "/nope"])
    async def test_paths_outside_the_api_are_404(self, path: str, archive: Store, read_side: ReadSide) -> None:
        """Traversal in ids and unknown paths find nothing."""
        assert (await read_side.get(path))[0] == 404
