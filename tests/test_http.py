"""``HttpClient.get_json``'s retries, over real HTTP to a server the test starts.

The first attempt runs outside tenacity (it is the only one nearly every request
makes); these pin that the attempts, the retry log lines and the time budget are
those of a retry loop around every attempt.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable

import aiohttp
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer

from archiver.errors import RetriesExhausted
from archiver.http import HttpClient, RetryPolicy

Answer = Callable[[int], web.Response]
"""The response to the n-th request (from 1)."""


def failing(times: int) -> Answer:
    return lambda n: web.Response(status=503) if n <= times else web.json_response({"ok": n})


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., object]]:
    """Starts a server answering with ``answer``; the requests it saw are counted."""
    servers: list[TestServer] = []

    async def start(answer: Answer, delay_first: float = 0.0) -> tuple[str, list[int]]:
        seen: list[int] = []

        async def handle(request: web.Request) -> web.Response:
            seen.append(len(seen) + 1)
            if delay_first and len(seen) == 1:
                await asyncio.sleep(delay_first)  # the provider is slow to answer, not a synchronisation
            return answer(len(seen))

        app = web.Application()
        app.router.add_get("/logs", handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("/logs")), seen

    yield start
    for server in servers:
        await server.close()


async def get(url: str, policy: RetryPolicy) -> object:
    async with aiohttp.ClientSession() as session:
        client = HttpClient(session, source="test", policy=policy)
        return await client.get_json(url, {}, {}, lambda body: body)


QUICK = RetryPolicy(attempts=4, max_seconds=30, initial_wait=0.001, max_wait=0.002)


async def test_a_request_answered_at_once_is_made_once_and_logs_no_retry(serve) -> None:  # type: ignore[no-untyped-def]
    url, seen = await serve(failing(0))
    with structlog.testing.capture_logs() as logged:
        assert await get(url, QUICK) == {"ok": 1}
    assert seen == [1] and not [e for e in logged if e["event"] == "retrying request"]


async def test_failures_are_retried_and_each_retry_is_logged_with_its_attempt(serve) -> None:  # type: ignore[no-untyped-def]
    url, seen = await serve(failing(2))
    with structlog.testing.capture_logs() as logged:
        assert await get(url, QUICK) == {"ok": 3}
    assert len(seen) == 3
    assert [e["attempt"] for e in logged if e["event"] == "retrying request"] == [1, 2]


async def test_a_request_that_always_fails_makes_exactly_the_policy_s_attempts(serve) -> None:  # type: ignore[no-untyped-def]
    url, seen = await serve(failing(99))
    with pytest.raises(RetriesExhausted, match="503.*gave up after 4 attempts"):
        await get(url, QUICK)
    assert len(seen) == 4


async def test_one_attempt_allowed_means_no_retry(serve) -> None:  # type: ignore[no-untyped-def]
    url, seen = await serve(failing(99))
    with pytest.raises(RetriesExhausted, match="gave up after 1 attempts"):
        await get(url, RetryPolicy(attempts=1, initial_wait=0.001))
    assert len(seen) == 1


async def test_the_first_attempt_s_time_counts_against_the_retry_budget(serve) -> None:  # type: ignore[no-untyped-def]
    """A first answer slower than ``max_seconds`` leaves no time to retry in."""
    url, seen = await serve(failing(99), delay_first=0.3)
    with pytest.raises(RetriesExhausted):
        await get(url, RetryPolicy(attempts=50, max_seconds=0.2, initial_wait=0.001, max_wait=0.002))
    assert len(seen) == 1
