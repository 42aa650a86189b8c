"""Opaque, tamper-proof paging tokens.

A token is the last row's sort key, signed with HMAC-SHA-256: a client can hand it
back but not forge or alter one, so a garbage or edited token is a 400, never a 500
and never a position in someone else's data (every query is also scoped by the
caller's accounts). Keyset paging: a walk started before new records arrive neither
skips nor repeats.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from archiver import jsoncodec


class BadCursor(ValueError):
    """The token was not made by this archiver (or was altered)."""


class Cursors:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def make(self, kind: str, position: list[Any]) -> str:
        body = jsoncodec.dumps([kind, position]).encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")

    def read(self, kind: str, token: str) -> list[Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise BadCursor("not a paging token") from None
        mac, body = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()[:16]):
            raise BadCursor("not a paging token of this archive")
        found, position = jsoncodec.loads(body)
        if found != kind:
            raise BadCursor("a paging token of another endpoint")
        return position


def key_from(secrets: list[str]) -> bytes:
    """One key for every replica with the same tokens: cursors survive restarts."""
    return hashlib.sha256("\0".join(sorted(secrets)).encode()).digest()
