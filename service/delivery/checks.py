"""Persistence of delivery checks: scheduling, claims, and the end of a round.

Other capabilities schedule checks through `schedule_check` and `reopen_check` only,
inside their own transactions, reports read when time-outs started
(`timeouts_started`), and the retention job deletes long-finished checks
(`delete_finished`); everything else here belongs to the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.columns import UtcDateTime, as_utc
from service.database import Database
from service.sql import BatchDelete, Sql, SqlTransaction, with_list

_SCHEDULE = Sql(
    "INSERT INTO delivery_checks (onramp_session_id, due_at, attempts, created_at)"
    " VALUES (:session_id, :now, 0, :now) ON CONFLICT (onramp_session_id) DO NOTHING",
    datetimes=("now",),
)


async def schedule_check(sql: SqlTransaction, onramp_session_id: str, now: datetime) -> None:
    """Make sure a check is due for the session; scheduling twice changes nothing."""
    await sql.execute(_SCHEDULE, {"session_id": onramp_session_id, "now": now})


_REOPEN = Sql(
    "INSERT INTO delivery_checks (onramp_session_id, due_at, attempts, created_at)"
    " VALUES (:session_id, :now, 0, :now) ON CONFLICT (onramp_session_id) DO UPDATE"
    " SET due_at = :now, finished_at = NULL, claimed_until = NULL, attempts = 0,"
    " created_at = :now",
    datetimes=("now",),
)


async def reopen_check(sql: SqlTransaction, onramp_session_id: str, now: datetime) -> None:
    """Check the session again now, decided or not, with a fresh time-out: for news (a
    late transaction id) or an operator's word. A round already holding the check loses
    its claim, so it cannot record what it decided without the news."""
    await sql.execute(_REOPEN, {"session_id": onramp_session_id, "now": now})


_DUE = (
    "SELECT onramp_session_id FROM delivery_checks"
    " WHERE finished_at IS NULL AND due_at <= :now"
    " AND (claimed_until IS NULL OR claimed_until < :now)"
    " ORDER BY due_at LIMIT :limit"
)
_CLAIM = (
    "UPDATE delivery_checks SET claimed_until = :lease, attempts = attempts + 1"
    " WHERE onramp_session_id {due} RETURNING onramp_session_id"
)
# PostgreSQL: concurrent workers skip each other's rows instead of waiting on them. The
# due ids are gathered first (an ARRAY subquery, run once), then the rows found by key:
# written `IN (SELECT …)`, the planner could join them against a scan of every check.
_CLAIM_POSTGRES = Sql(
    _CLAIM.format(due=f"= ANY(ARRAY({_DUE} FOR UPDATE SKIP LOCKED))"),
    datetimes=("now", "lease"),
)
# SQLite has one writer at a time, so the UPDATE itself is the claim.
_CLAIM_SQLITE = Sql(_CLAIM.format(due=f"IN ({_DUE})"), datetimes=("now", "lease"))


async def claim_due(sql: SqlTransaction, now: datetime, lease: datetime, limit: int) -> list[str]:
    """Lease up to `limit` due checks to this round until `lease`."""
    claim = _CLAIM_POSTGRES if sql.is_postgres else _CLAIM_SQLITE
    return await sql.column(claim, {"now": now, "lease": lease, "limit": limit})


# One session, for a check on an operator's word: taken only if no worker holds it.
_CLAIM_ONE = Sql(
    "UPDATE delivery_checks SET claimed_until = :lease, attempts = attempts + 1"
    " WHERE onramp_session_id = :id AND (claimed_until IS NULL OR claimed_until < :now)"
    " RETURNING onramp_session_id",
    datetimes=("now", "lease"),
)


async def claim_one(sql: SqlTransaction, session_id: str, now: datetime, lease: datetime) -> bool:
    found = await sql.scalar(_CLAIM_ONE, {"id": session_id, "now": now, "lease": lease})
    return found is not None


_HAND_BACK = Sql(
    "UPDATE delivery_checks SET claimed_until = NULL, due_at = :due"
    " WHERE claimed_until = :lease AND finished_at IS NULL",
    datetimes=("lease", "due"),
)


async def hand_back(sql: SqlTransaction, lease: datetime, due: datetime) -> None:
    """Give up a round's claims: the checks are due again at `due`."""
    await sql.execute(_HAND_BACK, {"lease": lease, "due": due})


@dataclass(frozen=True)
class ClaimedCheck:
    session_id: str
    started: datetime  # when the time-out began
    attempts: int
    search_from_block: int | None
    found_transaction_hash: str | None


_READ = (
    "SELECT onramp_session_id, created_at, attempts, search_from_block,"
    " found_transaction_hash FROM delivery_checks WHERE onramp_session_id IN (ids)"
)


async def read_checks(sql: SqlTransaction, session_ids: list[str]) -> dict[str, ClaimedCheck]:
    statement, params = with_list(_READ, "ids", session_ids)
    return {
        row["onramp_session_id"]: ClaimedCheck(
            row["onramp_session_id"],
            as_utc(row["created_at"]),
            row["attempts"],
            row["search_from_block"],
            row["found_transaction_hash"],
        )
        for row in await sql.rows(statement, params)
    }


_END_CLAIMS = (
    "UPDATE delivery_checks SET claimed_until = NULL"
    " WHERE onramp_session_id IN (ids) AND claimed_until = :lease RETURNING onramp_session_id"
)


async def end_claims(sql: SqlTransaction, session_ids: list[str], lease: datetime) -> set[str]:
    """The checks this round still holds, no longer claimed once the transaction commits.
    A check reopened meanwhile, or taken over after the lease, is not among them."""
    statement, params = with_list(_END_CLAIMS, "ids", session_ids, datetimes=("lease",))
    return set(await sql.column(statement, {**params, "lease": lease}))


@dataclass(frozen=True)
class CheckOutcome:
    session_id: str
    finished_at: datetime | None
    due_at: datetime
    search_from_block: int | None
    found_transaction_hash: str | None


_SETTLE = Sql(
    "UPDATE delivery_checks SET finished_at = :finished_at, due_at = :due_at,"
    " search_from_block = :search_from_block, found_transaction_hash = :found"
    " WHERE onramp_session_id = :session_id",
    datetimes=("finished_at", "due_at"),
)


async def settle_checks(sql: SqlTransaction, outcomes: list[CheckOutcome]) -> None:
    await sql.execute_many(
        _SETTLE,
        [
            {
                "session_id": o.session_id,
                "finished_at": o.finished_at,
                "due_at": o.due_at,
                "search_from_block": o.search_from_block,
                "found": o.found_transaction_hash,
            }
            for o in outcomes
        ],
    )


_SEARCH_AGAIN = (
    "UPDATE delivery_checks SET due_at = :now, finished_at = NULL, claimed_until = NULL,"
    " attempts = 0, created_at = :now, found_transaction_hash = NULL"
    " WHERE onramp_session_id IN (ids)"
)


async def search_again(sql: SqlTransaction, session_ids: list[str], now: datetime) -> None:
    """Sessions whose found transfer went to the session Stripe named for it look for
    another one, now; a round holding one of them loses its claim."""
    if session_ids:
        statement, params = with_list(_SEARCH_AGAIN, "ids", sorted(session_ids), ("now",))
        await sql.execute(statement, {**params, "now": now})


_STARTED = (
    "SELECT onramp_session_id, created_at FROM delivery_checks WHERE onramp_session_id IN (ids)"
)


async def timeouts_started(database: Database, session_ids: list[str]) -> dict[str, datetime]:
    """When each session's delivery time-out started (its fulfilment, or a late
    transaction id), for the sessions that have a check."""
    started: dict[str, datetime] = {}
    for at in range(0, len(session_ids), 500):
        statement, params = with_list(_STARTED, "ids", session_ids[at : at + 500])
        rows = await database.run_alone(statement, params, {"created_at": UtcDateTime()})
        started.update({session_id: as_utc(when) for session_id, when in rows})
    return started


# A finished check is decided for good: its verdict is final for its network (a block
# still short of finality keeps its check open), and the verdict lives on the session.
# Nothing reads a finished check again: `reopen_check` upserts, so a recheck of a
# session whose check is gone starts a new one, which only searches the chain again
# from the session's creation if the session named no transaction.
_FINISHED = "FROM delivery_checks WHERE finished_at < :before"
_COUNT_FINISHED = Sql(f"SELECT count(*) {_FINISHED}", datetimes=("before",))
_DELETE_FINISHED = BatchDelete(
    "delivery_checks",
    "onramp_session_id",
    f"SELECT onramp_session_id {_FINISHED} LIMIT :batch",
    ("before",),
)


async def count_finished(database: Database, before: datetime) -> int:
    return int((await database.run_alone(_COUNT_FINISHED, {"before": before}))[0][0])


async def delete_finished(database: Database, before: datetime, batch: int) -> int:
    """At most `batch` checks finished before `before`, in a statement of their own;
    how many went."""
    params = {"before": before, "batch": batch}
    statement = _DELETE_FINISHED.on(database.pool is not None)
    return len(await database.run_alone(statement, params))
