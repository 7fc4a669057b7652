"""Webhooks end to end over real HTTP: through the Stripe stand-in, and a storm across two
server processes sharing one PostgreSQL database."""

from __future__ import annotations

import asyncio
import random
import secrets
from pathlib import Path

import httpx
import psycopg

from tests.conftest import BASE_ENV
from tests.onramp.conftest import JWT_SECRET, new_wallet, token_for
from tests.support.processes import serving
from tests.support.stripe import RunningStripe
from tests.support.webhooks import WEBHOOK_SECRET, encode, onramp_event, sign

HAPPY = ["requires_payment", "fulfillment_processing", "fulfillment_complete"]


def server_env(database_url: str, stripe: RunningStripe | None = None) -> dict[str, str]:
    env = {
        **BASE_ENV,
        "DATABASE_URL": database_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "JWT_SECRET": JWT_SECRET,
        "RATE_LIMIT_PER_MINUTE": "100000",
    }
    if stripe is not None:
        env |= {"STRIPE_SECRET_KEY": stripe.secret_key, "STRIPE_API_BASE": stripe.url}
    return env


def test_a_session_follows_the_stand_ins_signed_webhooks(
    tmp_path: Path, stripe: RunningStripe, migrated: dict[str, str]
) -> None:
    with serving(tmp_path, **server_env(migrated["postgresql"], stripe)) as base:
        stripe.send_webhooks_to(f"{base}/api/v1/webhooks/stripe", WEBHOOK_SECRET, duplicate=2)
        wallet = new_wallet()
        auth = {"Authorization": f"Bearer {token_for(wallet)}"}
        created = httpx.post(
            f"{base}/api/v1/onramp/sessions",
            json={"walletAddress": wallet, "sourceAmount": "100.00"},
            headers=auth,
        ).json()
        tx = "0x" + secrets.token_hex(32)
        stripe.advance(created["stripeSessionId"], "requires_payment")
        stripe.advance(created["stripeSessionId"], "fulfillment_complete", transactionId=tx)
        deliveries = stripe.wait_for_webhooks()
        assert len(deliveries) == 4
        assert all(d["delivered"] and d["status"] == 200 for d in deliveries)
        session = httpx.get(f"{base}/api/v1/onramp/sessions/{created['id']}", headers=auth).json()
    assert session["status"] == "fulfillment_complete"
    assert session["transactionHash"] == tx
    assert session["destinationAmount"] == "98.49"
    assert session["delivery"]["status"] == "pending"


def insert_sessions(database_url: str, count: int) -> list[tuple[str, str]]:
    rows = [(f"ors_{secrets.token_hex(13)}", f"cos_{secrets.token_hex(12)}") for _ in range(count)]
    with psycopg.connect(database_url) as connection:
        connection.cursor().executemany(
            "INSERT INTO onramp_sessions (id, wallet_address, stripe_session_id, livemode, status,"
            " source_amount, source_currency, destination_currency, destination_network,"
            " delivery_status, delivery_confirmations, created_at, updated_at)"
            " VALUES (%s, %s, %s, false, 'initialized', '100.00', 'usd', 'musd', 'mezo',"
            " 'not_started', 0, now(), now())",
            [(own, "0x52908400098527886E0F7030069857D2E4169EE7", stripe) for own, stripe in rows],
        )
    return rows


async def send_like_stripe(
    http: httpx.AsyncClient, url: str, body: bytes, server_errors: list[int]
) -> None:
    """At least once: retry anything but a 2xx, as Stripe does (faster back-off)."""
    for attempt in range(20):
        try:
            response = await http.post(
                url, content=body, headers={"Stripe-Signature": sign(body)}, timeout=30
            )
        except httpx.TransportError:
            await asyncio.sleep(0.05 * (attempt + 1))
            continue
        if response.status_code >= 500:
            server_errors.append(response.status_code)
        if response.is_success:
            return
        await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError(f"gave up on {body[:60]!r}")


def test_a_storm_of_shuffled_duplicated_events_across_two_processes(
    tmp_path: Path, migrated: dict[str, str]
) -> None:
    database_url = migrated["postgresql"]
    sessions = insert_sessions(database_url, 500)
    expected: dict[str, str] = {}
    events: list[bytes] = []
    rng = random.Random(7)
    for own, stripe_id in sessions:
        length = rng.randint(1, 3)
        sequence = HAPPY[:length]
        if length < 3 and rng.random() < 0.3:
            sequence = [*sequence, "rejected"]
        expected[own] = sequence[-1]
        for status in sequence:
            body = encode(onramp_event(stripe_id, status, transaction_id="0x" + "1" * 64))
            events.append(body)
            if rng.random() < 0.3:
                events.append(body)
    rng.shuffle(events)
    distinct = len(set(events))

    env = server_env(database_url)
    with serving(tmp_path, **env) as first, serving(tmp_path, **env) as second:
        urls = [f"{first}/api/v1/webhooks/stripe", f"{second}/api/v1/webhooks/stripe"]
        server_errors: list[int] = []

        async def storm() -> None:
            queue: asyncio.Queue[bytes] = asyncio.Queue()
            for body in events:
                queue.put_nowait(body)
            limits = httpx.Limits(max_connections=32)
            async with httpx.AsyncClient(limits=limits) as http:

                async def sender(number: int) -> None:
                    while not queue.empty():
                        body = queue.get_nowait()
                        await send_like_stripe(http, urls[number % 2], body, server_errors)

                await asyncio.gather(*(sender(n) for n in range(16)))

        asyncio.run(storm())
    assert server_errors == []
    with psycopg.connect(database_url) as connection:
        statuses: dict[str, str] = dict(
            connection.execute(
                "SELECT id, status FROM onramp_sessions WHERE id = ANY(%s)",
                ([own for own, _ in sessions],),
            ).fetchall()
        )
        stored = connection.execute(
            "SELECT count(*), count(DISTINCT id) FROM webhook_events"
            " WHERE stripe_session_id = ANY(%s)",
            ([stripe_id for _, stripe_id in sessions],),
        ).fetchone()
        fulfilled: dict[str, str] = dict(
            connection.execute(
                "SELECT s.id, s.transaction_hash FROM onramp_sessions s"
                " JOIN delivery_checks c ON c.onramp_session_id = s.id"
                " WHERE s.id = ANY(%s)",
                ([own for own, _ in sessions],),
            ).fetchall()
        )
        unprocessed = connection.execute(
            "SELECT count(*) FROM webhook_events WHERE processed_at IS NULL"
            " AND stripe_session_id = ANY(%s)",
            ([stripe_id for _, stripe_id in sessions],),
        ).fetchone()
    assert statuses == expected
    complete = {own for own, status in expected.items() if status == "fulfillment_complete"}
    assert set(fulfilled) == complete
    assert set(fulfilled.values()) == {"0x" + "1" * 64}
    assert stored == (distinct, distinct)
    assert unprocessed == (0,)
