"""What a source is, as far as the engine is concerned.

A source knows one provider's API: how to fetch a time window page by page, how to
turn one served record into a ``Record`` (natural key + normalized event), and
optionally how to re-read records that may still change. The engine knows nothing
else about providers, so adding a third one means adding a module here, not
touching the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, AsyncIterator, Protocol, Sequence


@dataclass(slots=True)  # not frozen: built once per record on the hot path, never mutated
class Event:
    """The normalized view of one record, shared by all providers (SPEC.md's table)."""

    event_type: str | None = None
    message_id: str | None = None
    direction: str | None = None
    status: str | None = None
    status_detail: str | None = None
    occurred_at: datetime | None = None
    done_at: datetime | None = None
    sender: str | None = None
    recipient: str | None = None
    content_type: str | None = None
    text: str | None = None
    error_code: int | None = None
    error_title: str | None = None
    created_at: datetime | None = None
    price: float | None = None
    currency: str | None = None
    conversation_id: str | None = None
    conversation_origin: str | None = None
    pricing_category: str | None = None
    billable: bool | None = None
    reaction: str | None = None
    interactive_id: str | None = None
    media_id: str | None = None
    media_mime_type: str | None = None
    is_final: bool | None = None
    """``False`` for a record the provider may still change (re-read until final)."""
    parse_error: str | None = None
    """Why the payload could not be normalized; the raw record is kept regardless."""


@dataclass(slots=True)
class Record:
    key: str
    """The natural key: equal for two servings of the same record, so upserts de-duplicate."""
    at: datetime
    """The record's position on the source's checkpoint axis (UTC)."""
    raw: dict[str, Any]
    event: Event
    status_rank: int = 0
    """Orders statuses so a message's current status only moves forward."""


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime
    reason: str


@dataclass
class Page:
    raws: list[dict[str, Any]]
    gaps: list[Gap] = field(default_factory=list)


class Source(Protocol):
    name: str
    """``sendzen``, ``infobip``: the value of ``--source`` and of the ``source`` column."""
    account: str
    retention: timedelta
    overlap: timedelta
    window: timedelta
    max_concurrency: int
    poll_interval: timedelta

    def fetch(self, start: datetime, end: datetime) -> AsyncIterator[Page]:
        """Every record with ``start <= at <= end``, page by page, in any order."""
        ...

    def refresh(self, message_ids: Sequence[str]) -> AsyncIterator[Page]:
        """The current version of records that were not final; empty if nothing changes."""
        ...

    def parse(self, raw: dict[str, Any]) -> Record:
        """One served record → ``Record``; never raises for an odd payload."""
        ...

    @property
    def requests(self) -> int:
        """HTTP requests made so far (for summaries and tests)."""
        ...
