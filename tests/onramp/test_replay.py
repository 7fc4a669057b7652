"""`onramp sessions replay` and `sessions list`: repairing state from Stripe's own word."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.onramp.conftest import Caller
from tests.support.processes import run_onramp
from tests.support.stripe import RunningStripe


def cli_env(database_url: str, stripe: RunningStripe) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "STRIPE_SECRET_KEY": stripe.secret_key,
        "STRIPE_API_BASE": stripe.url,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "MEZO_RPC_URLS": "http://127.0.0.1:9",
    }


def replay(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    result = run_onramp("sessions", "replay", "--json", *args, cwd=tmp_path, **env)
    return result.returncode, json.loads(result.stdout)


async def status_of(caller: Caller, session_id: str) -> str:
    session = (await caller.get(f"/api/v1/onramp/sessions/{session_id}")).json()
    return str(session["status"])


async def test_replay_repairs_a_session_whose_webhooks_were_lost(
    caller: Caller, stripe: RunningStripe, database_url: str, tmp_path: Path
) -> None:
    created = (await caller.create()).json()
    stripe.advance(created["stripeSessionId"], "fulfillment_processing")  # no webhook sent
    env = cli_env(database_url, stripe)

    code, preview = replay(tmp_path, env, "--all", "--dry-run")
    assert code == 0
    assert preview == [
        {
            "session_id": created["id"],
            "before": "initialized",
            "after": "fulfillment_processing",
            "outcome": "changed",
            "error": None,
        }
    ]
    assert await status_of(caller, created["id"]) == "initialized"

    code, report = replay(tmp_path, env, "--id", created["id"])
    assert (code, report[0]["outcome"]) == (0, "changed")
    assert await status_of(caller, created["id"]) == "fulfillment_processing"

    code, again = replay(tmp_path, env, "--all")
    assert (code, again[0]["outcome"]) == (0, "unchanged")


async def test_replay_never_moves_a_session_back(
    caller: Caller, stripe: RunningStripe, database_url: str, tmp_path: Path
) -> None:
    created = (await caller.create()).json()
    env = cli_env(database_url, stripe)
    stripe.advance(
        created["stripeSessionId"], "fulfillment_complete", transactionId="0x" + "e" * 64
    )
    replay(tmp_path, env, "--all")
    stripe.advance(created["stripeSessionId"], "requires_payment")
    code, report = replay(tmp_path, env, "--all")
    assert code == 0
    assert report[0]["outcome"] == "unchanged"
    assert await status_of(caller, created["id"]) == "fulfillment_complete"


async def test_a_stripe_outage_mid_replay_is_reported_and_a_second_run_finishes(
    caller: Caller, stripe: RunningStripe, database_url: str, tmp_path: Path
) -> None:
    created = [(await caller.create()).json() for _ in range(3)]
    for session in created:
        stripe.advance(session["stripeSessionId"], "requires_payment")
    env = cli_env(database_url, stripe)
    stripe.faults(fail=2)
    code, report = replay(tmp_path, env, "--all", "--concurrency", "1")
    assert code == 1
    outcomes = sorted(row["outcome"] for row in report)
    assert outcomes == ["changed", "failed", "failed"]
    assert all("Stripe" in (row["error"] or "") for row in report if row["outcome"] == "failed")
    done = next(row["session_id"] for row in report if row["outcome"] == "changed")
    assert await status_of(caller, done) == "requires_payment"

    code, second = replay(tmp_path, env, "--all")
    assert code == 0
    assert sorted(row["outcome"] for row in second) == ["changed", "changed", "unchanged"]
    for session in created:
        assert await status_of(caller, session["id"]) == "requires_payment"


async def test_replay_needs_a_selection(
    database_url: str, stripe: RunningStripe, tmp_path: Path
) -> None:
    result = run_onramp("sessions", "replay", cwd=tmp_path, **cli_env(database_url, stripe))
    assert result.returncode == 2
    assert "--all" in result.stderr


async def test_sessions_list_shows_the_newest_first(
    caller: Caller, stripe: RunningStripe, database_url: str, tmp_path: Path
) -> None:
    ids = [(await caller.create()).json()["id"] for _ in range(2)]
    result = run_onramp("sessions", "list", "--json", cwd=tmp_path, **cli_env(database_url, stripe))
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [row["id"] for row in listed] == list(reversed(ids))
    assert all("clientSecret" not in row for row in listed)
    table = run_onramp("sessions", "list", cwd=tmp_path, **cli_env(database_url, stripe))
    assert "Onramp sessions" in table.stdout
