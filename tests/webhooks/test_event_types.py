"""Which of Stripe's events move a session is the lifecycle's word alone
(`LIFECYCLE.event_types`): each named type moves its session through the real route, any
other type is stored and ignored, and a type added to the declaration is read as news."""

from __future__ import annotations

from dataclasses import replace

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.database import Database
from service.onramp.lifecycle import LIFECYCLE, Status
from service.webhooks.events import parse_event
from tests.support.webhooks import encode, onramp_event
from tests.webhooks.test_receive import a_session, deliver, reload, stored_events

UNNAMED = "crypto.onramp_session.expired"


def test_both_of_stripes_spellings_move_sessions() -> None:
    """Stripe's documented name, and the spelling some integrations use."""
    assert {"crypto.onramp_session_updated", "crypto.onramp_session.updated"} <= (
        LIFECYCLE.event_types
    )


@pytest.mark.parametrize("event_type", sorted(LIFECYCLE.event_types))
async def test_each_event_type_of_the_lifecycle_moves_its_session(
    client: AsyncTestClient[Litestar], database: Database, event_type: str
) -> None:
    session = await a_session(database)
    assert session.stripe_session_id is not None
    event = onramp_event(session.stripe_session_id, "requires_payment", event_type=event_type)
    answer = await deliver(client, event)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "applied"
    assert (await reload(database, session.id)).status == Status.REQUIRES_PAYMENT


async def test_a_type_the_lifecycle_does_not_name_is_stored_and_moves_nothing(
    client: AsyncTestClient[Litestar], database: Database
) -> None:
    session = await a_session(database)
    assert session.stripe_session_id is not None
    event = onramp_event(session.stripe_session_id, "rejected", event_type=UNNAMED)
    answer = await deliver(client, event)
    assert answer.json()["outcome"] == "ignored"
    assert (await reload(database, session.id)).status == Status.INITIALIZED
    assert [stored.type for stored in await stored_events(database)] == [UNNAMED]


def test_a_type_added_to_the_lifecycle_is_read_as_news() -> None:
    payload = encode(onramp_event("cos_1", "rejected", event_type=UNNAMED))
    assert parse_event(payload).update is None
    named = replace(LIFECYCLE, event_types=LIFECYCLE.event_types | {UNNAMED})
    update = parse_event(payload, named).update
    assert update is not None
    assert (update.stripe_session_id, update.status) == ("cos_1", "rejected")
