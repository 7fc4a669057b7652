"""delivery credit ledger; transaction hashes in lower case

One on-chain transfer (chain, transaction hash, log index) credits at most one session:
the ledger's primary key says so. Existing hashes are brought to lower case, and
confirmed deliveries are checked again (due at once) so that the worker records the
transfers that prove them; where two sessions were confirmed by one transfer, the
older keeps it and the other becomes `mismatch`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.columns

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_credits",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("transaction_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("onramp_session_id", sa.String(length=32), nullable=False),
        sa.Column("found_by_search", sa.Boolean(), nullable=False),
        sa.Column("credited_at", service.columns.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "transaction_hash", "log_index"),
    )
    with op.batch_alter_table("delivery_credits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivery_credits_onramp_session_id"), ["onramp_session_id"], unique=False
        )
    with op.batch_alter_table("delivery_checks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("found_transaction_hash", sa.String(length=66), nullable=True)
        )
    op.execute(
        "UPDATE onramp_sessions SET transaction_hash = lower(transaction_hash),"
        " delivery_block_hash = lower(delivery_block_hash)"
        " WHERE transaction_hash LIKE '0x%' AND length(transaction_hash) = 66"
    )
    # Due in the order the sessions were made, so that the older of two sessions
    # confirmed by one transfer is credited first; the time-out starts afresh.
    op.execute(
        "UPDATE delivery_checks SET finished_at = NULL, claimed_until = NULL, attempts = 0,"
        " created_at = CURRENT_TIMESTAMP, due_at = (SELECT created_at FROM onramp_sessions"
        " WHERE onramp_sessions.id = delivery_checks.onramp_session_id)"
        " WHERE onramp_session_id IN"
        " (SELECT id FROM onramp_sessions WHERE delivery_status = 'confirmed')"
    )


def downgrade() -> None:
    with op.batch_alter_table("delivery_checks", schema=None) as batch_op:
        batch_op.drop_column("found_transaction_hash")
    with op.batch_alter_table("delivery_credits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_credits_onramp_session_id"))
    op.drop_table("delivery_credits")
