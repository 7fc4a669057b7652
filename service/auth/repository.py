"""Persistence of nonces, as hand-written SQL of one statement per call where the
database allows it: sign-in is a hot path, and the ORM's unit of work and transaction
round trips cost more than the statements themselves (bench/README.md).

The single-use guarantee lives in `consume`'s one conditional UPDATE.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from service.auth.rules import NonceRecord
from service.columns import UtcDateTime, as_utc
from service.database import Database
from service.sql import BatchDelete, Sql

# Expired nonces are kept this long for audit, then the retention job deletes them.
NONCE_RETENTION = timedelta(hours=1)

_INSERT = (
    "INSERT INTO auth_nonces (nonce, wallet_address, issued_at, expires_at, requested_by)"
    " VALUES (:nonce, :wallet, :issued_at, :expires_at, :asker)"
)
# Only among the nonces the same client asked for: one client's requests naming a wallet
# never evict the nonce its owner, elsewhere, is about to sign.
_EVICT = (
    "DELETE FROM auth_nonces WHERE wallet_address = :wallet AND requested_by = :asker"
    " AND used_at IS NULL AND nonce NOT IN (SELECT nonce FROM auth_nonces"
    " WHERE wallet_address = :wallet AND requested_by = :asker AND used_at IS NULL"
    " ORDER BY issued_at DESC, nonce DESC LIMIT :keep)"
)
# PostgreSQL: both in one statement. The DELETE does not see the row the INSERT adds,
# so it keeps the newest `keep - 1` of the others.
_ADD_POSTGRES = Sql(
    f"WITH added AS ({_INSERT} RETURNING nonce) {_EVICT} RETURNING nonce",
    datetimes=("issued_at", "expires_at"),
)
_ADD_SQLITE = Sql(_INSERT, datetimes=("issued_at", "expires_at"))
_EVICT_SQLITE = Sql(_EVICT)
_READ = Sql(
    "SELECT wallet_address, issued_at, expires_at, used_at FROM auth_nonces WHERE nonce = :nonce"
)
_READ_TYPES = {name: UtcDateTime() for name in ("issued_at", "expires_at", "used_at")}
_CONSUME = Sql(
    "UPDATE auth_nonces SET used_at = :now"
    " WHERE nonce = :nonce AND wallet_address = :wallet AND used_at IS NULL"
    " AND expires_at > :now AND issued_at <= :issued_by RETURNING nonce",
    datetimes=("now", "issued_by"),
)
# The retention job's: a bounded batch per statement, so no delete holds many row locks.
_EXPIRED = "FROM auth_nonces WHERE expires_at < :before"
_COUNT_EXPIRED = Sql(f"SELECT count(*) {_EXPIRED}", datetimes=("before",))
_DELETE_EXPIRED = BatchDelete(
    "auth_nonces", "nonce", f"SELECT nonce {_EXPIRED} LIMIT :batch", ("before",)
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
        "nonce": nonce,
        "wallet": wallet_address,
        "issued_at": issued_at,
        "expires_at": expires_at,
        "asker": asker,
    }
    if database.pool is not None:
        await database.run_alone(_ADD_POSTGRES, {**values, "keep": keep - 1})
        return
    async with database.transaction() as sql:
        await sql.execute(_ADD_SQLITE, values)
        await sql.execute(_EVICT_SQLITE, {"wallet": wallet_address, "asker": asker, "keep": keep})


async def read_nonce(database: Database, nonce: str) -> NonceRecord | None:
    rows = await database.run_alone(_READ, {"nonce": nonce}, _READ_TYPES)
    if not rows:
        return None
    wallet, issued_at, expires_at, used_at = rows[0]
    return NonceRecord(
        wallet,
        as_utc(issued_at),
        as_utc(expires_at),
        None if used_at is None else as_utc(used_at),
    )


async def consume(
    database: Database, nonce: str, wallet_address: str, issued_by: datetime, now: datetime
) -> bool:
    """Mark the nonce used if it is the wallet's, unused, unexpired and issued by
    `issued_by`; true only for the one caller whose UPDATE changed the row.

    A concurrent second caller waits on the row lock (PostgreSQL) or the write lock
    (SQLite), then finds `used_at` set and changes nothing.
    """
    values = {"nonce": nonce, "wallet": wallet_address, "issued_by": issued_by, "now": now}
    return bool(await database.run_alone(_CONSUME, values))


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
    statement = _DELETE_EXPIRED.on(database.pool is not None)
    return len(await database.run_alone(statement, params))
