"""Session creation while Stripe is slow, failing or dropping connections: dApps
retrying with their Idempotency-Key end with exactly one session each, here and at
Stripe."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg

from tests.onramp.conftest import new_wallet, token_for
from tests.support.processes import OnrampProcess, service_env
from tests.support.profile import Profile
from tests.support.stripe import RunningStripe

# A steady share of failed and dropped create calls, and now and then a slow spell.
TROUBLE = {"failRate": 0.3, "dropRate": 0.2}
SLOW_SPELLS = [
    {"latencyMs": 1500},  # beyond the service's Stripe time-out: it gives up, Stripe does not
    {"latencyMs": 300},
]


def test_retried_creations_make_one_session_each_while_stripe_misbehaves(
    tmp_path: Path,
    stripe: RunningStripe,
    migrated: dict[str, str],
    profile: Profile,
    record_figures: Callable[..., None],
) -> None:
    database_url = migrated["postgresql"]
    env = service_env(
        database_url, stripe, STRIPE_TIMEOUT_SECONDS="1", STRIPE_MAX_NETWORK_RETRIES="1"
    )
    replica = OnrampProcess(tmp_path, "serve", **env)
    replica.start()
    answers: Counter[tuple[int, str | None]] = Counter()
    created: dict[str, str] = {}  # idempotency key: our session id
    done = asyncio.Event()

    async def create(http: httpx.AsyncClient, key: str) -> None:
        wallet = new_wallet()
        headers = {"Authorization": f"Bearer {token_for(wallet)}", "Idempotency-Key": key}
        body = {"walletAddress": wallet, "sourceAmount": "25.00"}
        for attempt in range(60):
            try:
                response = await http.post(
                    f"{replica.url}/api/v1/onramp/sessions", json=body, headers=headers, timeout=30
                )
            except httpx.TransportError:
                answers[(0, "transport")] += 1
            else:
                code = None if response.is_success else response.json().get("code")
                answers[(response.status_code, code)] += 1
                if response.is_success:
                    session_id = response.json()["id"]
                    assert created.setdefault(key, session_id) == session_id
                    return
            await asyncio.sleep(min(0.1 * (attempt + 1), 1))
        raise AssertionError(f"{key} never got its session")

    async def misbehave() -> None:
        rng = random.Random(5)
        while not done.is_set():
            await asyncio.sleep(0.6)
            await asyncio.to_thread(stripe.faults, **TROUBLE, **rng.choice(SLOW_SPELLS))
            await asyncio.sleep(0.4)
            await asyncio.to_thread(stripe.faults, **TROUBLE)

    async def run() -> None:
        keys = [f"key-{secrets.token_hex(8)}" for _ in range(profile.creates)]
        queue: asyncio.Queue[str] = asyncio.Queue()
        for key in keys:
            queue.put_nowait(key)
        async with httpx.AsyncClient() as http:

            async def client() -> None:
                while not queue.empty():
                    await create(http, queue.get_nowait())

            await asyncio.to_thread(stripe.faults, **TROUBLE)
            trouble = asyncio.create_task(misbehave())
            await asyncio.gather(*(client() for _ in range(8)))
            done.set()
            await trouble

    try:
        asyncio.run(run())
    finally:
        replica.stop()
        stripe.faults()

    assert len(created) == profile.creates
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT id, stripe_session_id FROM onramp_sessions WHERE id = ANY(%s)",
            (list(created.values()),),
        ).fetchall()
    stripe_ids = [stripe_id for _, stripe_id in rows]
    assert len(rows) == profile.creates
    assert len(set(stripe_ids)) == profile.creates
    # Exactly one Stripe session per purchase: none made twice, none orphaned.
    assert set(stripe.simulator.sessions) == set(stripe_ids)
    # Trouble upstream is a clean 502/503/504 or a 409 while the same key is in flight.
    allowed = {"stripe_unavailable", "stripe_error", "idempotency_in_progress"}
    failures = {answer for answer in answers if answer[0] not in (200, 201)}
    assert all(status in (409, 502, 503, 504) and code in allowed for status, code in failures), (
        failures
    )
    assert failures, "the faults must have been felt"
    record_figures(
        creations=profile.creates,
        answers={f"{status} {code or ''}".strip(): n for (status, code), n in answers.items()},
        stripe_create_requests=stripe.stats()["createRequests"],
        stripe_sessions=len(stripe.simulator.sessions),
    )
