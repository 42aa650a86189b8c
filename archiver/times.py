"""Pure conversions between the times the archiver reads and writes and UTC datetimes.

Everything inside the archiver is an aware UTC ``datetime``. Times with an offset
(Infobip's ``sentAt``, the CLI's ``--since``), RFC 3339 out. A provider's own format
lives with it (SendZen's .NET ticks: ``sources/sendzen/ticks.py``).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

_OFFSET_TIME = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})$"
)


SQLITE_TIME_LENGTH = 26
"""``YYYY-MM-DD HH:MM:SS.ffffff``: the text form SQLite columns hold and compare."""


def sqlite_text(utc: datetime) -> str:
    """An aware UTC time as SQLite columns hold it (text that sorts as time does)."""
    return utc.isoformat(" ", "microseconds")[:SQLITE_TIME_LENGTH]


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


def rfc3339(moment: datetime | str | None) -> str | None:
    """UTC RFC 3339 with a ``Z`` suffix, the export and ``status`` format. A ``str`` is a
    time as SQLite stores it (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC): reformatted without
    being parsed, as an export of millions of records reads them."""
    if moment is None:
        return None
    if isinstance(moment, str):
        fraction = moment[20:26].rstrip("0")
        return f"{moment[:10]}T{moment[11:19]}{'.' + fraction if fraction else ''}Z"
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
