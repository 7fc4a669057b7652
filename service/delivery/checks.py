"""Persistence of delivery checks: scheduling, claims, and the end of a round.

Other capabilities schedule checks through `schedule_check` and `reopen_check` only,
inside their own transactions, reports read when time-outs started
(`timeouts_started`), and the retention job deletes long-finished checks
(`delete_finished`); everything else here belongs to the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import any_, bindparam, func, literal, null, or_, select, update
from sqlalchemy.sql.selectable import CTE, HasCTE
from sqlmodel import col

from service.columns import table_of
from service.database import Database
from service.delivery.models import DeliveryCheck
from service.sql import Sql, SqlTransaction, batch_delete, insert_into, one_of
from service.tracing import traceparent

C = DeliveryCheck
StatementWithCtes = TypeVar("StatementWithCtes", bound=HasCTE)
CHECKS = table_of(DeliveryCheck)
_session = col(C.onramp_session_id)
_NEW = {
    _session: bindparam("session_id"),
    col(C.due_at): bindparam("now"),
    col(C.attempts): literal(0),
    col(C.created_at): bindparam("now"),
    col(C.traceparent): bindparam("trace"),
}
_SCHEDULE = Sql.per_dialect(
    lambda postgres: (
        insert_into(CHECKS, postgres).values(_NEW).on_conflict_do_nothing(index_elements=[_session])
    )
)


def with_check_of_move(statement: StatementWithCtes, moved: CTE) -> StatementWithCtes:
    """PostgreSQL's `statement` scheduling as well, as `schedule_check` does, a check
    for the session that `moved` returns if any (a move to fulfilled made by the same
    statement), from `move_check_values`."""
    new = {**_NEW, _session: moved.c.id}
    scheduled = (
        insert_into(CHECKS, True)
        .from_select(list(new), select(*new.values()).select_from(moved))
        .on_conflict_do_nothing(index_elements=[_session])
    )
    return statement.add_cte(scheduled.cte("moved_check"))


def move_check_values() -> dict[str, Any]:
    """The parameters of `with_check_of_move` besides the move's own `now` (its
    `session_id` is the moved row's)."""
    return {"trace": traceparent()}


async def schedule_check(sql: SqlTransaction, onramp_session_id: str, now: datetime) -> None:
    """Make sure a check is due for the session; scheduling twice changes nothing. The
    check keeps the trace of the request scheduling it, which its round links to."""
    params = {"session_id": onramp_session_id, "now": now, "trace": traceparent()}
    await sql.execute(_SCHEDULE, params)


_REOPEN = Sql.per_dialect(
    lambda postgres: (
        insert_into(CHECKS, postgres)
        .values(_NEW)
        .on_conflict_do_update(
            index_elements=[_session],
            set_={
                col(C.due_at): bindparam("now"),
                col(C.finished_at): null(),
                col(C.claimed_until): null(),
                col(C.attempts): 0,
                col(C.created_at): bindparam("now"),
                col(C.traceparent): bindparam("trace"),
            },
        )
    )
)


async def reopen_check(sql: SqlTransaction, onramp_session_id: str, now: datetime) -> None:
    """Check the session again now, decided or not, with a fresh time-out: for news (a
    late transaction id) or an operator's word. A round already holding the check loses
    its claim, so it cannot record what it decided without the news."""
    params = {"session_id": onramp_session_id, "now": now, "trace": traceparent()}
    await sql.execute(_REOPEN, params)


_DUE = (
    select(_session)
    .where(
        col(C.finished_at).is_(None),
        col(C.due_at) <= bindparam("now"),
        or_(col(C.claimed_until).is_(None), col(C.claimed_until) < bindparam("now")),
    )
    .order_by(col(C.due_at))
    .limit(bindparam("limit"))
)
_LEASED = {col(C.claimed_until): bindparam("lease"), col(C.attempts): col(C.attempts) + 1}
# PostgreSQL: concurrent workers skip each other's rows instead of waiting on them. The
# due ids are gathered first (an ARRAY subquery, run once), then the rows found by key:
# written `IN (SELECT …)`, the planner could join them against a scan of every check.
_CLAIM_POSTGRES = Sql(
    update(CHECKS)
    .values(_LEASED)
    .where(_session == any_(func.array(_DUE.with_for_update(skip_locked=True).scalar_subquery())))
    .returning(_session)
)
# SQLite has one writer at a time, so the UPDATE itself is the claim.
_CLAIM_SQLITE = Sql(update(CHECKS).values(_LEASED).where(_session.in_(_DUE)).returning(_session))


async def claim_due(sql: SqlTransaction, now: datetime, lease: datetime, limit: int) -> list[str]:
    """Lease up to `limit` due checks to this round until `lease`."""
    claim = _CLAIM_POSTGRES if sql.is_postgres else _CLAIM_SQLITE
    return await sql.column(claim, {"now": now, "lease": lease, "limit": limit})


# One session, for a check on an operator's word: taken only if no worker holds it.
_CLAIM_ONE = Sql(
    update(CHECKS)
    .values(_LEASED)
    .where(
        _session == bindparam("id"),
        or_(col(C.claimed_until).is_(None), col(C.claimed_until) < bindparam("now")),
    )
    .returning(_session)
)


async def claim_one(sql: SqlTransaction, session_id: str, now: datetime, lease: datetime) -> bool:
    found = await sql.scalar(_CLAIM_ONE, {"id": session_id, "now": now, "lease": lease})
    return found is not None


_HAND_BACK = Sql(
    update(CHECKS)
    .values({col(C.claimed_until): null(), col(C.due_at): bindparam("due")})
    .where(col(C.claimed_until) == bindparam("lease"), col(C.finished_at).is_(None))
)


async def hand_back(sql: SqlTransaction, lease: datetime, due: datetime) -> None:
    """Give up a round's claims: the checks are due again at `due`."""
    await sql.execute(_HAND_BACK, {"lease": lease, "due": due})


_RENEW = Sql.per_dialect(
    lambda postgres: (
        update(CHECKS)
        .values({col(C.claimed_until): bindparam("renewed")})
        .where(
            one_of(_session, "ids", postgres),
            col(C.claimed_until) == bindparam("lease"),
            col(C.claimed_until) > bindparam("now"),
            col(C.finished_at).is_(None),
        )
        .returning(_session)
    )
)


async def renew_claims(
    sql: SqlTransaction, session_ids: list[str], lease: datetime, now: datetime, renewed: datetime
) -> set[str]:
    """Extend a round's claims from `lease` to `renewed`; the checks it still held.

    Only a lease that is still this round's (its own `lease`, not yet past) is extended:
    a check reopened meanwhile, or one whose lease ran out and which another worker may
    have claimed, stays lost to the round, so two workers never hold one check."""
    params = {"ids": session_ids, "lease": lease, "now": now, "renewed": renewed}
    return set(await sql.column(_RENEW, params))


@dataclass(frozen=True)
class ClaimedCheck:
    """A check as a round reads it: its row, by column name."""

    onramp_session_id: str
    created_at: datetime  # when the time-out began: reopening a check starts it again
    attempts: int
    search_from_block: int | None
    found_transaction_hash: str | None
    traceparent: str | None  # of the request that scheduled it, when that one traced

    @property
    def started(self) -> datetime:
        return self.created_at


_READ = Sql.per_dialect(
    lambda postgres: select(
        _session,
        col(C.created_at),
        col(C.attempts),
        col(C.search_from_block),
        col(C.found_transaction_hash),
        col(C.traceparent),
    ).where(one_of(_session, "ids", postgres))
)


async def read_checks(sql: SqlTransaction, session_ids: list[str]) -> dict[str, ClaimedCheck]:
    checks = [ClaimedCheck(**row) for row in await sql.rows(_READ, {"ids": session_ids})]
    return {check.onramp_session_id: check for check in checks}


_END_CLAIMS = Sql.per_dialect(
    lambda postgres: (
        update(CHECKS)
        .values({col(C.claimed_until): null()})
        .where(one_of(_session, "ids", postgres), col(C.claimed_until) == bindparam("lease"))
        .returning(_session)
    )
)


async def end_claims(sql: SqlTransaction, session_ids: list[str], lease: datetime) -> set[str]:
    """The checks this round still holds, no longer claimed once the transaction commits.
    A check reopened meanwhile, or taken over after the lease, is not among them."""
    return set(await sql.column(_END_CLAIMS, {"ids": session_ids, "lease": lease}))


@dataclass(frozen=True)
class CheckOutcome:
    session_id: str
    finished_at: datetime | None
    due_at: datetime
    search_from_block: int | None
    found_transaction_hash: str | None


_SETTLE = Sql(
    update(CHECKS)
    .values(
        {
            col(C.finished_at): bindparam("finished"),
            col(C.due_at): bindparam("due"),
            col(C.search_from_block): bindparam("from_block"),
            col(C.found_transaction_hash): bindparam("found"),
        }
    )
    .where(_session == bindparam("session_id"))
)


async def settle_checks(sql: SqlTransaction, outcomes: list[CheckOutcome]) -> None:
    await sql.execute_many(
        _SETTLE,
        [
            {
                "session_id": o.session_id,
                "finished": o.finished_at,
                "due": o.due_at,
                "from_block": o.search_from_block,
                "found": o.found_transaction_hash,
            }
            for o in outcomes
        ],
    )


_SEARCH_AGAIN = Sql.per_dialect(
    lambda postgres: (
        update(CHECKS)
        .values(
            {
                col(C.due_at): bindparam("now"),
                col(C.finished_at): null(),
                col(C.claimed_until): null(),
                col(C.attempts): 0,
                col(C.created_at): bindparam("now"),
                col(C.found_transaction_hash): null(),
            }
        )
        .where(one_of(_session, "ids", postgres))
    )
)


async def search_again(sql: SqlTransaction, session_ids: list[str], now: datetime) -> None:
    """Sessions whose found transfer went to the session Stripe named for it look for
    another one, now; a round holding one of them loses its claim."""
    if session_ids:
        await sql.execute(_SEARCH_AGAIN, {"ids": sorted(session_ids), "now": now})


_STARTED = Sql.per_dialect(
    lambda postgres: select(_session, col(C.created_at)).where(one_of(_session, "ids", postgres))
)


async def timeouts_started(database: Database, session_ids: list[str]) -> dict[str, datetime]:
    """When each session's delivery time-out started (its fulfilment, or a late
    transaction id), for the sessions that have a check."""
    started: dict[str, datetime] = {}
    for at in range(0, len(session_ids), 500):
        rows = await database.run_alone(_STARTED, {"ids": session_ids[at : at + 500]})
        started.update(dict(rows))
    return started


# A finished check is decided for good: its verdict is final for its network (a block
# still short of finality keeps its check open), and the verdict lives on the session.
# Nothing reads a finished check again: `reopen_check` upserts, so a recheck of a
# session whose check is gone starts a new one, which only searches the chain again
# from the session's creation if the session named no transaction.
_FINISHED = col(C.finished_at) < bindparam("before")
_COUNT_FINISHED = Sql(select(func.count()).select_from(CHECKS).where(_FINISHED))
_DELETE_FINISHED = batch_delete(
    CHECKS.c.onramp_session_id, select(_session).where(_FINISHED).limit(bindparam("batch"))
)


async def count_finished(database: Database, before: datetime) -> int:
    return int((await database.run_alone(_COUNT_FINISHED, {"before": before}))[0][0])


async def delete_finished(database: Database, before: datetime, batch: int) -> int:
    """At most `batch` checks finished before `before`, in a statement of their own;
    how many went."""
    params = {"before": before, "batch": batch}
    return len(await database.run_alone(_DELETE_FINISHED, params))
