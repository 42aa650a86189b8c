"""SendZen natural keys gain their log's created_at ticks as a prefix.

The key was a bare content hash, so every new record landed at a random place in
the records and events unique indexes and each write dirtied one index page per
record. ``ticks:hash`` keeps backfill inserts near the indexes' right edge. Keys
already archived are rewritten here, so a log served again after the upgrade
upserts onto its row instead of adding a second one.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:10:00
"""
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

OLD_KEY = "length({t}.natural_key) = 64"  # a bare sha256 hex digest
NEW_KEY = "length({t}.natural_key) = 84"  # 19 digits, ':', the digest


def _ticks(raw: str) -> str:
    """The log's created_at, zero-padded to 19 digits, as SQL for this database."""
    if op.get_bind().dialect.name == "postgresql":
        return f"lpad({raw}->>'created_at', 19, '0')"
    return f"printf('%019d', json_extract({raw}, '$.created_at'))"


def upgrade() -> None:
    # events first: its new key is read from the matching records row, by the old key
    op.execute(f"""
        UPDATE events SET natural_key = (
            SELECT {_ticks('r.raw')} || ':' || r.natural_key FROM records r
            WHERE r.source = events.source AND r.account = events.account AND r.natural_key = events.natural_key)
        WHERE events.source = 'sendzen' AND {OLD_KEY.format(t='events')} AND EXISTS (
            SELECT 1 FROM records r
            WHERE r.source = events.source AND r.account = events.account AND r.natural_key = events.natural_key)
    """)
    op.execute(f"""
        UPDATE records SET natural_key = {_ticks('records.raw')} || ':' || records.natural_key
        WHERE records.source = 'sendzen' AND {OLD_KEY.format(t='records')}
    """)


def downgrade() -> None:
    for table in ("events", "records"):
        op.execute(f"UPDATE {table} SET natural_key = substr({table}.natural_key, 21) "
                   f"WHERE {table}.source = 'sendzen' AND {NEW_KEY.format(t=table)}")
