"""Starting the read side from the config: ``archiver serve``, and ``archiver run`` with ``[api]``."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from archiver.api.app import Eraser, build_app
from archiver.api.auth import Reader, Tokens
from archiver.api.cursors import Cursors, key_from
from archiver.config import ApiConfig


def tokens_from(api: ApiConfig) -> Tokens:
    readers = []
    for t in api.tokens:
        accounts = frozenset(tuple(a.split("/", 1)) for a in t.accounts) if t.accounts else None
        readers.append((t.token, Reader(t.name, accounts, frozenset(t.permissions))))  # type: ignore[arg-type]
    return Tokens(readers)


async def start_api(api: ApiConfig, engine: AsyncEngine, eraser: Eraser | None = None) -> web.AppRunner:
    """Serve until the returned runner is cleaned up."""
    app = build_app(engine, tokens_from(api), Cursors(key_from([t.token for t in api.tokens])), eraser)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, api.host, api.port).start()
    return runner
