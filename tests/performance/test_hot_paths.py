"""The optimised hot paths say exactly what the ORM paths they replaced would say.

Creating and reading sessions run in hand-written SQL (service/onramp/repository.py,
bench/README.md): a new session is a plain dataclass, a read row becomes the response
without an ORM object, and Stripe's answer is stored by one guarded UPDATE that falls
back to the locked ORM merge when a webhook got there first. Each test here pins one
of those shortcuts to the behaviour of the long way round, on both databases.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy import inspect
from sqlmodel import select

from service.chain.destinations import accepted_destinations
from service.columns import utcnow
from service.database import Database
from service.onramp import schemas
from service.onramp.models import IdempotencyKey, NewSession, OnrampSession
from service.onramp.rules import SessionRequest
from service.onramp.service import OnrampSessions
from service.onramp.stripe_client import StripeOnramp
from service.onramp.updates import OnrampUpdate, apply_update
from service.settings import ChainSettings, DatabaseSettings, StripeSettings

WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"
DESTINATIONS = accepted_destinations(ChainSettings())
REQUEST = SessionRequest(WALLET, "100.00", "usd", "musd", "mezo")


def test_a_new_session_has_every_column_with_the_models_defaults() -> None:
    columns = {column.name for column in inspect(OnrampSession).columns}
    fields = {field.name for field in dataclasses.fields(NewSession)}
    assert fields == columns
    new = NewSession(WALLET, "1.00", "usd", "musd", "mezo")
    model = OnrampSession(
        wallet_address=WALLET,
        source_amount="1.00",
        source_currency="usd",
        destination_currency="musd",
        destination_network="mezo",
    )
    for name in columns - {"id", "created_at", "updated_at"}:
        assert getattr(new, name) == getattr(model, name), name
    assert new.id.startswith("ors_")
    assert len(new.id) == len(model.id)


async def stored_session(database: Database, **values: Any) -> OnrampSession:
    session = OnrampSession(
        wallet_address=WALLET,
        source_amount="250.50",
        source_currency="usd",
        destination_currency="musd",
        destination_network="mezo",
        stripe_session_id=f"cos_{values.pop('suffix', 'a')}",
        client_secret="cos_a_secret_b",
        **values,
    )
    async with database.sessions() as db, db.begin():
        db.add(session)
    async with database.sessions() as db:
        loaded = await db.get(OnrampSession, session.id)
    assert loaded is not None
    return loaded


async def test_a_read_row_is_the_orm_objects_response(database_url: str) -> None:
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    try:
        session = await stored_session(
            database,
            status="fulfillment_complete",
            destination_amount="99.120000000000000000",
            transaction_hash="0x" + "ab" * 32,
            delivery_status="confirmed",
            delivery_confirmations=3,
            delivery_block_number=1234,
            delivered_amount="99.12",
            delivery_checked_at=utcnow() - timedelta(minutes=1),
            delivery_detail="ok",
        )
        service = OnrampSessions(database, StripeOnramp(StripeSettings()), DESTINATIONS)
        read = await service.read(session.id, WALLET)
        assert msgspec.json.encode(read) == msgspec.json.encode(schemas.public(session))
        page = await service.page(WALLET, status=None, cursor=None, limit=20)
        assert [msgspec.json.encode(item) for item in page.items] == [
            msgspec.json.encode(schemas.public(session))
        ]
    finally:
        await database.dispose()


async def test_pages_follow_the_cursor_newest_first(database_url: str) -> None:
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    try:
        ids = [(await stored_session(database, suffix=str(n))).id for n in range(5)]
        service = OnrampSessions(database, StripeOnramp(StripeSettings()), DESTINATIONS)
        first = await service.page(WALLET, status=None, cursor=None, limit=3)
        assert [item.id for item in first.items] == ids[::-1][:3]
        rest = await service.page(WALLET, status="initialized", cursor=first.next_cursor, limit=3)
        assert [item.id for item in rest.items] == ids[::-1][3:]
        assert rest.next_cursor is None
        assert (await service.page(WALLET, status="rejected", cursor=None, limit=3)).items == []
    finally:
        await database.dispose()


class RacingStripe:
    """A Stripe whose webhook for the new session arrives before its create call
    answers, as happens when Stripe is quick and the network is not."""

    livemode = False

    def __init__(self, database: Database) -> None:
        self.database = database

    def require_configured(self) -> None:
        return None

    async def create_session(self, params: dict[str, Any], _key: str) -> dict[str, Any]:
        ours = params["metadata"]["onramp_session_id"]
        update = OnrampUpdate("cos_race", ours, "requires_payment", None, None)
        async with self.database.transaction() as sql:
            await apply_update(sql, update, utcnow())
        return {
            "id": "cos_race",
            "object": "crypto.onramp_session",
            "client_secret": "cos_race_secret_x",
            "status": "initialized",
            "livemode": False,
        }


async def test_a_webhook_before_stripes_answer_is_kept(database_url: str) -> None:
    """The guarded UPDATE finds the session moved and the ORM merge takes over: the
    answer, the stored row and the key's stored answer all keep the webhook's status."""
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    try:
        service = OnrampSessions(database, RacingStripe(database), DESTINATIONS)  # type: ignore[arg-type]
        created = await service.create_session(REQUEST, "race-key", "198.51.100.7")
        assert created.session.status == "requires_payment"
        assert created.session.stripe_session_id == "cos_race"
        assert created.session.client_secret == "cos_race_secret_x"
        async with database.sessions() as db:
            stored = await db.get(OnrampSession, created.session.id)
            keys = (await db.exec(select(IdempotencyKey))).all()
        assert stored is not None
        assert (stored.status, stored.client_secret) == ("requires_payment", "cos_race_secret_x")
        assert len(keys) == 1
        assert json.loads(keys[0].response_body or "")["status"] == "requires_payment"
        assert keys[0].locked_at is None
    finally:
        await database.dispose()
