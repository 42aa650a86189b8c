"""SendZen's WhatsApp ``GET /v1/logs``: ticks windows, 20-record pages, token paging.

A log has no id, so its natural key is a hash of its content, prefixed with its
``created_at`` ticks. Its ``payload`` is a JSON string holding a WhatsApp webhook
body, normalized by ``archiver.whatsapp``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, AsyncIterator, ClassVar, Sequence

from archiver import jsoncodec
from archiver.coerce import text
from archiver.config import ProviderConfig, provider_section
from archiver.errors import MalformedResponse
from archiver.domain import Event, Page, Quarantined, Record, set_aside
from archiver.paging import PagingGuard
from archiver.sources.sendzen.ticks import datetime_to_ticks, ticks_to_datetime
from archiver.whatsapp import STATUS_RANK, parse_payload

if TYPE_CHECKING:  # the HTTP stack loads when a source is built, not when its config is read
    from archiver.http import HttpClient

EVENT_TYPES = ("Incoming Message", "Message Status", "Other")
"""The ``eventTypes`` values SendZen documents."""


@provider_section
@dataclass(frozen=True)
class SendZenConfig(ProviderConfig):
    """``[sendzen]``: the keys every provider has, and SendZen's own."""

    provider: ClassVar[str] = "sendzen"
    max_page_size: ClassVar[int] = 20
    base_url: str = "https://api.sendzen.io"
    requests_per_minute: int = 3000
    """SendZen publishes no limit: a polite ceiling (50/s), raise it for faster backfills."""
    page_size: int = 20
    event_types: tuple[str, ...] = ()
    phone_number_id: str | None = None
    url: str | None = None
    max_concurrency: int = 4

    def problem(self) -> str | None:
        bad = [t for t in self.event_types if t not in EVENT_TYPES]
        return f"event_types has unknown type {bad[0]!r} (known: {', '.join(EVENT_TYPES)})" if bad else None


KEY_FIELDS = ("project_id", "phone_number_id", "event_type", "created_at", "payload")
TICKS_DIGITS = 19  # .NET ticks stay below 10**19 until year 31690
KEY_HASH_DIGITS = 16  # hex digits of the content hash in a natural key
KEY_FORMAT = f"%0{TICKS_DIGITS}d:%s"
MAX_TICKS = datetime_to_ticks(datetime.max.replace(tzinfo=timezone.utc))


class SendZenSource:
    name = "sendzen"
    retention = timedelta(days=7)

    def __init__(self, config: SendZenConfig, http: HttpClient) -> None:
        self.config, self.http = config, http
        self.account = config.account
        self.overlap = timedelta(seconds=config.overlap_seconds)
        self.window = timedelta(seconds=config.window_seconds)
        self.max_concurrency = config.max_concurrency
        self.poll_interval = timedelta(seconds=config.poll_interval_seconds)
        self._url = config.base_url.rstrip("/") + "/v1/logs"
        self._headers = {"Authorization": f"Bearer {config.api_key}", "Accept": "application/json"}

    @property
    def requests(self) -> int:
        return self.http.requests

    async def fetch(self, start: datetime, end: datetime) -> AsyncIterator[Page]:
        """Token paging, guarded (see ``archiver.paging``): ends with a gap, never spins."""
        params = self.window_params(start, end)
        guard = PagingGuard(self.name, start, end)
        low, high = int(params["fromDate"]), int(params["toDate"])
        while True:
            logs, unreadable, token = await self.http.get_json(self._url, params, self._headers, parse_logs_page)
            inside = [log for log in logs if low <= log["created_at"] <= high]
            fresh = guard.fresh((_identity(log), log) for log in inside)
            stop = _why_stop(guard, logs, inside, fresh, token)
            yield Page(fresh, [guard.gap(stop)] if stop else [], unreadable)  # type: ignore[arg-type]
            if stop or not token:
                return
            params = {**params, "nextPageToken": token}

    async def refresh(self, message_ids: Sequence[str]) -> AsyncIterator[Page]:
        """SendZen logs never change once served: status changes are new logs."""
        return
        yield  # pragma: no cover

    def window_params(self, start: datetime, end: datetime) -> dict[str, str]:
        params = {
            "fromDate": str(datetime_to_ticks(start)),
            "toDate": str(datetime_to_ticks(end)),
            "pageSize": str(self.config.page_size),
        }
        if self.config.event_types:
            params["eventTypes"] = ",".join(self.config.event_types)
        if self.config.phone_number_id:
            params["phoneNumberId"] = self.config.phone_number_id
        if self.config.url:
            params["url"] = self.config.url
        return params

    def parse(self, raw: dict[str, Any]) -> Record:
        return parse_log(raw)


def _identity(log: dict[str, Any]) -> tuple[Any, ...]:
    """A cheap stand-in for the natural key, to notice a log served twice in one walk."""
    payload = log.get("payload")
    return log["created_at"], log.get("event_type"), payload if isinstance(payload, str) else repr(payload)


def _why_stop(guard: PagingGuard, logs: list[Any], inside: list[Any], fresh: list[Any], token: str | None) -> str | None:
    if len(inside) < len(logs):
        return "served logs outside the requested fromDate..toDate"
    if logs and not fresh:
        return "served a page again"
    if token and guard.repeated(token):
        return "repeated next_page_token"
    return None


def parse_logs_page(body: Any) -> tuple[list[dict[str, Any]], list[Quarantined], str | None]:
    """The documented page shape (else ``MalformedResponse``, retried); the logs that can
    be read, and those that cannot (quarantined: one bad log never blocks the page)."""
    data = body.get("data") if isinstance(body, dict) else None
    logs = data.get("logs") if isinstance(data, dict) else None
    if not isinstance(logs, list):
        raise MalformedResponse("sendzen: response has no data.logs list")
    token = data.get("next_page_token")
    if token is not None and not isinstance(token, str):
        raise MalformedResponse("sendzen: next_page_token is not a string")
    good, bad = set_aside(logs, unreadable_reason)
    return good, bad, token or None


def unreadable_reason(log: Any) -> str | None:
    """Why a log cannot be archived (it has no usable time), or None."""
    if not isinstance(log, dict):
        return "a log entry is not an object"
    ticks = log.get("created_at")
    if not isinstance(ticks, int) or isinstance(ticks, bool):
        return "created_at is not an integer tick count"
    if not 0 <= ticks <= MAX_TICKS:
        return "created_at is outside the dates a calendar holds (year 1 to 9999)"
    return None


def natural_key(log: dict[str, Any]) -> str:
    """Content identity: the same log served twice hashes the same, whatever the key order.

    The ticks prefix (zero-padded, so text order is time order) makes a backfill insert
    keys near the right edge of the unique index instead of at random places in it
    (≈ 3× fewer bytes written on SQLite; see migration 0002). Sixty-four bits of the
    content hash follow: two different logs would have to share the 100 ns tick and
    those bits to collide, and the key stays 36 characters (the full hash made the key
    index alone a third of a log's raw size; migration 0009).
    """
    return KEY_FORMAT % (log["created_at"], content_digest(log)[:KEY_HASH_DIGITS])


def content_digest(log: dict[str, Any]) -> str:
    """SHA-256 (hex) of the fields that identify a log."""
    return hashlib.sha256(jsoncodec.dumpb(list(map(log.get, KEY_FIELDS)))).hexdigest()


def parse_log(log: dict[str, Any]) -> Record:
    fields, error = parse_payload(log.get("payload"))
    created = ticks_to_datetime(log["created_at"])
    if fields.get("occurred_at") is None:
        fields["occurred_at"] = created  # events with no timestamp of their own happened when logged
    event = Event(event_type=text(log.get("event_type")), created_at=created, parse_error=error, **fields)
    rank = STATUS_RANK.get(event.status or "", -1)
    return Record(key=natural_key(log), at=created, raw=log, event=event, status_rank=rank)


def describe_error(body: Any) -> str | None:
    """SendZen's error bodies carry a ``message``."""
    return body.get("message") if isinstance(body, dict) else None
