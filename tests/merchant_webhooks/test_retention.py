"""The retention job on real merchant-webhook rows, on each database: endpoints
registered through the admin routes, events written by the outbox with the session
change they tell of, deliveries attempted by the dispatcher's own rounds against real
receivers, each at the time the test gives its clock. Old attempts and old finished
deliveries go, in batches; an old event goes only once no delivery left refers to it;
what is recent or still due stays; a dry run counts exactly what the run then deletes.

The job is the one the worker's schedule and `onramp retention run` call
(tests/test_retention.py runs those entries; here, what the job does to these tables).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from service.app import create_app
from service.columns import utcnow
from service.database import Database
from service.delivery import checks
from service.merchant_webhooks import outbox
from service.merchant_webhooks import repository as merchant_webhooks
from service.merchant_webhooks.dispatcher import Dispatcher
from service.merchant_webhooks.sender import Sender
from service.onramp.updates import apply_update, update_from_stripe
from service.retention.job import Cleared, run_retention
from service.settings import OutgoingWebhookSettings, RetentionSettings, Settings
from service.sql import Sql
from tests.merchant_webhooks.conftest import BASE, register, writer
from tests.support.receivers import Receiver, receiving
from tests.support.webhooks import onramp_event
from tests.webhooks.test_receive import a_session

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
KEPT_DAYS = 30
# One retry an hour after a failure, then the delivery is given up.
RETRY = "3600"


@pytest.fixture
async def app(hooks_settings: Callable[..., Settings]) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(hooks_settings())) as client:
        yield client


@pytest.fixture
def receivers() -> Iterator[Callable[[list[int]], Receiver]]:
    """Local receivers answering as scripted, until the test ends."""
    with ExitStack() as stack:
        yield lambda answers: stack.enter_context(receiving(answers=answers))


def retention(batch_size: int = 2) -> RetentionSettings:
    return RetentionSettings.model_validate(
        {
            "OUTGOING_WEBHOOK_RETENTION_DAYS": str(KEPT_DAYS),
            "RETENTION_BATCH_SIZE": str(batch_size),
        }
    )


async def read(database: Database, statement: str, **params: object) -> list[tuple[object, ...]]:
    """What is stored, read with a plain statement: the test's own view of the tables."""
    return [tuple(row) for row in await database.run_alone(Sql(text(statement)), params)]


async def session_moves(database: Database, at: datetime) -> str:
    """A session moved on by Stripe's news at `at`, as the webhook route applies it: the
    outbox writes the event, and a delivery to each enabled endpoint, with the move."""
    session = await a_session(database)
    assert session.stripe_session_id is not None
    news = onramp_event(session.stripe_session_id, "requires_payment")["data"]["object"]
    update = update_from_stripe(news)
    assert update is not None
    async with database.transaction() as sql:
        applied = await apply_update(sql, update, at, checks, outbox)
    assert applied.outcome == "applied"
    [(event_id,)] = await read(
        database,
        "SELECT id FROM merchant_webhook_events WHERE onramp_session_id = :id",
        id=session.id,
    )
    return str(event_id)


async def dispatch(database: Database, endpoint_id: str, at: datetime) -> int:
    """One round of the dispatcher for the endpoint, its clock at `at`; how many sent."""
    settings = OutgoingWebhookSettings.model_validate({"OUTGOING_WEBHOOK_RETRY_SECONDS": RETRY})
    dispatcher = Dispatcher(database, settings, deployed=False, clock=lambda: at)
    sender = Sender(deployed=False)
    try:
        return await dispatcher.deliver_due(endpoint_id, sender)
    finally:
        await sender.close()


@dataclass(frozen=True)
class Rows:
    """What is stored of some events: how many of them, the (endpoint, outcome) of each
    delivery of them, how many attempts."""

    events: int
    deliveries: list[tuple[str, str | None]]
    attempts: int


async def rows_of(database: Database, event_ids: list[str]) -> Rows:
    events = attempts = 0
    deliveries: list[tuple[str, str | None]] = []
    for event_id in event_ids:
        events += len(
            await read(
                database, "SELECT id FROM merchant_webhook_events WHERE id = :id", id=event_id
            )
        )
        deliveries += [
            (str(endpoint), None if outcome is None else str(outcome))
            for endpoint, outcome in await read(
                database,
                "SELECT endpoint_id, outcome FROM merchant_webhook_deliveries WHERE event_id = :id",
                id=event_id,
            )
        ]
        attempts += len(
            await read(
                database,
                "SELECT id FROM merchant_webhook_attempts WHERE event_id = :id",
                id=event_id,
            )
        )
    return Rows(events, sorted(deliveries, key=lambda d: (d[0], d[1] or "")), attempts)


def each(pairs: list[tuple[str, str | None]], times: int) -> list[tuple[str, str | None]]:
    return sorted(pairs * times, key=lambda d: (d[0], d[1] or ""))


async def orphans(database: Database) -> list[tuple[object, ...]]:
    """Deliveries and attempts whose event is gone."""
    return await read(
        database,
        "SELECT 'delivery', event_id FROM merchant_webhook_deliveries d WHERE NOT EXISTS"
        " (SELECT 1 FROM merchant_webhook_events e WHERE e.id = d.event_id)"
        " UNION ALL SELECT 'attempt', event_id FROM merchant_webhook_attempts a WHERE"
        " NOT EXISTS (SELECT 1 FROM merchant_webhook_events e WHERE e.id = a.event_id)",
    )


def merchant_webhook_rows(cleared: list[Cleared], outcome: str) -> dict[str, int]:
    """The job's report for these tables: rows by table, each with `outcome`."""
    mine = [c for c in cleared if c.table.startswith("merchant_webhook_")]
    assert {c.outcome for c in mine} == {outcome}
    return {c.table: c.rows for c in mine}


@dataclass(frozen=True)
class History:
    """Six weeks of merchant webhooks, the events grouped by what became of them."""

    steady: str  # the endpoint that answers 200
    failing: str  # answers 500 (until told otherwise); disabled after five days of it
    failing_receiver: Receiver
    finished: list[str]  # 40 days old: delivered to one endpoint, given up by the other
    due: list[str]  # 35 days old: delivered to one, a retry to the other still due
    recent: list[str]  # a day old, delivered


async def a_history(
    app: AsyncTestClient[Litestar],
    database: Database,
    receivers: Callable[[list[int]], Receiver],
    now: datetime,
) -> History:
    steady = (await register(app, receivers([200]).url))["id"]
    failing_receiver = receivers([500])
    failing = (await register(app, failing_receiver.url))["id"]
    # Forty days ago: each event delivered to one endpoint; the other fails it twice and
    # it is given up.
    start = now - 40 * DAY
    finished = [await session_moves(database, start) for _ in range(3)]
    assert await dispatch(database, steady, start) == 3
    assert await dispatch(database, failing, start) == 3
    assert await dispatch(database, failing, start + HOUR) == 3
    # Five days on the failing endpoint fails once more and is disabled for it: its
    # retries wait, due, for an operator to enable it again.
    later = start + 5 * DAY
    due = [await session_moves(database, later) for _ in range(2)]
    assert await dispatch(database, steady, later) == 2
    assert await dispatch(database, failing, later) == 2
    assert await dispatch(database, failing, later + HOUR) == 0
    # Yesterday: delivered to the one endpoint enabled.
    yesterday = now - DAY
    recent = [await session_moves(database, yesterday) for _ in range(2)]
    assert await dispatch(database, steady, yesterday) == 2
    return History(steady, failing, failing_receiver, finished, due, recent)


# Attempts: 3 x (1 + 2) and 2 x (1 + 1); deliveries: 3 x 2, and the 2 made of the events
# still due; events: only the 3 nothing is due for.
OLD = {
    "merchant_webhook_attempts": 13,
    "merchant_webhook_deliveries": 8,
    "merchant_webhook_events": 3,
}


async def test_old_attempts_and_finished_deliveries_go_in_batches_and_what_is_due_stays(
    app: AsyncTestClient[Litestar],
    database: Database,
    receivers: Callable[[list[int]], Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history = await a_history(app, database, receivers, utcnow())
    steady, failing = history.steady, history.failing
    finished = await rows_of(database, history.finished)
    assert finished == Rows(3, each([(steady, "delivered"), (failing, "given_up")], 3), 9)
    assert await rows_of(database, history.due) == Rows(
        2, each([(steady, "delivered"), (failing, None)], 2), 4
    )
    recent = await rows_of(database, history.recent)
    assert recent == Rows(2, [(steady, "delivered")] * 2, 2)

    dry = await run_retention(database, retention(), now=utcnow(), dry_run=True)
    assert merchant_webhook_rows(dry, "would_delete") == OLD
    assert await rows_of(database, history.finished) == finished

    batches: list[tuple[str, int]] = []
    delete_old = merchant_webhooks.delete_old

    async def counted(db: Database, kind: str, before: datetime, batch: int) -> int:
        went = await delete_old(db, kind, before, batch)
        batches.append((kind, went))
        return went

    monkeypatch.setattr(merchant_webhooks, "delete_old", counted)
    cleared = await run_retention(database, retention(batch_size=5), now=utcnow())

    assert merchant_webhook_rows(cleared, "deleted") == OLD
    assert batches == [
        ("attempts", 5),
        ("attempts", 5),
        ("attempts", 3),
        ("deliveries", 5),
        ("deliveries", 3),
        ("events", 3),
    ]
    assert await rows_of(database, history.finished) == Rows(0, [], 0)
    # The old events a retry is due for stay, with those deliveries; their old attempts
    # and the deliveries already made go.
    assert await rows_of(database, history.due) == Rows(2, [(failing, None)] * 2, 0)
    assert await rows_of(database, history.recent) == recent
    assert await orphans(database) == []
    again = await run_retention(database, retention(), now=utcnow(), dry_run=True)
    assert merchant_webhook_rows(again, "would_delete") == dict.fromkeys(OLD, 0)


async def test_an_old_event_stays_as_long_as_a_delivery_of_it_is_kept(
    app: AsyncTestClient[Litestar],
    database: Database,
    receivers: Callable[[list[int]], Receiver],
) -> None:
    """The failing endpoint answers again and an operator enables it: the retries still
    due of its 35-day-old events are delivered now. Those deliveries are kept for the
    retention period from now, and the events they are of with them."""
    now = utcnow()
    history = await a_history(app, database, receivers, now)
    await run_retention(database, retention(), now=now)
    history.failing_receiver.answers = [200]
    enabled = await app.post(f"{BASE}/{history.failing}/enable", headers=writer())
    assert enabled.status_code == 200, enabled.text
    assert await dispatch(database, history.failing, now) == 2
    delivered = Rows(2, [(history.failing, "delivered")] * 2, 2)
    assert await rows_of(database, history.due) == delivered

    dry = await run_retention(database, retention(), now=now, dry_run=True)
    assert merchant_webhook_rows(dry, "would_delete") == dict.fromkeys(OLD, 0)
    cleared = await run_retention(database, retention(), now=now)
    assert merchant_webhook_rows(cleared, "deleted") == dict.fromkeys(OLD, 0)
    assert await rows_of(database, history.due) == delivered
    assert await orphans(database) == []

    # Once the deliveries are past the retention period too, all of it goes.
    later = now + (KEPT_DAYS + 1) * DAY
    dry = await run_retention(database, retention(), now=later, dry_run=True)
    everything = {
        "merchant_webhook_attempts": 4,  # 2 recent and the 2 deliveries now
        "merchant_webhook_deliveries": 4,
        "merchant_webhook_events": 4,
    }
    assert merchant_webhook_rows(dry, "would_delete") == everything
    assert (
        merchant_webhook_rows(await run_retention(database, retention(), now=later), "deleted")
        == everything
    )
    assert await rows_of(database, history.due + history.recent) == Rows(0, [], 0)
    assert await orphans(database) == []
