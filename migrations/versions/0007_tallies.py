"""Tallies: each account's number of archived records, so ``status`` never counts rows.

Filled from the rows already there (one ``count(*)`` now, instead of one per ``status``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("tallies",
                    sa.Column("source", sa.String(32), primary_key=True),
                    sa.Column("account", sa.String(64), primary_key=True),
                    sa.Column("records", sa.BigInteger(), nullable=False))
    op.execute("INSERT INTO tallies (source, account, records) "
               "SELECT source, account, count(*) FROM records GROUP BY source, account")


def downgrade() -> None:
    op.drop_table("tallies")
