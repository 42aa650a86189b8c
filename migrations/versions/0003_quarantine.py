"""Quarantine: records a provider served that the archiver cannot read.

A log without a usable time, a message without its id: kept as served, with the
reason, outside the normalized tables, so one bad record never blocks its page.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 04:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "account", "digest", name="uq_quarantine_digest"),
    )


def downgrade() -> None:
    op.drop_table("quarantine")
