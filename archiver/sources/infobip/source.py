"""Infobip's ``GET /messenger/1/logs``: 48 hours, 1000 per page, newest first.

Paging without a cursor narrows ``sentUntil`` to the oldest ``sentAt`` of a full
page (plus one millisecond, so ties are re-served whether the server treats the
bound as inclusive or not; ``messageId`` de-duplicates). A full page of one single
``sentAt`` cannot be narrowed further: that is recorded as a gap and the pager moves
past it, instead of looping. Servers that return ``cursor.nextCursor`` for
``useCursor=true`` are paged with the cursor.

Entries change after they are first seen, so entries whose status is not final are
re-read by ``messageId`` until they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, AsyncIterator, ClassVar, Iterator, Sequence

import structlog

from archiver.coerce import integer, text
from archiver.config import ProviderConfig, provider_section
from archiver.errors import BadRequest, MalformedResponse
from archiver.domain import Event, Gap, Page, Quarantined, Record, set_aside
from archiver.paging import PagingGuard
from archiver.times import parse_offset_time

if TYPE_CHECKING:  # the HTTP stack loads when a source is built, not when its config is read
    from archiver.http import HttpClient

log = structlog.get_logger(__name__)
MAX_ID_LIST_CHARS = 2048
MS = timedelta(milliseconds=1)
PENDING_GROUPS = {"PENDING", "ACCEPTED"}
FINAL_GROUPS = {"DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED"}
INTERMEDIATE_STATUSES = {"DELIVERED_TO_OPERATOR"}
"""Statuses of a final group that are still on their way (finality is per status)."""


def format_infobip_time(moment: datetime) -> str:
    """``2024-01-01T00:00:00.000+00:00``: the form Infobip's ``sentSince``/``sentUntil`` take."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+00:00"


@provider_section
@dataclass(frozen=True)
class InfobipConfig(ProviderConfig):
    """``[infobip]``: the keys every provider has, and Infobip's own."""

    provider: ClassVar[str] = "infobip"
    use_cursor: bool = True
    sender: str | None = None
    entity_id: str | None = None
    application_id: str | None = None


class InfobipSource:
    name = "infobip"
    retention = timedelta(hours=48)

    def __init__(self, config: InfobipConfig, http: HttpClient) -> None:
        self.config, self.http = config, http
        self.account = config.account
        self.overlap = timedelta(seconds=config.overlap_seconds)
        self.window = timedelta(seconds=config.window_seconds)
        self.max_concurrency = 2
        self.poll_interval = timedelta(seconds=config.poll_interval_seconds)
        self._url = config.base_url.rstrip("/") + "/messenger/1/logs"
        self._headers = {"Authorization": f"App {config.api_key}", "Accept": "application/json"}
        self._use_cursor = config.use_cursor

    @property
    def requests(self) -> int:
        return self.http.requests

    async def fetch(self, start: datetime, end: datetime) -> AsyncIterator[Page]:
        """Newest first, by cursor or by narrowing ``sentUntil``; guarded (``archiver.paging``)."""
        guard = PagingGuard(self.name, start - MS, end + MS)  # the bounds as requested
        until, cursor = end + MS, None
        while True:
            results, unreadable, next_cursor = await self._get_window(start - MS, until, cursor)
            inside = [r for r in results if guard.in_range(parse_offset_time(r["sentAt"]))]
            fresh = guard.fresh((r["messageId"], r) for r in inside)
            full = len(results) + len(unreadable) >= self.config.page_size
            stop = _why_stop(guard, results, inside, fresh, next_cursor, full)
            gaps = [guard.gap(stop)] if stop else []
            if stop or not full:
                yield Page(fresh, gaps, unreadable)  # type: ignore[arg-type]
                return
            if next_cursor:
                yield Page(fresh, [], unreadable)  # type: ignore[arg-type]
                cursor = next_cursor
                continue
            until, gap = narrow(results, until)
            yield Page(fresh, [gap] if gap else [], unreadable)  # type: ignore[arg-type]
            if until < start:
                return

    async def _get_window(self, since: datetime, until: datetime, cursor: str | None) -> PageParts:
        """One window request; an API version that rejects ``useCursor`` is paged by time instead."""
        try:
            return await self.http.get_json(self._url, self._window_params(since, until, cursor),
                                            self._headers, parse_results)
        except BadRequest:
            if not self._use_cursor or cursor is not None:
                raise
            self._use_cursor = False
            log.warning("infobip rejected useCursor; paging by sentUntil instead", source=self.name)
            return await self.http.get_json(self._url, self._window_params(since, until, None),
                                            self._headers, parse_results)

    async def refresh(self, message_ids: Sequence[str]) -> AsyncIterator[Page]:
        for batch in id_batches(message_ids):
            params = {"messageId": ",".join(batch), "limit": str(self.config.page_size)}
            results, unreadable, _ = await self.http.get_json(self._url, params, self._headers, parse_results)
            yield Page(results, [], unreadable)

    def _window_params(self, since: datetime, until: datetime, cursor: str | None) -> dict[str, str]:
        params = {"sentSince": format_infobip_time(since), "sentUntil": format_infobip_time(until),
                  "limit": str(self.config.page_size)}
        if self._use_cursor:
            params["useCursor"] = "true"
        if cursor:
            params["cursor"] = cursor
        for key, value in (("sender", self.config.sender), ("entityId", self.config.entity_id),
                           ("applicationId", self.config.application_id)):
            if value:
                params[key] = value
        return params

    def parse(self, raw: dict[str, Any]) -> Record:
        return parse_message(raw)


def narrow(results: list[dict[str, Any]], until: datetime) -> tuple[datetime, Gap | None]:
    """The next ``sentUntil`` after a full page, and a gap if the page cannot be narrowed.

    The bound is the oldest ``sentAt`` plus a millisecond, so the oldest ties come
    again (and are de-duplicated) whether the server's bound is inclusive or not.
    When that would not move the bound (a full page of one ``sentAt``, or of two
    neighbouring milliseconds), the rest of those milliseconds cannot be reached:
    that is a gap, and paging moves on below them.
    """
    times = [parse_offset_time(r["sentAt"]) for r in results]
    oldest = min(times)
    if oldest + MS < until:
        return oldest + MS, None
    reason = f"{len(results)}+ messages sent within {format_infobip_time(oldest)}..{format_infobip_time(max(times))}; some may be missing"
    return oldest - MS, Gap(oldest, max(times), reason)


def _why_stop(guard: PagingGuard, results: list[Any], inside: list[Any], fresh: list[Any],
              next_cursor: str | None, full: bool) -> str | None:
    if len(inside) < len(results):
        return "served messages outside the requested sentSince..sentUntil"
    if full and results and not fresh:
        return "served a page again"
    if next_cursor and guard.repeated(next_cursor):
        return "repeated cursor.nextCursor"
    return None


PageParts = tuple[list[dict[str, Any]], list[Quarantined], str | None]


def parse_results(body: Any) -> PageParts:
    """The documented page shape (else ``MalformedResponse``, retried); the entries that can
    be read, those that cannot (quarantined), and the next cursor if any."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise MalformedResponse("infobip: response has no results list")
    good, bad = set_aside(results, unreadable_reason)
    cursor = body.get("cursor")
    next_cursor = cursor.get("nextCursor") if isinstance(cursor, dict) else None
    return good, bad, next_cursor if isinstance(next_cursor, str) and next_cursor else None


def unreadable_reason(entry: Any) -> str | None:
    """Why a message cannot be archived (no id, no readable sentAt), or None."""
    if not isinstance(entry, dict):
        return "an entry is not an object"
    if not isinstance(entry.get("messageId"), str) or not entry["messageId"]:
        return "messageId is missing or not a string"
    try:
        parse_offset_time(entry.get("sentAt") if isinstance(entry.get("sentAt"), str) else "")
    except (ValueError, OverflowError):
        return "sentAt is missing or not a readable time"
    return None


def id_batches(message_ids: Sequence[str]) -> Iterator[list[str]]:
    """Comma-separated lists that stay within the API's 2048-character limit."""
    batch: list[str] = []
    length = 0
    for mid in message_ids:
        extra = len(mid) + (1 if batch else 0)
        if batch and length + extra > MAX_ID_LIST_CHARS:
            yield batch
            batch, length, extra = [], 0, len(mid)
        batch.append(mid)
        length += extra
    if batch:
        yield batch


def is_final(status: Any) -> bool:
    """Whether a status can still change; unknown statuses are treated as not final."""
    if not isinstance(status, dict):
        return False
    group = str(status.get("groupName") or "").upper()
    name = str(status.get("name") or "").upper()
    if group in PENDING_GROUPS or name in INTERMEDIATE_STATUSES or name.startswith("PENDING"):
        return False
    return group in FINAL_GROUPS


def parse_message(raw: dict[str, Any]) -> Record:
    status, error, price, content = (_part(raw, name) for name in ("status", "error", "price", "content"))
    failed = error.get("groupId") not in (0, None)
    final = is_final(status)
    sent_at = parse_offset_time(raw["sentAt"])
    event = Event(
        event_type="Outbound Message",
        message_id=raw["messageId"],
        direction="outbound",
        status=text(status.get("groupName")).lower() if text(status.get("groupName")) else None,
        status_detail=text(status.get("name")),
        occurred_at=sent_at,
        done_at=_time_or_none(raw.get("doneAt")),
        sender=text(raw.get("sender")),
        recipient=text(raw.get("destination")),
        content_type=text(content.get("type")),
        text=text(content.get("text")),
        error_code=integer(error.get("id")) if failed else None,
        error_title=text(error.get("name")) if failed else None,
        price=_float_or_none(price.get("pricePerMessage")),
        currency=text(price.get("currency")),
        is_final=final,
    )
    return Record(key=raw["messageId"], at=sent_at, raw=raw, event=event, status_rank=2 if final else 1)


def _part(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """A nested object of the message, or an empty one if it is missing or not an object."""
    value = raw.get(name)
    return value if isinstance(value, dict) else {}


def describe_error(body: Any) -> str | None:
    """Both error shapes: legacy ``requestError.serviceException`` and current ``errorCode``."""
    if not isinstance(body, dict):
        return None
    legacy = body.get("requestError", {}).get("serviceException")
    if isinstance(legacy, dict):
        return " ".join(str(legacy[k]) for k in ("messageId", "text") if legacy.get(k))
    parts = [str(body[k]) for k in ("errorCode", "description", "action") if body.get(k)]
    return " ".join(parts) or None


def _time_or_none(text: Any) -> datetime | None:
    try:
        return parse_offset_time(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
