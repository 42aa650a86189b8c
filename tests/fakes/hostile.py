"""A provider that misbehaves: one aiohttp app on 127.0.0.1, one behaviour per test.

``HostileServer(answer)`` serves both providers' paths; ``answer(request)`` decides
what comes back (a redirect, a gzip bomb, a page that ignores its range, …). Every
request is logged, so tests can bound what the archiver asked.
"""

from __future__ import annotations

import inspect
import zlib
from typing import Awaitable, Callable, Union

from aiohttp import web

Answer = Callable[[web.Request], Union[web.StreamResponse, Awaitable[web.StreamResponse]]]


class HostileServer:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[web.Request] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "HostileServer":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        answer = self.answer(request)
        return await answer if inspect.isawaitable(answer) else answer


def gzip_bomb(inflated_bytes: int, prefix: bytes = b'{"results": [], "padding": "') -> bytes:
    """Valid gzip of a JSON document that inflates to about ``inflated_bytes``."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [squeeze.compress(prefix)]
    block = b" " * (1 << 20)
    for _ in range(inflated_bytes >> 20):
        parts.append(squeeze.compress(block))
    parts.append(squeeze.compress(b'"}'))
    parts.append(squeeze.flush())
    return b"".join(parts)


async def stream(request: web.Request, chunks: int, chunk: bytes, headers: dict[str, str] | None = None) -> web.StreamResponse:
    """A 200 written chunk by chunk (no Content-Length): the client cannot know its size up front."""
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json", **(headers or {})})
    await resp.prepare(request)
    for _ in range(chunks):
        await resp.write(chunk)
    await resp.write_eof()
    return resp
