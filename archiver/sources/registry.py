"""The providers the archiver knows, and how to build their sources from the config.

One source per configured account, each with its own HTTP client and rate limiter
(Infobip's limit is per account). Adding a provider: its package in this one (its
``@provider_section`` config class, the ``Source``, ``describe_error``) and one line in
``PROVIDERS`` here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from archiver.config import Config, ProviderConfig
from archiver.sources import infobip, sendzen
from archiver.sources.base import Source

if TYPE_CHECKING:  # the HTTP stack (aiohttp, tenacity) loads when sources are built: a
    # command that reads only the archive (export, prune, erase) starts without it
    import aiohttp

    from archiver.http import HttpClient, RetryPolicy

PROVIDERS: dict[str, tuple[Callable[[ProviderConfig, HttpClient], Source], Callable[[object], str | None]]] = {
    "sendzen": (sendzen.SendZenSource, sendzen.describe_error),  # type: ignore[dict-item]
    "infobip": (infobip.InfobipSource, infobip.describe_error),  # type: ignore[dict-item]
}
SOURCE_NAMES = tuple(PROVIDERS)


def build_sources(config: Config, session: aiohttp.ClientSession, policy: RetryPolicy | None = None) -> list[Source]:
    """One source per configured account, each with its own rate limiter."""
    from archiver.http import RetryPolicy

    return [build_source(account, session, policy or RetryPolicy()) for account in config.accounts]


def build_source(account: ProviderConfig, session: aiohttp.ClientSession, policy: RetryPolicy) -> Source:
    from archiver.http import HttpClient
    from archiver.ratelimit import RateLimiter

    make, describe = PROVIDERS[account.provider]
    limiter = RateLimiter(account.requests_per_minute, name=f"{account.provider}/{account.account}")
    http = HttpClient(session, source=account.provider, limiter=limiter, policy=policy,
                      timeout=account.timeout_seconds, describe_error=describe,
                      max_response_bytes=account.max_response_bytes)
    return make(account, http)
