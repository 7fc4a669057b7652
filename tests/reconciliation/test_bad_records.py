"""One malformed session from Stripe stops neither `sessions import` nor `reconcile`.

The commands run in this process through click's runner, against the real database and
the Stripe stand-in, whose list serves the malformed objects put into it as a Stripe
with a bug would: a non-string id, a field longer than its column, a `created` no
calendar holds, formulas and bidirectional controls in its text.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.columns import new_id, text_limit
from service.onramp.models import SESSIONS
from service.onramp.stripe_client import StripeOnramp, StripeUnavailable
from service.settings import DatabaseSettings, StripeSettings
from tests.audit.conftest import stored_rows
from tests.audit.test_commands import onramp
from tests.onramp.conftest import Caller
from tests.onramp.test_replay import cli_env
from tests.support.orm import run_sql
from tests.support.stripe import RunningStripe

SINCE = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
CURRENCY_LIMIT = text_limit(SESSIONS.c.source_currency)


def at_stripe(stripe: RunningStripe, session: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = stripe.simulator.sessions[session["stripeSessionId"]]
    return found


def moved_back(stripe: RunningStripe, session: dict[str, Any], seconds: int) -> None:
    """Stripe made `session` earlier: its list gives it later, newest first."""
    at_stripe(stripe, session)["created"] -= seconds
    stripe.simulator.order.changed()


async def forget(database_url: str, *sessions: dict[str, Any]) -> None:
    for session in sessions:
        delete = "DELETE FROM onramp_sessions WHERE id = :id RETURNING id"
        await run_sql(database_url, delete, id=session["id"])


def outcomes(ran_stdout: str) -> dict[str, tuple[str, str | None]]:
    return {
        row["stripe_session_id"]: (row["outcome"], row["error"]) for row in json.loads(ran_stdout)
    }


async def test_import_reports_each_malformed_session_failed_and_goes_on(
    caller: Caller, stripe: RunningStripe, database_url: str
) -> None:
    newer, older, kept = [(await caller.create()).json() for _ in range(3)]
    template = at_stripe(stripe, kept)
    details = template["transaction_details"]
    long_currency = dict(
        template,
        id="cos_long_currency",
        created=template["created"] - 100,
        metadata={"onramp_session_id": new_id("ors")},
        transaction_details={**details, "source_currency": "u" * (CURRENCY_LIMIT + 1)},
    )
    number_id = dict(
        template,
        id=12345,
        created=template["created"] - 200,
        metadata={"onramp_session_id": new_id("ors")},
    )
    stripe.simulator.load([long_currency, number_id])
    moved_back(stripe, older, 300)  # listed after both malformed ones
    await forget(database_url, newer, older)
    env = cli_env(database_url, stripe)

    ran = await onramp(env, "sessions", "import", "--since", SINCE, "--json")
    assert ran.exit_code == 1, ran.output
    assert ran.stderr == "onramp: 2 of 5 sessions failed, each reported with its error\n"
    listed = json.loads(ran.stdout)
    assert [row["stripe_session_id"] for row in listed][-1] == older["stripeSessionId"]
    assert outcomes(ran.stdout) == {
        newer["stripeSessionId"]: ("imported", None),
        kept["stripeSessionId"]: ("present", None),
        "cos_long_currency": (
            "failed",
            "malformed: transaction_details.source_currency is longer than"
            f" {CURRENCY_LIMIT} characters",
        ),
        "12345": ("failed", "malformed: id is not a string"),
        older["stripeSessionId"]: ("imported", None),
    }
    for back in (newer, older):
        assert (await caller.get(f"/api/v1/onramp/sessions/{back['id']}")).status_code == 200
    assert await run_sql(database_url, "SELECT count(*) FROM onramp_sessions") == [(3,)]
    [row] = await stored_rows(database_url)
    assert (row[5], row[6]) == ("failed", "2 failed, 2 imported, 1 present")

    again = await onramp(env, "sessions", "import", "--since", SINCE, "--json")
    assert again.exit_code == 1, again.output
    assert {outcome for outcome, _ in outcomes(again.stdout).values()} == {"failed", "present"}
    assert outcomes(again.stdout)[older["stripeSessionId"]] == ("present", None)


@asynccontextmanager
async def refusing(database_url: str, session_id: str) -> AsyncIterator[None]:
    """The database refuses to store `session_id`, as a constraint of its own would."""
    engine = create_async_engine(DatabaseSettings(DATABASE_URL=database_url).async_url)
    if database_url.startswith("sqlite"):
        create = (
            "CREATE TRIGGER refuse_one BEFORE INSERT ON onramp_sessions"
            f" WHEN NEW.id = '{session_id}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        drop = "DROP TRIGGER refuse_one"
    else:
        create = (
            "ALTER TABLE onramp_sessions ADD CONSTRAINT refuse_one"
            f" CHECK (id <> '{session_id}') NOT VALID"
        )
        drop = "ALTER TABLE onramp_sessions DROP CONSTRAINT refuse_one"
    try:
        async with engine.begin() as connection:
            await connection.execute(text(create))
        yield
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(drop))
        await engine.dispose()


async def test_a_session_the_database_refuses_fails_alone(
    caller: Caller, stripe: RunningStripe, database_url: str
) -> None:
    refused, stored = [(await caller.create()).json() for _ in range(2)]
    moved_back(stripe, stored, 10)  # listed after the refused one
    await forget(database_url, refused, stored)
    env = cli_env(database_url, stripe)

    async with refusing(database_url, refused["id"]):
        ran = await onramp(env, "sessions", "import", "--since", SINCE, "--json")
    assert ran.exit_code == 1, ran.output
    report = outcomes(ran.stdout)
    assert report[stored["stripeSessionId"]] == ("imported", None)
    outcome, error = report[refused["stripeSessionId"]]
    assert outcome == "failed"
    assert error is not None
    assert error.startswith("database error: ")
    assert "\n" not in error
    assert "INSERT" not in error
    assert "Traceback" not in ran.output
    assert refused["clientSecret"] not in ran.output

    again = await onramp(env, "sessions", "import", "--since", SINCE, "--json")
    assert again.exit_code == 0, again.output
    assert outcomes(again.stdout) == {
        refused["stripeSessionId"]: ("imported", None),
        stored["stripeSessionId"]: ("present", None),
    }


async def reconcile_csv(
    env: dict[str, str], tmp_path: Path, *args: str
) -> tuple[Result, list[dict[str, str]]]:
    """`onramp reconcile --format csv` to a file, and the file's rows."""
    sheet = tmp_path / "report.csv"
    command = ["reconcile", "--since", SINCE, "--format", "csv", "--output", str(sheet), *args]
    ran = await onramp(env, *command)
    return ran, list(csv.DictReader(io.StringIO(sheet.read_text())))


async def test_reconcile_gives_each_malformed_session_a_row_and_exits_3(
    caller: Caller, stripe: RunningStripe, database_url: str, tmp_path: Path
) -> None:
    agreed, beyond_calendar, renumbered = [(await caller.create()).json() for _ in range(3)]
    at_stripe(stripe, beyond_calendar)["created"] = 10**12  # the year 33658
    stripe.simulator.order.changed()
    listed_as = stripe.simulator.sessions.pop(renumbered["stripeSessionId"])
    stripe.simulator.load([dict(listed_as, id=12345, created=listed_as["created"] - 100)])
    env = cli_env(database_url, stripe)
    gauges = tmp_path / "onramp.prom"

    ran, sheet = await reconcile_csv(env, tmp_path, "--metrics-file", str(gauges))
    assert ran.exit_code == 3, ran.output
    assert ran.stderr == "onramp: Stripe: 2 of its sessions could not be read (stripe_malformed)\n"
    rows = {row["session_id"]: row for row in sheet}
    assert rows.keys() == {agreed["id"], beyond_calendar["id"], renumbered["id"]}
    assert rows[agreed["id"]]["drift"] == ""
    far = rows[beyond_calendar["id"]]
    assert (far["drift"], far["detail"]) == ("stripe_malformed", "created is not a time in seconds")
    assert far["stripe_session_id"] == beyond_calendar["stripeSessionId"]
    assert far["status"] == "initialized"
    numbered = rows[renumbered["id"]]
    assert (numbered["drift"], numbered["detail"]) == ("stripe_malformed", "id is not a string")
    assert numbered["stripe_session_id"] == "12345"
    metrics = gauges.read_text()
    assert 'onramp_reconcile_drift_sessions{kind="stripe_malformed"} 2.0' in metrics
    assert "onramp_reconcile_sessions 3.0" in metrics

    table = await onramp(env, "reconcile", "--since", SINCE)
    assert table.exit_code == 3, table.output
    assert "3 sessions compared, 2 with drift (2 stripe_malformed)" in table.stdout
    as_json = await onramp(env, "reconcile", "--since", SINCE, "--format", "json")
    assert as_json.exit_code == 3, as_json.output
    assert json.loads(as_json.stdout)["driftByKind"]["stripe_malformed"] == 2


async def test_reconcile_with_drift_besides_exits_1_and_still_names_the_malformed(
    caller: Caller, stripe: RunningStripe, database_url: str, tmp_path: Path
) -> None:
    behind, broken = [(await caller.create()).json() for _ in range(2)]
    stripe.advance(behind["stripeSessionId"], "requires_payment")  # no webhook: drift
    at_stripe(stripe, broken)["livemode"] = "false"
    ran = await onramp(cli_env(database_url, stripe), "reconcile", "--since", SINCE)
    assert ran.exit_code == 1, ran.output
    assert ran.stderr == "onramp: Stripe: 1 of its sessions could not be read (stripe_malformed)\n"
    assert "1 stripe_ahead, 1 stripe_malformed" in ran.stdout


async def test_reconcile_csv_cells_from_stripe_are_neutralised(
    caller: Caller, stripe: RunningStripe, database_url: str, tmp_path: Path
) -> None:
    hostile = (await caller.create()).json()
    at_stripe(stripe, hostile)["status"] = "=cmd|' /C calc'!A0"
    details = at_stripe(stripe, hostile)["transaction_details"]
    details["source_currency"] = "@SUM(1+1)"
    details["destination_currency"] = "\u202edsum"

    ran, [row] = await reconcile_csv(cli_env(database_url, stripe), tmp_path)
    assert ran.exit_code == 1, ran.output  # a status Stripe's sessions never have
    assert row["drift"] == "status_differs"
    assert row["stripe_status"] == "'=cmd|' /C calc'!A0"
    assert row["source_currency"] == "'@SUM(1+1)"
    assert row["destination_currency"] == "\\u202edsum"
    assert row["source_amount"] == "100.00"


class _Answers:
    """Stripe's list answering the pages given, in turn, at `StripeOnramp._call`."""

    def __init__(self, *pages: Any) -> None:
        self.pages = list(pages)

    async def __call__(self, method: str, path: str, **params: Any) -> Any:
        return self.pages.pop(0)


@pytest.mark.parametrize(
    "pages",
    [
        [{"object": "list", "data": "sessions", "has_more": False}],
        [["not", "a", "page"]],
        [{"object": "list", "data": [{"id": 7}, "junk"], "has_more": True}],
        [
            {"object": "list", "data": [{"id": "cos_1"}], "has_more": True},
            {"object": "list", "data": [{"id": "cos_1"}], "has_more": True},
        ],
    ],
)
async def test_a_list_that_cannot_be_read_or_paged_is_stripe_failing(
    pages: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = StripeOnramp(StripeSettings(STRIPE_SECRET_KEY="sk_test_" + "x" * 24))
    monkeypatch.setattr(client, "_call", _Answers(*pages))
    since = datetime.fromtimestamp(math.floor(time.time()) - 60, UTC)
    with pytest.raises(StripeUnavailable):
        async for _ in client.sessions_created(since):
            pass
    await client.close()
