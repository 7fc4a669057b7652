"""Persistence of nonces, built from the table's model, one statement per call where the
database allows it: sign-in is a hot path, and the ORM's unit of work and transaction
round trips cost more than the statements themselves (bench/README.md).

The single-use guarantee lives in `consume`'s one conditional UPDATE; the bound on
verifies that ask the chain, in `claim_chain_check`'s.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlmodel import col

from service.auth.models import AuthNonce
from service.auth.rules import CHAIN_CHECKS_PER_NONCE, NonceRecord
from service.columns import table_of
from service.database import Database
from service.sql import Sql, batch_delete

# Expired nonces are kept this long for audit, then the retention job deletes them.
NONCE_RETENTION = timedelta(hours=1)

N = AuthNonce
NONCES = table_of(AuthNonce)
# Parameters are not named as columns: an INSERT or UPDATE keeps those for itself.
_ISSUED: dict[Any, Any] = {
    col(N.nonce): bindparam("issued_nonce"),
    col(N.wallet_address): bindparam("wallet"),
    col(N.issued_at): bindparam("issued"),
    col(N.expires_at): bindparam("expires"),
    col(N.requested_by): bindparam("asker"),
}
_INSERT = insert(NONCES).values(_ISSUED)
# Only among the nonces the same client asked for: one client's requests naming a wallet
# never evict the nonce its owner, elsewhere, is about to sign.
_UNUSED_OF_ASKER = (
    col(N.wallet_address) == bindparam("wallet"),
    col(N.requested_by) == bindparam("asker"),
    col(N.used_at).is_(None),
)
_NEWEST = (
    select(col(N.nonce))
    .where(*_UNUSED_OF_ASKER)
    .order_by(col(N.issued_at).desc(), col(N.nonce).desc())
    .limit(bindparam("keep"))
)
_EVICT = delete(NONCES).where(*_UNUSED_OF_ASKER, col(N.nonce).not_in(_NEWEST))
# PostgreSQL: both in one statement. The DELETE does not see the row the INSERT adds,
# so it keeps the newest `keep - 1` of the others.
_ADD_POSTGRES = Sql(
    _EVICT.add_cte(_INSERT.returning(col(N.nonce)).cte("added")).returning(col(N.nonce))
)
_ADD_SQLITE = Sql(_INSERT)
_EVICT_SQLITE = Sql(_EVICT)
_READ = Sql(
    select(
        col(N.wallet_address),
        col(N.issued_at),
        col(N.expires_at),
        col(N.used_at),
        col(N.chain_checks),
    ).where(col(N.nonce) == bindparam("nonce"))
)
_CONSUME = Sql(
    update(NONCES)
    .values({col(N.used_at): bindparam("now")})
    .where(
        col(N.nonce) == bindparam("spent_nonce"),
        col(N.wallet_address) == bindparam("wallet"),
        col(N.used_at).is_(None),
        col(N.expires_at) > bindparam("now"),
        col(N.issued_at) <= bindparam("issued_by"),
    )
    .returning(col(N.nonce))
)
_CLAIM_CHAIN_CHECK = Sql(
    update(NONCES)
    .values({col(N.chain_checks): col(N.chain_checks) + 1})
    .where(
        col(N.nonce) == bindparam("checked_nonce"),
        col(N.wallet_address) == bindparam("wallet"),
        col(N.used_at).is_(None),
        col(N.expires_at) > bindparam("now"),
        col(N.chain_checks) < CHAIN_CHECKS_PER_NONCE,
    )
    .returning(col(N.chain_checks))
)
_SPEND = Sql(
    update(NONCES)
    .values({col(N.used_at): bindparam("now")})
    .where(col(N.nonce) == bindparam("spent_nonce"), col(N.used_at).is_(None))
    .returning(col(N.nonce))
)
# The retention job's: a bounded batch per statement, so no delete holds many row locks.
_EXPIRED = col(N.expires_at) < bindparam("before")
_COUNT_EXPIRED = Sql(select(func.count()).select_from(NONCES).where(_EXPIRED))
_DELETE_EXPIRED = batch_delete(
    NONCES.c.nonce, select(col(N.nonce)).where(_EXPIRED).limit(bindparam("batch"))
)


async def add_nonce(
    database: Database,
    nonce: str,
    wallet_address: str,
    issued_at: datetime,
    expires_at: datetime,
    *,
    asker: str,
    keep: int,
) -> None:
    """Store a new nonce; of the unused nonces `asker` holds for the wallet only the
    newest `keep` remain."""
    values = {
        "issued_nonce": nonce,
        "wallet": wallet_address,
        "issued": issued_at,
        "expires": expires_at,
        "asker": asker,
    }
    if database.pool is not None:
        await database.run_alone(_ADD_POSTGRES, {**values, "keep": keep - 1})
        return
    async with database.transaction() as sql:
        await sql.execute(_ADD_SQLITE, values)
        await sql.execute(_EVICT_SQLITE, {"wallet": wallet_address, "asker": asker, "keep": keep})


async def read_nonce(database: Database, nonce: str) -> NonceRecord | None:
    rows = await database.run_alone(_READ, {"nonce": nonce})
    if not rows:
        return None
    return NonceRecord(*rows[0])


async def consume(
    database: Database, nonce: str, wallet_address: str, issued_by: datetime, now: datetime
) -> bool:
    """Mark the nonce used if it is the wallet's, unused, unexpired and issued by
    `issued_by`; true only for the one caller whose UPDATE changed the row.

    A concurrent second caller waits on the row lock (PostgreSQL) or the write lock
    (SQLite), then finds `used_at` set and changes nothing.
    """
    values = {"spent_nonce": nonce, "wallet": wallet_address, "issued_by": issued_by, "now": now}
    return bool(await database.run_alone(_CONSUME, values))


async def claim_chain_check(
    database: Database, nonce: str, wallet_address: str, now: datetime
) -> int | None:
    """Count one more verify of the wallet's unused, unexpired nonce that asks the
    chain; how many that makes, or None when the nonce has none left (or is not
    usable). One conditional UPDATE: replicas together never exceed the bound."""
    values = {"checked_nonce": nonce, "wallet": wallet_address, "now": now}
    rows = await database.run_alone(_CLAIM_CHAIN_CHECK, values)
    return int(rows[0][0]) if rows else None


async def spend(database: Database, nonce: str, now: datetime) -> None:
    """Mark the nonce used without a sign-in: its last check on chain failed."""
    await database.run_alone(_SPEND, {"spent_nonce": nonce, "now": now})


def expired_before(now: datetime) -> datetime:
    """Used and expired nonces are kept a while for audit (`NONCE_RETENTION`)."""
    return now - NONCE_RETENTION


async def count_expired(database: Database, now: datetime) -> int:
    rows = await database.run_alone(_COUNT_EXPIRED, {"before": expired_before(now)})
    return int(rows[0][0])


async def delete_expired(database: Database, now: datetime, batch: int) -> int:
    """At most `batch` nonces past their retention, in a statement of their own; how
    many went."""
    params = {"before": expired_before(now), "batch": batch}
    return len(await database.run_alone(_DELETE_EXPIRED, params))
