"""sessions and webhook event log

Revision ID: 0001
Revises:
Create Date: 2026-11-25 17:12:13.341331
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "onramp_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("wallet_address", sa.String(length=42), nullable=False),
        sa.Column("stripe_session_id", sa.String(length=255), nullable=True),
        sa.Column("client_secret", sa.String(length=512), nullable=True),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("source_amount", sa.String(length=32), nullable=False),
        sa.Column("source_currency", sa.String(length=16), nullable=False),
        sa.Column("destination_currency", sa.String(length=32), nullable=False),
        sa.Column("destination_network", sa.String(length=32), nullable=False),
        sa.Column("destination_amount", sa.String(length=80), nullable=True),
        sa.Column("transaction_hash", sa.String(length=66), nullable=True),
        sa.Column("delivery_status", sa.String(length=16), nullable=False),
        sa.Column("delivery_confirmations", sa.Integer(), nullable=False),
        sa.Column("delivery_block_number", sa.BigInteger(), nullable=True),
        sa.Column("delivery_block_hash", sa.String(length=66), nullable=True),
        sa.Column("delivered_amount", sa.String(length=80), nullable=True),
        sa.Column("delivery_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivery_detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stripe_session_id"),
    )
    with op.batch_alter_table("onramp_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_onramp_sessions_status_id", ["status", "id"], unique=False)
        batch_op.create_index(
            "ix_onramp_sessions_wallet_id", ["wallet_address", "id"], unique=False
        )

    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("api_version", sa.String(length=32), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("stripe_session_id", sa.String(length=255), nullable=True),
        sa.Column("onramp_session_id", sa.String(length=32), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_events_onramp_session_id"), ["onramp_session_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_events_stripe_session_id"), ["stripe_session_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_webhook_events_type"), ["type"], unique=False)
        batch_op.create_index(
            "ix_webhook_events_unprocessed", ["processed_at", "received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_events_unprocessed")
        batch_op.drop_index(batch_op.f("ix_webhook_events_type"))
        batch_op.drop_index(batch_op.f("ix_webhook_events_stripe_session_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_events_onramp_session_id"))

    op.drop_table("webhook_events")
    with op.batch_alter_table("onramp_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_onramp_sessions_wallet_id")
        batch_op.drop_index("ix_onramp_sessions_status_id")

    op.drop_table("onramp_sessions")
