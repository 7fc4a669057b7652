"""The operators' routes: every wallet's sessions without secrets, and reconciling one."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from service.database import Database
from service.delivery.models import DeliveryCheck
from service.settings import DatabaseSettings
from tests.onramp.conftest import ADMIN_KEY, Caller, new_wallet
from tests.support.orm import orm_session
from tests.support.stripe import RunningStripe

OPS = {"X-API-Key": ADMIN_KEY}


async def test_operators_list_all_wallets_without_client_secrets(
    client: AsyncTestClient[Litestar],
) -> None:
    first, second = Caller(client, new_wallet()), Caller(client, new_wallet())
    a = (await first.create()).json()
    b = (await second.create()).json()
    listed = await client.get("/api/v1/admin/sessions", headers=OPS)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [item["id"] for item in items] == [b["id"], a["id"]]
    assert all("clientSecret" not in item for item in items)
    assert a["clientSecret"] not in listed.text
    only_first = await client.get(
        "/api/v1/admin/sessions", params={"wallet": first.wallet.lower()}, headers=OPS
    )
    assert [item["id"] for item in only_first.json()["items"]] == [a["id"]]
    bad_wallet = await client.get("/api/v1/admin/sessions", params={"wallet": "0x1"}, headers=OPS)
    assert bad_wallet.status_code == 400


async def test_operator_routes_refuse_wallets_and_missing_keys(caller: Caller) -> None:
    created = (await caller.create()).json()
    assert (await caller.client.get("/api/v1/admin/sessions")).status_code == 401
    assert (await caller.get("/api/v1/admin/sessions")).status_code == 403
    wrong = await caller.client.get("/api/v1/admin/sessions", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 403
    sync = await caller.client.post(
        f"/api/v1/admin/sessions/{created['id']}/sync", headers=caller.headers
    )
    assert sync.status_code == 403


async def test_sync_brings_a_session_forward_from_stripe_and_never_back(
    caller: Caller, stripe: RunningStripe
) -> None:
    created = (await caller.create()).json()
    path = f"/api/v1/admin/sessions/{created['id']}/sync"
    stripe.advance(created["stripeSessionId"], "requires_payment")
    assert (await caller.client.post(path, headers=OPS)).json()["status"] == "requires_payment"

    tx = "0x" + "ab" * 32
    stripe.advance(
        created["stripeSessionId"],
        "fulfillment_complete",
        transactionId=tx,
        destinationAmount="98.49",
    )
    synced = (await caller.client.post(path, headers=OPS)).json()
    assert synced["status"] == "fulfillment_complete"
    assert synced["transactionHash"] == tx
    assert synced["destinationAmount"] == "98.49"
    assert "clientSecret" not in synced

    stripe.advance(created["stripeSessionId"], "requires_payment")
    again = (await caller.client.post(path, headers=OPS)).json()
    assert again["status"] == "fulfillment_complete"
    owner_view = (await caller.get(f"/api/v1/onramp/sessions/{created['id']}")).json()
    assert owner_view["status"] == "fulfillment_complete"
    assert owner_view["transactionHash"] == tx


async def test_sync_of_an_unknown_session_is_404_and_stripe_outage_is_502(
    caller: Caller, stripe: RunningStripe
) -> None:
    missing = await caller.client.post(
        "/api/v1/admin/sessions/ors_01JZZZZZZZZZZZZZZZZZZZZZZZ/sync", headers=OPS
    )
    assert missing.status_code == 404
    created = (await caller.create()).json()
    stripe.faults(fail=1)
    down = await caller.client.post(f"/api/v1/admin/sessions/{created['id']}/sync", headers=OPS)
    assert down.status_code == 502


async def test_sync_has_a_fulfilled_sessions_delivery_checked_again(
    caller: Caller, stripe: RunningStripe, database_url: str
) -> None:
    created = (await caller.create()).json()
    stripe.advance(
        created["stripeSessionId"], "fulfillment_complete", transactionId="0x" + "cd" * 32
    )
    path = f"/api/v1/admin/sessions/{created['id']}/sync"
    await caller.client.post(path, headers=OPS)
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    async with database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE delivery_checks SET finished_at = due_at WHERE onramp_session_id = :id"),
            {"id": created["id"]},
        )
    await caller.client.post(path, headers=OPS)
    async with orm_session(database) as db:
        check = await db.get(DeliveryCheck, created["id"])
    await database.dispose()
    assert check is not None
    assert check.finished_at is None
