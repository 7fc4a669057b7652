"""`onramp reconcile` over the real database and the Stripe stand-in: each kind of drift
built for real and found in the report, in every format, with totals, chart and gauges."""

from __future__ import annotations

import csv
import io
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.onramp.conftest import Caller
from tests.onramp.test_replay import cli_env
from tests.support.orm import run_sql
from tests.support.processes import run_onramp
from tests.support.stripe import RunningStripe

SINCE = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")


def reconcile(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    result = run_onramp("reconcile", "--since", SINCE, *args, cwd=tmp_path, **env)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, result.stdout


async def fulfilled(
    caller: Caller, stripe: RunningStripe, database_url: str, tx: str | None = None
) -> dict[str, Any]:
    """A session fulfilled at Stripe and delivered here, as its webhook and the delivery
    worker would have left it."""
    created = (await caller.create()).json()
    tx = tx or "0x" + secrets.token_hex(32)
    stripe.advance(created["stripeSessionId"], "fulfillment_complete", transactionId=tx)
    await set_columns(
        database_url,
        created["id"],
        status="fulfillment_complete",
        transaction_hash=tx,
        destination_amount="98.49",
        network_fee_amount="0.01",
        transaction_fee_amount="1.50",
        delivery_status="confirmed",
        delivered_amount="98.49",
    )
    return dict(created, transactionHash=tx)


async def set_columns(database_url: str, session_id: str, **columns: Any) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    statement = f"UPDATE onramp_sessions SET {assignments} WHERE id = :id RETURNING id"  # noqa: S608 - names are the test's own
    await run_sql(database_url, statement, id=session_id, **columns)


async def test_each_kind_of_drift_is_found_and_reported(
    caller: Caller, stripe: RunningStripe, database_url: str, tmp_path: Path
) -> None:
    # The day the sessions are made on (read at collection, a run past midnight had
    # the day before).
    today = datetime.now(UTC).date().isoformat()
    expected: dict[str, list[str]] = {}

    agreed = await fulfilled(caller, stripe, database_url)
    expected[agreed["id"]] = []

    lost = (await caller.create()).json()
    await run_sql(
        database_url, "DELETE FROM onramp_sessions WHERE id = :id RETURNING id", id=lost["id"]
    )
    expected[lost["id"]] = ["missing_locally"]

    unknown = (await caller.create()).json()
    del stripe.simulator.sessions[unknown["stripeSessionId"]]
    expected[unknown["id"]] = ["missing_at_stripe"]

    behind = (await caller.create()).json()
    stripe.advance(behind["stripeSessionId"], "requires_payment")  # no webhook sent
    expected[behind["id"]] = ["stripe_ahead"]

    ahead = (await caller.create()).json()
    await set_columns(database_url, ahead["id"], status="requires_payment")
    expected[ahead["id"]] = ["local_ahead"]

    rejected_here = await fulfilled(caller, stripe, database_url)
    await set_columns(database_url, rejected_here["id"], status="rejected")
    expected[rejected_here["id"]] = ["status_differs"]

    for changes, kind in (
        ({"source_amount": "90.00"}, "amount_differs"),
        ({"transaction_fee_amount": "2.00"}, "fees_differ"),
        ({"transaction_hash": "0x" + "cd" * 32}, "transaction_differs"),
        ({"delivery_status": "failed", "delivered_amount": None}, "fulfilled_not_delivered"),
    ):
        session = await fulfilled(caller, stripe, database_url)
        await set_columns(database_url, session["id"], **changes)
        expected[session["id"]] = [kind]

    short = await fulfilled(caller, stripe, database_url)
    await set_columns(database_url, short["id"], delivery_status="mismatch", delivered_amount="50")
    expected[short["id"]] = ["delivered_short"]

    twice = await fulfilled(caller, stripe, database_url, tx=agreed["transactionHash"])
    await set_columns(database_url, twice["id"], delivery_status="pending", delivered_amount=None)
    expected[twice["id"]] = ["transfer_reused"]

    half_made = (await caller.create()).json()
    await set_columns(database_url, half_made["id"], stripe_session_id=None, client_secret=None)
    expected[half_made["id"]] = ["stripe_id_not_stored"]

    original = stripe.simulator.sessions[agreed["stripeSessionId"]]
    stripe.simulator.load([dict(original, id="cos_second_for_one_of_ours")])
    duplicate = ["duplicate_at_stripe"]

    env = cli_env(database_url, stripe)
    chart, gauges = tmp_path / "drift.png", tmp_path / "onramp.prom"
    code, text = reconcile(
        tmp_path, env, "--format", "json", "--chart", str(chart), "--metrics-file", str(gauges)
    )
    assert code == 1
    body = json.loads(text)
    found = {row["session_id"]: row["drift"] for row in body["drift"]}
    assert found == {session_id: kinds for session_id, kinds in expected.items() if kinds} | {
        agreed["id"]: duplicate  # the second Stripe session, under the id it names
    }
    assert body["compared"] == len(expected) + 1
    assert body["driftByKind"]["stripe_ahead"] == 1
    complete = [t for t in body["totals"] if t["status"] == "fulfillment_complete"]
    assert complete == [
        {
            "day": today,
            "status": "fulfillment_complete",
            "source_currency": "usd",
            "destination_currency": "musd",
            "sessions": 9,  # with the second Stripe session
            "source_amount": "900.00",  # Stripe's word, where ours differs
            "fees": "13.59",
            "delivered_amount": "542.45",  # 5 x 98.49 + 50
            "drifted": 8,
        }
    ]
    assert chart.read_bytes().startswith(b"\x89PNG")
    metrics = gauges.read_text()
    assert 'onramp_reconcile_drift_sessions{kind="transfer_reused"} 1.0' in metrics
    assert "onramp_reconcile_sessions 14.0" in metrics

    sheet = tmp_path / "sessions.csv"
    code, _ = reconcile(tmp_path, env, "--format", "csv", "--output", str(sheet))
    assert code == 1
    rows = list(csv.DictReader(io.StringIO(sheet.read_text())))
    second = [r for r in rows if r["stripe_session_id"] == "cos_second_for_one_of_ours"]
    assert [r["drift"] for r in second] == ["duplicate_at_stripe"]
    assert {r["session_id"]: r["drift"].split() for r in rows if r not in second} == expected

    code, table = reconcile(tmp_path, env)
    assert code == 1
    assert "14 sessions compared, 13 with drift" in table


async def test_a_range_in_agreement_exits_zero(
    caller: Caller, stripe: RunningStripe, database_url: str, tmp_path: Path
) -> None:
    await fulfilled(caller, stripe, database_url)
    waiting = (await caller.create()).json()
    stripe.advance(waiting["stripeSessionId"], "requires_payment")
    await set_columns(database_url, waiting["id"], status="requires_payment")
    code, text = reconcile(tmp_path, cli_env(database_url, stripe), "--format", "json")
    assert code == 0, text
    assert json.loads(text)["drifted"] == 0


async def test_a_report_that_cannot_be_made_exits_3_not_1(
    caller: Caller, stripe: RunningStripe, database_url: str, tmp_path: Path
) -> None:
    await caller.create()
    stripe.faults(fail=100, failStatus=503)
    result = run_onramp(
        "reconcile", "--since", SINCE, cwd=tmp_path, **cli_env(database_url, stripe)
    )
    assert result.returncode == 3
    assert "onramp: Stripe: Stripe could not be reached" in result.stderr
