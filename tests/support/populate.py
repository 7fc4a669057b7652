"""A PostgreSQL database filled by SQL to the shape of a year of traffic, scaled.

The proportions are issue 20's (per session: 3 webhook events, 0.8 delivery checks of
which 1% are due, 0.2 idempotency keys and 0.1 nonces, both over the last 48 hours),
so that the planner chooses at a few hundred thousand rows what it would at millions. Used by
the query-plan test (small) and `bench/plans.py` (larger).
"""

from __future__ import annotations

from typing import Any

import psycopg

WALLETS_PER_SESSION = 0.01

# Session ids sort by creation time, as `new_id` makes them: milliseconds first.
_SESSIONS = """
INSERT INTO onramp_sessions (id, wallet_address, stripe_session_id, client_secret, livemode,
  status, source_amount, source_currency, destination_currency, destination_network,
  destination_amount, transaction_hash, delivery_status, delivery_confirmations,
  created_at, updated_at)
SELECT 'ors_' || lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0')
         || substr(md5(i::text), 1, 14),
       '0x' || lpad(to_hex(i %% %(wallets)s), 40, '0'),
       'cos_' || i, 'cos_' || i || '_secret_' || md5(i::text), false,
       CASE WHEN i %% 50 = 0 THEN 'rejected' ELSE 'fulfillment_complete' END,
       '100.00', 'usd', 'musd', 'mezo', '99.50', '0x' || md5(i::text) || md5(i::text),
       CASE WHEN i %% 50 = 0 THEN 'not_started' ELSE 'confirmed' END, 3, at, at
FROM (SELECT i, now() - interval '365 days' * (%(sessions)s - i) / %(sessions)s AS at
      FROM generate_series(1, %(sessions)s) AS i) AS s
"""
_EVENTS = """
INSERT INTO webhook_events (id, type, api_version, created, livemode, stripe_session_id,
  onramp_session_id, payload, received_at, processed_at, outcome, attempts)
SELECT 'evt_' || s.stripe_session_id || '_' || k, 'crypto.onramp_session_updated',
       '2024-06-20', s.created_at + k * interval '1 minute', false, s.stripe_session_id,
       s.id, repeat('x', %(payload)s), s.created_at + k * interval '1 minute',
       s.created_at + k * interval '1 minute', 'applied', 1
FROM onramp_sessions s, generate_series(1, 3) AS k
"""
# Four sessions in five have a check; 1% of the checks are due (within the last ten
# minutes, as back-offs leave them), the others finished with their `due_at` left
# where the last round put it, as the worker leaves them.
_CHECKS = """
INSERT INTO delivery_checks (onramp_session_id, due_at, attempts, claimed_until,
  finished_at, created_at)
SELECT id,
       CASE WHEN n %% 100 = 1 THEN now() - (n %% 600) * interval '1 second'
            ELSE created_at + interval '1 minute' END,
       1, NULL,
       CASE WHEN n %% 100 = 1 THEN NULL ELSE created_at + interval '1 minute' END,
       created_at
FROM (SELECT id, created_at, row_number() OVER (ORDER BY id) AS n FROM onramp_sessions
      WHERE status = 'fulfillment_complete') AS fulfilled
WHERE n %% 5 <> 0
"""
_KEYS = """
INSERT INTO idempotency_keys (wallet_address, key, fingerprint, locked_at,
  onramp_session_id, response_status, response_body, created_at)
SELECT '0x' || lpad(to_hex(i %% %(wallets)s), 40, '0'), 'key-' || i, md5(i::text), NULL,
       NULL, 201, '{}', now() - interval '48 hours' * (%(keys)s - i) / %(keys)s
FROM generate_series(1, %(keys)s) AS i
"""
_NONCES = """
INSERT INTO auth_nonces (nonce, wallet_address, issued_at, expires_at, used_at,
  requested_by)
SELECT md5('nonce' || i), '0x' || lpad(to_hex(i %% %(wallets)s), 40, '0'), at,
       at + interval '5 minutes', CASE WHEN i %% 2 = 0 THEN at END, 'asker-' || (i %% 97)
FROM (SELECT i, now() - interval '48 hours' * (%(nonces)s - i) / %(nonces)s AS at
      FROM generate_series(1, %(nonces)s) AS i) AS n
"""


def sizes(sessions: int) -> dict[str, int]:
    return {
        "sessions": sessions,
        "wallets": max(1, int(sessions * WALLETS_PER_SESSION)),
        "keys": sessions // 5,
        "nonces": sessions // 10,
    }


def populate(url: str, sessions: int, payload_bytes: int = 200) -> dict[str, int]:
    """Fill an empty, migrated database; the row counts, by table."""
    params: dict[str, Any] = {**sizes(sessions), "payload": payload_bytes}
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in (_SESSIONS, _EVENTS, _CHECKS, _KEYS, _NONCES):
            connection.execute(statement, params)
        connection.execute("VACUUM ANALYZE")
        tables = (
            "onramp_sessions",
            "webhook_events",
            "delivery_checks",
            "idempotency_keys",
            "auth_nonces",
        )
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]  # noqa: S608
            for table in tables
        }
