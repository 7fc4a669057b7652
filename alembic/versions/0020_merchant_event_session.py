"""merchant event session: the session as its change left it, for the body to be
rendered when the event is sent

A Stripe event that moves a session is applied on PostgreSQL in one statement: the move,
its merchant event and the event log's entry (service/webhooks/repository.py). That
statement cannot render the body in Python, so it keeps the moved row as JSON in
`session` and leaves `body` null; the dispatcher renders the same body from it. Both
changes are online: a nullable column without a default, and a dropped NOT NULL.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("merchant_webhook_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session", sa.Text(), nullable=True))
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    # An event whose body was never rendered has no body to keep: it goes.
    op.execute(
        "DELETE FROM merchant_webhook_deliveries WHERE event_id IN"
        " (SELECT id FROM merchant_webhook_events WHERE body IS NULL)"
    )
    op.execute("DELETE FROM merchant_webhook_events WHERE body IS NULL")
    with op.batch_alter_table("merchant_webhook_events", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("session")
