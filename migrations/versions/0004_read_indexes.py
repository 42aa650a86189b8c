"""Indexes for the read side: a customer's messages by phone number, a message by its id
across accounts, and the provider-compatible pages newest first across accounts. CREATE INDEX works on a populated archive
(it takes a write lock for the time it builds on SQLite; on PostgreSQL too, unless
built by hand beforehand with CREATE INDEX CONCURRENTLY under the same name).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 04:20:00
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_sender", "events", ["sender"], if_not_exists=True)
    op.create_index("ix_events_recipient", "events", ["recipient"], if_not_exists=True)
    op.create_index("ix_events_message_id", "events", ["message_id"], if_not_exists=True)
    op.create_index("ix_records_order", "records", ["source", "record_at", "natural_key", "account"],
                    if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_records_order", "records")
    op.drop_index("ix_events_message_id", "events")
    op.drop_index("ix_events_recipient", "events")
    op.drop_index("ix_events_sender", "events")
