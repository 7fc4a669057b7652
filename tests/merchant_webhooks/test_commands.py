"""`onramp endpoints add | list | remove | rotate | enable` as an operator runs them: the
secret shown by `add` and `rotate` only, listings without it, refusals in one line with
nothing changed, and a row in the audit trail for every action. What `enable` and
`replay` do to deliveries, against real receivers: test_recovery.py.

The commands run in this process through click's runner (the very `onramp` entry point,
settings read from the environment it is given), as tests/audit/test_commands.py runs
them. Their output is the runner's, not the test's: the secret each prints by design is
never in the logs the suite scans for secrets (tests/support/log_scan.py), and the
scan's `whsec_` shape still holds for everything that is logged.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.cli import main
from service.columns import parse_rfc3339, rfc3339, utcnow
from service.database import Database
from service.merchant_webhooks import repository, rules
from service.merchant_webhooks.models import EndpointRow
from service.settings import DatabaseSettings, Settings
from tests.support.environment import BASE_ENV
from tests.support.orm import run_sql

RUN_BY = f"cli:{getpass.getuser()}"
SHOWN_SECRET = re.compile(r"^Signing secret \(shown this once\): (whsec_\S+)$", re.MULTILINE)
ENDPOINT = "http://127.0.0.1:9/hooks"


async def onramp(database_url: str, *args: str) -> Result:
    """`onramp *args` on `database_url`, with the suite's base environment."""
    env = {**BASE_ENV, "DATABASE_URL": database_url}
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, main, list(args), env=env, catch_exceptions=False)


async def succeeds(database_url: str, *args: str) -> Result:
    ran = await onramp(database_url, *args)
    assert ran.exit_code == 0, ran.output
    return ran


async def added(database_url: str, *args: str) -> dict[str, Any]:
    ran = await succeeds(database_url, "endpoints", "add", ENDPOINT, *args, "--json")
    shown: dict[str, Any] = json.loads(ran.stdout)
    return shown


async def listed(database_url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        (await succeeds(database_url, "endpoints", "list", "--json")).stdout
    )
    return items


async def trail(database_url: str) -> list[dict[str, Any]]:
    """The audit trail as `onramp audit list --json` prints it, oldest first."""
    ran = await succeeds(database_url, "audit", "list", "--json")
    assert "whsec_" not in ran.stdout
    rows: list[dict[str, Any]] = json.loads(ran.stdout)
    return rows[::-1]


def actions(rows: list[dict[str, Any]]) -> list[tuple[str, str | None, str]]:
    assert {row["actor"] for row in rows} == {RUN_BY}
    return [(row["action"], row["target"], row["outcome"]) for row in rows]


BODY = '{"type":"delivery.confirmed"}'


def verifies(secret: str, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(BODY, headers)
    except WebhookVerificationError:
        return False
    return True


async def stored(database_url: str, endpoint_id: str) -> EndpointRow:
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    try:
        row = await repository.endpoint(database, endpoint_id)
    finally:
        await database.dispose()
    assert row is not None
    return row


def assert_a_secret(secret: str) -> None:
    """Standard Webhooks' form: `whsec_` and the base64 of at least 24 random bytes."""
    assert secret.startswith(rules.SECRET_PREFIX)
    assert len(base64.b64decode(secret.removeprefix(rules.SECRET_PREFIX))) >= 24


async def test_add_shows_the_secret_once_and_nothing_lists_it(database_url: str) -> None:
    first = await added(database_url)
    assert set(first) == {"id", "url", "events", "description", "status", "createdAt", "secret"}
    assert (first["url"], first["status"], first["description"]) == (ENDPOINT, "enabled", None)
    assert first["events"] == list(rules.EVENT_TYPES)
    assert_a_secret(first["secret"])

    ran = await succeeds(
        database_url,
        "endpoints",
        "add",
        ENDPOINT,
        "--events",
        "delivery.confirmed",
        "--events",
        "delivery.failed",
        "--description",
        "the shop",
    )
    shown = SHOWN_SECRET.findall(ran.stdout)
    assert len(shown) == 1, ran.stdout
    assert ran.stdout.count("whsec_") == 1, ran.stdout
    assert_a_secret(shown[0])
    assert shown[0] != first["secret"]
    second_id = re.search(r"^Endpoint added: (we_\w+)$", ran.stdout, re.MULTILINE)
    assert second_id is not None, ran.stdout

    items = await listed(database_url)
    assert [item["id"] for item in items] == sorted([first["id"], second_id[1]])
    assert all(set(item) == set(first) - {"secret"} for item in items)
    [second] = [item for item in items if item["id"] == second_id[1]]
    assert (second["events"], second["description"]) == (
        ["delivery.confirmed", "delivery.failed"],
        "the shop",
    )
    table = await succeeds(database_url, "endpoints", "list")
    assert "whsec_" not in table.stdout
    assert "2 endpoints" in table.stdout

    assert actions(await trail(database_url)) == [
        ("endpoints.add", first["id"], "ok"),
        ("endpoints.add", second_id[1], "ok"),
    ]


async def test_rotate_prints_a_new_secret_and_the_old_one_signs_for_a_day(
    database_url: str,
) -> None:
    endpoint = await added(database_url)
    ran = await succeeds(database_url, "endpoints", "rotate", endpoint["id"])
    shown_id, rotated = ran.stdout.split()
    assert shown_id == endpoint["id"]
    assert_a_secret(rotated)
    assert rotated != endpoint["secret"]

    rotated_at = utcnow()
    as_json = await succeeds(database_url, "endpoints", "rotate", endpoint["id"], "--json")
    latest = json.loads(as_json.stdout)
    assert set(latest) == {"id", "secret"}
    assert latest["id"] == endpoint["id"]
    assert latest["secret"] not in (rotated, endpoint["secret"])
    assert "whsec_" not in json.dumps(await listed(database_url))

    # A delivery now carries the latest secret's signature and the one it replaced,
    # verified by the reference library; a day after the rotation, the latest alone.
    row = await stored(database_url, endpoint["id"])
    assert (row.secret, row.previous_secret) == (latest["secret"], rotated)
    assert row.previous_secret_until is not None
    overlap_ends = row.previous_secret_until - rules.ROTATION_OVERLAP
    assert rotated_at <= overlap_ends <= utcnow()
    now = utcnow()
    signing = rules.signing_secrets(row.secret, row.previous_secret, row.previous_secret_until, now)
    headers = rules.signature_headers("msg_rotation", BODY, now, signing)
    candidates = (latest["secret"], rotated, endpoint["secret"])
    assert [secret for secret in candidates if verifies(secret, headers)] == list(candidates[:2])
    later = row.previous_secret_until + timedelta(seconds=1)
    assert rules.signing_secrets(
        row.secret, row.previous_secret, row.previous_secret_until, later
    ) == [latest["secret"]]

    assert actions(await trail(database_url)) == [
        ("endpoints.add", endpoint["id"], "ok"),
        ("endpoints.rotate", endpoint["id"], "ok"),
        ("endpoints.rotate", endpoint["id"], "ok"),
    ]


async def test_remove_removes_and_a_second_remove_is_refused(database_url: str) -> None:
    kept, gone = await added(database_url), await added(database_url)
    ran = await succeeds(database_url, "endpoints", "remove", gone["id"], "--json")
    assert json.loads(ran.stdout) == {"id": gone["id"], "outcome": "removed"}
    assert [item["id"] for item in await listed(database_url)] == [kept["id"]]

    again = await onramp(database_url, "endpoints", "remove", gone["id"])
    assert again.exit_code == 1
    assert again.output == "onramp: not_found: No such endpoint.\n"
    rotated = await onramp(database_url, "endpoints", "rotate", gone["id"])
    assert (rotated.exit_code, rotated.output) == (1, again.output)

    rows = await trail(database_url)
    assert actions(rows) == [
        ("endpoints.add", kept["id"], "ok"),
        ("endpoints.add", gone["id"], "ok"),
        ("endpoints.remove", gone["id"], "ok"),
        ("endpoints.remove", gone["id"], "failed"),
        ("endpoints.rotate", gone["id"], "failed"),
    ]
    assert rows[-1]["detail"] == "not_found: No such endpoint."


async def test_enable_enables_a_disabled_endpoint_and_refuses_an_unknown_one(
    database_url: str,
) -> None:
    endpoint = await added(database_url)
    failing_since = utcnow() - timedelta(days=5)
    await run_sql(
        database_url,
        "UPDATE merchant_webhook_endpoints SET status = 'disabled', failing_since = :since"
        " WHERE id = :id RETURNING id",
        id=endpoint["id"],
        since=failing_since,
    )
    before = await listed(database_url)
    assert [item["status"] for item in before] == ["disabled"]

    unknown = "we_" + "0" * 26
    for refused_id in (unknown, "nope"):
        refused = await onramp(database_url, "endpoints", "enable", refused_id)
        assert refused.exit_code == 1
        assert refused.output == "onramp: not_found: No such endpoint.\n"
    assert await listed(database_url) == before
    row = await stored(database_url, endpoint["id"])
    assert (row.status, row.failing_since) == ("disabled", failing_since)

    ran = await succeeds(database_url, "endpoints", "enable", endpoint["id"], "--json")
    shown = json.loads(ran.stdout)
    assert "whsec_" not in ran.stdout
    assert shown["status"] == "enabled"
    assert [shown] == await listed(database_url)  # the routes' shape, as `list` prints it
    row = await stored(database_url, endpoint["id"])
    assert (row.status, row.failing_since) == ("enabled", None)

    rows = await trail(database_url)
    assert actions(rows) == [
        ("endpoints.add", endpoint["id"], "ok"),
        ("endpoints.enable", unknown, "failed"),
        ("endpoints.enable", "nope", "failed"),
        ("endpoints.enable", endpoint["id"], "ok"),
    ]
    assert [row["detail"] for row in rows[1:3]] == ["not_found: No such endpoint."] * 2


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://shop.example/in"], "The endpoint URL must be https:// or http://."),
        (["shop.example/in"], "The endpoint URL must be https:// or http://."),
        (["http://:8080/in"], "The endpoint URL names no host."),
        (["http://ops:pw@shop.example/in"], "The endpoint URL must not carry credentials."),
        (
            [ENDPOINT, "--events", "delivery.lost"],
            "Unknown or no event types; choose among " + ", ".join(rules.EVENT_TYPES) + ".",
        ),
    ],
)
async def test_a_refused_endpoint_is_one_line_a_failed_row_and_nothing_else(
    database_url: str, args: list[str], message: str
) -> None:
    ran = await onramp(database_url, "endpoints", "add", *args)
    assert ran.exit_code == 1
    assert ran.output == f"onramp: invalid_endpoint: {message}\n"
    assert await listed(database_url) == []
    [row] = await trail(database_url)
    assert (row["action"], row["target"], row["outcome"]) == ("endpoints.add", None, "failed")
    assert row["detail"] == f"invalid_endpoint: {message}"


async def test_a_replay_from_before_what_retention_keeps_is_refused_and_sends_nothing(
    database_url: str,
) -> None:
    """Retention may delete an event older than OUTGOING_WEBHOOK_RETENTION_DAYS between a
    replay reading it and writing its delivery; such a replay is refused, not begun."""
    chosen = await added(database_url)
    days = Settings.from_env(BASE_ENV).retention.outgoing_webhook_days
    too_early = rfc3339(utcnow() - timedelta(days=days))
    ran = await onramp(database_url, "endpoints", "replay", "--since", too_early)
    assert ran.exit_code == 1
    [line] = ran.output.splitlines()
    assert line.startswith("onramp: replay_beyond_retention: Events written before ")
    horizon = parse_rfc3339(line.split("before ", 1)[1].split(" ", 1)[0])
    assert utcnow() - timedelta(days=days) < horizon < utcnow() - timedelta(days=days - 1)
    rows = await trail(database_url)
    assert actions(rows)[-1] == ("endpoints.replay", f"{too_early}..", "failed")

    within = rfc3339(horizon + timedelta(minutes=1))
    ran = await succeeds(database_url, "endpoints", "replay", "--since", within, "--json")
    assert json.loads(ran.stdout) == [{"endpoint_id": chosen["id"], "events": 0}]
