"""The one place where aiohttp meets the archiver: requests, error translation, retries.

Every provider call goes through ``HttpClient.get_json``: a rate-limiter slot, one
request, the status code and body turned into an archiver error, and the body's
shape checked by the caller's ``parse`` inside the retried block, so a truncated
200 is retried exactly like a 503. Headers (which carry the API key) never appear in
an error message or a log line.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import urlsplit

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
    ProviderBusy,
    RateLimited,
    RedirectRefused,
    RetriesExhausted,
    TLSFailed,
    TransientError,
)
from archiver.errors import one_line
from archiver.ratelimit import RateLimiter

log = structlog.get_logger(__name__)
T = TypeVar("T")
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
READ_CHUNK = 64 * 1024


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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._session, self._source, self._limiter = session, source, limiter
        self._max_bytes = max_response_bytes
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._describe_error = describe_error
        self.requests = 0

    async def get_json(
        self, url: str, params: Mapping[str, str], headers: Mapping[str, str], parse: Callable[[Any], T]
    ) -> T:
        """GET ``url`` and return ``parse(body)``, retrying what is worth retrying.

        The first attempt runs before tenacity is set up: nearly every request succeeds
        at once, and building the retry loop cost about 12 µs a request (a 100k backfill
        makes 5,000). A failure becomes tenacity's first attempt, with the time it took
        counted against ``max_seconds``: the retries are those a retry loop around every
        attempt would make."""
        started = time.monotonic()
        try:
            return parse(await self._get_once(url, params, headers))
        except (TransientError, RateLimited) as exc:
            first: BaseException | None = exc
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((TransientError, RateLimited)),
            stop=stop_after_attempt(self._policy.attempts)
            | stop_after_delay(max(0.0, self._policy.max_seconds - (time.monotonic() - started))),
            wait=self._policy.wait,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if first is not None:
                        failed, first = first, None
                        raise failed
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
            async with self._session.get(url, params=params, headers=headers, timeout=self._timeout,
                                         allow_redirects=False) as resp:
                metrics.REQUESTS.labels(self._source, str(resp.status)).inc()
                _refuse_redirect(resp, where)
                body = await self._read_capped(resp, where)
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
            raise TransientError(f"{where} failed: {_describe_client_error(exc)}") from None
        try:
            return jsoncodec.loads(body)
        except ValueError as exc:
            raise MalformedResponse(f"{where} returned a body that is not JSON ({len(body)} bytes: {exc})") from None

    async def _read_capped(self, resp: aiohttp.ClientResponse, where: str) -> bytes:
        """The body, counted after decompression and abandoned past ``max_response_bytes``:
        memory stays bounded whatever the server sends (a gzip bomb inflates chunk by chunk)."""
        if (resp.content_length or 0) > self._max_bytes:
            raise MalformedResponse(f"{where} announced {resp.content_length} bytes, more than "
                                    f"max_response_bytes ({self._max_bytes}); abandoned")
        chunks, total = [], 0
        async for chunk in resp.content.iter_chunked(READ_CHUNK):
            total += len(chunk)
            if total > self._max_bytes:
                raise MalformedResponse(f"{where} answered more than max_response_bytes "
                                        f"({self._max_bytes} bytes, after decompression); abandoned")
            chunks.append(chunk)
        return b"".join(chunks)

    def _raise_for_status(self, resp: aiohttp.ClientResponse, body: bytes, where: str, params: Mapping[str, str]) -> None:
        status = resp.status
        if status < 300:
            return
        detail = self._detail(body)
        if status in (401, 403):
            raise AuthFailed(f"{where} was refused ({status}): check the API key{detail}")
        if status == 429:
            self._rate_limited(resp, where, detail)
        if status == 400:
            raise BadRequest(f"{where} rejected the parameters {dict(params)} (400){detail}")
        if status >= 500 or status == 408:
            raise TransientError(f"{where} answered {status}{detail}")
        raise BadRequest(f"{where} answered {status}{detail}")

    def _rate_limited(self, resp: aiohttp.ClientResponse, where: str, detail: str) -> None:
        """Pause the limiter for Retry-After; a wait beyond the retry budget is not slept
        through silently but reported, with the time the provider takes requests again."""
        retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
        metrics.RATE_LIMITED.labels(self._source).inc()
        if self._limiter is not None:
            self._limiter.pause(retry_after if retry_after is not None else 1.0)
        if retry_after is not None and retry_after > self._policy.max_seconds:
            until = datetime.now(timezone.utc) + timedelta(seconds=retry_after)
            raise ProviderBusy(f"{where} was rate limited (429) and asked to wait {retry_after:.0f} s, until "
                               f"{until.strftime('%Y-%m-%dT%H:%M:%SZ')}: longer than the retry budget "
                               f"({self._policy.max_seconds:.0f} s){detail}", until)
        raise RateLimited(f"{where} was rate limited (429){detail}", retry_after)

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


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After in either form: delta-seconds, or an HTTP-date (RFC 9110)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - (now or datetime.now(timezone.utc))).total_seconds())


def _refuse_redirect(resp: aiohttp.ClientResponse, where: str) -> None:
    """3xx: the request stops here; nothing (key, query) is sent to where it points."""
    if 300 <= resp.status < 400:
        target = urlsplit(resp.headers.get("Location", "")).netloc or "the same host"
        raise RedirectRefused(f"{where} answered {resp.status}, a redirect to {target} — not followed; "
                              "check base_url")


def _describe_client_error(exc: aiohttp.ClientError) -> str:
    """What went wrong on the wire, in words (payload errors carry their own cause)."""
    text = one_line(str(exc))
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the answer was cut off or undecodable ({text})" if text else "the answer was cut off"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    return text or "connection error"
