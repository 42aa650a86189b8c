"""What a source is, as far as the engine is concerned.

A source knows one provider's API: how to fetch a time window page by page, how to
turn one served record into a ``Record`` (natural key + normalized event), and
optionally how to re-read records that may still change. The engine knows nothing
else about providers, so adding a third one means adding a module here, not
touching the engine.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, AsyncIterator, Protocol, Sequence

from archiver.domain import Page, Record


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
