"""Every statement on `idempotency_keys`: a client's Idempotency-Key for one create call,
claimed by one INSERT … ON CONFLICT, held while its request runs, then holding the
answer to replay (service/onramp/creation.py tells the whole flow)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service.database import Database
from service.onramp import repository
from service.onramp.models import SessionRow
from service.sql import BatchDelete, RollBack, Sql, SqlTransaction

# A request that holds a key longer than this is presumed dead and may be taken over.
IN_FLIGHT_TIMEOUT = timedelta(seconds=60)
KEY_LIFETIME = timedelta(hours=24)

_THIS_KEY = "wallet_address = :wallet AND key = :key"
_CLAIM = (
    "INSERT INTO idempotency_keys (wallet_address, key, fingerprint, locked_at, created_at,"
    " customer_ip, onramp_session_id)"
    " VALUES (:wallet, :key, :fingerprint, :now, :now, :ip, :session_id)"
    " ON CONFLICT (wallet_address, key) DO NOTHING RETURNING id"
)
_CLAIM_ALONE = Sql(_CLAIM, datetimes=("now",))
# PostgreSQL: the claim and its new session in one statement, nothing stored unless the
# key was new.
_CLAIM_AND_START = Sql(
    f"WITH claimed AS ({_CLAIM}) {repository.INSERT}"  # noqa: S608 - constants
    f" SELECT {repository.INSERT_VALUES} WHERE EXISTS (SELECT 1 FROM claimed) RETURNING id",
    datetimes=("now", *repository.DATETIMES),
)
_NAME_SESSION = Sql(
    f"UPDATE idempotency_keys SET onramp_session_id = :session_id WHERE {_THIS_KEY}"  # noqa: S608
)
_ANSWER = (
    "UPDATE idempotency_keys SET response_status = :response_status,"
    " response_body = :response_body, onramp_session_id = :session_id, locked_at = NULL"
    " WHERE wallet_address = :wallet AND key = :key"
)
_STORE_ANSWER = Sql(_ANSWER)
_FINISH_AND_ANSWER = Sql(
    f"WITH finished AS ({repository.FINISH}),"  # noqa: S608 - constants
    f" answered AS ({_ANSWER} AND EXISTS (SELECT 1 FROM finished))"
    " SELECT id FROM finished",
    datetimes=("updated_at",),
)
_TAKE_OVER = Sql(
    f"UPDATE idempotency_keys SET locked_at = :now WHERE {_THIS_KEY}"  # noqa: S608
    " AND fingerprint = :fingerprint AND response_status IS NULL"
    " AND (locked_at IS NULL OR locked_at < :stale) RETURNING id",
    datetimes=("now", "stale"),
)
_READ = Sql(
    "SELECT fingerprint, onramp_session_id, response_status, response_body, customer_ip"
    " FROM idempotency_keys WHERE wallet_address = :wallet AND key = :key"
)
_RELEASE = Sql(f"UPDATE idempotency_keys SET locked_at = NULL WHERE {_THIS_KEY}")  # noqa: S608
_DELETE_IF_EXPIRED = Sql(
    f"DELETE FROM idempotency_keys WHERE {_THIS_KEY} AND created_at < :cutoff",  # noqa: S608
    datetimes=("cutoff",),
)
# The retention job's: a bounded batch per statement, so no delete holds many row locks.
_EXPIRED = "FROM idempotency_keys WHERE created_at < :cutoff"
_COUNT_EXPIRED = Sql(f"SELECT count(*) {_EXPIRED}", datetimes=("cutoff",))
_DELETE_EXPIRED = BatchDelete(
    "idempotency_keys", "id", f"SELECT id {_EXPIRED} LIMIT :batch", ("cutoff",)
)


@dataclass(frozen=True)
class HeldKey:
    fingerprint: str
    onramp_session_id: str | None
    response_status: int | None
    response_body: str | None
    customer_ip: str | None


@dataclass(frozen=True)
class Answer:
    """The final answer a key keeps for replays: 201 with the session, or a refusal."""

    status: int
    body: str
    session_id: str | None


def _key(wallet: str, key: str) -> dict[str, Any]:
    return {"wallet": wallet, "key": key}


async def claim_and_start(
    database: Database,
    wallet: str,
    key: str,
    fingerprint: str,
    now: datetime,
    ip: str | None,
    session: SessionRow,
) -> bool:
    """Claim a key nobody holds and store its new session, atomically; false (and
    nothing stored) when the key exists, whatever its state."""
    values = {
        **repository.values_of(session),
        **_key(wallet, key),
        "fingerprint": fingerprint,
        "now": now,
        "ip": ip,
        "session_id": session.id,
    }
    if database.pool is not None:
        return bool(await database.run_alone(_CLAIM_AND_START, values))
    async with database.transaction() as sql:
        if await sql.scalar(_CLAIM_ALONE, values) is None:
            return False
        await repository.insert(sql, session)
    return True


async def claim(
    sql: SqlTransaction, wallet: str, key: str, fingerprint: str, now: datetime, ip: str | None
) -> bool:
    values = {**_key(wallet, key), "fingerprint": fingerprint, "now": now, "ip": ip}
    return await sql.scalar(_CLAIM_ALONE, {**values, "session_id": None}) is not None


async def take_over(
    sql: SqlTransaction, wallet: str, key: str, fingerprint: str, now: datetime
) -> bool:
    """Lock an unfinished key that no live request holds; true if this caller got it."""
    values = {**_key(wallet, key), "fingerprint": fingerprint, "now": now}
    return await sql.scalar(_TAKE_OVER, {**values, "stale": now - IN_FLIGHT_TIMEOUT}) is not None


async def read(sql: SqlTransaction, wallet: str, key: str) -> HeldKey:
    return HeldKey(**(await sql.rows(_READ, _key(wallet, key)))[0])


async def delete_if_expired(sql: SqlTransaction, wallet: str, key: str, now: datetime) -> None:
    await sql.execute(_DELETE_IF_EXPIRED, {**_key(wallet, key), "cutoff": now - KEY_LIFETIME})


async def name_session(sql: SqlTransaction, wallet: str, key: str, session_id: str) -> None:
    await sql.execute(_NAME_SESSION, {**_key(wallet, key), "session_id": session_id})


async def store_answer(sql: SqlTransaction, wallet: str, key: str, answer: Answer) -> None:
    values = {"response_status": answer.status, "response_body": answer.body}
    await sql.execute(
        _STORE_ANSWER, {**_key(wallet, key), **values, "session_id": answer.session_id}
    )


async def release(sql: SqlTransaction, wallet: str, key: str) -> None:
    await sql.execute(_RELEASE, _key(wallet, key))


async def finish_as_started(
    database: Database, session: SessionRow, held: tuple[str, str, Answer] | None
) -> bool:
    """Stripe's answer on a session nothing else has touched since it was stored, and
    the key's answer (`held`: wallet, key, answer) with it. False, changing nothing, if
    something has touched it: the caller must then merge under the row's lock."""
    if held is None:
        return await repository.finish_alone(database, session)
    wallet, key, answer = held
    values = {
        **repository.stripe_answer_of(session),
        **_key(wallet, key),
        "response_status": answer.status,
        "response_body": answer.body,
        "session_id": answer.session_id,
    }
    if database.pool is not None:
        return bool(await database.run_alone(_FINISH_AND_ANSWER, values))
    finished = False
    async with database.transaction() as sql:
        finished = await repository.finish(sql, session)
        if not finished:
            raise RollBack
        await store_answer(sql, wallet, key, answer)
    return finished


async def count_expired(database: Database, now: datetime) -> int:
    return int((await database.run_alone(_COUNT_EXPIRED, {"cutoff": now - KEY_LIFETIME}))[0][0])


async def delete_expired(database: Database, now: datetime, batch: int) -> int:
    """At most `batch` keys past their lifetime, all wallets', in a statement of their
    own; how many went."""
    params = {"cutoff": now - KEY_LIFETIME, "batch": batch}
    statement = _DELETE_EXPIRED.on(database.pool is not None)
    return len(await database.run_alone(statement, params))
