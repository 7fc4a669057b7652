"""delivery checks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 17:55:36.605237
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_checks",
        sa.Column("onramp_session_id", sa.String(length=32), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("onramp_session_id"),
    )
    with op.batch_alter_table("delivery_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_checks_due_at"), ["due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_checks_due_at"))

    op.drop_table("delivery_checks")
