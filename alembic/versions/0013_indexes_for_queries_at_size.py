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

from service.schema_changes import create_index_concurrently, drop_index_concurrently

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNFINISHED = "finished_at IS NULL"
_FINISHED = "finished_at IS NOT NULL"
_UNSETTLED = "NOT (status = 'rejected' OR delivery_status IN ('confirmed', 'mismatch', 'failed'))"

Indexes = dict[str, tuple[str, list[str], str | None]]  # name: (table, columns, partial on)
_ADDED: Indexes = {
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
_DROPPED: Indexes = {
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


def _change(create: Indexes, drop: Indexes) -> None:
    for name, (table, columns, where) in create.items():
        create_index_concurrently(name, table, columns, where=where)
    for name, (table, _, _) in drop.items():
        drop_index_concurrently(name, table)
