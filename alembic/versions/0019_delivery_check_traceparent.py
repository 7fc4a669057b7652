"""delivery check traceparent: the trace of the request that scheduled the check

The worker's round that decides a check links its span to the webhook's that fulfilled
the session (service/tracing). Nullable and without a default: PostgreSQL adds it
without rewriting the table, and nothing in service waits on it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_checks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("traceparent", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_checks", schema=None) as batch_op:
        batch_op.drop_column("traceparent")
