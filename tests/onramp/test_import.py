"""`onramp sessions import`: sessions lost locally (a restore) come back from Stripe's
list under their own ids, once."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.reconciliation.imports import session_from_stripe
from tests.onramp.conftest import Caller
from tests.onramp.test_replay import cli_env
from tests.support.orm import run_sql
from tests.support.processes import run_onramp
from tests.support.stripe import RunningStripe

SINCE = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")


def import_sessions(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, Any]:
    result = run_onramp("sessions", "import", "--json", *args, cwd=tmp_path, **env)
    return result.returncode, json.loads(result.stdout) if result.stdout else result.stderr


async def test_lost_sessions_come_back_under_their_ids_once(
    caller: Caller, stripe: RunningStripe, database_url: str, tmp_path: Path
) -> None:
    kept, lost, paid = [(await caller.create()).json() for _ in range(3)]
    tx = "0x" + secrets.token_hex(32)
    stripe.advance(paid["stripeSessionId"], "fulfillment_complete", transactionId=tx)
    stripe.advance(kept["stripeSessionId"], "requires_payment")  # its webhook lost too
    foreign = dict(stripe.simulator.sessions[lost["stripeSessionId"]], id="cos_foreign")
    stripe.simulator.load([foreign | {"metadata": {}}])
    for forgotten in (lost, paid):
        delete = "DELETE FROM onramp_sessions WHERE id = :id RETURNING id"
        await run_sql(database_url, delete, id=forgotten["id"])
    env = cli_env(database_url, stripe)

    code, preview = import_sessions(tmp_path, env, "--since", SINCE, "--dry-run")
    assert code == 0
    outcomes = {row["stripe_session_id"]: row["outcome"] for row in preview}
    assert outcomes == {
        lost["stripeSessionId"]: "imported",
        paid["stripeSessionId"]: "imported",
        kept["stripeSessionId"]: "updated",
        "cos_foreign": "not_ours",
    }
    assert (await caller.get(f"/api/v1/onramp/sessions/{lost['id']}")).status_code == 404

    code, report = import_sessions(tmp_path, env, "--since", SINCE)
    assert code == 0
    assert {row["stripe_session_id"]: row["outcome"] for row in report} == outcomes
    back = (await caller.get(f"/api/v1/onramp/sessions/{paid['id']}")).json()
    assert back["stripeSessionId"] == paid["stripeSessionId"]
    assert (back["status"], back["transactionHash"]) == ("fulfillment_complete", tx)
    assert back["delivery"]["status"] == "pending"
    assert back["fees"] == {"networkFeeAmount": "0.01", "transactionFeeAmount": "1.50"}
    assert back["clientSecret"] == paid["clientSecret"]
    assert (await caller.get(f"/api/v1/onramp/sessions/{lost['id']}")).json()["status"] == (
        "initialized"
    )
    kept_now = (await caller.get(f"/api/v1/onramp/sessions/{kept['id']}")).json()
    assert kept_now["status"] == "requires_payment"
    checks = await run_sql(database_url, "SELECT onramp_session_id FROM delivery_checks")
    assert checks == [(paid["id"],)]

    code, again = import_sessions(tmp_path, env, "--since", SINCE)
    assert code == 0
    assert {row["outcome"] for row in again} == {"present", "not_ours"}
    listed = (await caller.get("/api/v1/onramp/sessions")).json()["items"]
    assert sorted(item["id"] for item in listed) == sorted(s["id"] for s in (kept, lost, paid))


async def test_a_session_whose_create_never_stored_stripes_answer_gets_it(
    caller: Caller, stripe: RunningStripe, database_url: str, tmp_path: Path
) -> None:
    half_made, kept = (await caller.create()).json(), (await caller.create()).json()
    await run_sql(
        database_url,
        "UPDATE onramp_sessions SET stripe_session_id = NULL, client_secret = NULL"
        " WHERE id = :id RETURNING id",
        id=half_made["id"],
    )
    stripe.advance(half_made["stripeSessionId"], "requires_payment")
    second = dict(stripe.simulator.sessions[kept["stripeSessionId"]], id="cos_second")
    stripe.simulator.load([second])
    assert (await caller.get(f"/api/v1/onramp/sessions/{half_made['id']}")).status_code == 404
    env = cli_env(database_url, stripe)

    code, report = import_sessions(tmp_path, env, "--since", SINCE)
    assert code == 0
    assert {row["stripe_session_id"]: row["outcome"] for row in report} == {
        half_made["stripeSessionId"]: "updated",
        kept["stripeSessionId"]: "present",
        "cos_second": "duplicate",
    }
    back = (await caller.get(f"/api/v1/onramp/sessions/{half_made['id']}")).json()
    assert back["stripeSessionId"] == half_made["stripeSessionId"]
    assert (back["status"], back["clientSecret"]) == ("requires_payment", half_made["clientSecret"])
    kept_now = (await caller.get(f"/api/v1/onramp/sessions/{kept['id']}")).json()
    assert kept_now["stripeSessionId"] == kept["stripeSessionId"]


async def test_a_range_that_ends_before_it_starts_is_refused(
    stripe: RunningStripe, migrated: dict[str, str], tmp_path: Path
) -> None:
    env = cli_env(migrated["sqlite"], stripe)
    result = run_onramp(
        "sessions", "import", "--since", SINCE, "--until", "2000-01-01", cwd=tmp_path, **env
    )
    assert result.returncode == 2
    assert "--until must be after --since" in result.stderr


GOOD: dict[str, Any] = {
    "id": "cos_1",
    "object": "crypto.onramp_session",
    "status": "requires_payment",
    "created": 1_790_000_000,
    "livemode": False,
    "transaction_details": {
        "wallet_address": "0x52908400098527886e0f7030069857d2e4169ee7",
        "source_amount": "10.00",
        "source_currency": "usd",
        "destination_currency": "musd",
        "destination_network": "mezo",
    },
}


def test_a_stripe_session_becomes_ours_under_our_id() -> None:
    row = session_from_stripe(GOOD, "ors_x")
    assert (row.id, row.stripe_session_id, row.status) == ("ors_x", "cos_1", "requires_payment")
    assert row.wallet_address == "0x52908400098527886E0F7030069857D2E4169EE7"
    assert row.created_at == datetime.fromtimestamp(1_790_000_000, UTC)


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ({"status": "paid"}, "unknown status"),
        (
            {"transaction_details": {**GOOD["transaction_details"], "wallet_address": None}},
            "no wallet address",
        ),
        (
            {"transaction_details": {**GOOD["transaction_details"], "source_currency": ""}},
            "no currencies",
        ),
        ({"object": "checkout.session"}, "not an onramp session"),
    ],
)
def test_a_stripe_object_without_what_a_session_needs_is_refused(
    broken: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        session_from_stripe(GOOD | broken, "ors_x")
