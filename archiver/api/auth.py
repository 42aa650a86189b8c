"""Read tokens: who may read what. Compared in constant time, never logged.

A token names its accounts (``"sendzen/shop-eu"``) or, without any, may read every
account. Provider API keys are never read tokens (the config refuses a token equal to
one, and only configured tokens are ever accepted).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import and_, false, or_, true

COOKIE = "archiver_token"


@dataclass(frozen=True)
class Reader:
    name: str
    accounts: frozenset[tuple[str, str]] | None
    """``(source, account)`` pairs; None: every account."""
    permissions: frozenset[str]

    def may_read(self, source: str, account: str) -> bool:
        return self.accounts is None or (source, account) in self.accounts

    def scope(self, table: object, source: str | None = None) -> object:
        """A WHERE clause limiting ``table`` to this reader's accounts (and ``source``)."""
        clause = true() if source is None else table.c.source == source  # type: ignore[attr-defined]
        if self.accounts is None:
            return clause
        pairs = [and_(table.c.source == s, table.c.account == a)  # type: ignore[attr-defined]
                 for s, a in sorted(self.accounts) if source is None or s == source]
        return and_(clause, or_(*pairs) if pairs else false())


class Tokens:
    def __init__(self, tokens: list[tuple[str, Reader]]) -> None:
        self._by_digest = [(_digest(secret), reader) for secret, reader in tokens]

    def reader(self, presented: str | None) -> Reader | None:
        """The reader a presented token belongs to; every configured token is compared,
        in constant time, so timing says nothing about which one nearly matched."""
        if not presented:
            return None
        digest, found = _digest(presented), None
        for known, reader in self._by_digest:
            if hmac.compare_digest(digest, known):
                found = reader
        return found


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def presented_token(authorization: str | None, scheme: str, cookie: str | None) -> str | None:
    """The token from ``Authorization: <scheme> <token>``, else from the page's cookie."""
    if authorization:
        given_scheme, _, value = authorization.partition(" ")
        return value.strip() if given_scheme.lower() == scheme.lower() else None
    return cookie
