"""The archive's domain types: what every layer (sources, engine, store, read side) shares.

They sit at the bottom of the house and import nothing of the archiver, so pure modules
(planning, ledger, the store) never depend on the provider package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable


@dataclass(slots=True)  # not frozen: built once per record on the hot path, never mutated
class Event:
    """The normalized view of one record, shared by all providers (docs/export-format.md)."""

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


@dataclass(frozen=True)
class Quarantined:
    """A served record the archiver cannot read (no usable time or id, a bad shape):
    kept as served, outside the normalized tables, with the reason."""

    raw: Any
    reason: str


@dataclass
class Page:
    raws: list[dict[str, Any]]
    gaps: list[Gap] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)


def set_aside(entries: list[Any], unreadable: Callable[[Any], str | None]) -> tuple[list[Any], list[Quarantined]]:
    """A page's entries split into those that can be archived and those that cannot (with
    the reason): one bad entry never blocks its page."""
    good, bad = [], []
    for entry in entries:
        reason = unreadable(entry)
        if reason:
            bad.append(Quarantined(entry, reason))
        else:
            good.append(entry)
    return good, bad
