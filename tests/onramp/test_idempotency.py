"""Retries, duplicates, races and crashes around session creation: one Stripe session each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text

from service.columns import utcnow
from service.database import Database
from service.onramp import creation, stripe_answer
from service.onramp.idempotency_keys import IN_FLIGHT_TIMEOUT, KEY_LIFETIME
from service.onramp.models import OnrampSession
from service.onramp.rules import SessionRequest
from service.retention.job import run_retention
from service.settings import RetentionSettings
from tests.onramp.conftest import Caller, new_wallet, token_for
from tests.support.stripe import RunningStripe


async def local_sessions(database: Database) -> int:
    async with database.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(OnrampSession)) or 0)


async def test_the_same_key_and_body_replays_the_first_response(
    caller: Caller, stripe: RunningStripe
) -> None:
    first = await caller.create(key="order-1")
    again = await caller.create(key="order-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert stripe.stats()["sessionsCreated"] == 1


async def test_the_same_key_with_another_body_is_refused(
    caller: Caller, stripe: RunningStripe
) -> None:
    await caller.create(key="order-2")
    other = await caller.create(
        {"walletAddress": caller.wallet, "sourceAmount": "55.00"}, key="order-2"
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert stripe.stats()["sessionsCreated"] == 1


async def test_keys_belong_to_one_wallet(caller: Caller, stripe: RunningStripe) -> None:
    other = Caller(caller.client, new_wallet())
    first = (await caller.create(key="shared")).json()
    second = (await other.create(key="shared")).json()
    assert first["id"] != second["id"]
    assert stripe.stats()["sessionsCreated"] == 2


async def test_twenty_concurrent_requests_with_one_key_make_one_session(
    onramp_app: Litestar, stripe: RunningStripe, database: Database
) -> None:
    wallet = new_wallet()
    stripe.faults(latencyMs=300)
    transport = httpx.ASGITransport(app=onramp_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://onramp") as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/onramp/sessions",
                    json={"walletAddress": wallet, "sourceAmount": "100.00"},
                    headers={
                        "Authorization": f"Bearer {token_for(wallet)}",
                        "Idempotency-Key": "race",
                    },
                )
                for _ in range(20)
            )
        )
        stripe.faults()
        statuses = [r.status_code for r in responses]
        assert statuses.count(201) >= 1
        assert set(statuses) <= {201, 409}
        assert {r.json()["code"] for r in responses if r.status_code == 409} <= {
            "idempotency_key_in_use"
        }
        assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
        settled = await http.post(
            "/api/v1/onramp/sessions",
            json={"walletAddress": wallet, "sourceAmount": "100.00"},
            headers={"Authorization": f"Bearer {token_for(wallet)}", "Idempotency-Key": "race"},
        )
    assert settled.status_code == 201
    assert stripe.stats()["sessionsCreated"] == 1
    assert stripe.stats()["createRequests"] == 1
    assert await local_sessions(database) == 1


@pytest.mark.parametrize("fault", [{"fail": 1}, {"dropBefore": 1}, {"dropAfter": 1}])
async def test_a_failed_first_attempt_is_resumed_by_the_retry(
    caller: Caller, stripe: RunningStripe, database: Database, fault: dict[str, int]
) -> None:
    stripe.faults(**fault)
    failed = await caller.create(key="flaky")
    assert failed.status_code == 502
    assert failed.json()["code"] == "stripe_unavailable"
    retried = await caller.create(key="flaky")
    assert retried.status_code == 201, retried.text
    # dropAfter: Stripe made the session, the answer was lost; the retry finds the same one.
    assert stripe.stats()["sessionsCreated"] == 1
    assert await local_sessions(database) == 1
    assert retried.json()["stripeSessionId"] in stripe.simulator.sessions


async def test_the_sdk_retries_transient_failures_within_one_request(
    make_onramp_app: Callable[..., Litestar], stripe: RunningStripe
) -> None:
    app = make_onramp_app(STRIPE_MAX_NETWORK_RETRIES="2")
    async with AsyncTestClient(app=app) as client:
        stripe.faults(dropAfter=1)
        response = await Caller(client, new_wallet()).create()
    assert response.status_code == 201
    assert stripe.stats()["sessionsCreated"] == 1


async def test_a_crash_after_stripe_answered_is_recovered_by_the_next_retry(
    caller: Caller,
    stripe: RunningStripe,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = stripe_answer.apply_stripe_session

    def crash(*_: Any) -> bool:
        raise RuntimeError("process died between Stripe's answer and the local update")

    monkeypatch.setattr(creation, "apply_stripe_session", crash)
    crashed = await caller.create(key="crash")
    assert crashed.status_code == 500
    assert stripe.stats()["sessionsCreated"] == 1
    monkeypatch.setattr(creation, "apply_stripe_session", real)
    retried = await caller.create(key="crash")
    assert retried.status_code == 201
    assert stripe.stats()["sessionsCreated"] == 1
    assert await local_sessions(database) == 1


async def test_a_key_held_by_a_killed_process_is_taken_over_after_a_minute(
    caller: Caller,
    stripe: RunningStripe,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A SIGKILL releases nothing: the key stays locked until it is presumed dead."""

    async def nothing_runs(*_: Any) -> None:
        return None

    def dies(*_: Any) -> bool:
        raise RuntimeError("killed")

    monkeypatch.setattr(creation.SessionCreation, "_release", nothing_runs)
    monkeypatch.setattr(creation, "apply_stripe_session", dies)
    assert (await caller.create(key="killed")).status_code == 500
    monkeypatch.undo()
    busy = await caller.create(key="killed")
    assert busy.status_code == 409
    async with database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE idempotency_keys SET locked_at = :t WHERE key = 'killed'"),
            {"t": utcnow() - IN_FLIGHT_TIMEOUT * 2},
        )
    recovered = await caller.create(key="killed")
    assert recovered.status_code == 201
    assert stripe.stats()["sessionsCreated"] == 1
    assert await local_sessions(database) == 1


async def test_a_stripe_refusal_is_final_and_replayed(
    caller: Caller, stripe: RunningStripe
) -> None:
    first = await caller.create(key="refused", forwarded_for="203.0.113.20")
    again = await caller.create(key="refused", forwarded_for="203.0.113.20")
    assert first.status_code == again.status_code == 422
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert stripe.stats()["createRequests"] == 1


async def test_keys_expire_after_a_day(
    caller: Caller, stripe: RunningStripe, database: Database
) -> None:
    await caller.create(key="old")
    async with database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE idempotency_keys SET created_at = :t WHERE key = 'old'"),
            {"t": utcnow() - KEY_LIFETIME * 2},
        )
    reused = await caller.create(
        {"walletAddress": caller.wallet, "sourceAmount": "42.00"}, key="old"
    )
    assert reused.status_code == 201
    assert stripe.stats()["sessionsCreated"] == 2


async def test_a_creation_deletes_no_expired_keys_the_retention_job_does(
    caller: Caller, database: Database
) -> None:
    expired = [{"key": f"expired-{i}", "t": utcnow() - KEY_LIFETIME * 2} for i in range(200)]
    async with database.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO idempotency_keys (wallet_address, key, fingerprint, created_at)"
                " VALUES ('0xabc', :key, 'f', :t)"
            ),
            expired,
        )

    async def expired_keys() -> int:
        async with database.engine.connect() as connection:
            found = await connection.scalar(
                text("SELECT count(*) FROM idempotency_keys WHERE key LIKE 'expired-%'")
            )
            return int(found or 0)

    assert (await caller.create(key="fresh")).status_code == 201
    assert await expired_keys() == 200
    await run_retention(database, RetentionSettings(), now=utcnow())
    assert await expired_keys() == 0


async def test_an_idempotency_key_longer_than_255_characters_is_refused(caller: Caller) -> None:
    response = await caller.create(key="k" * 256)
    assert response.status_code == 400


async def test_a_retry_from_another_address_resumes_with_the_first_address(
    caller: Caller, stripe: RunningStripe, database: Database
) -> None:
    stripe.faults(dropAfter=1)
    first = await caller.create(key="moving", forwarded_for="198.51.100.7")
    assert first.status_code == 502
    retried = await caller.create(key="moving", forwarded_for="198.51.100.8")
    assert retried.status_code == 201, retried.text
    assert stripe.stats()["sessionsCreated"] == 1
    sent = stripe.simulator.create_params[retried.json()["stripeSessionId"]]
    assert sent["customer_ip_address"] == "198.51.100.7"
    assert await local_sessions(database) == 1


def test_a_requests_fingerprint_is_the_hash_keys_were_claimed_under() -> None:
    """Keys claimed before must still match their retries: the JSON of the set fields,
    sorted, hashed (these digests were computed by the first version, through asdict)."""
    wallet = "0x52908400098527886E0F7030069857D2E4169EE7"
    by_source = SessionRequest(wallet, "100.00", "usd", "musd", "mezo")
    by_destination = SessionRequest(wallet, None, "usd", "musd", "mezo", "5.00")
    assert by_source.fingerprint() == (
        "d46a5c576934696664bd9f2d8e2767992c5f5ab62793d752bf1996e1757777ce"
    )
    assert by_destination.fingerprint() == (
        "6792a02a547749a72a513422e414313638e73995b7c251fc670adea51ac91e67"
    )
