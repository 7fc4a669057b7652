"""session redirect url: Stripe's hosted onramp page, kept for the session's owner

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 16:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable and without a default: PostgreSQL adds it without rewriting the table.
    with op.batch_alter_table("onramp_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("redirect_url", sa.String(length=1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("onramp_sessions", schema=None) as batch_op:
        batch_op.drop_column("redirect_url")
