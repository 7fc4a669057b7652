"""session change notices: PostgreSQL tells listeners when a session's status or delivery changes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 15:40:00

Every writer of a session (webhooks, the delivery worker, operators' commands, any
replica) is covered by one trigger, and the notice is sent only if its transaction
commits. SQLite has no notifications; its streams read the sessions they watch.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WATCHED = (
    "status",
    "delivery_status",
    "delivery_confirmations",
    "delivery_block_number",
    "delivered_amount",
    "delivery_detail",
    "transaction_hash",
    "destination_amount",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION onramp_session_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM pg_notify('onramp_session_changed', NEW.id); RETURN NULL; END $$"
    )
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _WATCHED)
    op.execute(
        "CREATE TRIGGER onramp_session_changed AFTER UPDATE ON onramp_sessions"
        f" FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION onramp_session_changed()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER onramp_session_changed ON onramp_sessions")
    op.execute("DROP FUNCTION onramp_session_changed()")
