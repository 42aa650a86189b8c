"""The daemon's HTTP face: ``/healthz`` for orchestrators, ``/metrics`` for Prometheus."""

from __future__ import annotations

from typing import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


async def start(host: str, port: int, health: Callable[[], tuple[bool, dict[str, object]]]) -> web.AppRunner:
    """Serve until the returned runner is cleaned up."""

    async def healthz(_request: web.Request) -> web.Response:
        healthy, body = health()
        return web.json_response({"healthy": healthy, "sources": body}, status=200 if healthy else 503)

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
