"""Every statement on `idempotency_keys`: a client's Idempotency-Key for one create call,
claimed by one INSERT … ON CONFLICT, held while its request runs, then holding the
answer to replay (service/onramp/creation.py tells the whole flow)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, insert, null, or_, select, update
from sqlmodel import col

from service.columns import table_of
from service.database import Database
from service.onramp import repository
from service.onramp.models import SESSIONS, IdempotencyKey, OnrampSession, SessionRow
from service.sql import RollBack, Sql, SqlTransaction, batch_delete, insert_into

# A request that holds a key longer than this is presumed dead and may be taken over.
IN_FLIGHT_TIMEOUT = timedelta(seconds=60)
KEY_LIFETIME = timedelta(hours=24)

K = IdempotencyKey
KEYS = table_of(IdempotencyKey)
# The key's parameters are `wallet` and `idempotency_key`: in an INSERT or UPDATE a
# parameter may not be named as a column (service/sql.py).
_THIS_KEY = and_(
    col(K.wallet_address) == bindparam("wallet"), col(K.key) == bindparam("idempotency_key")
)
_CLAIMED: dict[Any, Any] = {
    col(K.wallet_address): bindparam("wallet"),
    col(K.key): bindparam("idempotency_key"),
    col(K.fingerprint): bindparam("request_fingerprint"),
    col(K.locked_at): bindparam("now"),
    col(K.created_at): bindparam("now"),
    col(K.customer_ip): bindparam("ip"),
    col(K.onramp_session_id): bindparam("session_id"),
}


def _claim(postgres: bool) -> Any:
    return (
        insert_into(KEYS, postgres)
        .values(_CLAIMED)
        .on_conflict_do_nothing(index_elements=[col(K.wallet_address), col(K.key)])
        .returning(col(K.id))
    )


_CLAIM_ALONE = Sql.per_dialect(_claim)
# PostgreSQL: the claim and its new session in one statement, nothing stored unless the
# key was new. The session's values are its columns' own parameters, as `repository`'s
# INSERT takes them.
_CLAIMED_NOW = _claim(postgres=True).cte("claimed")
_CLAIM_AND_START = Sql(
    insert(SESSIONS)
    .from_select(
        [*repository.ROW],
        select(
            *[bindparam(f"new_{column.key}", type_=column.type) for column in repository.ROW]
        ).where(exists(select(_CLAIMED_NOW.c.id))),
    )
    .add_cte(_CLAIMED_NOW)
    .returning(col(OnrampSession.id))
)
_NAME_SESSION = Sql(
    update(KEYS).values({col(K.onramp_session_id): bindparam("session_id")}).where(_THIS_KEY)
)
_ANSWERED: dict[Any, Any] = {
    col(K.response_status): bindparam("response_status_given"),
    col(K.response_body): bindparam("response_body_given"),
    col(K.onramp_session_id): bindparam("session_id"),
    col(K.locked_at): null(),
}
_STORE_ANSWER = Sql(update(KEYS).values(_ANSWERED).where(_THIS_KEY))
_FINISHED = repository.FINISH.cte("finished")
_FINISH_AND_ANSWER = Sql(
    select(_FINISHED.c.id).add_cte(
        update(KEYS)
        .values(_ANSWERED)
        .where(_THIS_KEY, exists(select(_FINISHED.c.id)))
        .cte("answered")
    )
)
_TAKE_OVER = Sql(
    update(KEYS)
    .values({col(K.locked_at): bindparam("now")})
    .where(
        _THIS_KEY,
        col(K.fingerprint) == bindparam("request_fingerprint"),
        col(K.response_status).is_(None),
        or_(col(K.locked_at).is_(None), col(K.locked_at) < bindparam("stale")),
    )
    .returning(col(K.id))
)
_READ = Sql(
    select(
        col(K.fingerprint),
        col(K.onramp_session_id),
        col(K.response_status),
        col(K.response_body),
        col(K.customer_ip),
    ).where(_THIS_KEY)
)
_RELEASE = Sql(update(KEYS).values({col(K.locked_at): null()}).where(_THIS_KEY))
_DELETE_IF_EXPIRED = Sql(delete(KEYS).where(_THIS_KEY, col(K.created_at) < bindparam("cutoff")))
# The retention job's: a bounded batch per statement, so no delete holds many row locks.
_EXPIRED = col(K.created_at) < bindparam("cutoff")
_COUNT_EXPIRED = Sql(select(func.count()).select_from(KEYS).where(_EXPIRED))
_DELETE_EXPIRED = batch_delete(
    KEYS.c.id, select(col(K.id)).where(_EXPIRED).limit(bindparam("batch"))
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
    return {"wallet": wallet, "idempotency_key": key}


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
        **{f"new_{name}": value for name, value in repository.values_of(session).items()},
        **_key(wallet, key),
        "request_fingerprint": fingerprint,
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
    values = {**_key(wallet, key), "request_fingerprint": fingerprint, "now": now, "ip": ip}
    return await sql.scalar(_CLAIM_ALONE, {**values, "session_id": None}) is not None


async def take_over(
    sql: SqlTransaction, wallet: str, key: str, fingerprint: str, now: datetime
) -> bool:
    """Lock an unfinished key that no live request holds; true if this caller got it."""
    values = {**_key(wallet, key), "request_fingerprint": fingerprint, "now": now}
    return await sql.scalar(_TAKE_OVER, {**values, "stale": now - IN_FLIGHT_TIMEOUT}) is not None


async def read(sql: SqlTransaction, wallet: str, key: str) -> HeldKey:
    return HeldKey(**(await sql.rows(_READ, _key(wallet, key)))[0])


async def delete_if_expired(sql: SqlTransaction, wallet: str, key: str, now: datetime) -> None:
    await sql.execute(_DELETE_IF_EXPIRED, {**_key(wallet, key), "cutoff": now - KEY_LIFETIME})


async def name_session(sql: SqlTransaction, wallet: str, key: str, session_id: str) -> None:
    await sql.execute(_NAME_SESSION, {**_key(wallet, key), "session_id": session_id})


async def store_answer(sql: SqlTransaction, wallet: str, key: str, answer: Answer) -> None:
    values = {"response_status_given": answer.status, "response_body_given": answer.body}
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
        "response_status_given": answer.status,
        "response_body_given": answer.body,
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
    return len(await database.run_alone(_DELETE_EXPIRED, params))
