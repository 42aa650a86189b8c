"""One row per record: ``events`` folds into ``records``; keyed tables keep no second copy.

Every record had been two rows (``records`` as served, ``events`` normalized), each
behind the same 84-character unique key, and the write path paid two upserts and two
key indexes per record. Now ``records`` holds both; ``events`` becomes a view of the
normalized columns, so the README's queries read as before. Indexes follow the read
side's needs only (and SendZen's key keeps 64 bits of its hash, not 256): the key, time
within a source (newest-first pages, exports, retention), sender, recipient, message id.
``status_history`` is keyed by the change it records (its surrogate id goes); on SQLite
it and ``messages`` become WITHOUT ROWID tables (their key is the row), and the time
index ends at the rowid that every SQLite index entry carries anyway. On PostgreSQL,
``raw`` is asked to compress in line (``toast_tuple_target``, storage MAIN); measured
since, this does nothing for an average log: PostgreSQL only considers compressing a
row of about 2 KB or more, and a log's row is about 1 KB.

The text index (0008) follows: FTS5 rows are keyed by ``records.id``; the pg_trgm
index moves to ``records``. Existing rows are copied with their ids.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 12:00:00
"""
import json

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TIME = sa.DateTime(timezone=True)
EVENT = [
    ('event_type', sa.String(64)), ('message_id', sa.String(256)), ('direction', sa.String(16)),
    ('status', sa.String(32)), ('status_detail', sa.String(64)), ('occurred_at', TIME), ('done_at', TIME),
    ('sender', sa.String(256)), ('recipient', sa.String(256)), ('content_type', sa.String(64)),
    ('text', sa.Text()), ('error_code', sa.BigInteger()), ('error_title', sa.Text()), ('created_at', TIME),
    ('price', sa.Float()), ('currency', sa.String(8)), ('conversation_id', sa.String(128)),
    ('conversation_origin', sa.String(64)), ('pricing_category', sa.String(64)), ('billable', sa.Boolean()),
    ('reaction', sa.String(64)), ('interactive_id', sa.String(256)), ('media_id', sa.String(256)),
    ('media_mime_type', sa.String(128)), ('is_final', sa.Boolean()), ('parse_error', sa.Text()),
]
EVENT_NAMES = ", ".join(name for name, _ in EVENT)
RECORD = ["source", "account", "natural_key", "record_at", "version", "first_seen_at", "updated_at"]
LONG, SHORT = 84, 36
"""SendZen keys: 19 tick digits, ':' and the SHA-256 hex (0002); now its first 16 digits."""
SHORT_KEY = (f"CASE WHEN r.source = 'sendzen' AND length(r.natural_key) = {LONG} "
             f"THEN substr(r.natural_key, 1, {SHORT}) ELSE r.natural_key END")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _owner() -> list[sa.Column]:
    return [sa.Column('source', sa.String(32), nullable=False), sa.Column('account', sa.String(64), nullable=False)]


def upgrade() -> None:
    op.create_table(
        'records_merged',
        sa.Column('id', ID, primary_key=True, autoincrement=True), *_owner(),
        sa.Column('natural_key', sa.String(128), nullable=False), sa.Column('record_at', TIME, nullable=False),
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
        sa.Column('first_seen_at', TIME, nullable=False), sa.Column('updated_at', TIME, nullable=False),
        *[sa.Column(name, kind) for name, kind in EVENT],
        sa.Column('raw', sa.JSON(), nullable=False),
    )
    if not _sqlite():
        op.execute("ALTER TABLE records_merged SET (toast_tuple_target = 128)")
        op.execute("ALTER TABLE records_merged ALTER COLUMN raw SET STORAGE MAIN")
    columns = ", ".join(RECORD)
    copied = ", ".join(SHORT_KEY if c == "natural_key" else "r." + c for c in RECORD)
    op.execute(f"INSERT INTO records_merged (id, {columns}, {EVENT_NAMES}, raw) "
               f"SELECT r.id, {copied}, "
               f"{', '.join('e.' + name for name, _ in EVENT)}, r.raw FROM records r "
               "LEFT JOIN events e ON e.source = r.source AND e.account = r.account AND e.natural_key = r.natural_key")
    op.drop_table('events')  # with its indexes, FTS trigger (SQLite) and trigram index (PostgreSQL)
    op.drop_table('records')
    op.rename_table('records_merged', 'records')
    if not _sqlite():
        op.execute("ALTER SEQUENCE records_merged_id_seq RENAME TO records_id_seq")
        op.execute("ALTER TABLE records RENAME CONSTRAINT records_merged_pkey TO records_pkey")
        op.execute("SELECT setval('records_id_seq', coalesce(max(id), 0) + 1, false) FROM records")
    # key first: an index led by (source, account) drew SQLite's planner into walking an
    # account's every record for queries that the time or message id index answers
    op.create_index('uq_records_key', 'records', ['natural_key', 'source', 'account'], unique=True)
    # time first: an index led by source drew SQLite's planner (no statistics on a young
    # archive) away from the sender and message id indexes; a source's pages still walk it
    op.create_index('ix_records_time', 'records', ['record_at', 'source'] if _sqlite() else ['record_at', 'source', 'id'])
    for column in ('sender', 'recipient', 'message_id'):
        op.create_index(f'ix_records_{column}', 'records', [column])
    _text_index('records')
    op.execute(f"CREATE VIEW events AS SELECT id, source, account, natural_key, {EVENT_NAMES} FROM records")
    if _sqlite():
        _rebuild_keyed_tables(with_rowid=False)
    else:  # status_history's unique change is its key; the surrogate id and its index go
        op.execute("ALTER TABLE status_history DROP COLUMN id")
        op.execute("ALTER TABLE status_history DROP CONSTRAINT uq_history_change")
        op.execute("ALTER TABLE status_history ADD CONSTRAINT status_history_pkey "
                   "PRIMARY KEY (source, account, message_id, status, status_detail)")


def _text_index(table: str) -> None:
    """The text index of 0008 on ``table``'s rows (the FTS5 table itself stays)."""
    if _sqlite():
        op.execute("DELETE FROM events_text")
        op.execute(f"INSERT INTO events_text (rowid, text) SELECT id, text FROM {table} WHERE text IS NOT NULL")
        op.execute(f"CREATE TRIGGER events_text_delete AFTER DELETE ON {table} WHEN old.text IS NOT NULL BEGIN "
                   "DELETE FROM events_text WHERE rowid = old.id; END")
    else:
        op.execute(f"CREATE INDEX ix_{table}_text_trgm ON {table} USING gin (lower(text) gin_trgm_ops)")


def _rebuild_keyed_tables(with_rowid: bool) -> None:
    """SQLite: ``messages`` and ``status_history`` rebuilt WITHOUT ROWID (or back)."""
    history_id = [sa.Column('id', ID, primary_key=True, autoincrement=True)] if with_rowid else []
    history_key = (dict(primary_key=False, nullable=False) if with_rowid else dict(primary_key=True))
    history_extra = ([sa.UniqueConstraint('source', 'account', 'message_id', 'status', 'status_detail',
                                          name='uq_history_change')] if with_rowid else [])
    op.create_table(
        'messages_rebuilt',
        sa.Column('source', sa.String(32), primary_key=True), sa.Column('account', sa.String(64), primary_key=True),
        sa.Column('message_id', sa.String(256), primary_key=True), sa.Column('status', sa.String(32), nullable=False),
        sa.Column('status_rank', sa.Integer(), nullable=False), sa.Column('status_at', TIME),
        sa.Column('updated_at', TIME, nullable=False), sqlite_with_rowid=with_rowid)
    op.create_table(
        'status_history_rebuilt', *history_id,
        sa.Column('source', sa.String(32), **history_key), sa.Column('account', sa.String(64), **history_key),
        sa.Column('message_id', sa.String(256), **history_key), sa.Column('status', sa.String(32), **history_key),
        sa.Column('status_detail', sa.String(64), server_default='', **history_key),
        sa.Column('seen_at', TIME, nullable=False), *history_extra, sqlite_with_rowid=with_rowid)
    for name, columns in (("messages", "source, account, message_id, status, status_rank, status_at, updated_at"),
                          ("status_history", "source, account, message_id, status, status_detail, seen_at")):
        op.execute(f"INSERT INTO {name}_rebuilt ({columns}) SELECT {columns} FROM {name}")
        op.drop_table(name)
        op.rename_table(f"{name}_rebuilt", name)


def downgrade() -> None:
    """Back to 0008's two tables (the same ids on both sides, so FTS5 rows stay valid)."""
    op.execute("DROP VIEW events")
    if _sqlite():
        op.execute("DROP TRIGGER events_text_delete")
        _rebuild_keyed_tables(with_rowid=True)
    else:
        op.execute("DROP INDEX ix_records_text_trgm")
        op.execute("ALTER TABLE status_history DROP CONSTRAINT status_history_pkey")
        op.execute("ALTER TABLE status_history ADD CONSTRAINT uq_history_change "
                   "UNIQUE (source, account, message_id, status, status_detail)")
        op.execute("ALTER TABLE status_history ADD COLUMN id BIGSERIAL PRIMARY KEY")
    op.create_table(
        'events', sa.Column('id', ID, primary_key=True, autoincrement=True), *_owner(),
        sa.Column('natural_key', sa.String(128), nullable=False), *[sa.Column(name, kind) for name, kind in EVENT],
        sa.UniqueConstraint('source', 'account', 'natural_key', name='uq_events_key'))
    op.execute(f"INSERT INTO events (id, source, account, natural_key, {EVENT_NAMES}) "
               f"SELECT id, source, account, natural_key, {EVENT_NAMES} FROM records")
    if not _sqlite():
        op.execute("SELECT setval('events_id_seq', coalesce(max(id), 0) + 1, false) FROM events")
    for name, columns in (('ix_events_message', ['source', 'account', 'message_id']),
                          ('ix_events_occurred', ['source', 'account', 'occurred_at']),
                          ('ix_events_sender', ['sender']), ('ix_events_recipient', ['recipient']),
                          ('ix_events_message_id', ['message_id'])):
        op.create_index(name, 'events', columns)
    for name in ('ix_records_time', 'ix_records_sender', 'ix_records_recipient', 'ix_records_message_id',
                 'uq_records_key'):
        op.drop_index(name, 'records')
    with op.batch_alter_table('records') as batch:
        for name, _ in EVENT:
            batch.drop_column(name)
    op.create_index('uq_records_key', 'records', ['source', 'account', 'natural_key'], unique=True)
    op.create_index('ix_records_time', 'records', ['source', 'account', 'record_at'])
    op.create_index('ix_records_order', 'records', ['source', 'record_at', 'natural_key', 'account'])
    _long_keys()
    if _sqlite():
        op.execute("CREATE TRIGGER events_text_delete AFTER DELETE ON events WHEN old.text IS NOT NULL BEGIN "
                   "DELETE FROM events_text WHERE rowid = old.id; END")
    else:
        op.execute("CREATE INDEX ix_events_text_trgm ON events USING gin (lower(text) gin_trgm_ops)")


def _long_keys() -> None:
    """SendZen keys back to the full hash, recomputed from each log (the short key cannot
    be lengthened in SQL), in ``records`` and ``events`` alike."""
    from archiver.sources.sendzen.source import TICKS_DIGITS, content_digest  # the hash 0002 keys used

    bind = op.get_bind()
    rows = bind.execute(sa.text(f"SELECT id, raw FROM records WHERE source = 'sendzen' "
                                f"AND length(natural_key) = {SHORT}")).all()
    for table in ("records", "events"):
        update = sa.text(f"UPDATE {table} SET natural_key = :key WHERE id = :id")
        for start in range(0, len(rows), 1000):
            bind.execute(update, [{"id": row.id, "key": _long_key(row.raw, TICKS_DIGITS, content_digest)}
                                  for row in rows[start:start + 1000]])


def _long_key(raw: object, digits: int, digest: object) -> str:
    log = json.loads(raw) if isinstance(raw, str) else raw
    return f"{log['created_at']:0{digits}d}:{digest(log)}"  # type: ignore[index,operator]
