"""Every time option of the `onramp` command reads times as the service prints them
(ISO 8601 with `Z` or an offset), plain dates, and times without a zone as UTC."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import click
import pytest
from click.testing import CliRunner

from service.cli import main
from service.commands import UtcTime
from service.database import Database
from service.settings import DatabaseSettings
from service.webhooks.models import WebhookEvent
from tests.conftest import empty_tables
from tests.support.orm import orm_session

RECEIVED = {
    "evt_evening": datetime(2026, 12, 6, 20, 0, tzinfo=UTC),
    "evt_night": datetime(2026, 12, 6, 22, 0, tzinfo=UTC),
    "evt_next_day": datetime(2026, 12, 7, 0, 30, tzinfo=UTC),
}


async def store_events(url: str) -> None:
    database = Database(DatabaseSettings(DATABASE_URL=url))
    try:
        async with orm_session(database) as db, db.begin():
            for event_id, at in RECEIVED.items():
                db.add(
                    WebhookEvent(
                        id=event_id,
                        type="charge.succeeded",
                        created=at,
                        payload=json.dumps(
                            {
                                "id": event_id,
                                "type": "charge.succeeded",
                                "created": int(at.timestamp()),
                                "data": {"object": {}},
                            }
                        ),
                        received_at=at,
                    )
                )
    finally:
        await database.dispose()


@pytest.fixture
def events(migrated_sqlite: str) -> Iterator[str]:
    asyncio.run(empty_tables(migrated_sqlite))
    asyncio.run(store_events(migrated_sqlite))
    yield migrated_sqlite
    asyncio.run(empty_tables(migrated_sqlite))


@pytest.mark.parametrize(
    ("since", "replayed"),
    [
        ("2026-12-06T21:00:00Z", {"evt_night", "evt_next_day"}),
        ("2026-12-06T21:00:00z", {"evt_night", "evt_next_day"}),
        ("2026-12-06T23:30:00+02:00", {"evt_night", "evt_next_day"}),  # 21:30 UTC
        ("2026-12-06T21:30:00-02:00", {"evt_next_day"}),  # 23:30 UTC
        ("2026-12-06T21:00:00", {"evt_night", "evt_next_day"}),  # no zone: UTC
        ("2026-12-06 22:00:00", {"evt_night", "evt_next_day"}),
        ("2026-12-06", {"evt_evening", "evt_night", "evt_next_day"}),
        ("2026-12-07", {"evt_next_day"}),
    ],
)
def test_since_takes_iso_8601_with_a_zone_and_plain_dates(
    events: str, since: str, replayed: set[str]
) -> None:
    result = CliRunner().invoke(
        main,
        ["webhooks", "replay", "--dry-run", "--json", "--since", since],
        env={"DATABASE_URL": events},
    )
    assert result.exit_code == 0, result.output
    assert {row["event_id"] for row in json.loads(result.stdout)} == replayed


@pytest.mark.parametrize(
    ("until", "refused_for_order"),
    [
        ("2026-12-06T19:30:00Z", True),  # before 20:00 UTC
        ("2026-12-06T21:00:00Z", False),  # after it: on to Stripe, which is not configured
    ],
)
def test_since_and_until_compare_as_utc_moments(
    migrated_sqlite: str, until: str, refused_for_order: bool
) -> None:
    result = CliRunner().invoke(
        main,
        ["reconcile", "--since", "2026-12-06T22:00:00+02:00", "--until", until],
        env={"DATABASE_URL": migrated_sqlite, "STRIPE_SECRET_KEY": ""},
    )
    assert result.exit_code == 2
    assert ("--until must be after --since" in result.stderr) is refused_for_order
    assert ("STRIPE_SECRET_KEY" in result.stderr) is not refused_for_order


def test_a_time_that_is_not_iso_8601_is_a_usage_error(migrated_sqlite: str) -> None:
    result = CliRunner().invoke(
        main,
        ["webhooks", "replay", "--since", "yesterday"],
        env={"DATABASE_URL": migrated_sqlite},
    )
    assert result.exit_code == 2
    assert "'yesterday' is not an ISO 8601 time" in result.stderr


def commands(command: click.Command, ctx: click.Context) -> Iterator[click.Command]:
    yield command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from commands(sub, click.Context(sub, parent=ctx, info_name=name))


def test_every_time_option_takes_the_one_time_type() -> None:
    options = [
        (command.name, param)
        for command in commands(main, click.Context(main, info_name="onramp"))
        for param in command.params
        if isinstance(param, click.Option)
    ]
    timed = [(name, o.name) for name, o in options if isinstance(o.type, UtcTime)]
    assert {"since", "until"} <= {option for _, option in timed}
    for name, option in options:
        assert not isinstance(option.type, click.DateTime), (name, option.name)
        if option.name in {"since", "until"}:
            assert isinstance(option.type, UtcTime), (name, option.name)
