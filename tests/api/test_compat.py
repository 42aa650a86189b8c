"""The provider-compatible endpoints, tested differentially: for the same data and the
same query, the archiver answers what the provider (the simulators, which follow the
providers' pages) answers. Then the providers' clocks move past retention: they answer
nothing, the archive still answers everything."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Iterator

import aiohttp
import pytest

from sqlalchemy import event, select

from archiver.db import models as m, tallies
from archiver.db.store import Store
from archiver.engine import run_pass
from archiver.simulator import FakeInfobip, FakeSendZen, format_offset_time, infobip_message, sendzen_log, spread
from archiver.sources.sendzen.ticks import datetime_to_ticks
from archiver.times import utcnow
from tests.api.conftest import EVERYTHING, ReadSide
from tests.helpers import infobip_source, sendzen_source

NOW = utcnow().replace(microsecond=0)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


async def walk_sendzen(session: aiohttp.ClientSession, base_url: str, token: str, **params: Any) -> list[dict]:
    """Every log a query yields, following next_page_token to the end."""
    logs: list[dict] = []
    while True:
        async with session.get(f"{base_url}/v1/logs", params=params,
                               headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        logs += body["data"]["logs"]
        if not body["data"]["next_page_token"]:
            return logs
        params = {**params, "nextPageToken": body["data"]["next_page_token"]}


async def walk_infobip(session: aiohttp.ClientSession, base_url: str, token: str, **params: Any) -> list[dict]:
    """Every message a query yields, following cursor.nextCursor to the end."""
    results: list[dict] = []
    params = {**params, "useCursor": "true"}
    while True:
        async with session.get(f"{base_url}/messenger/1/logs", params=params,
                               headers={"Authorization": f"App {token}"}) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        results += body["results"]
        if "nextCursor" not in body.get("cursor", {}):
            return results
        params = {**params, "cursor": body["cursor"]["nextCursor"]}


@pytest.fixture
async def sendzen_world(store: Store) -> Any:
    """A SendZen fake holding 120 logs over 6 days, all archived."""
    clock = Clock()
    fake = await FakeSendZen(clock=clock).start()
    fake.add(*(sendzen_log(i, at) for i, at in enumerate(spread(120, NOW - timedelta(days=6), NOW - timedelta(minutes=1)))))
    async with aiohttp.ClientSession() as session:
        await run_pass(sendzen_source(session, fake.base_url), store, now=NOW)
    yield fake, clock
    await fake.stop()


@pytest.fixture
async def infobip_world(store: Store) -> Any:
    """An Infobip fake (cursor-capable) holding 260 messages over 40 h, ties included, archived."""
    clock = Clock()
    fake = await FakeInfobip(clock=clock, supports_cursor=True, rate_limit=10_000).start()
    times = spread(200, NOW - timedelta(hours=40), NOW - timedelta(minutes=1))
    tie = NOW - timedelta(hours=3)
    fake.add(*(infobip_message(i, at, final=i % 3 == 0) for i, at in enumerate(times)))
    fake.add(*(infobip_message(1000 + i, tie, final=True) for i in range(60)))
    async with aiohttp.ClientSession() as session:
        await run_pass(infobip_source(session, fake.base_url, use_cursor=True), store, now=NOW)
    yield fake, clock
    await fake.stop()


SENDZEN_QUERIES = [
    {},
    {"pageSize": "7"},
    {"eventTypes": "Message Status"},
    {"eventTypes": "Incoming Message,Other", "pageSize": "20"},
    {"phoneNumberId": "123456789012345"},
    {"phoneNumberId": "999"},
    {"fromDate": str(datetime_to_ticks(NOW - timedelta(days=3))), "toDate": str(datetime_to_ticks(NOW - timedelta(days=1)))},
]


class TestSendZenLogs:
    @pytest.mark.parametrize("query", SENDZEN_QUERIES)
    async def test_same_logs_same_order_as_the_provider(self, query: dict, sendzen_world: Any,
                                                        read_side: ReadSide) -> None:
        """Each filter and page size: the archive's walk equals the provider's, log for log."""
        fake, _ = sendzen_world
        expected = await walk_sendzen(read_side.session, fake.base_url, fake.api_key, **query)
        got = await walk_sendzen(read_side.session, read_side.base_url, EVERYTHING, **query)
        assert got == expected and (expected or query.get("phoneNumberId") == "999")

    async def test_past_retention_the_archive_still_answers(self, sendzen_world: Any, read_side: ReadSide) -> None:
        """A week later the provider has nothing; the archive serves all 120 logs."""
        fake, clock = sendzen_world
        before = await walk_sendzen(read_side.session, fake.base_url, fake.api_key)
        clock.now = NOW + timedelta(days=8)
        assert await walk_sendzen(read_side.session, fake.base_url, fake.api_key) == []
        assert await walk_sendzen(read_side.session, read_side.base_url, EVERYTHING) == before
        assert len(before) == 120

    @pytest.mark.parametrize("query", [{"pageSize": "0"}, {"pageSize": "abc"}, {"fromDate": "yesterday"}])
    async def test_bad_parameters_get_the_providers_400(self, query: dict, sendzen_world: Any,
                                                       read_side: ReadSide) -> None:
        """Same status, same body as the provider's own 400."""
        fake, _ = sendzen_world
        async with read_side.session.get(f"{fake.base_url}/v1/logs", params=query,
                                         headers={"Authorization": f"Bearer {fake.api_key}"}) as resp:
            expected = resp.status, await resp.json()
        assert await read_side.get("/v1/logs", **query) == expected == (400, {"message": "Invalid request parameters",
                                                                              "data": None})

    async def test_bad_credentials_get_the_providers_401(self, sendzen_world: Any, read_side: ReadSide) -> None:
        """A wrong token, or the provider's own API key, is the provider's 401."""
        fake, _ = sendzen_world
        async with read_side.session.get(f"{fake.base_url}/v1/logs", headers={"Authorization": "Bearer nope"}) as resp:
            expected = resp.status, await resp.json()
        for token in ("nope", fake.api_key):
            assert await read_side.get("/v1/logs", token=token) == expected

    async def test_a_walk_neither_skips_nor_repeats_while_records_arrive(self, sendzen_world: Any, store: Store,
                                                                         read_side: ReadSide) -> None:
        """New logs archived mid-walk appear before the walk's position, never inside it."""
        fake, _ = sendzen_world
        status, first = await read_side.get("/v1/logs", pageSize="50")
        fake.add(*(sendzen_log(500 + i, NOW - timedelta(seconds=30 - i)) for i in range(10)))
        async with aiohttp.ClientSession() as session:
            await run_pass(sendzen_source(session, fake.base_url), store, now=NOW + timedelta(minutes=1),
                           since=NOW - timedelta(minutes=2))
        rest = await walk_sendzen(read_side.session, read_side.base_url, EVERYTHING, pageSize="50",
                                  nextPageToken=first["data"]["next_page_token"])
        walked = first["data"]["logs"] + rest
        assert len(walked) == 120 and len({(l["created_at"], l["payload"]) for l in walked}) == 120

    @pytest.mark.parametrize("token", ["garbage", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ""])
    async def test_forged_paging_tokens_are_a_400(self, token: str, sendzen_world: Any, read_side: ReadSide) -> None:
        """A token the archive did not sign is refused, never a 500 or another position."""
        status, _ = await read_side.get("/v1/logs", nextPageToken=token)
        assert status == (200 if token == "" else 400)


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """The SQL the store's engine runs meanwhile (the read side runs in this process)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", record)


class TestAnEmptyScope:
    """A page of what the archive holds nothing of is empty at once (the tallies say so
    before the time index is walked), and the guard never hides what it does hold."""

    async def test_the_other_providers_page_is_empty_without_reading_records(self, infobip_world: Any, store: Store,
                                                                             read_side: ReadSide) -> None:
        with statements(store) as seen:
            status, body = await read_side.get("/v1/logs")
        assert status == 200 and body["data"]["logs"] == [] and not body["data"]["next_page_token"]
        assert any("FROM tallies" in s for s in seen) and not any("FROM records" in s for s in seen)
        status, body = await read_side.get("/messenger/1/logs", scheme="App")
        assert status == 200 and len(body["results"]) == 50

    async def test_a_walk_asks_the_tallies_on_its_first_page_only(self, infobip_world: Any, store: Store,
                                                                  read_side: ReadSide) -> None:
        with statements(store) as seen:
            walked = await walk_infobip(read_side.session, read_side.base_url, EVERYTHING, limit="50")
        assert len(walked) == 260 and sum("FROM tallies" in s for s in seen) == 1
        assert sum("FROM records" in s for s in seen) == 6, "six pages of 50"

    async def test_an_account_with_nothing_archived_is_empty_beside_one_that_has(self, sendzen_world: Any,
                                                                               read_side: ReadSide) -> None:
        assert len(await walk_sendzen(read_side.session, read_side.base_url, EVERYTHING, account="default")) == 120
        assert await walk_sendzen(read_side.session, read_side.base_url, EVERYTHING, account="other") == []

    async def test_a_source_whose_records_all_went_is_empty(self, sendzen_world: Any, store: Store,
                                                             read_side: ReadSide) -> None:
        """Deleted through the tallies' own path (as prune and erasure delete): the tally is 0."""
        async with store.engine.begin() as conn:
            keys = [("sendzen", "default", k) for k in await conn.scalars(select(m.records.c.natural_key))]
            assert await tallies.delete_records(conn, keys) == 120
        assert await walk_sendzen(read_side.session, read_side.base_url, EVERYTHING) == []


INFOBIP_QUERIES = [
    {},
    {"limit": "1000"},
    {"limit": "17"},
    {"generalStatus": "DELIVERED"},
    {"generalStatus": "PENDING", "limit": "25"},
    {"messageId": "MSG-000000003,MSG-000000009,MSG-000001005"},
    {"destination": "385900000004,385900000150"},
    {"bulkId": "BULK-1"},
    {"sender": "44113496000", "limit": "33"},
    {"sentSince": format_offset_time(NOW - timedelta(hours=20), "+0530"),
     "sentUntil": format_offset_time(NOW - timedelta(hours=2), "-0500")},
]


class TestInfobipLogs:
    @pytest.mark.parametrize("query", INFOBIP_QUERIES)
    async def test_same_messages_same_order_as_the_provider(self, query: dict, infobip_world: Any,
                                                           read_side: ReadSide) -> None:
        """Each filter, limit and offset-written range: the archive pages exactly like the provider, ties included."""
        fake, _ = infobip_world
        expected = await walk_infobip(read_side.session, fake.base_url, fake.api_key, **query)
        got = await walk_infobip(read_side.session, read_side.base_url, EVERYTHING, **query)
        assert got == expected and expected

    async def test_paging_by_narrowing_sent_until_works_too(self, infobip_world: Any, read_side: ReadSide) -> None:
        """Without useCursor, a client narrows sentUntil; the first page matches the provider's."""
        fake, _ = infobip_world
        async with read_side.session.get(f"{fake.base_url}/messenger/1/logs", params={"limit": "40"},
                                         headers={"Authorization": f"App {fake.api_key}"}) as resp:
            expected = await resp.json()
        status, got = await read_side.get("/messenger/1/logs", scheme="App", limit="40")
        assert status == 200 and got == expected and "cursor" not in got

    async def test_the_latest_version_is_served_past_retention(self, infobip_world: Any, store: Store,
                                                               read_side: ReadSide) -> None:
        """A status that changed after archiving is served in its latest version, two days later too."""
        fake, clock = infobip_world
        fake.set_status("MSG-000000001", 3, "DELIVERED", "DELIVERED_TO_HANDSET", done_at=NOW)
        async with aiohttp.ClientSession() as session:
            await run_pass(infobip_source(session, fake.base_url), store, now=NOW + timedelta(minutes=1))
        clock.now = NOW + timedelta(days=3)
        assert await walk_infobip(read_side.session, fake.base_url, fake.api_key) == []
        got = await walk_infobip(read_side.session, read_side.base_url, EVERYTHING, messageId="MSG-000000001")
        assert [m["status"]["name"] for m in got] == ["DELIVERED_TO_HANDSET"]
        assert len(await walk_infobip(read_side.session, read_side.base_url, EVERYTHING, limit="1000")) == 260

    @pytest.mark.parametrize("query", [{"limit": "5000"}, {"limit": "0"}, {"sentSince": "yesterday"}])
    async def test_bad_parameters_get_the_providers_400(self, query: dict, infobip_world: Any,
                                                       read_side: ReadSide) -> None:
        """The provider's 400 shape, naming the parameter."""
        status, body = await read_side.get("/messenger/1/logs", scheme="App", **query)
        assert status == 400 and body["errorCode"] == "E400" and next(iter(query)) in body["description"]
        fake, _ = infobip_world
        if next(iter(query)) == "limit":
            async with read_side.session.get(f"{fake.base_url}/messenger/1/logs", params=query,
                                             headers={"Authorization": f"App {fake.api_key}"}) as resp:
                assert (resp.status, await resp.json()) == (status, body)

    async def test_bad_credentials_get_the_providers_401(self, infobip_world: Any, read_side: ReadSide) -> None:
        """Wrong token, provider key, or the Bearer scheme on Infobip's path: the provider's 401 body."""
        fake, _ = infobip_world
        async with read_side.session.get(f"{fake.base_url}/messenger/1/logs",
                                         headers={"Authorization": "App nope"}) as resp:
            expected = resp.status, await resp.json()
        for token, scheme in [("nope", "App"), (fake.api_key, "App"), (EVERYTHING, "Bearer")]:
            assert await read_side.get("/messenger/1/logs", token=token, scheme=scheme) == expected
