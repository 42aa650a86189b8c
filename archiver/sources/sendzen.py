"""SendZen's WhatsApp ``GET /v1/logs``: ticks windows, 20-record pages, token paging.

A log has no id, so its natural key is a hash of its content, prefixed with its
``created_at`` ticks. Its ``payload`` is a JSON string holding a WhatsApp webhook
body, normalized by ``archiver.whatsapp``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, AsyncIterator, Sequence

from archiver import jsoncodec
from archiver.config import SendZenConfig
from archiver.errors import MalformedResponse
from archiver.http import HttpClient
from archiver.domain import Event, Page, Record
from archiver.times import datetime_to_ticks, ticks_to_datetime
from archiver.whatsapp import STATUS_RANK, parse_payload

KEY_FIELDS = ("project_id", "phone_number_id", "event_type", "created_at", "payload")
TICKS_DIGITS = 19  # .NET ticks stay below 10**19 until year 31690


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
        params = self.window_params(start, end)
        seen_tokens: set[str] = set()
        while True:
            logs, token = await self.http.get_json(self._url, params, self._headers, parse_logs_page)
            yield Page(logs)
            if not token:
                return
            if token in seen_tokens:
                raise MalformedResponse(f"sendzen: the server repeated next_page_token {token[:16]}…")
            seen_tokens.add(token)
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


def parse_logs_page(body: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The documented page shape, or ``MalformedResponse`` (which is retried)."""
    data = body.get("data") if isinstance(body, dict) else None
    logs = data.get("logs") if isinstance(data, dict) else None
    if not isinstance(logs, list):
        raise MalformedResponse("sendzen: response has no data.logs list")
    for log in logs:
        if not isinstance(log, dict) or not isinstance(log.get("created_at"), int):
            raise MalformedResponse("sendzen: a log entry has no integer created_at")
    token = data.get("next_page_token")
    if token is not None and not isinstance(token, str):
        raise MalformedResponse("sendzen: next_page_token is not a string")
    return logs, token or None


def natural_key(log: dict[str, Any]) -> str:
    """Content identity: the same log served twice hashes the same, whatever the key order.

    The ticks prefix (zero-padded, so text order is time order) makes a backfill insert
    keys near the right edge of the unique indexes instead of at random places in
    them: each write dirties a few index pages, not one per record (≈ 3× fewer bytes
    written on SQLite; see migration 0002).
    """
    identity = jsoncodec.dumps([log.get(f) for f in KEY_FIELDS])
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{log['created_at']:0{TICKS_DIGITS}d}:{digest}"


def parse_log(log: dict[str, Any]) -> Record:
    fields, error = parse_payload(log.get("payload"))
    created = ticks_to_datetime(log["created_at"])
    if fields.get("occurred_at") is None:
        fields["occurred_at"] = created  # events with no timestamp of their own happened when logged
    event = Event(event_type=log.get("event_type"), created_at=created, parse_error=error, **fields)
    rank = STATUS_RANK.get(event.status or "", -1)
    return Record(key=natural_key(log), at=created, raw=log, event=event, status_rank=rank)


def describe_error(body: Any) -> str | None:
    """SendZen's error bodies carry a ``message``."""
    return body.get("message") if isinstance(body, dict) else None
