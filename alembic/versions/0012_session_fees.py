"""session fees: Stripe's network and transaction fees, kept for finance's reports

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable and without a default: PostgreSQL adds them without rewriting the table.
    with op.batch_alter_table("onramp_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("network_fee_amount", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("transaction_fee_amount", sa.String(length=32), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("onramp_sessions", schema=None) as batch_op:
        batch_op.drop_column("transaction_fee_amount")
        batch_op.drop_column("network_fee_amount")
