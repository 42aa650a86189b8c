"""Pure, total conversions of served values into what a column holds.

Providers send what they like where a string or a number is documented: these never
raise, and what does not fit becomes ``None`` (the raw record keeps the original).
"""

from __future__ import annotations

from typing import Any

INT64 = range(-(2**63), 2**63)


def text(value: Any) -> str | None:
    """Scalars as text; objects and lists are not text."""
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def integer(value: Any) -> int | None:
    """An integer a 64-bit column holds, else None."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number in INT64 else None


def boolean(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None
