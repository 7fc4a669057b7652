"""Every operator command that changes something leaves exactly one row in the trail,
run by `cli:<os user>`, with no secret in it; `onramp audit list` prints the trail.

The commands run in this process through click's runner (the very `onramp` entry point,
settings read from the environment it is given): a process each would cost seconds
apiece for what `tests/onramp/test_replay.py` and the others already show end to end.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result

from service.cli import main
from service.columns import utcnow
from tests.audit.conftest import WRITER_SECRET, assert_no_secret, key, stored_rows
from tests.onramp.conftest import JWT_SECRET, Caller
from tests.onramp.test_replay import cli_env
from tests.support.environment import BASE_ENV
from tests.support.orm import run_sql
from tests.support.stripe import RunningStripe

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
RUN_BY = f"cli:{getpass.getuser()}"
LONG_AGO = utcnow() - timedelta(days=3650)


async def onramp(env: dict[str, str], *args: str) -> Result:
    """`onramp *args`, with `env` as its environment (and the suite's base)."""
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, main, list(args), env={**BASE_ENV, **env}, catch_exceptions=False
    )


def since_now() -> str:
    return (utcnow() - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S")


# Each command: its arguments (`{session}` is a session Stripe has moved on), and the row
# it must leave: action, outcome and detail.
COMMANDS: dict[str, tuple[list[str], str, str, str]] = {
    "sessions replay": (
        ["sessions", "replay", "--id", "{session}"],
        "sessions.replay",
        "ok",
        "1 changed",
    ),
    "sessions replay --dry-run": (
        ["sessions", "replay", "--all", "--dry-run"],
        "sessions.replay",
        "dry_run",
        "1 changed",
    ),
    "sessions import": (
        ["sessions", "import", "--since", "{since}"],
        "sessions.import",
        "ok",
        "1 updated",
    ),
    "webhooks replay": (
        ["webhooks", "replay", "--since", "{since}"],
        "webhooks.replay",
        "ok",
        "nothing to do",
    ),
    "webhooks prune": (
        ["webhooks", "prune", "--older-than", "1"],
        "webhooks.prune",
        "ok",
        "0 deleted, 0 kept",
    ),
    "delivery recheck": (
        ["delivery", "recheck", "--session", "{session}"],
        "delivery.recheck",
        "ok",
        "checks reopened: 1",
    ),
    "retention run": (["retention", "run"], "retention.run", "ok", "0 rows deleted, 0 kept"),
    "endpoints replay": (
        ["endpoints", "replay", "--since", "{since}"],
        "endpoints.replay",
        "ok",
        "0 deliveries due again",
    ),
    "endpoints replay --dry-run": (
        ["endpoints", "replay", "--since", "{since}", "--dry-run"],
        "endpoints.replay",
        "dry_run",
        "0 deliveries would be sent again",
    ),
}


@pytest.mark.parametrize("command", list(COMMANDS))
async def test_every_operator_command_that_changes_things_leaves_one_row(
    command: str, caller: Caller, stripe: RunningStripe, database_url: str
) -> None:
    created = (await caller.create()).json()
    status = "fulfillment_complete" if command == "delivery recheck" else "requires_payment"
    stripe.advance(created["stripeSessionId"], status, transactionId="0x" + "b" * 64)
    if command == "delivery recheck":  # a fulfilled session, as the sync leaves it
        sync = f"/api/v1/admin/sessions/{created['id']}/sync"
        assert (await caller.client.post(sync, headers=key(WRITER_SECRET))).status_code == 200
    await _an_old_row(database_url)
    before = await stored_rows(database_url)
    args, action, outcome, detail = COMMANDS[command]
    filled = [a.format(session=created["id"], since=since_now()) for a in args]

    ran = await onramp(cli_env(database_url, stripe), *filled, "--json")
    assert ran.exit_code == 0, ran.output

    after = await stored_rows(database_url)
    assert after[: len(before)] == before  # nothing older went, retention included
    [row] = [dict(zip(_COLUMNS, values, strict=True)) for values in after[len(before) :]]
    assert (row["actor"], row["action"], row["outcome"]) == (RUN_BY, action, outcome)
    assert row["detail"] == detail
    assert row["client_ip"] is None
    if "{session}" in args:
        assert row["target"] == created["id"]
    assert_no_secret(after)
    assert JWT_SECRET not in repr(after)


async def test_a_command_that_fails_leaves_a_failed_row(
    stripe: RunningStripe, database_url: str
) -> None:
    stripe.faults(fail=1)
    since = since_now()
    ran = await onramp(cli_env(database_url, stripe), "sessions", "import", "--since", since)
    assert ran.exit_code == 1
    [row] = await stored_rows(database_url)
    record = dict(zip(_COLUMNS, row, strict=True))
    assert (record["action"], record["outcome"]) == ("sessions.import", "failed")
    assert record["detail"].startswith("stripe_unavailable: ")
    assert record["target"] == f"{since}Z.."


async def test_onramp_audit_list_prints_the_trail_newest_first(
    caller: Caller, stripe: RunningStripe, database_url: str
) -> None:
    created = (await caller.create()).json()
    env = cli_env(database_url, stripe)
    for args in (["retention", "run"], ["sessions", "replay", "--id", created["id"]]):
        assert (await onramp(env, *args)).exit_code == 0

    listed = await onramp(env, "audit", "list", "--json")
    assert listed.exit_code == 0, listed.output
    items: list[dict[str, Any]] = json.loads(listed.stdout)
    assert [(i["action"], i["actor"], i["target"]) for i in items] == [
        ("sessions.replay", RUN_BY, created["id"]),
        ("retention.run", RUN_BY, None),
    ]
    assert set(items[0]) == {
        "id",
        "at",
        "actor",
        "action",
        "target",
        "outcome",
        "detail",
        "clientIp",
    }
    later_on = (utcnow() + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    later = await onramp(env, "audit", "list", "--json", "--since", later_on)
    assert [i["action"] for i in json.loads(later.stdout)] == []
    table = await onramp(env, "audit", "list")
    assert "Operator actions" in table.stdout
    assert "2 in all: 2 ok" in table.stdout


_COLUMNS = ("id", "at", "actor", "action", "target", "outcome", "detail", "client_ip")


async def _an_old_row(database_url: str) -> None:
    """A row written ten years ago: the trail is kept for ever."""
    await run_sql(
        database_url,
        "INSERT INTO operator_actions (id, at, actor, action, outcome)"
        " VALUES (:id, :at, 'cli:someone', 'retention.run', 'ok') RETURNING id",
        id=f"opa_{'0' * 26}",
        at=LONG_AGO,
    )
