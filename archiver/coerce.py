"""Pure, total conversions of served values into what a column holds.

Providers send what they like where a string or a number is documented: these never
raise, and what does not fit becomes ``None`` (the raw record keeps the original).
"""

from __future__ import annotations

import re
from typing import Any

INT64 = range(-(2**63), 2**63)
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""What JSON can escape but no text column holds: NUL (PostgreSQL refuses it) and lone
surrogates (UTF-8 cannot encode them, so neither database takes them)."""


def text(value: Any) -> str | None:
    """Scalars as text; objects and lists are not text. What no column holds becomes
    U+FFFD, so the rest of the text stays searchable (``raw`` keeps the original)."""
    if type(value) is not str:
        if value is None or isinstance(value, (dict, list)):
            return None
        value = str(value)
    if not value.isascii() or "\x00" in value:  # the cheap test first: most values are ASCII
        return UNSTORABLE.sub("\ufffd", value)
    return value


def integer(value: Any) -> int | None:
    """An integer a 64-bit column holds, else None."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number in INT64 else None


def boolean(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None
