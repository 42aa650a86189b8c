"""Text search that stays fast as the archive grows: a trigram index over message text.

SQLite: an FTS5 table with the trigram tokenizer holding ``events.text`` by rowid
(only rows with text). The store indexes each batch's rows in two statements
(``archiver.db.dialect.index_text``); insert and update triggers made every bulk
upsert a third slower, text or not. A delete trigger follows prune and erasure. PostgreSQL:
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
    "CREATE VIRTUAL TABLE events_text USING fts5(text, tokenize='trigram')",
    "INSERT INTO events_text (rowid, text) SELECT id, text FROM events WHERE text IS NOT NULL",
    "CREATE TRIGGER events_text_delete AFTER DELETE ON events WHEN old.text IS NOT NULL BEGIN "
    "DELETE FROM events_text WHERE rowid = old.id; END",
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
        op.execute("DROP TRIGGER events_text_delete")
        op.execute("DROP TABLE events_text")
    else:
        op.execute("DROP INDEX ix_events_text_trgm")
