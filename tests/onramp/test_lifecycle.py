"""The session lifecycle: forward only, rejected terminal, order-independent; and what
derives from it agreeing with it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from functools import reduce
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import create_async_engine

from service.database import Database
from service.live.changes import SessionChanges
from service.live.stream import EVENT, OBSERVED_COLUMNS, session_events
from service.onramp import repository
from service.onramp.lifecycle import LIFECYCLE, DeliveryStatus, Lifecycle, Status
from service.onramp.models import UNSETTLED, SessionRow
from service.reconciliation.drift import compare
from service.settings import DatabaseSettings
from service.webhooks.retention import Pruned, prune_events
from tests.reconciliation.test_drift import HOUR, ours, theirs
from tests.support.orm import orm_session
from tests.webhooks.test_prune import OLD
from tests.webhooks.test_prune import event as prune_event
from tests.webhooks.test_prune import session as prune_session

WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"

HAPPY = ["requires_payment", "fulfillment_processing", "fulfillment_complete"]


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """A session's real event sequence, then what arrives: any subset, duplicated, shuffled."""
    length = draw(st.integers(1, 3))
    sequence = HAPPY[:length]
    if length < 3 and draw(st.booleans()):
        sequence = [*sequence, "rejected"]
    arrived = draw(st.lists(st.sampled_from(sequence), min_size=1, max_size=10))
    return sequence, draw(st.permutations(arrived))


def fold(start: str, events: list[str]) -> str:
    return reduce(LIFECYCLE.advance, events, start)


@given(deliveries())
def test_the_final_status_is_the_furthest_delivered(case: tuple[list[str], list[str]]) -> None:
    sequence, arrived = case
    furthest = max(arrived, key=sequence.index)
    final = fold("initialized", arrived)
    assert final == furthest
    assert fold(final, arrived) == final  # replaying the log changes nothing


@pytest.mark.parametrize(
    ("current", "incoming", "expected"),
    [
        ("initialized", "requires_payment", "requires_payment"),
        ("requires_payment", "initialized", "requires_payment"),
        ("fulfillment_processing", "requires_payment", "fulfillment_processing"),
        ("initialized", "fulfillment_complete", "fulfillment_complete"),
        ("fulfillment_processing", "rejected", "rejected"),
        ("fulfillment_complete", "rejected", "fulfillment_complete"),
        ("rejected", "fulfillment_complete", "rejected"),
        ("rejected", "requires_payment", "rejected"),
        ("initialized", "paid", "initialized"),
    ],
)
def test_transitions(current: str, incoming: str, expected: str) -> None:
    assert LIFECYCLE.advance(current, incoming) == expected


@pytest.mark.parametrize("status", LIFECYCLE.statuses)
def test_statuses_before_are_exactly_those_that_move_forward(status: str) -> None:
    before = LIFECYCLE.statuses_before(status)
    assert status not in before
    for other in LIFECYCLE.statuses:
        assert (other in before) == (other != status and LIFECYCLE.advance(other, status) == status)


def test_nothing_comes_before_an_unknown_status() -> None:
    assert LIFECYCLE.statuses_before("paid") == ()


def test_every_status_and_delivery_named_is_in_the_lifecycle_once() -> None:
    assert sorted(LIFECYCLE.statuses) == sorted(Status)
    assert len(set(LIFECYCLE.statuses)) == len(LIFECYCLE.statuses)
    assert LIFECYCLE.deliveries == tuple(DeliveryStatus)
    assert LIFECYCLE.decided_deliveries < set(LIFECYCLE.deliveries)
    assert LIFECYCLE.final == {"fulfillment_complete", "rejected"}


@pytest.mark.parametrize("status", LIFECYCLE.statuses)
@pytest.mark.parametrize("delivery", LIFECYCLE.deliveries)
def test_settled_means_nothing_more_will_change(status: str, delivery: str) -> None:
    settled = LIFECYCLE.is_settled(status, delivery)
    # Settled sessions are final; an unsettled final one waits for its delivery's verdict.
    assert not settled or status in LIFECYCLE.final
    if status in LIFECYCLE.final and not settled:
        assert status == LIFECYCLE.fulfilled
        assert delivery not in LIFECYCLE.decided_deliveries


# A lifecycle with one more exit, as a refund or an expiry would be: what derives from
# the declaration must honour it with no other change.
EXPIRED = "expired"
WITH_EXPIRY = replace(LIFECYCLE, exits=(*LIFECYCLE.exits, EXPIRED))
NOW = datetime.now(UTC)


def test_one_more_exit_is_final_settled_and_reached_from_the_path() -> None:
    assert EXPIRED in WITH_EXPIRY.final
    assert WITH_EXPIRY.is_settled(EXPIRED, DeliveryStatus.NOT_STARTED)
    assert WITH_EXPIRY.advance(Status.REQUIRES_PAYMENT, EXPIRED) == EXPIRED
    assert WITH_EXPIRY.advance(EXPIRED, Status.FULFILLMENT_COMPLETE) == EXPIRED
    assert LIFECYCLE.advance(Status.REQUIRES_PAYMENT, EXPIRED) == Status.REQUIRES_PAYMENT


def test_reconcile_follows_the_lifecycle_it_is_given() -> None:
    mine = ours(status=Status.REQUIRES_PAYMENT, delivery_status=DeliveryStatus.NOT_STARTED)
    stripes = theirs(EXPIRED)

    def kinds(lifecycle: Lifecycle) -> list[str]:
        return compare(
            mine,
            stripes,
            delivery_started=None,
            now=NOW,
            delivery_timeout=HOUR,
            lifecycle=lifecycle,
        )

    assert kinds(WITH_EXPIRY) == ["stripe_ahead"]
    assert kinds(LIFECYCLE) == ["status_differs"]


async def test_the_live_stream_ends_at_any_settled_status_of_its_lifecycle(
    database_url: str,
) -> None:
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    changes = SessionChanges(database)
    row = SessionRow(WALLET, "10.00", "usd", "musd", "mezo", stripe_session_id="cos_x")
    row.status = EXPIRED
    try:
        await database.open()
        await repository.insert_alone(database, row)
        far = asyncio.get_running_loop().time() + 30

        async def first_two(lifecycle: Lifecycle) -> list[Any]:
            stream = session_events(changes, database, row, None, 0.05, far, lifecycle)
            seen = [event async for event in _take(stream, 2)]
            await stream.aclose()
            return seen

        ended = await first_two(WITH_EXPIRY)
        assert [event.event for event in ended] == [EVENT]
        waiting = await first_two(LIFECYCLE)
        assert [event.event for event in waiting] == [EVENT, None]
        assert waiting[1].comment == "heartbeat"
    finally:
        await changes.stop()
        await database.dispose()


async def _take(stream: AsyncIterator[Any], count: int) -> AsyncIterator[Any]:
    async for event in stream:
        yield event
        count -= 1
        if count == 0:
            return


async def test_the_event_prune_counts_a_session_settled_by_its_lifecycle(
    database_url: str,
) -> None:
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    expired = prune_session("expired", EXPIRED)
    try:
        async with orm_session(database) as db, db.begin():
            db.add(expired)
        async with orm_session(database) as db, db.begin():
            db.add(prune_event("evt_expired", OLD, oid=expired.id, sid="cos_expired"))

        def gone(report: list[Pruned]) -> int:
            return sum(p.events for p in report if p.reason == "no_session_needs_them")

        as_declared = await prune_events(database, older_than_days=90, now=NOW, dry_run=True)
        assert gone(as_declared) == 0
        with_expiry = await prune_events(
            database, older_than_days=90, now=NOW, lifecycle=WITH_EXPIRY
        )
        assert gone(with_expiry) == 1
    finally:
        await database.dispose()


async def test_the_partial_index_is_built_on_the_declared_predicate(database_url: str) -> None:
    """The migrations' copy of "settled" (ix_onramp_sessions_unsettled) says what the
    lifecycle says: a new settled status needs a migration that rebuilds the index."""
    declared = str(
        UNSETTLED.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    )
    if database_url.startswith("sqlite"):
        engine = create_async_engine(DatabaseSettings(DATABASE_URL=database_url).async_url)
        async with engine.connect() as connection:
            built = await connection.scalar(
                text("SELECT sql FROM sqlite_master WHERE name = 'ix_onramp_sessions_unsettled'")
            )
        await engine.dispose()
        assert " ".join(str(built).split(" WHERE ", 1)[1].split()) == declared
        return
    with psycopg.connect(database_url) as connection:
        connection.execute("CREATE TEMP TABLE probe (LIKE onramp_sessions)")
        connection.execute(f"CREATE INDEX probe_unsettled ON probe (id) WHERE {declared}")
        predicates: dict[str, str] = dict(
            connection.execute(
                "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname IN ('ix_onramp_sessions_unsettled', 'probe_unsettled')"
            ).fetchall()
        )
    assert predicates["ix_onramp_sessions_unsettled"] == predicates["probe_unsettled"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_change_notice_trigger_fires_on_what_the_stream_calls_a_change(
    database_url: str,
) -> None:
    with psycopg.connect(database_url) as connection:
        definition = connection.execute(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'onramp_session_changed'"
        ).fetchone()
    assert definition is not None
    assert set(re.findall(r"old\.(\w+)", definition[0])) == set(OBSERVED_COLUMNS)
