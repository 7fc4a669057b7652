"""The hand-written repository says exactly what the ORM models would say.

Sessions are stored and read in hand-written SQL (service/onramp/repository.py,
bench/README.md): a row is a plain dataclass, a read row becomes the response without
an ORM object, and Stripe's answer is stored by one guarded UPDATE that falls back to a
merge under the row's lock when a webhook got there first. Each test here pins one of
those shortcuts to the long way round (the ORM models, on both databases).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy import inspect
from sqlmodel import select

from service.chain.destinations import accepted_destinations
from service.columns import utcnow
from service.database import Database
from service.delivery import checks
from service.merchant_webhooks import outbox
from service.onramp import queries, schemas
from service.onramp.creation import SessionCreation
from service.onramp.models import SESSION_COLUMNS, IdempotencyKey, OnrampSession, SessionRow
from service.onramp.rules import SessionRequest
from service.onramp.updates import OnrampUpdate, apply_update
from service.settings import ChainSettings, DatabaseSettings
from tests.support.orm import orm_session

WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"
DESTINATIONS = accepted_destinations(ChainSettings())
REQUEST = SessionRequest(WALLET, "100.00", "usd", "musd", "mezo")


def test_a_session_row_has_every_column_with_the_models_defaults() -> None:
    columns = {column.name for column in inspect(OnrampSession).columns}
    fields = set(SessionRow.__struct_fields__)
    assert fields == columns
    new = SessionRow(WALLET, "1.00", "usd", "musd", "mezo")
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
    async with orm_session(database) as db, db.begin():
        db.add(session)
    async with orm_session(database) as db:
        loaded = await db.get(OnrampSession, session.id)
    assert loaded is not None
    return loaded


def as_the_orm_reads_it(session: OnrampSession) -> dict[str, Any]:
    """The response built from the ORM object, field by field."""
    row = SessionRow(**{name: getattr(session, name) for name in SESSION_COLUMNS})
    return msgspec.to_builtins(schemas.public(row))  # type: ignore[no-any-return]


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
        read = await queries.read_owned(database, session.id, WALLET)
        assert msgspec.to_builtins(read) == as_the_orm_reads_it(session)
        page = await queries.page(
            database, wallet_address=WALLET, status=None, cursor=None, limit=20
        )
        assert [msgspec.to_builtins(schemas.public(s)) for s in page.sessions] == [
            as_the_orm_reads_it(session)
        ]
    finally:
        await database.dispose()


async def test_pages_follow_the_cursor_newest_first(database_url: str) -> None:
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    try:
        ids = [(await stored_session(database, suffix=str(n))).id for n in range(5)]

        def page(status: str | None, cursor: str | None) -> Any:
            return queries.page(
                database, wallet_address=WALLET, status=status, cursor=cursor, limit=3
            )

        first = await page(None, None)
        assert [item.id for item in first.sessions] == ids[::-1][:3]
        rest = await page("initialized", first.next_cursor)
        assert [item.id for item in rest.sessions] == ids[::-1][3:]
        assert rest.next_cursor is None
        assert (await page("rejected", None)).sessions == []
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
            await apply_update(sql, update, utcnow(), checks, outbox)
        return {
            "id": "cos_race",
            "object": "crypto.onramp_session",
            "client_secret": "cos_race_secret_x",
            "status": "initialized",
            "livemode": False,
        }


async def test_a_webhook_before_stripes_answer_is_kept(database_url: str) -> None:
    """The guarded UPDATE finds the session moved and the merge under the row's lock
    takes over: the answer, the stored row and the key's answer keep the webhook's status."""
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    try:
        service = SessionCreation(database, RacingStripe(database), DESTINATIONS)  # type: ignore[arg-type]
        created = await service.create_session(REQUEST, "race-key", "198.51.100.7")
        assert created.session.status == "requires_payment"
        assert created.session.stripe_session_id == "cos_race"
        assert created.session.client_secret == "cos_race_secret_x"
        async with orm_session(database) as db:
            stored = await db.get(OnrampSession, created.session.id)
            keys = (await db.exec(select(IdempotencyKey))).all()
        assert stored is not None
        assert (stored.status, stored.client_secret) == ("requires_payment", "cos_race_secret_x")
        assert len(keys) == 1
        assert json.loads(keys[0].response_body or "")["status"] == "requires_payment"
        assert keys[0].locked_at is None
    finally:
        await database.dispose()
