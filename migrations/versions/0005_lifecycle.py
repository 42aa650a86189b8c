"""Erasure: tombstones (keyed hashes of erased numbers), the erasure log, and the
per-database secret that keys the hashes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 04:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("archive_secrets",
                    sa.Column("name", sa.String(64), primary_key=True),
                    sa.Column("value", sa.Text(), nullable=False))
    op.create_table("tombstones",
                    sa.Column("digest", sa.String(64), primary_key=True),
                    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False))
    op.create_table("erasure_log",
                    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                              autoincrement=True),
                    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("digest", sa.String(64), nullable=False),
                    sa.Column("counts", sa.Text(), nullable=False))


def downgrade() -> None:
    op.drop_table("erasure_log")
    op.drop_table("tombstones")
    op.drop_table("archive_secrets")
