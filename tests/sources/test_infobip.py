"""Infobip: pure paging/finality helpers, request shapes, and the source against the simulator."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from aioresponses import aioresponses

from archiver.errors import AuthFailed, MalformedResponse
from archiver.ratelimit import RateLimiter
from archiver.simulator import FakeInfobip, infobip_message
from archiver.sources.infobip import describe_error, id_batches, is_final, narrow, parse_message, parse_results
from tests.helpers import infobip_source

UTC = timezone.utc
T = datetime(2024, 3, 1, 12, tzinfo=UTC)
MS = timedelta(milliseconds=1)
URL = re.compile(r"^https://ib\.example/messenger/1/logs\?.*$")


class TestNarrowing:
    def test_next_bound_keeps_the_oldest_ties(self) -> None:
        page = [infobip_message(i, T + timedelta(seconds=10 - i // 100)) for i in range(1000)]
        until, gap = narrow(page, T + timedelta(hours=1))
        assert gap is None and until == T + timedelta(seconds=1) + MS

    def test_a_page_of_one_instant_is_a_gap_not_a_loop(self) -> None:
        page = [infobip_message(i, T) for i in range(1000)]
        until, gap = narrow(page, T + MS)
        assert until == T - MS, "moves below the tie"
        assert gap is not None and gap.start == gap.end == T and "1000+" in gap.reason

    def test_first_sight_of_a_tie_narrows_once_more(self) -> None:
        """With a wide bound, an all-tie page first narrows to the tie; only then is it a gap."""
        page = [infobip_message(i, T) for i in range(1000)]
        assert narrow(page, T + timedelta(hours=1)) == (T + MS, None)


class TestHelpers:
    def test_id_batches_stay_under_2048_characters(self) -> None:
        ids = [f"MSG-{i:030d}" for i in range(500)]
        batches = list(id_batches(ids))
        assert [i for b in batches for i in b] == ids
        assert all(len(",".join(b)) <= 2048 for b in batches)
        assert len(",".join(batches[0])) > 2048 - 35, "batches are filled, not tiny"

    @pytest.mark.parametrize("group, name, final", [
        ("PENDING", "PENDING_ENROUTE", False),
        ("ACCEPTED", "MESSAGE_ACCEPTED", False),
        ("DELIVERED", "DELIVERED_TO_OPERATOR", False),
        ("DELIVERED", "DELIVERED_TO_HANDSET", True),
        ("UNDELIVERABLE", "UNDELIVERABLE_REJECTED_OPERATOR", True),
        ("EXPIRED", "EXPIRED_EXPIRED", True),
        ("REJECTED", "REJECTED_NETWORK", True),
        ("SOMETHING_NEW", "NEW", False),
    ])
    def test_finality_is_per_status(self, group: str, name: str, final: bool) -> None:
        assert is_final({"groupName": group, "name": name}) is final

    def test_parse_message_normalizes_to_utc(self) -> None:
        raw = infobip_message(7, T, offset="+0100", final=True)
        assert raw["sentAt"] == "2024-03-01T13:00:00.000+0100"
        record = parse_message(raw)
        e = record.event
        assert record.key == raw["messageId"] and record.at == T and e.occurred_at == T
        assert e.done_at == T + timedelta(seconds=30)
        assert (e.status, e.status_detail, e.is_final) == ("delivered", "DELIVERED_TO_HANDSET", True)
        assert (e.event_type, e.direction, e.sender, e.recipient) == ("Outbound Message", "outbound",
                                                                      "44113496000", raw["destination"])
        assert (e.content_type, e.text, e.price, e.currency) == ("TEXT", raw["content"]["text"], 0.15, "EUR")
        assert e.error_code is None and e.error_title is None, "groupId 0 is not an error"

    def test_errors_are_kept_when_group_is_not_ok(self) -> None:
        raw = infobip_message(1, T)
        raw["error"] = {"groupId": 1, "groupName": "HANDSET_ERRORS", "id": 27, "name": "EC_ABSENT_SUBSCRIBER"}
        assert (parse_message(raw).event.error_code, parse_message(raw).event.error_title) == (27, "EC_ABSENT_SUBSCRIBER")

    def test_both_error_shapes_are_described(self) -> None:
        legacy = {"requestError": {"serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}}}
        current = {"errorCode": "E429", "description": "Too many requests", "action": "Slow down"}
        assert describe_error(legacy) == "UNAUTHORIZED Invalid login details"
        assert describe_error(current) == "E429 Too many requests Slow down"

    def test_page_shape_is_checked(self) -> None:
        for bad in [[], {"results": None}, {"results": {}}]:
            with pytest.raises(MalformedResponse):
                parse_results(bad)
        assert parse_results({"results": [], "cursor": {"nextCursor": "abc"}}) == ([], [], "abc")

    def test_unreadable_entries_are_set_aside_not_fatal(self) -> None:
        """Entries without an id or a readable sentAt are quarantined; the good ones stay."""
        good = infobip_message(1, T)
        results, bad, _ = parse_results({"results": [{"sentAt": "2024-01-01T00:00:00.000+0000"}, good,
                                                     {"messageId": "1", "sentAt": "2024-01-01 00:00"},
                                                     {"messageId": "2", "sentAt": "99999-01-01T00:00:00.000+0000"}]})
        assert results == [good]
        assert [q.reason for q in bad] == ["messageId is missing or not a string",
                                           "sentAt is missing or not a readable time",
                                           "sentAt is missing or not a readable time"]


async def test_request_shape() -> None:
    with aioresponses() as mocked:
        mocked.get(URL, payload={"results": [infobip_message(1, T)]})
        async with aiohttp.ClientSession() as session:
            source = infobip_source(session, "https://ib.example", sender="4411", entity_id="ent")
            pages = [p async for p in source.fetch(T - timedelta(hours=1), T)]
        (call,) = [c for calls in mocked.requests.values() for c in calls]
    assert len(pages) == 1 and pages[0].raws[0]["messageId"] == "MSG-000000001"
    assert call.kwargs["headers"]["Authorization"] == "App ib-test-key"
    assert call.kwargs["params"] == {
        "sentSince": "2024-03-01T10:59:59.999+00:00", "sentUntil": "2024-03-01T12:00:00.001+00:00",
        "limit": "1000", "useCursor": "true", "sender": "4411", "entityId": "ent"}


async def test_unauthorized_is_fatal_with_the_providers_words(fake_infobip: FakeInfobip) -> None:
    async with aiohttp.ClientSession() as session:
        source = infobip_source(session, fake_infobip.base_url, api_key="wrong-key-9876")
        with pytest.raises(AuthFailed) as err:
            [p async for p in source.fetch(T, T + timedelta(hours=1))]
    assert "Invalid login details" in str(err.value) and "wrong-key-9876" not in str(err.value)


async def test_429_is_honoured_and_retried(fake_infobip: FakeInfobip) -> None:
    """A limiter looser than the server: 429s are served, waited out, never fatal."""
    fake_infobip.rate_limit, fake_infobip.rate_period = 2, 1.0
    now = datetime.now(UTC)
    fake_infobip.add(*(infobip_message(i, now - timedelta(minutes=i)) for i in range(10)))
    async with aiohttp.ClientSession() as session:
        source = infobip_source(session, fake_infobip.base_url, page_size=3, limiter=RateLimiter(100, 1.0))
        pages = [p async for p in source.fetch(now - timedelta(hours=1), now)]
    assert fake_infobip.served.get(429, 0) >= 1
    assert sorted(r["messageId"] for p in pages for r in p.raws) == sorted(fake_infobip.messages)


async def test_a_repeated_cursor_is_not_an_endless_loop() -> None:
    """A cursor served twice ends the walk with a gap; the records of both pages are kept."""
    def page(first: int) -> dict:
        return {"results": [infobip_message(i, T - timedelta(seconds=i)) for i in range(first, first + 3)],
                "cursor": {"limit": 3, "nextCursor": "SAME"}}

    with aioresponses() as mocked:
        mocked.get(URL, payload=page(0))
        mocked.get(URL, payload=page(3), repeat=True)
        async with aiohttp.ClientSession() as session:
            source = infobip_source(session, "https://ib.example", page_size=3)
            pages = [p async for p in source.fetch(T - timedelta(hours=1), T)]
    assert len([r for p in pages for r in p.raws]) == 6 and source.requests == 2
    assert [g.reason for p in pages for g in p.gaps] == [
        "infobip server repeated cursor.nextCursor; paging stopped, the window may be incomplete"]


async def test_a_server_that_rejects_use_cursor_is_paged_by_time() -> None:
    """Older API versions may answer 400 to useCursor: fall back to sentUntil, once."""
    with aioresponses() as mocked:
        mocked.get(URL, status=400, payload={"errorCode": "E400", "description": "Unknown parameter useCursor"})
        mocked.get(URL, payload={"results": [infobip_message(1, T)]}, repeat=True)
        async with aiohttp.ClientSession() as session:
            source = infobip_source(session, "https://ib.example")
            pages = [p async for p in source.fetch(T - timedelta(hours=1), T)]
            again = [p async for p in source.fetch(T - timedelta(hours=1), T)]
        params = [c.kwargs["params"] for calls in mocked.requests.values() for c in calls]
    assert [len(p.raws) for p in pages + again] == [1, 1]
    assert "useCursor" in params[0] and all("useCursor" not in p for p in params[1:])
