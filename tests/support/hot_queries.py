"""Every statement on a hot or operator path, as the code writes it, with realistic
parameters read from a populated database (`populate.py`), and the index its plan
should use. The query-plan test asserts the plans; `bench/plans.py` times them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from service.auth import repository as nonces
from service.delivery import checks
from service.onramp import idempotency_keys, repository
from service.onramp.lifecycle import LIFECYCLE
from service.onramp.repository import Chosen
from service.sql import Sql
from service.webhooks import repository as events
from service.webhooks.retention import UNKNOWN_SESSION_DAYS


@dataclass(frozen=True)
class HotQuery:
    name: str
    statement: Sql
    params: dict[str, Any]
    index: str | tuple[str, ...]  # the index its plan must read through (one of them)
    writes: bool = False  # explained with ANALYZE only in a transaction rolled back

    @property
    def acceptable(self) -> set[str]:
        return {self.index} if isinstance(self.index, str) else set(self.index)


@dataclass(frozen=True)
class Samples:
    """Values a real request would carry, taken from the middle of the data."""

    now: datetime
    wallet: str
    session_id: str
    stripe_session_id: str
    key_wallet: str
    key: str
    nonce: str
    nonce_wallet: str
    # Where each table's oldest rows stand: an hourly retention job finds about an
    # hour's worth past the cut-off, the rest having gone in earlier runs.
    oldest_key: datetime
    oldest_nonce_expiry: datetime
    oldest_finished_check: datetime
    oldest_event: datetime


def samples(url: str) -> Samples:
    with psycopg.connect(url) as connection:

        def one(statement: str) -> tuple[Any, ...]:
            row = connection.execute(statement).fetchone()
            assert row is not None, statement
            return tuple(row)

        now = one("SELECT now()")[0]
        session = one(
            "SELECT id, stripe_session_id, wallet_address FROM onramp_sessions"
            " ORDER BY id OFFSET (SELECT count(*) / 2 FROM onramp_sessions) LIMIT 1"
        )
        key = one(
            "SELECT wallet_address, key FROM idempotency_keys ORDER BY created_at DESC LIMIT 1"
        )
        nonce = one(
            "SELECT nonce, wallet_address FROM auth_nonces WHERE used_at IS NULL"
            " ORDER BY issued_at DESC LIMIT 1"
        )
        oldest = one(
            "SELECT (SELECT min(created_at) FROM idempotency_keys),"
            " (SELECT min(expires_at) FROM auth_nonces),"
            " (SELECT min(finished_at) FROM delivery_checks),"
            " (SELECT min(received_at) FROM webhook_events)"
        )
    return Samples(now, session[2], session[0], session[1], key[0], key[1], *nonce, *oldest)


def hot_queries(s: Samples) -> list[HotQuery]:
    day = timedelta(days=1)
    yesterday = s.now - day
    owners_list, owners_params = repository._list_statement(
        Chosen(wallet_address=s.wallet), limit=21, newest_first=True
    )
    day_range, day_params = repository._list_statement(
        Chosen(created_since=yesterday - day, created_before=yesterday), None, False
    )
    replay_since, replay_params = repository._list_statement(
        Chosen(created_since=yesterday), None, False
    )
    events_since, events_params = events.stored_events_statement(yesterday, None)
    news = {
        "sid": s.stripe_session_id,
        "oid": s.session_id,
        "live": False,
        "tx": None,
        "amount": None,
        "network_fee": None,
        "transaction_fee": None,
        "now": s.now,
    }
    hour = timedelta(hours=1)
    return [
        HotQuery(
            "worker claims due checks",
            checks._CLAIM_POSTGRES,
            {"now": s.now, "lease": s.now + timedelta(minutes=5), "limit": 100},
            "ix_delivery_checks_due",
            writes=True,
        ),
        HotQuery(
            "owner's session list (first page)",
            owners_list,
            {**owners_params, "limit": 21},
            "ix_onramp_sessions_wallet_id",
        ),
        HotQuery(
            "owner reads a session by id",
            repository._READ_OWNED,
            {"id": s.session_id, "wallet": s.wallet},
            ("onramp_sessions_pkey", "ix_onramp_sessions_wallet_id"),
        ),
        HotQuery(
            "webhook moves a session (by Stripe's id)",
            repository._ADVANCE["fulfillment_complete"],
            news,
            "onramp_sessions_stripe_session_id_key",
            writes=True,
        ),
        HotQuery(
            "idempotency key read",
            idempotency_keys._READ,
            {"wallet": s.key_wallet, "idempotency_key": s.key},
            "idempotency_keys_wallet_address_key_key",
        ),
        HotQuery(
            "nonce spent",
            nonces._CONSUME,
            {"spent_nonce": s.nonce, "wallet": s.nonce_wallet, "now": s.now, "issued_by": s.now},
            "auth_nonces_pkey",
            writes=True,
        ),
        HotQuery(
            "sessions created in a day (reconcile, import)",
            day_range,
            day_params,
            "ix_onramp_sessions_created_at",
        ),
        HotQuery(
            "sessions replay --since yesterday",
            replay_since,
            replay_params,
            "ix_onramp_sessions_created_at",
        ),
        HotQuery(
            "webhooks replay --since yesterday",
            events_since,
            events_params,
            "ix_webhook_events_received_at",
        ),
        HotQuery(
            "retention: expired idempotency keys (a batch)",
            idempotency_keys._DELETE_EXPIRED,
            {"cutoff": s.oldest_key + hour, "batch": 1000},
            "ix_idempotency_keys_created_at",
            writes=True,
        ),
        HotQuery(
            "retention: expired nonces (a batch)",
            nonces._DELETE_EXPIRED,
            {"before": s.oldest_nonce_expiry + hour, "batch": 1000},
            "ix_auth_nonces_expires_at",
            writes=True,
        ),
        HotQuery(
            "retention: finished checks (a batch)",
            checks._DELETE_FINISHED,
            {"before": s.oldest_finished_check + day, "batch": 1000},
            "ix_delivery_checks_finished_at",
            writes=True,
        ),
        HotQuery(
            "retention: old events no session needs (a batch)",
            events.prune_statements(LIFECYCLE).delete_not_needed,
            {
                "before": s.oldest_event + day,
                "unknown_before": s.now - UNKNOWN_SESSION_DAYS * day,
                "batch": 1000,
            },
            "ix_webhook_events_received_at",
            writes=True,
        ),
        HotQuery(
            "retention: first run over a backlog of events (a batch)",
            events.prune_statements(LIFECYCLE).delete_not_needed,
            {"before": s.now - 90 * day, "unknown_before": s.now - 90 * day, "batch": 1000},
            "ix_onramp_sessions_unsettled",
            writes=True,
        ),
    ]


def plan_of(connection: psycopg.Connection[Any], query: HotQuery, analyze: bool) -> dict[str, Any]:
    """The statement's plan as JSON; with `analyze`, run for real and rolled back."""
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    try:
        row = connection.execute(
            f"EXPLAIN ({options}) {query.statement.psycopg_query}",
            query.statement.values(query.params),
        ).fetchone()
    finally:
        connection.rollback()
    assert row is not None
    plan: dict[str, Any] = row[0][0]
    return plan


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of a plan, depth first."""
    found = [plan]
    for child in plan.get("Plans", []):
        found += nodes(child)
    return found


def indexes_read(plan: dict[str, Any]) -> set[str]:
    return {n["Index Name"] for n in nodes(plan["Plan"]) if "Index Name" in n}


def tables_scanned(plan: dict[str, Any]) -> set[str]:
    return {n["Relation Name"] for n in nodes(plan["Plan"]) if n["Node Type"] == "Seq Scan"}
