"""The read side on 127.0.0.1 over a test archive, with three read tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator

import aiohttp
import pytest

from archiver.api.serve import start_api
from archiver.config import ApiConfig, ApiToken
from archiver.db.store import Store
from archiver.lifecycle.erase import erase_phone
from tests.helpers import free_port

EVERYTHING = "read-everything-token-0123456789"
SENDZEN_ONLY = "read-sendzen-only-token-0123456789"
ERASER = "read-and-erase-token-0123456789abc"


@dataclass
class ReadSide:
    base_url: str
    session: aiohttp.ClientSession

    async def get(self, path: str, token: str | None = EVERYTHING, scheme: str = "Bearer",
                  **params: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"{scheme} {token}"} if token else {}
        async with self.session.get(self.base_url + path, params=params, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)


def api_config(port: int) -> ApiConfig:
    return ApiConfig(host="127.0.0.1", port=port, tokens=(
        ApiToken(name="everything", token=EVERYTHING),
        ApiToken(name="sendzen-only", token=SENDZEN_ONLY, accounts=("sendzen/default",)),
        ApiToken(name="eraser", token=ERASER, permissions=("read", "erase")),
    ))


@pytest.fixture
async def read_side(store: Store) -> AsyncIterator[ReadSide]:
    port = free_port()
    runner = await start_api(api_config(port), store.engine, eraser=lambda phone: erase_phone(store.engine, phone))
    async with aiohttp.ClientSession() as session:
        yield ReadSide(f"http://127.0.0.1:{port}", session)
    await runner.cleanup()
