"""sessions bought by destination amount: source_amount is unknown until Stripe prices them

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Dropping NOT NULL changes only the catalogue on PostgreSQL: no rewrite, no scan.
    with op.batch_alter_table("onramp_sessions", schema=None) as batch_op:
        batch_op.alter_column("source_amount", existing_type=sa.String(length=32), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("onramp_sessions", schema=None) as batch_op:
        batch_op.alter_column("source_amount", existing_type=sa.String(length=32), nullable=False)
