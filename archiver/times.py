"""Pure conversions between the providers' time formats and UTC datetimes.

SendZen speaks .NET ticks (100 ns since 0001-01-01 UTC); Infobip speaks
``yyyy-MM-dd'T'HH:mm:ss.SSS+hhmm`` with the account's offset. Everything inside the
archiver is an aware UTC ``datetime``; these functions are the only translators.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

TICKS_PER_SECOND = 10_000_000
TICKS_PER_MICROSECOND = 10
_EPOCH_TICKS = 621_355_968_000_000_000  # ticks at 1970-01-01T00:00:00Z
_TICKS_ORIGIN = datetime(1, 1, 1, tzinfo=timezone.utc)


def ticks_to_datetime(ticks: int) -> datetime:
    """Ticks to an aware UTC datetime (sub-microsecond ticks are truncated)."""
    return _TICKS_ORIGIN + timedelta(microseconds=ticks // TICKS_PER_MICROSECOND)


def datetime_to_ticks(moment: datetime) -> int:
    """An aware datetime to ticks; exact, since a microsecond is 10 ticks."""
    delta = moment.astimezone(timezone.utc) - _TICKS_ORIGIN
    return (delta.days * 86_400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


def ticks_to_unix(ticks: int) -> float:
    return (ticks - _EPOCH_TICKS) / TICKS_PER_SECOND


_OFFSET_TIME = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})$"
)


def parse_offset_time(text: str) -> datetime:
    """Parse an ISO-like time with ``Z``, ``+hh:mm`` or ``+hhmm`` into aware UTC.

    Infobip writes offsets without a colon (``+0000``), which older Pythons'
    ``fromisoformat`` reject and string comparison would misorder across offsets.
    """
    match = _OFFSET_TIME.match(text.strip())
    if not match:
        raise ValueError(f"not a timestamp with an offset: {text!r}")
    tz = match["tz"]
    if tz == "Z":
        tz = "+00:00"
    elif ":" not in tz:
        tz = f"{tz[:3]}:{tz[3:]}"
    return datetime.fromisoformat(match["base"] + tz).astimezone(timezone.utc)


def format_infobip_time(moment: datetime) -> str:
    """``2024-01-01T00:00:00.000+00:00``: the form Infobip's ``sentSince``/``sentUntil`` take."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+00:00"


def rfc3339(moment: datetime | None) -> str | None:
    """UTC RFC 3339 with a ``Z`` suffix, the export and ``status`` format."""
    if moment is None:
        return None
    utc = moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)
    text = utc.replace(tzinfo=None).isoformat()  # the fraction only when non-zero, so rstrip is safe
    return (text.rstrip("0") if utc.microsecond else text) + "Z"


def parse_cli_time(text: str) -> datetime:
    """A ``--since``/``--until`` value: ISO 8601; a naive one is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            return parse_offset_time(text)
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
