"""Small builders shared by tests."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from archiver.config import Config
from archiver.domain import Event, Record
from archiver.http import HttpClient, RetryPolicy
from archiver.ratelimit import RateLimiter
from archiver.sources.infobip import InfobipConfig, InfobipSource, describe_error
from archiver.sources import sendzen
from archiver.sources.sendzen import SendZenConfig, SendZenSource

FAST_RETRIES = RetryPolicy(attempts=6, max_seconds=30, initial_wait=0.01, max_wait=0.05)


def sendzen_source(session: aiohttp.ClientSession, base_url: str, *, policy: RetryPolicy = FAST_RETRIES,
                   **overrides: Any) -> SendZenSource:
    config = SendZenConfig(api_key=overrides.pop("api_key", "sz-test-key"), base_url=base_url, **overrides)
    http = HttpClient(session, source="sendzen", policy=policy, timeout=config.timeout_seconds,
                      describe_error=sendzen.describe_error)
    return SendZenSource(config, http)


def infobip_source(session: aiohttp.ClientSession, base_url: str, *, limiter: RateLimiter | None = None,
                   policy: RetryPolicy = FAST_RETRIES, **overrides: Any) -> InfobipSource:
    config = InfobipConfig(api_key=overrides.pop("api_key", "ib-test-key"), base_url=base_url, **overrides)
    http = HttpClient(session, source="infobip", limiter=limiter or RateLimiter(config.requests_per_minute),
                      policy=policy, timeout=config.timeout_seconds, describe_error=describe_error)
    return InfobipSource(config, http)


def free_port() -> int:
    """A loopback port nobody listens on right now (for a daemon's /metrics in tests)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


def write_config(path: Any, db_url: str, *, sendzen: str | None = None, infobip: str | None = None,
                 sendzen_key: str = "sz-test-key", infobip_key: str = "ib-test-key", port: int = 9108,
                 extra: str = "") -> Any:
    text = f'[database]\nurl = "{db_url}"\n\n[server]\nhost = "127.0.0.1"\nport = {port}\n'
    if sendzen:
        text += f'\n[sendzen]\nbase_url = "{sendzen}"\napi_key = "{sendzen_key}"\npoll_interval_seconds = 1\n'
    if infobip:
        text += f'\n[infobip]\nbase_url = "{infobip}"\napi_key = "{infobip_key}"\npoll_interval_seconds = 1\n'
    path.write_text(text + extra)
    return path


def status_record(key: str, message: str, status: str, at: Any, detail: str | None = None, *, rank: int = 1,
                  **raw: Any) -> Record:
    """A record of ``message`` showing ``status`` (its raw text changes with ``raw``)."""
    return Record(key=key, at=at, raw={"k": key, "status": status, "detail": detail, **raw},
                  event=Event(message_id=message, status=status, status_detail=detail, occurred_at=at), status_rank=rank)


async def to_revision(engine: Any, revision: str, *, down: bool = False) -> None:
    """Bring ``engine``'s database to ``revision`` through alembic's scripts."""
    from alembic import command

    from archiver.db.connect import alembic_config

    def run(connection: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


__all__ = ["Config", "sendzen_source", "infobip_source", "canonical", "write_config", "free_port", "FAST_RETRIES",
           "status_record", "to_revision"]
