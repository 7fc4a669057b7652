"""Operator routes on the real app: named and read-only keys, the limit on wrong keys,
and the audit trail each call that changes something leaves (GET /api/v1/admin/audit)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.audit import repository
from service.audit.actions import Outcome
from service.audit.models import ActionRecord
from service.columns import utcnow
from service.database import Database
from service.delivery import checks
from service.pages import encode_cursor
from service.settings import DatabaseSettings
from tests.audit.conftest import (
    BARE_NAME,
    BARE_SECRET,
    READER_SECRET,
    WRITER_SECRET,
    assert_no_secret,
    key,
    stored_rows,
    trail,
)
from tests.onramp.conftest import Caller
from tests.support.stripe import RunningStripe

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


async def test_guessing_keys_closes_every_key_to_that_client_network_for_the_minute(
    operators: AsyncTestClient[Litestar],
) -> None:
    guesser, neighbour, other = "203.0.113.7", "203.0.113.8", "2001:db8:1:2::7"
    listing = "/api/v1/admin/sessions"
    for _ in range(5):  # a right key spends nothing
        assert (
            await operators.get(listing, headers=key(WRITER_SECRET, guesser))
        ).status_code == 200
    for headers, status in (
        (key("guess-1", guesser), 403),
        ({"X-Forwarded-For": guesser}, 401),
        (key("guess-2", other), 403),  # another network's budget
        (key("guess-3", guesser), 403),
    ):
        assert (await operators.get(listing, headers=headers)).status_code == status
    for secret in ("guess-4", WRITER_SECRET, READER_SECRET):
        refused = await operators.get(listing, headers=key(secret, guesser))
        assert refused.status_code == 429, secret
        assert refused.json()["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    sync = await operators.post(
        "/api/v1/admin/sessions/ors_01J0000000000000000000000/sync",
        headers=key(WRITER_SECRET, guesser),
    )
    assert sync.status_code == 429
    assert (await operators.get(listing, headers=key(WRITER_SECRET, neighbour))).status_code == 200
    same_64 = "2001:db8:1:2::8"  # one /64 is one client: `other`'s budget
    assert (await operators.get(listing, headers=key("guess-5", same_64))).status_code == 403
    assert (await operators.get(listing, headers=key(WRITER_SECRET, same_64))).status_code == 200
    assert (await operators.get(listing, headers=key("guess-6", other))).status_code == 403
    assert (await operators.get(listing, headers=key(WRITER_SECRET, other))).status_code == 429


async def test_a_read_only_key_reads_and_is_refused_a_sync_which_is_audited(
    caller: Caller, stripe: RunningStripe, database_url: str
) -> None:
    created = (await caller.create()).json()
    stripe.advance(created["stripeSessionId"], "requires_payment")
    reader = key(READER_SECRET, "198.51.100.20")
    listed = await caller.client.get("/api/v1/admin/sessions", headers=reader)
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]

    sync = f"/api/v1/admin/sessions/{created['id']}/sync"
    refused = await caller.client.post(sync, headers=reader)
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
    owner_view = await caller.get(f"/api/v1/onramp/sessions/{created['id']}")
    assert owner_view.json()["status"] == "initialized"
    [row] = (await trail(caller.client)).json()["items"]
    assert {k: row[k] for k in ("actor", "action", "target", "outcome", "clientIp")} == {
        "actor": "auditor",
        "action": "sessions.sync",
        "target": created["id"],
        "outcome": "refused",
        "clientIp": "198.51.100.20",
    }
    assert row["detail"] == "a read-only key"
    assert_no_secret(await stored_rows(database_url))


async def test_named_and_bare_keys_are_named_in_the_trail_without_their_secrets(
    caller: Caller, stripe: RunningStripe, database_url: str
) -> None:
    created = (await caller.create()).json()
    sync = f"/api/v1/admin/sessions/{created['id']}/sync"
    stripe.advance(created["stripeSessionId"], "requires_payment")
    named = await caller.client.post(sync, headers=key(WRITER_SECRET, "198.51.100.30"))
    assert named.json()["status"] == "requires_payment"
    bare = await caller.client.post(sync, headers=key(BARE_SECRET, "198.51.100.31"))
    assert bare.status_code == 200
    items = (await trail(caller.client)).json()["items"]
    assert [(i["actor"], i["outcome"], i["detail"], i["clientIp"]) for i in items] == [
        (BARE_NAME, "ok", "superseded: requires_payment -> requires_payment", "198.51.100.31"),
        ("alice", "ok", "applied: initialized -> requires_payment", "198.51.100.30"),
    ]
    assert {(i["action"], i["target"]) for i in items} == {("sessions.sync", created["id"])}
    rows = await stored_rows(database_url)
    assert len(rows) == 2
    assert_no_secret(rows)


async def test_a_sync_that_fails_or_rolls_back_leaves_one_failed_row_and_no_change(
    caller: Caller, stripe: RunningStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = (await caller.create()).json()
    sync = f"/api/v1/admin/sessions/{created['id']}/sync"
    writer = key(WRITER_SECRET)
    stripe.faults(fail=1)
    assert (await caller.client.post(sync, headers=writer)).status_code == 502

    async def broken(*_: Any) -> None:
        raise RuntimeError("the delivery check could not be scheduled")

    stripe.advance(
        created["stripeSessionId"], "fulfillment_complete", transactionId="0x" + "a" * 64
    )
    monkeypatch.setattr(
        checks, "schedule_check", broken
    )  # after the session moved, in its transaction
    assert (await caller.client.post(sync, headers=writer)).status_code == 500
    owner_view = await caller.get(f"/api/v1/onramp/sessions/{created['id']}")
    assert owner_view.json()["status"] == "initialized"
    items = (await trail(caller.client)).json()["items"]
    assert [(i["outcome"], i["detail"].split(":")[0]) for i in items] == [
        ("failed", "RuntimeError"),
        ("failed", "stripe_unavailable"),
    ]


async def test_the_trail_pages_newest_first_from_a_moment_on(
    operators: AsyncTestClient[Litestar], database_url: str
) -> None:
    start = utcnow().replace(microsecond=0) - timedelta(hours=1)
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    try:
        async with database.transaction() as sql:
            for minute in range(5):  # ids in the order of their times, as new_id makes them
                await repository.insert_action(
                    sql,
                    ActionRecord(
                        id=f"opa_{'0' * 25}{minute}",
                        at=start + timedelta(minutes=minute),
                        actor="alice",
                        action="webhooks.prune",
                        target=None,
                        outcome=Outcome.OK,
                        detail=f"minute {minute}",
                        client_ip=None,
                    ),
                )
    finally:
        await database.dispose()

    def minutes(page: dict[str, Any]) -> list[int]:
        return [int(item["detail"].split()[1]) for item in page["items"]]

    first = (await trail(operators, limit=2)).json()
    newest = f"{start + timedelta(minutes=4):%Y-%m-%dT%H:%M:%S}Z"
    assert (minutes(first), first["items"][0]["at"]) == ([4, 3], newest)
    second = (await trail(operators, limit=2, cursor=first["nextCursor"])).json()
    third = (await trail(operators, limit=2, cursor=second["nextCursor"])).json()
    assert (minutes(second), minutes(third), third["nextCursor"]) == ([2, 1], [0], None)
    since = start + timedelta(minutes=3)
    for given in (since.isoformat(), f"{since:%Y-%m-%dT%H:%M:%S}Z"):
        assert minutes((await trail(operators, since=given)).json()) == [4, 3]
    for params, code in (
        ({"cursor": "nonsense"}, "invalid_cursor"),
        ({"cursor": encode_cursor(f"ors_{'0' * 26}")}, "invalid_cursor"),  # a session's
        ({"since": "yesterday"}, "invalid_since"),
        ({"since": "0.5"}, "invalid_since"),  # not a timestamp either
        ({"since": f"{since:%Y-%m-%dT%H:%M:%S}"}, "invalid_since"),  # no zone: which moment?
        ({"limit": "101"}, "invalid_request"),
    ):
        bad = await operators.get("/api/v1/admin/audit", params=params, headers=key(READER_SECRET))
        assert (bad.status_code, bad.json()["code"]) == (400, code)
    no_key = await operators.get("/api/v1/admin/audit", headers={"X-Forwarded-For": "192.0.2.9"})
    assert no_key.status_code == 401
