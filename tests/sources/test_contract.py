"""One contract every source keeps, run against each provider's simulator.

A new provider gets these tests by adding a ``Kit`` to ``KITS``: what its fake server,
its records and its source look like. The tests assert what the engine relies on:
a window is read to its end, exactly once per record; ties at page edges lose nothing
silently; credentials refused stop at once; 429 and garbage are retried, boundedly;
natural keys are stable across re-reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from archiver.domain import Gap
from archiver.errors import AuthFailed, RetriesExhausted
from archiver.simulator import FakeInfobip, FakeSendZen, FakeServer, infobip_message, sendzen_log
from tests.helpers import infobip_source, sendzen_source

NOW = datetime.now(timezone.utc).replace(microsecond=0)
START, END = NOW - timedelta(hours=2), NOW - timedelta(hours=1)


@dataclass(frozen=True)
class Kit:
    """How the contract tests meet one provider."""

    name: str
    fake: Callable[[], FakeServer]
    record: Callable[[int, datetime], dict[str, Any]]
    source: Callable[..., Any]
    page_size: int


KITS = [
    Kit("sendzen", lambda: FakeSendZen(), sendzen_log, sendzen_source, 20),
    Kit("infobip", lambda: FakeInfobip(rate_limit=10_000, supports_cursor=True),
        lambda n, at: infobip_message(n, at), infobip_source, 1000),
]


@pytest.fixture(params=KITS, ids=[k.name for k in KITS])
def kit(request: pytest.FixtureRequest) -> Kit:
    return request.param


@pytest.fixture
async def server(kit: Kit) -> AsyncIterator[FakeServer]:
    fake = await kit.fake().start()
    yield fake
    await fake.stop()


async def fetch_all(kit: Kit, base_url: str, **overrides: Any) -> tuple[list[Any], list[Gap], int]:
    """Every record and gap of [START, END], and the number of requests it took."""
    async with aiohttp.ClientSession() as session:
        source = kit.source(session, base_url, **overrides)
        raws, gaps = [], []
        async for page in source.fetch(START, END):
            raws += page.raws
            gaps += page.gaps
        return [source.parse(raw) for raw in raws], gaps, source.requests



async def restart_with(server: FakeServer, respond: Callable[[web.Request], web.StreamResponse | None]) -> FakeServer:
    """The same fake, restarted on its port with ``respond`` in front of its handler."""
    real = server.handle

    async def handle(request: web.Request) -> web.StreamResponse:
        answer = respond(request)
        if answer is None:
            return await real(request)
        server._log(request)
        return answer

    await server.stop()
    server.handle = handle  # type: ignore[method-assign]
    return await server.start(server.port)


class TestWindows:
    async def test_a_window_is_read_to_its_end_each_record_once(self, kit: Kit, server: Any) -> None:
        """Several pages' worth of records in a window come back complete, none twice."""
        count = kit.page_size * 3 + 5 if kit.page_size < 100 else 2500
        step = (END - START) / (count + 1)
        server.add(*(kit.record(i, START + step * (i + 1)) for i in range(count)))
        records, gaps, requests = await fetch_all(kit, server.base_url)
        keys = [r.key for r in records]
        assert len(keys) == count and len(set(keys)) == count
        assert gaps == []
        assert requests >= count // kit.page_size

    async def test_an_empty_window_yields_nothing_and_no_gap(self, kit: Kit, server: Any) -> None:
        """A window with no records (records exist outside it) ends cleanly with none."""
        server.add(kit.record(1, END + timedelta(minutes=5)), kit.record(2, START - timedelta(minutes=5)))
        records, gaps, requests = await fetch_all(kit, server.base_url)
        assert records == [] and gaps == [] and requests >= 1

    async def test_ties_at_page_edges_lose_nothing_silently(self, kit: Kit, server: Any) -> None:
        """More records than a page holds, all at one instant: every one archived, or a gap says so."""
        tie = START + timedelta(minutes=30)
        count = kit.page_size * 2 + 1
        server.add(*(kit.record(i, tie) for i in range(count)))
        records, gaps, _ = await fetch_all(kit, server.base_url)
        complete = len({r.key for r in records}) == count
        assert complete or any(g.start <= tie <= g.end for g in gaps)

    async def test_natural_keys_are_stable_across_re_reads(self, kit: Kit, server: Any) -> None:
        """Reading the same window twice yields the same keys: upserts de-duplicate re-reads."""
        server.add(*(kit.record(i, START + timedelta(minutes=i)) for i in range(30)))
        first, _, _ = await fetch_all(kit, server.base_url)
        second, _, _ = await fetch_all(kit, server.base_url)
        assert sorted(r.key for r in first) == sorted(r.key for r in second)
        assert len({r.key for r in first}) == 30


class TestRefusals:
    @pytest.mark.parametrize("status", [401, 403])
    async def test_refused_credentials_stop_at_the_first_request(self, kit: Kit, server: Any, status: int) -> None:
        """401 and 403 are not retried: the key is wrong until an operator fixes it."""
        server = await restart_with(server, lambda request: web.json_response({"message": "no"}, status=status))
        async with aiohttp.ClientSession() as session:
            source = kit.source(session, server.base_url, api_key="a-secret-key-value")
            with pytest.raises(AuthFailed) as failure:
                async for _ in source.fetch(START, END):
                    pass
            assert source.requests == 1
        assert str(status) in str(failure.value) and "a-secret-key-value" not in str(failure.value)

    async def test_429_is_honoured_and_the_window_completes(self, kit: Kit, server: Any) -> None:
        """Two 429s with Retry-After, then the records: nothing lost, nothing fatal."""
        server.add(*(kit.record(i, START + timedelta(minutes=i)) for i in range(10)))
        limited = iter(range(2))

        def respond(request: web.Request) -> web.Response | None:
            if next(limited, None) is None:
                return None
            return web.json_response({"message": "slow down"}, status=429, headers={"Retry-After": "0"})

        server = await restart_with(server, respond)
        records, gaps, requests = await fetch_all(kit, server.base_url)
        assert len({r.key for r in records}) == 10 and requests == 3

    async def test_garbage_bodies_are_retried_boundedly_then_reported(self, kit: Kit, server: Any) -> None:
        """A 200 that is not the documented JSON is retried, then the window fails loudly."""
        server = await restart_with(server, lambda request: web.Response(text="<html>proxy error</html>",
                                                                         content_type="text/html"))
        with pytest.raises(RetriesExhausted) as failure:
            await fetch_all(kit, server.base_url)
        assert "not JSON" in str(failure.value)
        assert 1 < len(server.requests) <= 6, "retried, within the policy's attempts"
