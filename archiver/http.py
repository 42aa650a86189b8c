"""The one place where aiohttp meets the archiver: requests, error translation, retries.

Every provider call goes through ``HttpClient.get_json``: a rate-limiter slot, one
request, the status code and body turned into an archiver error, and the body's
shape checked by the caller's ``parse`` inside the retried block, so a truncated
200 is retried exactly like a 503. Headers (which carry the API key) never appear in
an error message or a log line.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TypeVar

import aiohttp
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from archiver import jsoncodec, metrics
from archiver.errors import (
    AuthFailed,
    BadRequest,
    MalformedResponse,
    RateLimited,
    RetriesExhausted,
    TLSFailed,
    TransientError,
)
from archiver.ratelimit import RateLimiter

log = structlog.get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter, shared by every source."""

    attempts: int = 8
    max_seconds: float = 300.0
    initial_wait: float = 0.5
    max_wait: float = 30.0

    def wait(self, state: RetryCallState) -> float:
        """Honour a 429's Retry-After; back off exponentially for everything else."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return 0.0  # the limiter itself is paused for Retry-After
        return wait_exponential_jitter(multiplier=self.initial_wait, max=self.max_wait, jitter=self.initial_wait)(state)


class HttpClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        source: str,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy = RetryPolicy(),
        timeout: float = 30.0,
        describe_error: Callable[[Any], str | None] = lambda body: None,
    ) -> None:
        self._session, self._source, self._limiter = session, source, limiter
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._describe_error = describe_error
        self.requests = 0

    async def get_json(
        self, url: str, params: Mapping[str, str], headers: Mapping[str, str], parse: Callable[[Any], T]
    ) -> T:
        """GET ``url`` and return ``parse(body)``, retrying what is worth retrying."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((TransientError, RateLimited)),
            stop=stop_after_attempt(self._policy.attempts) | stop_after_delay(self._policy.max_seconds),
            wait=self._policy.wait,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return parse(await self._get_once(url, params, headers))
        except (TransientError, RateLimited) as exc:
            raise RetriesExhausted(f"{exc} (gave up after {self._policy.attempts} attempts)") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_once(self, url: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Any:
        if self._limiter is not None:
            async with self._limiter.slot():
                return await self._request(url, params, headers)
        return await self._request(url, params, headers)

    async def _request(self, url: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Any:
        self.requests += 1
        where = f"{self._source}: GET {url}"
        try:
            async with self._session.get(url, params=params, headers=headers, timeout=self._timeout) as resp:
                body = await resp.read()
                metrics.REQUESTS.labels(self._source, str(resp.status)).inc()
                self._raise_for_status(resp, body, where, params)
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
            metrics.REQUESTS.labels(self._source, "tls").inc()
            raise TLSFailed(f"{where}: the server's TLS certificate was not accepted ({exc}); "
                            "certificates are always verified") from None
        except asyncio.TimeoutError:
            metrics.REQUESTS.labels(self._source, "timeout").inc()
            raise TransientError(f"{where} timed out after {self._timeout.total}s") from None
        except aiohttp.ClientError as exc:
            metrics.REQUESTS.labels(self._source, "error").inc()
            raise TransientError(f"{where} failed: {type(exc).__name__}: {exc}") from None
        try:
            return jsoncodec.loads(body)
        except ValueError:
            raise MalformedResponse(f"{where} returned a body that is not JSON ({len(body)} bytes)") from None

    def _raise_for_status(self, resp: aiohttp.ClientResponse, body: bytes, where: str, params: Mapping[str, str]) -> None:
        status = resp.status
        if status < 300:
            return
        detail = self._detail(body)
        if status in (401, 403):
            raise AuthFailed(f"{where} was refused ({status}): check the API key{detail}")
        if status == 429:
            retry_after = _retry_after(resp.headers.get("Retry-After"))
            metrics.RATE_LIMITED.labels(self._source).inc()
            if self._limiter is not None:
                self._limiter.pause(retry_after if retry_after is not None else 1.0)
            raise RateLimited(f"{where} was rate limited (429){detail}", retry_after)
        if status == 400:
            raise BadRequest(f"{where} rejected the parameters {dict(params)} (400){detail}")
        if status >= 500 or status == 408:
            raise TransientError(f"{where} answered {status}{detail}")
        raise BadRequest(f"{where} answered {status}{detail}")

    def _detail(self, body: bytes) -> str:
        try:
            described = self._describe_error(jsoncodec.loads(body))
        except (ValueError, TypeError, AttributeError, KeyError):
            described = None
        return f": {described}" if described else ""

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        metrics.RETRIES.labels(self._source).inc()
        log.warning("retrying request", source=self._source, attempt=state.attempt_number, reason=str(error))


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
