"""stream tickets: single-use tickets that open a session's event stream without a header

A browser's EventSource cannot send the Bearer token; the owner asks for a ticket and
the stream takes it once (service/auth/tickets.py). Only each ticket's SHA-256 is kept.
A new table, so nothing in service waits on it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.columns

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stream_tickets",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("wallet_address", sa.String(length=42), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("issued_at", service.columns.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", service.columns.UtcDateTime(timezone=True), nullable=False),
        sa.Column("used_at", service.columns.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("stream_tickets", schema=None) as batch_op:
        batch_op.create_index("ix_stream_tickets_expires_at", ["expires_at"], unique=False)
        batch_op.create_index(
            "ix_stream_tickets_wallet_issued", ["wallet_address", "issued_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("stream_tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_stream_tickets_wallet_issued")
        batch_op.drop_index("ix_stream_tickets_expires_at")
    op.drop_table("stream_tickets")
