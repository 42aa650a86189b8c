"""Phone numbers as subjects of erasure: normalised, and known only by a keyed hash.

The number itself is stored nowhere: the archive keeps HMAC-SHA-256(number) under a key
generated once per database, so a later poll that sees the same person again can tell,
but nobody reading the database can recover who was erased.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from archiver.db import dialect, models as m

KEY_NAME = "tombstone-hmac-key"


def digits_of(phone: str) -> str:
    """``+49 170-123 4567`` → ``491701234567``: how the providers store numbers."""
    return re.sub(r"[\s+\-().]", "", phone or "")


def normalise(phone: str) -> str:
    """The number's digits; refuses what is not a phone number."""
    digits = digits_of(phone)
    if not digits.isdigit() or not 5 <= len(digits) <= 20:
        raise ValueError(f"{phone!r} is not a phone number (digits, optionally with +, spaces, dashes)")
    return digits


def digest(key: bytes, digits: str) -> str:
    return hmac.new(key, digits.encode(), hashlib.sha256).hexdigest()


async def database_key(conn: AsyncConnection) -> bytes:
    """This database's HMAC key, generated on first use (racing processes agree on one)."""
    found = await conn.scalar(select(m.archive_secrets.c.value).where(m.archive_secrets.c.name == KEY_NAME))
    if found is None:
        await conn.execute(dialect.insert(conn)(m.archive_secrets).values(
            name=KEY_NAME, value=secrets.token_hex(32)).on_conflict_do_nothing())
        found = await conn.scalar(select(m.archive_secrets.c.value).where(m.archive_secrets.c.name == KEY_NAME))
    return bytes.fromhex(found)
