"""The plumbing every simulated provider shares: an aiohttp server on a free loopback
port, key checks, injected faults, a request log; and evenly spread moments for
generated traffic. Each provider's own fake lives with it (``sources/<provider>/fake.py``).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from aiohttp import web

from archiver.times import utcnow

Clock = Callable[[], datetime]

@dataclass
class Faults:
    """What share of requests fail, and how (drawn from a seeded RNG, so runs repeat)."""

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    truncated_rate: float = 0.0
    latency: float = 0.0
    timeout_seconds: float = 3.0
    seed: int = 1
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def draw(self) -> str | None:
        roll = self._rng.random()
        for kind, rate in (("error", self.error_rate), ("timeout", self.timeout_rate), ("truncated", self.truncated_rate)):
            if roll < rate:
                return kind
            roll -= rate
        return None


class FakeServer:
    """Shared plumbing: an aiohttp app on a free loopback port, auth, faults, a request log."""

    auth_scheme = "Bearer"
    path = "/"

    async def handle(self, request: web.Request) -> web.Response:
        return web.json_response({}, status=404)

    def __init__(self, api_key: str, *, clock: Clock = utcnow, faults: Faults | None = None,
                 other_keys: tuple[str, ...] = ()) -> None:
        self.api_key, self.clock = api_key, clock
        self.keys = (api_key, *other_keys)
        self.faults = faults or Faults()
        self.requests: list[dict[str, str]] = []
        self.served: dict[int, int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> "FakeServer":
        app = web.Application()
        app.router.add_get(self.path, self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def _respond(self, status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        self.served[status] = self.served.get(status, 0) + 1
        return web.json_response(body, status=status, headers=headers)

    async def _fault(self) -> web.Response | None:
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        kind = self.faults.draw()
        if kind == "error":
            return self._respond(self.faults._rng.choice([500, 503]), self.error_body(500))
        if kind == "timeout":
            await asyncio.sleep(self.faults.timeout_seconds)
        if kind == "truncated":
            self.served[200] = self.served.get(200, 0) + 1
            return web.Response(text='{"message": "ok", "data": {"logs": [{"proj', content_type="application/json")
        return None

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") in {f"{self.auth_scheme} {k}" for k in self.keys}

    def _log(self, request: web.Request) -> None:
        """Record the query, and which key asked (tests tell clients apart by key)."""
        auth = request.headers.get("Authorization", "")
        self.requests.append({**request.query, "__key": auth.split(" ", 1)[-1]})

    def error_body(self, status: int) -> Any:
        return {"message": "Internal server error", "data": None}


def spread(count: int, start: datetime, end: datetime) -> list[datetime]:
    """``count`` moments evenly over ``[start, end)``, oldest first."""
    step = (end - start) / max(count, 1)
    return [start + step * i for i in range(count)]

