"""PostgreSQL going away under load: clean 503s, recovery without a restart, nothing
acknowledged lost."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import POSTGRES_ADMIN_URL
from tests.onramp.conftest import token_for
from tests.support.processes import OnrampProcess, service_env
from tests.support.profile import Profile
from tests.support.storm import Delivery, insert_sessions, make_storm, send_storm, stored_outcome
from tests.support.webhooks import WEBHOOK_SECRET, encode, onramp_event, sign

WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"


def take_database_down(database_url: str) -> None:
    """Refuse new connections and end every open one, as a failover or a restart does."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


def bring_database_back(database_url: str) -> None:
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


def test_requests_fail_cleanly_while_postgresql_is_down_and_recover_without_a_restart(
    tmp_path: Path,
    own_postgres: str,
    profile: Profile,
    record_figures: Callable[..., None],
) -> None:
    sessions = insert_sessions(own_postgres, 200 * (profile.outage_rounds + 1))
    storm = make_storm(sessions, seed=3, duplicates=0)
    env = service_env(
        own_postgres, DATABASE_POOL_TIMEOUT_SECONDS="2", DATABASE_CONNECT_TIMEOUT_SECONDS="1"
    )
    replica = OnrampProcess(tmp_path, "serve", **env)
    replica.start()
    writes = Delivery()
    reads: list[tuple[float, int, str | None]] = []
    outages: list[tuple[float, float]] = []
    done = asyncio.Event()

    async def read_sessions(http: httpx.AsyncClient) -> None:
        """A dApp polling its session meanwhile, through the ORM's own pool."""
        headers = {"Authorization": f"Bearer {token_for(WALLET)}"}
        url = f"{replica.url}/api/v1/onramp/sessions/{sessions[0][0]}"
        while not done.is_set():
            response = await http.get(url, headers=headers, timeout=30)
            code = None if response.is_success else response.json().get("code")
            reads.append((time.monotonic(), response.status_code, code))
            await asyncio.sleep(0.05)

    async def outages_meanwhile() -> None:
        for round_ in range(profile.outage_rounds):
            target = len(storm.events) * (round_ + 1) // (profile.outage_rounds + 1)
            await writes.until_acknowledged(target)
            down = time.monotonic()
            await asyncio.to_thread(take_database_down, own_postgres)
            await asyncio.sleep(profile.outage_seconds)
            await asyncio.to_thread(bring_database_back, own_postgres)
            outages.append((down, time.monotonic()))

    async def run() -> None:
        url = f"{replica.url}/api/v1/webhooks/stripe"
        async with httpx.AsyncClient() as http:
            reader = asyncio.create_task(read_sessions(http))
            await asyncio.gather(send_storm(storm.events, [url], 8, writes), outages_meanwhile())
            done.set()
            await reader

    try:
        asyncio.run(run())
        assert replica.process is not None
        assert replica.process.poll() is None, "the service must ride out the outage"
    finally:
        replica.stop()

    # While down: only 503 `database_unavailable`, for writes and reads alike.
    assert set(writes.statuses) <= {200, 503}
    assert set(writes.problem_codes) == {"database_unavailable"}
    assert writes.transport_errors == 0
    assert {(status, code) for _, status, code in reads} <= {
        (200, None),
        (503, "database_unavailable"),
    }
    # Every outage was felt, and the service recovered after each.
    windows = []
    for (down, up), next_down in zip(outages, [t for t, _ in outages[1:]] + [1e12], strict=True):
        failed = sorted(
            [t for t, _ in writes.failures if down <= t < next_down]
            + [t for t, status, _ in reads if down <= t < next_down and status != 200]
        )
        assert failed, "an outage that nobody noticed tests nothing"
        read_again = [t for t, status, _ in reads if t > up and status == 200]
        written_again = [t for t in writes.acknowledged_at if t > up]
        assert read_again, "reads must succeed again without a restart"
        assert written_again, "writes must succeed again without a restart"
        # The hot path's pool must not sit out a long reconnection back-off.
        assert written_again[0] - up < 2.0
        windows.append(
            {
                "first_to_last_failure_s": round(failed[-1] - failed[0], 2),
                "back_to_first_read_s": round(read_again[0] - up, 2),
                "back_to_first_write_s": round(written_again[0] - up, 2),
            }
        )
    # Nothing acknowledged is lost; Stripe's retries bring in the rest.
    outcome = stored_outcome(own_postgres, sessions)
    acknowledged = {json.loads(body)["id"] for body in writes.acknowledged_bodies}
    with psycopg.connect(own_postgres) as connection:
        stored_ids = {row[0] for row in connection.execute("SELECT id FROM webhook_events")}
    assert acknowledged <= stored_ids
    assert outcome.statuses == storm.expected
    assert outcome.events == (storm.distinct, storm.distinct)
    assert outcome.unprocessed == 0
    record_figures(
        events=len(storm.events),
        outages=len(outages),
        outage_seconds=profile.outage_seconds,
        write_answers=writes.statuses,
        read_answers={
            str(s): sum(1 for _, x, _ in reads if x == s) for s in {x for _, x, _ in reads}
        },
        recovery=windows,
    )


async def test_a_read_only_database_after_a_failover_answers_503(
    own_postgres: str, make_client: Callable[..., AsyncTestClient[Litestar]]
) -> None:
    """Writes on a standby fail as `database_unavailable` (retry), not as a 500."""
    name = own_postgres.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    body = encode(onramp_event("cos_standby", "requires_payment"))
    async with make_client(
        DATABASE_URL=own_postgres, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET
    ) as client:
        webhook = await client.post(
            "/api/v1/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body)}
        )
        nonce = await client.post("/api/v1/auth/nonce", json={"walletAddress": WALLET})
    for response in (webhook, nonce):
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "database_unavailable"
