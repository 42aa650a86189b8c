"""The archive's schema, as SQLAlchemy Core tables (the migrations create the same).

Every row carries ``source`` and ``account`` so several accounts per provider fit
without a schema change. ``records`` holds each record exactly as served (``raw``,
latest version) and its normalized fields, one row per record (migration 0009; the
view ``events`` shows the normalized fields alone, for the README's queries); the
other tables are the engine's bookkeeping: checkpoints, the coverage ledger, gaps and runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from archiver.db.dialect import is_sqlite, loaded_time, stored_time
from archiver.times import SQLITE_TIME_LENGTH

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on SQLite (which stores text) as on PostgreSQL; the
    text is ``archiver.db.dialect.stored_time``'s, the bulk writer's too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(String(SQLITE_TIME_LENGTH) if is_sqlite(dialect) else DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Any) -> Any:
        return stored_time(value, is_sqlite(dialect))

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        return loaded_time(value)


Id = BigInteger().with_variant(Integer(), "sqlite")


def _owner() -> list[Column[Any]]:
    return [Column("source", String(32), nullable=False), Column("account", String(64), nullable=False)]


records = Table(
    "records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_owner(),
    Column("natural_key", String(128), nullable=False),
    Column("record_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # the normalized view of the record, shared by all providers (the view ``events`` shows these)
    Column("event_type", String(64)),
    Column("message_id", String(256)),
    Column("direction", String(16)),
    Column("status", String(32)),
    Column("status_detail", String(64)),
    Column("occurred_at", UTCDateTime),
    Column("done_at", UTCDateTime),
    Column("sender", String(256)),
    Column("recipient", String(256)),
    Column("content_type", String(64)),
    Column("text", Text),
    Column("error_code", BigInteger),
    Column("error_title", Text),
    Column("created_at", UTCDateTime),
    Column("price", Float),
    Column("currency", String(8)),
    Column("conversation_id", String(128)),
    Column("conversation_origin", String(64)),
    Column("pricing_category", String(64)),
    Column("billable", Boolean),
    Column("reaction", String(64)),
    Column("interactive_id", String(256)),
    Column("media_id", String(256)),
    Column("media_mime_type", String(128)),
    Column("is_final", Boolean),
    Column("parse_error", Text),
    Column("raw", JSON, nullable=False),  # json, not jsonb: kept as served, key order and all; last in the row
    Index("uq_records_key", "natural_key", "source", "account", unique=True),  # key first: see migration 0009
    # newest-first pages of a source, exports, refreshes (SQLite: the rowid closes every
    # index entry, so its index is (record_at, source) alone; migration 0009)
    Index("ix_records_time", "record_at", "source", "id"),
    Index("ix_records_sender", "sender"),  # the read side: a customer's messages by number
    Index("ix_records_recipient", "recipient"),
    Index("ix_records_message_id", "message_id"),  # a message's records, whatever its account
)

EVENT_COLUMNS = [c.name for c in records.columns if c.name not in (
    "id", "source", "account", "natural_key", "record_at", "version", "first_seen_at", "updated_at", "raw")]
"""The normalized fields (``archiver.domain.Event``'s), in table order."""
EVENT_TIMES = [c for c in EVENT_COLUMNS if isinstance(records.c[c].type, UTCDateTime)]

events = Table(  # read-only: a view over ``records`` (migration 0009), outside ``metadata``
    "events",
    MetaData(),
    *[Column(c.name, c.type, primary_key=c.primary_key) for c in records.columns
      if c.name in ("id", "source", "account", "natural_key", *EVENT_COLUMNS)],
)

messages = Table(
    "messages",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("account", String(64), primary_key=True),
    Column("message_id", String(256), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("status_rank", Integer, nullable=False),
    Column("status_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    sqlite_with_rowid=False,
)

past_statuses = Table(  # statuses a record showed before it changed (migration 0010)
    "past_statuses",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("account", String(64), primary_key=True),
    Column("message_id", String(256), primary_key=True),
    Column("status", String(32), primary_key=True),
    Column("status_detail", String(64), primary_key=True, server_default=""),
    Column("seen_at", UTCDateTime, nullable=False),
    sqlite_with_rowid=False,  # the key is the row: no second copy of it in an index
)

status_history = Table(  # read-only: a view of ``past_statuses`` and ``records`` (migration 0010)
    "status_history",
    MetaData(),
    *[Column(c.name, c.type, primary_key=c.primary_key) for c in past_statuses.columns],
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("account", String(64), primary_key=True),
    Column("position", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

coverage = Table(
    "coverage",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_owner(),
    Column("window_from", UTCDateTime, nullable=False),
    Column("window_to", UTCDateTime, nullable=False),
    Column("records", Integer, nullable=False),
    Column("pages", Integer, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Index("ix_coverage_window", "source", "account", "window_from"),
)

gaps = Table(
    "gaps",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_owner(),
    Column("gap_from", UTCDateTime, nullable=False),
    Column("gap_to", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detected_at", UTCDateTime, nullable=False),
    UniqueConstraint("source", "account", "gap_from", "gap_to", "reason", name="uq_gaps"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_owner(),
    Column("kind", String(16), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("ok", Boolean),
    Column("records", Integer),
    Column("requests", Integer),
    Column("error", Text),
    Index("ix_runs_source", "source", "account", "started_at"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_owner(),
    Column("digest", String(64), nullable=False),  # sha256 of raw: the same bad record is one row
    Column("raw", Text, nullable=False),  # the record as served, JSON text
    Column("reason", Text, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    UniqueConstraint("source", "account", "digest", name="uq_quarantine_digest"),
)

archive_secrets = Table(
    "archive_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),  # e.g. the tombstones' HMAC key, generated once per database
)

tombstones = Table(
    "tombstones",
    metadata,
    Column("digest", String(64), primary_key=True),  # HMAC-SHA-256 of an erased number, never the number
    Column("created_at", UTCDateTime, nullable=False),
)

erasure_log = Table(
    "erasure_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("erased_at", UTCDateTime, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("counts", Text, nullable=False),  # JSON: rows removed per table
)

leases = Table(
    "leases",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("account", String(64), primary_key=True),
    Column("owner", String(300)),  # "host:pid"; NULL when free
    Column("epoch", BigInteger, nullable=False, server_default="0"),  # fencing token: grows per owner change
    Column("expires_at", UTCDateTime, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("owner", String(300), primary_key=True),
    Column("beat_at", UTCDateTime, nullable=False),
)

tallies = Table(
    "tallies",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("account", String(64), primary_key=True),
    Column("records", BigInteger, nullable=False),  # rows in ``records``, kept in the same transactions
)
