"""The providers the archiver knows, and how to build them from the config.

Adding a provider: a module here with a class that satisfies ``base.Source``, a
config section in ``config.py``, and one entry in ``build_sources``.
"""

from __future__ import annotations

import aiohttp

from archiver.config import Config
from archiver.http import HttpClient, RetryPolicy
from archiver.ratelimit import RateLimiter
from archiver.sources.base import Source
from archiver.sources import infobip, sendzen

SOURCE_NAMES = ("sendzen", "infobip")


def build_sources(config: Config, session: aiohttp.ClientSession, policy: RetryPolicy = RetryPolicy()) -> list[Source]:
    """One source per configured provider section, each with its own rate limiter."""
    sources: list[Source] = []
    if config.sendzen:
        sz = config.sendzen
        http = HttpClient(session, source="sendzen", limiter=RateLimiter(sz.requests_per_minute, name="sendzen"),
                          policy=policy, timeout=sz.timeout_seconds, describe_error=sendzen.describe_error,
                          max_response_bytes=sz.max_response_bytes)
        sources.append(sendzen.SendZenSource(sz, http))
    if config.infobip:
        ib = config.infobip
        http = HttpClient(session, source="infobip", limiter=RateLimiter(ib.requests_per_minute, name="infobip"),
                          policy=policy, timeout=ib.timeout_seconds, describe_error=infobip.describe_error,
                          max_response_bytes=ib.max_response_bytes)
        sources.append(infobip.InfobipSource(ib, http))
    return sources
