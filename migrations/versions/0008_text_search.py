"""Text search that stays fast as the archive grows: a trigram index over message text.

SQLite: an FTS5 table with the trigram tokenizer over ``events.text`` (external
content, kept in step by triggers; only rows with text are indexed). PostgreSQL:
``pg_trgm`` and a GIN index on ``lower(text)``. Both serve ``LIKE '%…%'`` substring
search (three characters or more), so ``?text=`` needs no other change of meaning.
Filled from the rows already there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 10:00:00
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

SQLITE = [
    "CREATE VIRTUAL TABLE events_text USING fts5(text, content='events', content_rowid='id', tokenize='trigram')",
    "INSERT INTO events_text (rowid, text) SELECT id, text FROM events WHERE text IS NOT NULL",
    "CREATE TRIGGER events_text_insert AFTER INSERT ON events WHEN new.text IS NOT NULL BEGIN "
    "INSERT INTO events_text (rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER events_text_delete AFTER DELETE ON events WHEN old.text IS NOT NULL BEGIN "
    "INSERT INTO events_text (events_text, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER events_text_update AFTER UPDATE OF text ON events BEGIN "
    "INSERT INTO events_text (events_text, rowid, text) SELECT 'delete', old.id, old.text WHERE old.text IS NOT NULL; "
    "INSERT INTO events_text (rowid, text) SELECT new.id, new.text WHERE new.text IS NOT NULL; END",
]
POSTGRESQL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_events_text_trgm ON events USING gin (lower(text) gin_trgm_ops)",
]


def upgrade() -> None:
    for statement in SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("events_text_insert", "events_text_delete", "events_text_update"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE events_text")
    else:
        op.execute("DROP INDEX ix_events_text_trgm")
