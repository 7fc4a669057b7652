"""Persistence of onramp sessions and of the idempotency keys of their create calls."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.columns import UtcDateTime
from service.database import Database
from service.onramp import schemas
from service.onramp.models import IdempotencyKey, NewSession, OnrampSession
from service.sql import RollBack, Sql

Row = tuple[Any, ...]

# A request that holds a key longer than this is presumed dead and may be taken over.
IN_FLIGHT_TIMEOUT = timedelta(seconds=60)
KEY_LIFETIME = timedelta(hours=24)


class SessionRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get_one_or_none(
        self, session_id: str, *, wallet_address: str | None = None, for_update: bool = False
    ) -> OnrampSession | None:
        """A session that exists at Stripe (and belongs to `wallet_address` if given)."""
        query = select(OnrampSession).where(
            col(OnrampSession.id) == session_id,
            col(OnrampSession.stripe_session_id).is_not(None),
        )
        if wallet_address is not None:
            query = query.where(col(OnrampSession.wallet_address) == wallet_address)
        if for_update:
            query = query.with_for_update()
        return (await self.db.exec(query)).first()

    async def get_by_id(self, session_id: str, *, for_update: bool = False) -> OnrampSession | None:
        """Whatever stage the session is at, Stripe id or not."""
        return await self.db.get(OnrampSession, session_id, with_for_update=for_update)

    async def list(
        self,
        *,
        wallet_address: str | None = None,
        status: str | None = None,
        before_id: str | None = None,
        limit: int = 20,
    ) -> list[OnrampSession]:
        """Newest first (ids sort by creation time); `before_id` is the cursor."""
        query = select(OnrampSession).where(col(OnrampSession.stripe_session_id).is_not(None))
        if wallet_address is not None:
            query = query.where(col(OnrampSession.wallet_address) == wallet_address)
        if status is not None:
            query = query.where(col(OnrampSession.status) == status)
        if before_id is not None:
            query = query.where(col(OnrampSession.id) < before_id)
        query = query.order_by(col(OnrampSession.id).desc()).limit(limit)
        return list((await self.db.exec(query)).all())

    async def delete(self, session_id: str) -> None:
        await self.db.exec(delete(OnrampSession).where(col(OnrampSession.id) == session_id))


class IdempotencyRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    def _this_key(self, wallet_address: str, key: str) -> Any:
        return (col(IdempotencyKey.wallet_address) == wallet_address) & (
            col(IdempotencyKey.key) == key
        )

    async def claim_new(
        self, wallet_address: str, key: str, fingerprint: str, now: datetime, ip: str | None
    ) -> bool:
        """Insert the key as in flight; false when it already exists (one atomic statement)."""
        bind = self.db.get_bind()
        dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(IdempotencyKey)
            .values(
                wallet_address=wallet_address,
                key=key,
                fingerprint=fingerprint,
                locked_at=now,
                created_at=now,
                customer_ip=ip,
            )
            .on_conflict_do_nothing(index_elements=["wallet_address", "key"])
            .returning(col(IdempotencyKey.id))
        )
        return (await self.db.exec(statement)).first() is not None

    async def take_over(
        self, wallet_address: str, key: str, fingerprint: str, now: datetime
    ) -> bool:
        """Lock an unfinished key that no live request holds; true if this caller got it."""
        result = await self.db.exec(
            update(IdempotencyKey)
            .where(
                self._this_key(wallet_address, key),
                col(IdempotencyKey.fingerprint) == fingerprint,
                col(IdempotencyKey.response_status).is_(None),
                or_(
                    col(IdempotencyKey.locked_at).is_(None),
                    col(IdempotencyKey.locked_at) < now - IN_FLIGHT_TIMEOUT,
                ),
            )
            .values(locked_at=now)
        )
        return bool(result.rowcount == 1)

    async def get_one(self, wallet_address: str, key: str) -> IdempotencyKey:
        query = select(IdempotencyKey).where(self._this_key(wallet_address, key))
        return (await self.db.exec(query)).one()

    async def update(self, wallet_address: str, key: str, **values: Any) -> None:
        await self.db.exec(
            update(IdempotencyKey).where(self._this_key(wallet_address, key)).values(**values)
        )

    async def delete_if_expired(self, wallet_address: str, key: str, now: datetime) -> None:
        await self.db.exec(
            delete(IdempotencyKey).where(
                self._this_key(wallet_address, key),
                col(IdempotencyKey.created_at) < now - KEY_LIFETIME,
            )
        )


# The session routes' hot paths in hand-written SQL (service/sql.py). Through the ORM,
# creating a session cost about 7 ms of CPU in three units of work and reading one
# about 1.5 ms, several times the database work itself (bench/README.md). The ORM above
# stays for everything rare: taking over a key, replays, refusals, operators' lists.
#
# On PostgreSQL each step is one statement run on its own (atomic by itself, so without
# BEGIN and COMMIT: a third of the round trips); data-modifying CTEs join what SQLite,
# which has none, runs as two statements in a transaction.
_SESSION_DATETIMES = ("delivery_checked_at", "created_at", "updated_at")
# What a new session sets; every other column starts NULL.
_NEW_SESSION_COLUMNS = (
    "id",
    "wallet_address",
    "livemode",
    "status",
    "source_amount",
    "source_currency",
    "destination_currency",
    "destination_network",
    "delivery_status",
    "delivery_confirmations",
    "created_at",
    "updated_at",
)
_NEW_SESSION = f"INSERT INTO onramp_sessions ({', '.join(_NEW_SESSION_COLUMNS)})"
_NEW_SESSION_VALUES = ", ".join(":" + name for name in _NEW_SESSION_COLUMNS)
_INSERT_SESSION = Sql(
    f"{_NEW_SESSION} VALUES ({_NEW_SESSION_VALUES}) RETURNING id",
    datetimes=("created_at", "updated_at"),
)
_CLAIM_KEY_VALUES = (
    "INSERT INTO idempotency_keys (wallet_address, key, fingerprint, locked_at, created_at,"
    " customer_ip, onramp_session_id)"
    " VALUES (:wallet_address, :key, :fingerprint, :now, :now, :ip, :id)"
    " ON CONFLICT (wallet_address, key) DO NOTHING RETURNING id"
)
_CLAIM_KEY = Sql(_CLAIM_KEY_VALUES, datetimes=("now",))
_CLAIM_AND_START_POSTGRES = Sql(
    f"WITH claimed AS ({_CLAIM_KEY_VALUES})"  # noqa: S608 - constants
    f" {_NEW_SESSION} SELECT {_NEW_SESSION_VALUES} WHERE EXISTS (SELECT 1 FROM claimed)"
    " RETURNING id"
)
_KEY_SESSION = Sql(
    "UPDATE idempotency_keys SET onramp_session_id = :session_id"
    " WHERE wallet_address = :wallet AND key = :key"
)
_FINISH = (
    "UPDATE onramp_sessions SET stripe_session_id = :stripe_session_id,"
    " client_secret = :client_secret, livemode = :livemode, status = :status,"
    " transaction_hash = :transaction_hash, destination_amount = :destination_amount,"
    " updated_at = :updated_at"
    " WHERE id = :id AND status = 'initialized' AND stripe_session_id IS NULL RETURNING id"
)
_FINISH_AS_STARTED = Sql(_FINISH, datetimes=("updated_at",))
_ANSWER = (
    "UPDATE idempotency_keys SET response_status = :response_status,"
    " response_body = :response_body, locked_at = NULL"
    " WHERE wallet_address = :wallet AND key = :key"
)
_STORE_RESPONSE = Sql(_ANSWER)
_FINISH_AND_ANSWER_POSTGRES = Sql(
    f"WITH finished AS ({_FINISH}),"  # noqa: S608 - constants
    f" answered AS ({_ANSWER} AND EXISTS (SELECT 1 FROM finished))"
    " SELECT id FROM finished"
)
_DELETE_EXPIRED_KEYS = Sql(
    "DELETE FROM idempotency_keys WHERE created_at < :cutoff RETURNING id", datetimes=("cutoff",)
)


def _new_session_values(session: NewSession) -> dict[str, Any]:
    return {name: getattr(session, name) for name in _NEW_SESSION_COLUMNS}


async def insert_session(database: Database, session: NewSession) -> None:
    """Store a new session (every column not in `_NEW_SESSION_COLUMNS` is NULL)."""
    await database.run_alone(_INSERT_SESSION, _new_session_values(session))


async def insert_session_for_key(
    database: Database, session: NewSession, wallet_address: str, key: str
) -> None:
    """Store a new session and name it on a key this request already holds."""
    async with database.transaction() as sql:
        await sql.execute(_INSERT_SESSION, _new_session_values(session))
        await sql.execute(
            _KEY_SESSION, {"wallet": wallet_address, "key": key, "session_id": session.id}
        )


async def claim_and_start(
    database: Database,
    key: str,
    fingerprint: str,
    now: datetime,
    ip: str | None,
    session: NewSession,
) -> bool:
    """Claim a key nobody holds and store its new session, atomically; false (and
    nothing stored) when the key exists, whatever its state."""
    values = {
        **_new_session_values(session),
        "key": key,
        "fingerprint": fingerprint,
        "now": now,
        "ip": ip,
    }
    if database.pool is not None:
        return bool(await database.run_alone(_CLAIM_AND_START_POSTGRES, values))
    async with database.transaction() as sql:
        if await sql.scalar(_CLAIM_KEY, values) is None:
            return False
        await sql.execute(_INSERT_SESSION, values)
    return True


async def finish_as_started(
    database: Database, session: NewSession, answer: tuple[str, str, str] | None
) -> bool:
    """Store Stripe's answer on a session nothing else has touched since it was stored
    (no webhook has moved it or named its Stripe id), and `answer` (wallet, key, 201
    body) on its key. False, changing nothing, if something has touched it: the caller
    must then merge under the row's lock."""
    values: dict[str, Any] = {
        "id": session.id,
        "stripe_session_id": session.stripe_session_id,
        "client_secret": session.client_secret,
        "livemode": session.livemode,
        "status": session.status,
        "transaction_hash": session.transaction_hash,
        "destination_amount": session.destination_amount,
        "updated_at": session.updated_at,
    }
    if answer is None:
        return bool(await database.run_alone(_FINISH_AS_STARTED, values))
    wallet, key, body = answer
    values |= {"wallet": wallet, "key": key, "response_status": 201, "response_body": body}
    if database.pool is not None:
        return bool(await database.run_alone(_FINISH_AND_ANSWER_POSTGRES, values))
    finished = False
    async with database.transaction() as sql:
        finished = await sql.scalar(_FINISH_AS_STARTED, values) is not None
        if not finished:
            raise RollBack
        await sql.execute(_STORE_RESPONSE, values)
    return finished


async def delete_expired_keys(database: Database, now: datetime) -> int:
    """Keys past their lifetime, all wallets'; how many went."""
    return len(await database.run_alone(_DELETE_EXPIRED_KEYS, {"cutoff": now - KEY_LIFETIME}))


# Reads.
READ_COLUMNS = ", ".join(schemas.ROW_FIELDS)
_READ_TYPES = {name: UtcDateTime() for name in _SESSION_DATETIMES}
_READ_ONE = Sql(
    f"SELECT {READ_COLUMNS} FROM onramp_sessions"  # noqa: S608 - constants
    " WHERE id = :id AND stripe_session_id IS NOT NULL AND wallet_address = :wallet"
)
_PAGES: dict[tuple[bool, bool, bool], Sql] = {}


def _page_statement(wallet: bool, status: bool, before: bool) -> Sql:
    """Newest first; one statement per combination of filters, so that each keeps a
    plan that uses its index."""
    found = _PAGES.get((wallet, status, before))
    if found is None:
        conditions = ["stripe_session_id IS NOT NULL"]
        conditions += ["wallet_address = :wallet"] if wallet else []
        conditions += ["status = :status"] if status else []
        conditions += ["id < :before"] if before else []
        found = _PAGES[(wallet, status, before)] = Sql(
            f"SELECT {READ_COLUMNS} FROM onramp_sessions"  # noqa: S608 - constants
            f" WHERE {' AND '.join(conditions)} ORDER BY id DESC LIMIT :limit"
        )
    return found


async def read_session_row(database: Database, session_id: str, wallet_address: str) -> Row | None:
    params = {"id": session_id, "wallet": wallet_address}
    rows = await database.run_alone(_READ_ONE, params, _READ_TYPES)
    return rows[0] if rows else None


async def read_page_rows(
    database: Database,
    *,
    wallet_address: str | None,
    status: str | None,
    before_id: str | None,
    limit: int,
) -> list[Row]:
    statement = _page_statement(
        wallet_address is not None, status is not None, before_id is not None
    )
    params: dict[str, Any] = {"limit": limit}
    for name, value in (("wallet", wallet_address), ("status", status), ("before", before_id)):
        if value is not None:
            params[name] = value
    return await database.run_alone(statement, params, _READ_TYPES)
