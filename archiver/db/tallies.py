"""How many records each account has archived, kept beside the rows themselves.

``status`` must answer in well under a second on an archive of tens of millions of
rows, which ``count(*)`` cannot. Every change to ``records`` adjusts its account's
tally in the same transaction: the rows a save inserts (counted by the save's own
statements, ``archiver.db.writer``) and the rows prune and erasure delete (here).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from sqlalchemy import and_, delete, false, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from archiver.db import dialect, models as m

t, r = m.tallies, m.records


async def add(conn: AsyncConnection, source: str, account: str, n: int) -> None:
    """The account's tally moves by ``n`` (negative when rows go)."""
    if not n:
        return
    stmt = dialect.insert(conn)(t).values(source=source, account=account, records=n)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["source", "account"],
                                                  set_={"records": t.c.records + stmt.excluded.records}))


async def lock(conn: AsyncConnection, owners: Iterable[tuple[str, str]]) -> None:
    """PostgreSQL: hold the tallies of ``owners`` (source, account) from here to the commit.
    A save locks in one order (after its lease, when it is fenced): its records, its
    account's tally, then what its trigger keeps (``past_statuses``). A transaction
    deleting records takes them in the same order (prune: its batch ``FOR UPDATE``, this,
    then ``history.keep``); in another, each could wait for the other. (SQLite has one
    writer at a time.)"""
    if not dialect.is_sqlite(conn):
        held = [and_(t.c.source == source, t.c.account == account) for source, account in sorted(set(owners))]
        await conn.execute(select(t.c.records).where(or_(false(), *held))
                           .order_by(t.c.source, t.c.account).with_for_update())


async def delete_records(conn: AsyncConnection, keys: Iterable[tuple[str, str, str]]) -> int:
    """Delete the records named by (source, account, natural_key), each account's tally
    down by what went; the number deleted."""
    groups: dict[tuple[str, str], set[str]] = defaultdict(set)
    for source, account, key in keys:
        groups[(source, account)].add(key)
    total = 0
    for (source, account), names in groups.items():
        gone = int((await conn.execute(delete(r).where(
            r.c.source == source, r.c.account == account, r.c.natural_key.in_(sorted(names))))).rowcount or 0)
        await add(conn, source, account, -gone)
        total += gone
    return total


async def count(conn: AsyncConnection, source: str, account: str) -> int:
    return int(await conn.scalar(select(t.c.records).where(t.c.source == source, t.c.account == account)) or 0)
