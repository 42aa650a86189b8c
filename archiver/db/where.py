"""WHERE clauses that the indexes answer on both databases.

A row-value ``(source, account, key) IN (…)`` is exact, but SQLite answers it by scanning
the whole table. Grouped by owner, the same condition is ``source = ? AND account = ?
AND key IN (…)`` per group: an equality prefix and an IN list, which every index on
(source, account, key) serves.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

from sqlalchemy import and_, false, or_


def owned_keys(table: Any, column: str, triples: Iterable[tuple[str, str, str]]) -> Any:
    """Rows of ``table`` whose (source, account, ``column``) is one of ``triples``."""
    groups: dict[tuple[str, str], set[str]] = defaultdict(set)
    for source, account, key in triples:
        groups[(source, account)].add(key)
    if not groups:
        return false()
    return or_(*[and_(table.c.source == source, table.c.account == account, table.c[column].in_(sorted(keys)))
                 for (source, account), keys in groups.items()])


def records_of_messages(records: Any, triples: Iterable[tuple[str, str, str]]) -> Any:
    """Rows of ``records`` whose message id is one of ``triples``' (any owner): the
    caller keeps those whose (source, account, message_id) it asked for. Given the
    owners too, SQLite walks the key index's (source, account) prefix, every record of
    the account, instead of the message id index."""
    return records.c.message_id.in_(sorted({message_id for _, _, message_id in triples}))
