"""Whether a parsed record fits the archive's columns, checked before it is written.

A provider can serve a 5,000-character message id or an error code beyond 64 bits;
PostgreSQL would refuse the whole batch for it, and the batch would be retried for
ever. Such a record is quarantined instead (the engine asks here first).
"""

from __future__ import annotations

import operator

from archiver.coerce import INT64, UNSTORABLE
from archiver.db import models as m
from archiver.domain import Record

WIDTHS = [(name, m.records.c[name].type.length) for name in m.EVENT_COLUMNS
          if getattr(m.records.c[name].type, "length", None)]
KEY_WIDTH = m.records.c.natural_key.type.length
_bounded = operator.attrgetter(*[name for name, _ in WIDTHS])


def unfit_reason(record: Record) -> str | None:
    """Why ``record`` cannot be stored as normalized, or None (the common case, cheaply)."""
    key = record.key
    if len(key) > KEY_WIDTH:
        return f"its id is longer than {KEY_WIDTH} characters"
    if (not key.isascii() or "\x00" in key) and UNSTORABLE.search(key):
        return "its id holds characters no database stores (NUL or a lone surrogate)"
    event = record.event
    for value, (name, width) in zip(_bounded(event), WIDTHS):
        if value is not None and len(value) > width:
            return f"{name} is longer than {width} characters"
    if event.error_code is not None and event.error_code not in INT64:
        return "error_code is beyond a 64-bit integer"
    return None
