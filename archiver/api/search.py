"""The search API's queries: messages by phone, id, text, status, provider, account and
time, newest first with keyset paging; one message with its events and status history.

The page and the JSON API use these same functions, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from archiver import jsoncodec
from archiver.api.auth import Reader
from archiver.api.compat import BadParameter
from archiver.api.cursors import Cursors
from archiver.db import models as m
from archiver.db.dialect import is_sqlite, text_contains
from archiver.db.where import owned_keys, records_of_messages
from archiver.export import line_fields, line_query
from archiver.lifecycle.subjects import digits_of
from archiver.times import parse_cli_time, rfc3339

r = m.records  # one row per record: its raw JSON and its normalized fields (migration 0009)
msg, hist = m.messages, m.status_history
SOURCES = ("sendzen", "infobip")
LIMIT_MAX = 500
FIELDS = ("direction", "sender", "recipient", "content_type", "text", "occurred_at")


@dataclass(frozen=True)
class Search:
    phone: str | None = None
    message_id: str | None = None
    text: str | None = None
    status: str | None = None
    source: str | None = None
    account: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    after: list[Any] | None = None


def search_query(q: Mapping[str, str], cursors: Cursors) -> Search:
    source = q.get("source") or None
    if source is not None and source not in SOURCES:
        raise BadParameter("source")
    phone = digits_of(q["phone"]) if q.get("phone") else None
    if phone is not None and not phone.isdigit():
        raise BadParameter("phone")
    limit = _limit(q.get("limit"))
    after = None
    if q.get("cursor"):
        try:
            after = cursors.read("messages", q["cursor"])
        except ValueError:
            raise BadParameter("cursor") from None
    return Search(phone, q.get("message_id") or None, q.get("text") or None, q.get("status") or None, source,
                  q.get("account") or None, _time(q, "since"), _time(q, "until"), limit, after)


async def find_messages(engine: AsyncEngine, reader: Reader, s: Search) -> tuple[list[dict[str, Any]], list[Any] | None]:
    """One row per message, newest first (by its first event), and the next position."""
    first = func.min(r.c.occurred_at).label("first_at")
    stmt = (select(r.c.source, r.c.account, r.c.message_id, first)
            .where(reader.scope(r, s.source), r.c.message_id.is_not(None), *_filters(s, is_sqlite(engine)))
            .group_by(r.c.source, r.c.account, r.c.message_id))
    if s.after:
        at, source, account, mid = datetime.fromisoformat(s.after[0]), *s.after[1:]
        stmt = stmt.having(or_(first < at, and_(first == at, tuple_(r.c.source, r.c.account, r.c.message_id)
                                                < tuple_(source, account, mid))))
    stmt = stmt.order_by(first.desc(), r.c.source.desc(), r.c.account.desc(), r.c.message_id.desc()).limit(s.limit + 1)
    async with engine.connect() as conn:
        keys = list(await conn.execute(stmt))
        more, keys = len(keys) > s.limit, keys[: s.limit]
        found = await _describe(conn, keys)
    last = keys[-1] if keys else None
    return found, [last.first_at.isoformat(), last.source, last.account, last.message_id] if more and last else None


async def message_detail(engine: AsyncEngine, reader: Reader, source: str, message_id: str) -> dict[str, Any] | None:
    """The message, every archived event of it (export rows, oldest first) and its history."""
    async with engine.connect() as conn:
        key = (await conn.execute(select(r.c.source, r.c.account, r.c.message_id, func.min(r.c.occurred_at))
                                  .where(reader.scope(r, source), r.c.message_id == message_id)
                                  .group_by(r.c.source, r.c.account, r.c.message_id).limit(1))).first()
        if key is None:
            return None
        [summary] = await _describe(conn, [key])
        events = await conn.execute(
            line_query(is_sqlite(engine))
            .where(r.c.source == key.source, r.c.account == key.account, r.c.message_id == message_id)
            .order_by(r.c.occurred_at, r.c.id))
        history = await conn.execute(
            select(hist.c.status, hist.c.status_detail, hist.c.seen_at)
            .where(hist.c.source == key.source, hist.c.account == key.account, hist.c.message_id == message_id)
            .order_by(hist.c.seen_at, hist.c.status, hist.c.status_detail))
        lines = [{**line_fields(row), "raw": jsoncodec.loads(row.raw)} for row in events]
        return {**summary, "events": lines, "history": _timeline(list(history), lines)}


def _timeline(history: list[Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each status the message reached: when the archiver first saw it, and when the
    provider says it happened (statuses can arrive late or out of order)."""
    happened: dict[tuple[str, str], str] = {}
    for line in events:  # oldest first: the first occurrence wins
        happened.setdefault((line["status"], line["status_detail"] or ""), line["occurred_at"])
    steps = [{"status": h.status, "status_detail": h.status_detail or None, "seen_at": rfc3339(h.seen_at),
              "occurred_at": happened.get((h.status, h.status_detail or ""))} for h in history]
    return sorted(steps, key=lambda step: step["occurred_at"] or step["seen_at"] or "")


def _filters(s: Search, on_sqlite: bool) -> list[Any]:
    found: list[Any] = []
    if s.phone:
        found.append(or_(r.c.sender == s.phone, r.c.recipient == s.phone,
                         r.c.sender == f"+{s.phone}", r.c.recipient == f"+{s.phone}"))
    if s.message_id:
        found.append(r.c.message_id == s.message_id)
    if s.text:
        found.append(text_contains(r, s.text, on_sqlite))
    if s.status:
        found.append(r.c.status == s.status.lower())
    if s.account:
        found.append(r.c.account == s.account)
    if s.since:
        found.append(r.c.occurred_at >= s.since)
    if s.until:
        found.append(r.c.occurred_at <= s.until)
    return found


async def _describe(conn: Any, keys: list[Any]) -> list[dict[str, Any]]:
    """Each message as the API shows it: current status, and its first event's facts
    (field by field: a status event knows the recipient, the inbound one the text)."""
    if not keys:
        return []
    wanted = [(k.source, k.account, k.message_id) for k in keys]
    facts: dict[tuple[str, str, str], dict[str, Any]] = {k: {} for k in wanted}
    rows = await conn.execute(select(r.c.id, r.c.source, r.c.account, r.c.message_id, *[r.c[f] for f in FIELDS])
                              .where(records_of_messages(r, wanted)))  # another owner's: ignored below
    # sorted here: an ORDER BY occurred_at would tempt the planner into the time index, a scan
    for row in sorted(rows, key=lambda row: (row.occurred_at is None, row.occurred_at or 0, row.id)):
        mine = facts.get((row.source, row.account, row.message_id))
        for name in FIELDS if mine is not None else ():
            if mine.get(name) is None and getattr(row, name) is not None:
                mine[name] = getattr(row, name)
    statuses = {(s.source, s.account, s.message_id): s for s in await conn.execute(
        select(msg.c.source, msg.c.account, msg.c.message_id, msg.c.status, msg.c.status_at)
        .where(owned_keys(msg, "message_id", wanted)))}
    return [_summary(k, facts[k], statuses.get(k)) for k in wanted]


def _summary(key: tuple[str, str, str], facts: dict[str, Any], status: Any) -> dict[str, Any]:
    return {"source": key[0], "account": key[1], "message_id": key[2],
            "direction": facts.get("direction"), "status": status.status if status else None,
            "status_at": rfc3339(status.status_at) if status else None,
            "sender": facts.get("sender"), "recipient": facts.get("recipient"),
            "content_type": facts.get("content_type"), "text": facts.get("text"),
            "occurred_at": rfc3339(facts.get("occurred_at"))}


def _limit(text: str | None) -> int:
    if text is None:
        return 50
    if not text.isdigit() or not 1 <= int(text) <= LIMIT_MAX:
        raise BadParameter("limit")
    return int(text)


def _time(q: Mapping[str, str], name: str) -> datetime | None:
    if not q.get(name):
        return None
    try:
        return parse_cli_time(q[name])
    except ValueError:
        raise BadParameter(name) from None
