"""Leases: which process polls which account when several share one PostgreSQL.

``leases`` holds one row per (source, account) with its owner, expiry and fencing epoch;
``workers`` one heartbeat row per live process (to divide the accounts fairly). Part-1
databases keep their rows: every one of them already belongs to account ``default``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 04:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("leases",
                    sa.Column("source", sa.String(32), primary_key=True),
                    sa.Column("account", sa.String(64), primary_key=True),
                    sa.Column("owner", sa.String(300)),
                    sa.Column("epoch", sa.BigInteger(), nullable=False, server_default="0"),
                    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False))
    op.create_table("workers",
                    sa.Column("owner", sa.String(300), primary_key=True),
                    sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False))


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("leases")
