"""``status_history`` read from ``records``: only statuses a record no longer shows are kept.

Every status a message reached was written twice: in its record (``status``,
``status_detail``, ``first_seen_at``) and again as a row of ``status_history``, behind a
five-column key. For SendZen, whose every status is a log of its own that never
changes, the second copy said nothing new, and it cost 116 bytes a record on
PostgreSQL (heap and key index) and an upsert per batch. Now ``status_history`` is a
view with the same columns and meaning: each (message, status, detail) once, first seen
at ``seen_at``. It reads two things:

* ``past_statuses``: the statuses a record showed before it changed (Infobip updates
  a message's log in place), and when each was first seen. A trigger keeps them: when
  an update changes a record's status, it keeps the old one (first seen when the record
  or an earlier record of the message showed it) and the new one (first seen now,
  unless an earlier record already showed it). Prune keeps the statuses of the records
  it deletes of a message that still has others.
* ``records`` for every status not kept there: first seen when the first record
  showing it was.

Existing rows move to ``past_statuses`` unless ``records`` says the same.

PostgreSQL's trigram index (0008) keeps at most 256 KB of new entries unmerged instead
of 4 MB (``gin_pending_list_limit``): the pending list is an unindexed list that every
text search reads through, and 4 MB of it was 32 bytes a record of a 100k archive.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
GIN_PENDING_KB = 256
KEY = "source, account, message_id, status, status_detail"


def _detail(row: str) -> str:
    return f"coalesce({row}.status_detail, '')"  # none is '', as the writers recorded it


def _same(kept: str, kept_detail: str, row: str) -> str:
    """``kept`` holds the status ``row`` shows (``kept_detail``: how ``kept`` says its detail)."""
    return (f"{kept}.source = {row}.source AND {kept}.account = {row}.account AND {kept}.message_id = "
            f"{row}.message_id AND {kept}.status = {row}.status AND {kept_detail} = {_detail(row)}")


def _reached(row: str) -> str:
    return f"{row}.message_id <> '' AND {row}.status <> ''"  # as the writers recorded a status (rows_of)


SAME = _same("p", "p.status_detail", "r")

def _from_records(unkept_only: bool = True) -> str:
    """Each status the records show, first seen when the first record showing it was;
    ``unkept_only``: those ``past_statuses`` does not hold."""
    unkept = f"AND NOT EXISTS (SELECT 1 FROM past_statuses p WHERE {SAME}) " if unkept_only else ""
    return (f"SELECT r.source, r.account, r.message_id, r.status, {_detail('r')} AS status_detail, "
            f"min(r.first_seen_at) AS seen_at FROM records r WHERE {_reached('r')} {unkept}"
            f"GROUP BY r.source, r.account, r.message_id, r.status, {_detail('r')}")


VIEW = f"CREATE VIEW status_history AS SELECT {KEY}, seen_at FROM past_statuses UNION ALL {_from_records()}"


def _first_seen(row: str, when: str) -> str:
    """When ``row``'s (OLD's or NEW's) status was first seen: ``when``, or earlier if
    another record of the message showed it."""
    return (f"SELECT min(t) FROM (SELECT {when} AS t UNION ALL SELECT o.first_seen_at FROM records o "
            f"WHERE {_same('o', _detail('o'), row)} AND o.id <> NEW.id) AS s")


def _keep(row: str, when: str, sqlite: bool) -> str:
    """``row``'s status into ``past_statuses``, unless it is there. (SQLite: not by ``OR
    IGNORE``, which the upsert firing the trigger overrides with its own conflict policy.)"""
    there = f"SELECT 1 FROM past_statuses p WHERE {_same('p', 'p.status_detail', row)}"
    return (f"INSERT INTO past_statuses ({KEY}, seen_at) SELECT {row}.source, {row}.account, {row}.message_id, "
            f"{row}.status, {_detail(row)}, ({_first_seen(row, when)}) "
            f"WHERE {_reached(row)} AND NOT EXISTS ({there})"
            + ("" if sqlite else " ON CONFLICT DO NOTHING"))


CHANGED = ("OLD.status IS DISTINCT FROM NEW.status OR OLD.status_detail IS DISTINCT FROM NEW.status_detail "
           "OR OLD.message_id IS DISTINCT FROM NEW.message_id")
SQLITE_TRIGGER = (f"CREATE TRIGGER records_past_status AFTER UPDATE ON records "
                  f"WHEN {CHANGED.replace('IS DISTINCT FROM', 'IS NOT')} BEGIN "
                  f"{_keep('OLD', 'OLD.first_seen_at', True)}; {_keep('NEW', 'NEW.updated_at', True)}; END")
POSTGRESQL_TRIGGER = [
    f"CREATE FUNCTION records_past_status() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"{_keep('OLD', 'OLD.first_seen_at', False)}; {_keep('NEW', 'NEW.updated_at', False)}; RETURN NULL; END $$",
    f"CREATE TRIGGER records_past_status AFTER UPDATE ON records FOR EACH ROW WHEN ({CHANGED}) "
    f"EXECUTE FUNCTION records_past_status()",
]


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _keyed_statuses(name: str, key_name: str) -> None:
    """A table of statuses keyed by what it records (WITHOUT ROWID on SQLite): 0009's
    ``status_history``, and ``past_statuses`` now."""
    op.create_table(
        name,
        sa.Column('source', sa.String(32)), sa.Column('account', sa.String(64)),
        sa.Column('message_id', sa.String(256)), sa.Column('status', sa.String(32)),
        sa.Column('status_detail', sa.String(64), server_default=''), sa.Column('seen_at', TIME, nullable=False),
        sa.PrimaryKeyConstraint(*KEY.split(", "), name=key_name), sqlite_with_rowid=False)


def upgrade() -> None:
    _keyed_statuses('past_statuses', 'past_statuses_pkey')
    # A row the records say the same way (same status, same first time) is not kept.
    op.execute(f"INSERT INTO past_statuses ({KEY}, seen_at) SELECT h.source, h.account, h.message_id, h.status, "
               f"h.status_detail, h.seen_at FROM status_history h WHERE NOT EXISTS (SELECT 1 FROM ("
               f"{_from_records(unkept_only=False)}"
               f") AS d WHERE d.source = h.source AND d.account = h.account AND d.message_id = h.message_id "
               f"AND d.status = h.status AND d.status_detail = h.status_detail AND d.seen_at = h.seen_at)")
    op.drop_table('status_history')
    op.execute(VIEW)
    if _sqlite():
        op.execute(SQLITE_TRIGGER)
    else:
        for statement in POSTGRESQL_TRIGGER:
            op.execute(statement)
        op.execute(f"ALTER INDEX ix_records_text_trgm SET (gin_pending_list_limit = {GIN_PENDING_KB})")


def downgrade() -> None:
    if _sqlite():
        op.execute("DROP TRIGGER records_past_status")
    else:
        op.execute("DROP TRIGGER records_past_status ON records")
        op.execute("DROP FUNCTION records_past_status()")
        op.execute("ALTER INDEX ix_records_text_trgm RESET (gin_pending_list_limit)")
    _keyed_statuses('status_history_table', 'status_history_pkey')  # 0009's, named as there
    op.execute(f"INSERT INTO status_history_table ({KEY}, seen_at) SELECT {KEY}, seen_at FROM status_history")
    op.execute("DROP VIEW status_history")
    op.drop_table('past_statuses')
    op.rename_table('status_history_table', 'status_history')
