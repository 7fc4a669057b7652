"""indexes for the queries at size: due checks, time ranges, the event log, retention

Chosen from each hot query's plan on a populated database (bench/README.md, "Query
plans at size"):

- `ix_delivery_checks_due` (due_at, unfinished checks only) replaces `due_at` on every
  check: the worker's claim walked past every finished check, which keeps its last
  `due_at`, to find the few that are due.
- `ix_delivery_checks_finished_at` (finished checks only): the retention job's deletes.
- `ix_onramp_sessions_created_at`: `sessions replay --since`, `reconcile`, imports.
- `ix_webhook_events_received_at` (received_at, id): `webhooks replay --since` in the
  order it replays, and the prune's walk over old events.
- `ix_onramp_sessions_unsettled` (id, stripe_session_id; sessions not settled only):
  the prune's test of whether an event's session still needs it. Over a backlog the
  planner gathers every unsettled session first, which was two scans of all sessions
  per batch; the few in flight are now read from this small index.
- Dropped, since no statement reads through them while every webhook writes them:
  `webhook_events`' type, session ids and "unprocessed" indexes.

On PostgreSQL every index is built or dropped CONCURRENTLY, outside the migration's
transaction, so sessions and webhooks go on being read and written meanwhile. A build
that failed half-way leaves an invalid index behind; it is dropped first, so running the
migration again finishes the job.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 20:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNFINISHED = "finished_at IS NULL"
_FINISHED = "finished_at IS NOT NULL"
_UNSETTLED = "NOT (status = 'rejected' OR delivery_status IN ('confirmed', 'mismatch', 'failed'))"

# name: (table, columns, partial on)
_ADDED: dict[str, tuple[str, list[str], str | None]] = {
    "ix_delivery_checks_due": ("delivery_checks", ["due_at"], _UNFINISHED),
    "ix_delivery_checks_finished_at": ("delivery_checks", ["finished_at"], _FINISHED),
    "ix_onramp_sessions_created_at": ("onramp_sessions", ["created_at"], None),
    "ix_webhook_events_received_at": ("webhook_events", ["received_at", "id"], None),
    "ix_onramp_sessions_unsettled": (
        "onramp_sessions",
        ["id", "stripe_session_id"],
        _UNSETTLED,
    ),
}
_DROPPED: dict[str, tuple[str, list[str], str | None]] = {
    "ix_delivery_checks_due_at": ("delivery_checks", ["due_at"], None),
    "ix_webhook_events_type": ("webhook_events", ["type"], None),
    "ix_webhook_events_stripe_session_id": ("webhook_events", ["stripe_session_id"], None),
    "ix_webhook_events_onramp_session_id": ("webhook_events", ["onramp_session_id"], None),
    "ix_webhook_events_unprocessed": ("webhook_events", ["processed_at", "received_at"], None),
}


def upgrade() -> None:
    _change(create=_ADDED, drop=_DROPPED)


def downgrade() -> None:
    _change(create=_DROPPED, drop=_ADDED)


def _change(
    create: dict[str, tuple[str, list[str], str | None]],
    drop: dict[str, tuple[str, list[str], str | None]],
) -> None:
    if op.get_bind().dialect.name != "postgresql":
        for name, (table, columns, where) in create.items():
            op.create_index(name, table, columns, if_not_exists=True, **_partial(where))
        for name, (table, _, _) in drop.items():
            op.drop_index(name, table_name=table, if_exists=True)
        return
    # CONCURRENTLY cannot run inside a transaction block.
    with op.get_context().autocommit_block():
        for name, (table, columns, where) in create.items():
            _drop_if_invalid(name, table)
            op.create_index(
                name,
                table,
                columns,
                if_not_exists=True,
                postgresql_concurrently=True,
                **_partial(where),
            )
        for name, (table, _, _) in drop.items():
            op.drop_index(name, table_name=table, if_exists=True, postgresql_concurrently=True)


def _partial(where: str | None) -> dict[str, Any]:
    if where is None:
        return {}
    return {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}


def _drop_if_invalid(name: str, table: str) -> None:
    """An index a failed CONCURRENTLY build left unusable (`indisvalid` false)."""
    invalid = op.get_bind().scalar(
        sa.text(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = :name AND NOT i.indisvalid"
        ),
        {"name": name},
    )
    if invalid:
        op.drop_index(name, table_name=table, postgresql_concurrently=True)
