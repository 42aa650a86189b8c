"""Fencing: a save by a process sharing PostgreSQL is made only while the account is its own.

``archiver.leases`` gives each save a ``Fence`` (the lease as this process won it). The
PostgreSQL save checks it in the statement that writes (``archiver.db.writer``), locking
the lease row ``FOR UPDATE`` until that statement commits: a claim by another process
waits for the commit or is seen, so a process frozen past its lease writes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from archiver.errors import ArchiverError

HELD = ("SELECT 1 FROM leases WHERE source = :source AND account = :account AND owner = :owner "
        "AND epoch = :epoch AND expires_at > now() FOR UPDATE")
"""The lease still names this owner at this epoch, unexpired by the database's clock."""


@dataclass(frozen=True)
class Fence:
    owner: str
    epoch: int


class LeaseLost(ArchiverError):
    """This process no longer holds the account: another one polls it now."""


def lost(source: str, account: str) -> LeaseLost:
    return LeaseLost(f"{source}/{account}: this process no longer holds the account; its write was not made")
