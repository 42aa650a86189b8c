"""SendZen's time: .NET ticks (100 ns since 0001-01-01 UTC), to and from aware UTC datetimes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

TICKS_PER_SECOND = 10_000_000
TICKS_PER_MICROSECOND = 10
_EPOCH_TICKS = 621_355_968_000_000_000  # ticks at 1970-01-01T00:00:00Z
_TICKS_ORIGIN = datetime(1, 1, 1, tzinfo=timezone.utc)


def ticks_to_datetime(ticks: int) -> datetime:
    """Ticks to an aware UTC datetime (sub-microsecond ticks are truncated). The
    timedelta's arguments are positional (days, seconds, microseconds): by keyword it
    takes twice as long, once a record."""
    return _TICKS_ORIGIN + timedelta(0, 0, ticks // TICKS_PER_MICROSECOND)


def datetime_to_ticks(moment: datetime) -> int:
    """An aware datetime to ticks; exact, since a microsecond is 10 ticks."""
    delta = moment.astimezone(timezone.utc) - _TICKS_ORIGIN
    return (delta.days * 86_400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


def ticks_to_unix(ticks: int) -> float:
    return (ticks - _EPOCH_TICKS) / TICKS_PER_SECOND
