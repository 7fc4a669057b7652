"""Every statement on the merchant webhooks' tables (endpoints, events, deliveries and
the attempt log), built from their models and compiled once (service/sql.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    any_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.selectable import CTE, HasCTE
from sqlmodel import col

from service.columns import table_of
from service.database import Database
from service.merchant_webhooks.models import (
    ATTEMPT_COLUMNS,
    ENDPOINT_COLUMNS,
    AttemptRow,
    DeliveryAttempt,
    EndpointRow,
    OutgoingDelivery,
    OutgoingEvent,
    WebhookEndpoint,
)
from service.merchant_webhooks.payloads import WITHHELD, stored_body
from service.merchant_webhooks.rules import ENDPOINT_DISABLED, ENDPOINT_ENABLED
from service.sql import Sql, SqlTransaction, batch_delete, const, insert_into

E, V, D, A = WebhookEndpoint, OutgoingEvent, OutgoingDelivery, DeliveryAttempt
ENDPOINTS, EVENTS = table_of(WebhookEndpoint), table_of(OutgoingEvent)
DELIVERIES, ATTEMPTS = table_of(OutgoingDelivery), table_of(DeliveryAttempt)
_ENDPOINT_ROW = [ENDPOINTS.c[name] for name in ENDPOINT_COLUMNS]
_ATTEMPT_ROW = [ATTEMPTS.c[name] for name in ATTEMPT_COLUMNS]
_THIS_ENDPOINT = col(E.id) == bindparam("endpoint")


def _each_from_new(columns: Sequence[Any]) -> dict[Any, Any]:
    """Each column from the parameter `new_<column>` (a parameter may not be named as
    its column)."""
    return {column: bindparam(f"new_{column.key}") for column in columns}


# Endpoints.
_INSERT_ENDPOINT = Sql(insert(ENDPOINTS).values(_each_from_new(_ENDPOINT_ROW)))
_ALL_ENDPOINTS = Sql(select(*_ENDPOINT_ROW).order_by(col(E.id)))
_ONE_ENDPOINT = Sql(select(*_ENDPOINT_ROW).where(_THIS_ENDPOINT))
_ENABLED = col(E.status) == const(ENDPOINT_ENABLED)
_ENABLED_ENDPOINTS = Sql(select(col(E.id), col(E.events)).where(_ENABLED).order_by(col(E.id)))
_FAILING = Sql(select(col(E.id), col(E.failing_since)).where(_ENABLED))
# The previous secret is the one being replaced (SET reads the row as it was).
_ROTATE = Sql(
    update(ENDPOINTS)
    .values(
        {
            col(E.previous_secret): col(E.secret),
            col(E.previous_secret_until): bindparam("until"),
            col(E.secret): bindparam("new_secret"),
        }
    )
    .where(_THIS_ENDPOINT)
    .returning(col(E.id))
)
_ENABLE = Sql(
    update(ENDPOINTS)
    .values({col(E.status): const(ENDPOINT_ENABLED), col(E.failing_since): null()})
    .where(_THIS_ENDPOINT)
    .returning(col(E.id))
)
_RECORD_FAILING = Sql(
    update(ENDPOINTS)
    .values({col(E.failing_since): bindparam("since"), col(E.status): bindparam("new_status")})
    .where(_THIS_ENDPOINT, _ENABLED)
)
_DELETE_ENDPOINT = Sql(delete(ENDPOINTS).where(_THIS_ENDPOINT).returning(col(E.id)))
_DELETE_ENDPOINT_DELIVERIES = Sql(
    delete(DELIVERIES).where(col(D.endpoint_id) == bindparam("endpoint"))
)
_DELETE_ENDPOINT_ATTEMPTS = Sql(delete(ATTEMPTS).where(col(A.endpoint_id) == bindparam("endpoint")))


async def insert_endpoint(sql: SqlTransaction, endpoint: EndpointRow) -> None:
    values = msgspec.structs.asdict(endpoint)
    await sql.execute(_INSERT_ENDPOINT, {f"new_{name}": value for name, value in values.items()})


async def all_endpoints(database: Database) -> list[EndpointRow]:
    return [EndpointRow(*row) for row in await database.run_alone(_ALL_ENDPOINTS, {})]


async def endpoint(database: Database, endpoint_id: str) -> EndpointRow | None:
    rows = await database.run_alone(_ONE_ENDPOINT, {"endpoint": endpoint_id})
    return EndpointRow(*rows[0]) if rows else None


async def endpoint_in(sql: SqlTransaction, endpoint_id: str) -> EndpointRow | None:
    rows = await sql.rows(_ONE_ENDPOINT, {"endpoint": endpoint_id})
    return EndpointRow(**rows[0]) if rows else None


async def enabled_endpoint_ids(database: Database) -> list[str]:
    return [row[0] for row in await database.run_alone(_ENABLED_ENDPOINTS, {})]


async def failing_endpoints(database: Database) -> dict[str, datetime | None]:
    """Each enabled endpoint's start of failures, null while it succeeds."""
    return dict(await database.run_alone(_FAILING, {}))


async def rotate(sql: SqlTransaction, endpoint_id: str, secret: str, until: datetime) -> bool:
    params = {"endpoint": endpoint_id, "new_secret": secret, "until": until}
    return await sql.scalar(_ROTATE, params) is not None


async def enable(sql: SqlTransaction, endpoint_id: str) -> bool:
    return await sql.scalar(_ENABLE, {"endpoint": endpoint_id}) is not None


async def record_failing(
    sql: SqlTransaction, endpoint_id: str, since: datetime | None, disable: bool
) -> None:
    status = ENDPOINT_DISABLED if disable else ENDPOINT_ENABLED
    await sql.execute(
        _RECORD_FAILING, {"endpoint": endpoint_id, "since": since, "new_status": status}
    )


async def delete_endpoint(sql: SqlTransaction, endpoint_id: str) -> bool:
    """The endpoint, its deliveries and its attempt log."""
    await sql.execute(_DELETE_ENDPOINT_ATTEMPTS, {"endpoint": endpoint_id})
    await sql.execute(_DELETE_ENDPOINT_DELIVERIES, {"endpoint": endpoint_id})
    return await sql.scalar(_DELETE_ENDPOINT, {"endpoint": endpoint_id}) is not None


# Events and their deliveries.
_EVENT_ROW = [col(V.id), col(V.type), col(V.onramp_session_id), col(V.body), col(V.created_at)]
_INSERT_EVENT = Sql(insert(EVENTS).values(_each_from_new(_EVENT_ROW)))
_DELIVERY_NEW = {
    col(D.event_id): bindparam("event"),
    col(D.endpoint_id): bindparam("endpoint"),
    col(D.due_at): bindparam("now"),
    col(D.attempts): 0,
    col(D.claimed_until): null(),
    col(D.outcome): null(),
    col(D.finished_at): null(),
    col(D.created_at): bindparam("created"),
}
# A replay: due again now, from its first attempt, whatever became of it.
_REPLAY_DELIVERY = Sql.per_dialect(
    lambda postgres: (
        insert_into(DELIVERIES, postgres)
        .values(_DELIVERY_NEW)
        .on_conflict_do_update(
            index_elements=[col(D.event_id), col(D.endpoint_id)],
            set_={
                col(D.due_at): bindparam("now"),
                col(D.attempts): 0,
                col(D.claimed_until): null(),
                col(D.outcome): null(),
                col(D.finished_at): null(),
            },
        )
    )
)
_EVENTS_SINCE = Sql(
    select(col(V.id), col(V.type), col(V.created_at))
    .where(col(V.created_at) >= bindparam("since"), col(V.id) > bindparam("after"))
    .order_by(col(V.id))
    .limit(bindparam("limit"))
)


StatementWithCtes = TypeVar("StatementWithCtes", bound=HasCTE)


class NewEvent(msgspec.Struct):
    id: str
    type: str
    onramp_session_id: str
    body: str
    created_at: datetime


_UNSET = ("claimed_until", "outcome", "finished_at")
_DELIVERY_ROW = [
    DELIVERIES.c[name]
    for name in ("event_id", "endpoint_id", "due_at", "attempts", *_UNSET, "created_at")
]


def _takes(event_type: Any, postgres: bool) -> ColumnElement[bool]:
    """`rules.subscribed` in SQL: the endpoint takes every type (null), or its
    comma-separated list names `event_type`."""
    position = func.strpos if postgres else func.instr
    named = position(const(",") + col(E.events) + const(","), const(",") + event_type + const(","))
    return or_(col(E.events).is_(None), named > 0)


def _deliveries_of(event_id: Any, event_type: Any, postgres: bool) -> Select[Any]:
    """A new delivery, due at once, of the event to each enabled endpoint that takes it."""
    created: Any = bindparam("new_created_at", type_=DELIVERIES.c.created_at.type)
    unset = [cast(null(), DELIVERIES.c[name].type) for name in _UNSET]
    return (
        select(event_id, col(E.id), created, literal(0), *unset, created)
        .where(_ENABLED, _takes(event_type, postgres))
        .order_by(col(E.id))
    )


# PostgreSQL: the event and its deliveries in one statement (a data-modifying CTE), the
# endpoints read in it. SQLite has no such CTE: the deliveries alone, after _INSERT_EVENT.
_NEW_EVENT = (
    insert(EVENTS)
    .values(_each_from_new(_EVENT_ROW))
    .returning(col(V.id), col(V.type))
    .cte("new_event")
)
_DELIVERIES_OF_NEW_EVENT = insert(DELIVERIES).from_select(
    _DELIVERY_ROW, _deliveries_of(_NEW_EVENT.c.id, _NEW_EVENT.c.type, True)
)
_DELIVER_NEW_EVENT = Sql(
    _DELIVERIES_OF_NEW_EVENT.add_cte(_NEW_EVENT),
    sqlite=insert(DELIVERIES).from_select(
        _DELIVERY_ROW, _deliveries_of(bindparam("new_id"), bindparam("new_type"), False)
    ),
)


def session_json(moved: CTE) -> ColumnElement[str]:
    """The session row that `moved` returns, as JSON text (`payloads.session_from_json`
    reads it back)."""
    return cast(func.row_to_json(moved.table_valued()), Text)


def _snapshot(moved: CTE) -> ColumnElement[str]:
    """`session_json` without what a merchant is never sent (`payloads.WITHHELD`), so
    that the event keeps no copy of it."""
    row = cast(func.row_to_json(moved.table_valued()), JSONB)
    return cast(row.op("-")(const(WITHHELD)), Text)


def with_event_of_move(statement: StatementWithCtes, moved: CTE) -> StatementWithCtes:
    """PostgreSQL's `statement` writing as well, for the session that `moved` returns if
    any, a new event and its deliveries, from `moved_event_values`: for a move made by the
    same statement, whose body nothing in it can render. The event keeps the row as JSON
    (`session`), and the dispatcher renders the body from it (payloads.py)."""
    written = {
        **_each_from_new(_EVENT_ROW),
        col(V.onramp_session_id): moved.c.id,
        col(V.body): null(),
        col(V.session): _snapshot(moved),
    }
    event = (
        insert(EVENTS)
        .from_select(list(written), select(*written.values()).select_from(moved))
        .returning(col(V.id), col(V.type))
        .cte("moved_event")
    )
    deliveries = insert(DELIVERIES).from_select(
        _DELIVERY_ROW, _deliveries_of(event.c.id, event.c.type, True)
    )
    return statement.add_cte(event, deliveries.cte("moved_event_deliveries"))


async def insert_events(sql: SqlTransaction, events: list[NewEvent]) -> None:
    """Each event, and its deliveries to the endpoints enabled as it is written."""
    params = [new_event_values(e) for e in events]
    if not sql.is_postgres:
        await sql.execute_many(_INSERT_EVENT, params)
    await sql.execute_many(_DELIVER_NEW_EVENT, params)


def new_event_values(event: NewEvent) -> dict[str, Any]:
    """The parameters of `with_new_event`'s statement (and `insert_events`')."""
    return {f"new_{k}": v for k, v in msgspec.structs.asdict(event).items()}


def with_new_event(statement: StatementWithCtes) -> StatementWithCtes:
    """PostgreSQL's `statement` writing one new event and its deliveries as well, from
    `new_event_values`, in the same round trip: for a change whose transaction ends with
    a statement of its own (a Stripe event's log entry)."""
    return statement.add_cte(_NEW_EVENT, _DELIVERIES_OF_NEW_EVENT.cte("new_deliveries"))


async def replay_deliveries(
    sql: SqlTransaction, pairs: list[tuple[str, str]], now: datetime
) -> None:
    """A delivery of each (event, endpoint), due at `now`: a delivered or given-up one
    is due again."""
    await sql.execute_many(
        _REPLAY_DELIVERY,
        [{"event": e, "endpoint": p, "now": now, "created": now} for e, p in pairs],
    )


async def events_since(
    database: Database, since: datetime, after: str, limit: int
) -> list[tuple[str, str, datetime]]:
    """Events written at or after `since`, by id after `after`: (id, type, created)."""
    params = {"since": since, "after": after, "limit": limit}
    return [(r[0], r[1], r[2]) for r in await database.run_alone(_EVENTS_SINCE, params)]


# The dispatcher's claims: one endpoint's due deliveries, leased.
_OPEN = col(D.finished_at).is_(None)
_UNCLAIMED = or_(col(D.claimed_until).is_(None), col(D.claimed_until) < bindparam("now"))
# Ordered as the index (endpoint_id, finished_at, due_at) is, so that PostgreSQL reads
# it in order and stops at the limit: `finished_at IS NULL` does not make the column
# constant for ordering, so by `due_at` alone (or with `id`) each claim sorted every due
# delivery of the endpoint, 12-55 ms at a backlog of 10,000 (bench/README.md).
_DUE = (
    select(col(D.id))
    .where(col(D.endpoint_id) == bindparam("endpoint"), _OPEN, col(D.due_at) <= bindparam("now"))
    .where(_UNCLAIMED)
    .order_by(col(D.finished_at), col(D.due_at))
    .limit(bindparam("limit"))
)
_LEASE: dict[Any, Any] = {col(D.claimed_until): bindparam("lease")}
# PostgreSQL: concurrent dispatchers skip each other's rows instead of waiting on them
# (the ids gathered once, as delivery/checks.py's claim does).
_CLAIM_POSTGRES = Sql(
    update(DELIVERIES)
    .values(_LEASE)
    .where(col(D.id) == any_(func.array(_DUE.with_for_update(skip_locked=True).scalar_subquery())))
    .returning(col(D.id))
)
# SQLite has one writer at a time: the conditional UPDATE is the claim.
_CLAIM_SQLITE = Sql(
    update(DELIVERIES).values(_LEASE).where(col(D.id).in_(_DUE)).returning(col(D.id))
)
_CLAIMED = Sql(
    select(
        col(D.id),
        col(D.event_id),
        col(D.attempts),
        col(V.type),
        col(V.created_at),
        col(V.body),
        col(V.session),
    )
    .join(EVENTS, col(V.id) == col(D.event_id))
    .where(col(D.claimed_until) == bindparam("lease"), col(D.endpoint_id) == bindparam("endpoint"))
    .order_by(col(D.id))
)
_KEEP_BODY = Sql(
    update(EVENTS)
    .values({col(V.body): bindparam("rendered")})
    .where(col(V.id) == bindparam("event"), col(V.body).is_(None))
)
_SETTLE = Sql(
    update(DELIVERIES)
    .values(
        {
            col(D.attempts): bindparam("tried"),
            col(D.claimed_until): null(),
            col(D.due_at): bindparam("due"),
            col(D.outcome): bindparam("new_outcome"),
            col(D.finished_at): bindparam("finished"),
        }
    )
    .where(col(D.id) == bindparam("delivery"), col(D.claimed_until) == bindparam("lease"))
)
_HAND_BACK = Sql(
    update(DELIVERIES)
    .values({col(D.claimed_until): null()})
    .where(col(D.endpoint_id) == bindparam("endpoint"), col(D.claimed_until) == bindparam("lease"))
)
_OLDEST_OPEN = Sql(select(func.min(col(D.created_at))).where(_OPEN))


class Claimed(msgspec.Struct):
    delivery_id: int
    event_id: str
    attempts: int
    type: str
    body: str


class Settled(msgspec.Struct):
    """A delivery after an attempt: tried again at `due`, or finished with `outcome`."""

    delivery_id: int
    attempts: int
    due: datetime
    outcome: str | None
    finished_at: datetime | None


async def claim(
    sql: SqlTransaction, endpoint_id: str, now: datetime, lease: datetime, limit: int
) -> list[Claimed]:
    """Lease up to `limit` of the endpoint's due deliveries until `lease`, and read them."""
    statement = _CLAIM_POSTGRES if sql.is_postgres else _CLAIM_SQLITE
    params = {"endpoint": endpoint_id, "now": now, "lease": lease, "limit": limit}
    if not await sql.column(statement, params):
        return []
    rows = await sql.rows(_CLAIMED, {"lease": lease, "endpoint": endpoint_id})
    bodies = {
        r["event_id"]: stored_body(r["type"], r["created_at"], r["body"], r["session"])
        for r in rows
    }
    # A body rendered from its session is kept: every retry sends these bytes, whatever
    # release renders the next one.
    rendered = {r["event_id"] for r in rows if r["body"] is None}
    await sql.execute_many(_KEEP_BODY, [{"event": e, "rendered": bodies[e]} for e in rendered])
    return [
        Claimed(r["id"], r["event_id"], r["attempts"], r["type"], bodies[r["event_id"]])
        for r in rows
    ]


async def settle(sql: SqlTransaction, lease: datetime, settled: list[Settled]) -> None:
    """Where the lease still stands: a delivery another dispatcher took over since is
    that one's to settle."""
    await sql.execute_many(
        _SETTLE,
        [
            {
                "delivery": s.delivery_id,
                "lease": lease,
                "tried": s.attempts,
                "due": s.due,
                "new_outcome": s.outcome,
                "finished": s.finished_at,
            }
            for s in settled
        ],
    )


async def hand_back(sql: SqlTransaction, endpoint_id: str, lease: datetime) -> None:
    await sql.execute(_HAND_BACK, {"endpoint": endpoint_id, "lease": lease})


async def oldest_open(database: Database) -> datetime | None:
    """When the oldest delivery still due was made (its event's time)."""
    rows = await database.run_alone(_OLDEST_OPEN, {})
    oldest: datetime | None = rows[0][0] if rows else None
    return oldest


# The attempt log.
_INSERT_ATTEMPT = Sql(insert(ATTEMPTS).values(_each_from_new(_ATTEMPT_ROW)))
_ATTEMPTS_OF = Sql(
    select(*_ATTEMPT_ROW)
    .where(col(A.endpoint_id) == bindparam("endpoint"))
    .order_by(col(A.at).desc(), col(A.id).desc())
    .limit(bindparam("limit"))
)


async def insert_attempts(sql: SqlTransaction, attempts: list[AttemptRow]) -> None:
    await sql.execute_many(
        _INSERT_ATTEMPT,
        [{f"new_{k}": v for k, v in msgspec.structs.asdict(a).items()} for a in attempts],
    )


async def attempts_of(database: Database, endpoint_id: str, limit: int) -> list[AttemptRow]:
    """The endpoint's newest attempts first."""
    rows = await database.run_alone(_ATTEMPTS_OF, {"endpoint": endpoint_id, "limit": limit})
    return [AttemptRow(*row) for row in rows]


# Retention: attempts, finished deliveries, and events no delivery kept is of: one still
# due, or finished too lately to go (its attempts are as late, so they are kept too). An
# old event whose delivery was made late (a retry, an endpoint enabled again) stays as
# long as that delivery: deleted with only open ones kept, it left the delivery and its
# attempts naming an event that was gone.
_OLD_ATTEMPT = col(A.at) < bindparam("before")
_OLD_DELIVERY = col(D.finished_at) < bindparam("before")
_KEPT_DELIVERY = or_(_OPEN, col(D.finished_at) >= bindparam("before"))
_OLD_EVENT = (col(V.created_at) < bindparam("before")) & ~exists().where(
    col(D.event_id) == col(V.id), _KEPT_DELIVERY
)
_COUNTS = {
    "attempts": Sql(select(func.count()).select_from(ATTEMPTS).where(_OLD_ATTEMPT)),
    "deliveries": Sql(select(func.count()).select_from(DELIVERIES).where(_OLD_DELIVERY)),
    "events": Sql(select(func.count()).select_from(EVENTS).where(_OLD_EVENT)),
}
_DELETES = {
    "attempts": batch_delete(
        ATTEMPTS.c.id, select(col(A.id)).where(_OLD_ATTEMPT).limit(bindparam("batch"))
    ),
    "deliveries": batch_delete(
        DELIVERIES.c.id, select(col(D.id)).where(_OLD_DELIVERY).limit(bindparam("batch"))
    ),
    "events": batch_delete(
        EVENTS.c.id, select(col(V.id)).where(_OLD_EVENT).limit(bindparam("batch"))
    ),
}
RETAINED = tuple(_COUNTS)


async def count_old(database: Database, kind: str, before: datetime) -> int:
    return int((await database.run_alone(_COUNTS[kind], {"before": before}))[0][0])


async def delete_old(database: Database, kind: str, before: datetime, batch: int) -> int:
    """At most `batch` rows of `kind` older than `before`; how many went."""
    return len(await database.run_alone(_DELETES[kind], {"before": before, "batch": batch}))
