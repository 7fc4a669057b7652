"""merchant event session: the session as its change left it, for the body to be
rendered when the event is sent

A Stripe event that moves a session is applied on PostgreSQL in one statement: the move,
its merchant event and the event log's entry (service/webhooks/repository.py). That
statement cannot render the body in Python, so it keeps the moved row as JSON in
`session` (without the client secret) and leaves `body` null; the dispatcher renders
the same body from it and keeps it, so that retries send those bytes. Both changes are
online: a nullable column without a default, and a dropped NOT NULL.

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
    # The previous release reads `body` only: an event whose body was never rendered is
    # rendered here, as this release's dispatcher would have sent it.
    from service.merchant_webhooks.payloads import stored_body

    events = sa.table(
        "merchant_webhook_events",
        sa.column("id", sa.String),
        sa.column("type", sa.String),
        sa.column("body", sa.Text),
        sa.column("session", sa.Text),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    connection = op.get_bind()
    unrendered = connection.execute(
        sa.select(events.c.id, events.c.type, events.c.created_at, events.c.session).where(
            events.c.body.is_(None)
        )
    ).all()
    for event_id, kind, created_at, session in unrendered:
        connection.execute(
            sa.update(events)
            .where(events.c.id == event_id)
            .values(body=stored_body(kind, created_at, None, session))
        )
    with op.batch_alter_table("merchant_webhook_events", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("session")
