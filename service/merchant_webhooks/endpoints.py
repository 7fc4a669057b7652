"""What operators do with endpoints, for the routes and the `onramp endpoints` commands
alike: register, list, remove, rotate a secret, enable again, read the delivery log,
replay events. Each change records its audit row in its own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.audit.trail import Audit
from service.columns import is_id, new_id, rfc3339, utcnow
from service.database import Database
from service.errors import InvalidRequest, NotFound
from service.merchant_webhooks import repository, rules
from service.merchant_webhooks.addresses import (
    EndpointRefused,
    Resolver,
    checked_address,
    resolve,
    target_of,
)
from service.merchant_webhooks.models import ENDPOINT_ID_PREFIX, AttemptRow, EndpointRow
from service.merchant_webhooks.rules import EVENT_TYPES, subscribed

INVALID_ENDPOINT = "invalid_endpoint"
REPLAY_BATCH = 500


async def check_url(url: str, deployed: bool, resolver: Resolver = resolve) -> None:
    """400 `invalid_endpoint` for a URL an endpoint may not have (addresses.py)."""
    try:
        await checked_address(target_of(url, deployed), deployed, resolver)
    except EndpointRefused as refused:
        raise _invalid("url", f"The endpoint URL {refused}.") from None


def check_events(events: list[str] | None) -> str | None:
    """The types as stored (comma-separated, null for all), or 400 for an unknown one."""
    if events is None:
        return None
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown or not events:
        listed = ", ".join(EVENT_TYPES)
        raise _invalid("events", f"Unknown or no event types; choose among {listed}.")
    return ",".join(t for t in EVENT_TYPES if t in events)


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        message, code=INVALID_ENDPOINT, errors=[{"field": field, "message": message}]
    )


async def add(
    database: Database,
    audit: Audit,
    url: str,
    events: list[str] | None,
    description: str | None,
    *,
    deployed: bool,
    resolver: Resolver = resolve,
) -> EndpointRow:
    """A new endpoint, enabled, with a fresh secret."""
    stored_events = check_events(events)
    await check_url(url, deployed, resolver)
    row = EndpointRow(
        id=new_id(ENDPOINT_ID_PREFIX),
        url=url,
        events=stored_events,
        description=description,
        status=rules.ENDPOINT_ENABLED,
        secret=rules.new_secret(),
        previous_secret=None,
        previous_secret_until=None,
        failing_since=None,
        created_at=utcnow(),
    )
    audit.target = row.id
    async with database.transaction() as sql:
        await repository.insert_endpoint(sql, row)
        await audit.record(sql)
    return row


async def read(database: Database, endpoint_id: str) -> EndpointRow:
    found = (
        await repository.endpoint(database, endpoint_id) if _is_endpoint_id(endpoint_id) else None
    )
    if found is None:
        raise NotFound("No such endpoint.")
    return found


async def listed(database: Database) -> list[EndpointRow]:
    return await repository.all_endpoints(database)


async def remove(database: Database, audit: Audit, endpoint_id: str) -> None:
    """The endpoint, its pending deliveries and its log: nothing more is sent to it."""
    async with database.transaction() as sql:
        if not _is_endpoint_id(endpoint_id) or not await repository.delete_endpoint(
            sql, endpoint_id
        ):
            raise NotFound("No such endpoint.")
        await audit.record(sql)


async def rotate(database: Database, audit: Audit, endpoint_id: str) -> str:
    """A new secret; the one it replaces signs too for `ROTATION_OVERLAP`."""
    secret = rules.new_secret()
    async with database.transaction() as sql:
        until = utcnow() + rules.ROTATION_OVERLAP
        if not _is_endpoint_id(endpoint_id) or not await repository.rotate(
            sql, endpoint_id, secret, until
        ):
            raise NotFound("No such endpoint.")
        await audit.record(sql)
    return secret


async def enable(database: Database, audit: Audit, endpoint_id: str) -> EndpointRow:
    """Enabled again, its run of failures forgotten; its deliveries still due resume."""
    async with database.transaction() as sql:
        if not _is_endpoint_id(endpoint_id) or not await repository.enable(sql, endpoint_id):
            raise NotFound("No such endpoint.")
        await audit.record(sql)
        found = await repository.endpoint_in(sql, endpoint_id)
    assert found is not None
    return found


async def attempts(database: Database, endpoint_id: str, limit: int) -> list[AttemptRow]:
    await read(database, endpoint_id)
    return await repository.attempts_of(database, endpoint_id, limit)


@dataclass(frozen=True)
class Replayed:
    endpoint_id: str
    events: int


async def replay(
    database: Database,
    since: datetime,
    endpoint_id: str | None,
    *,
    dry_run: bool,
    retention_days: int,
) -> list[Replayed]:
    """Every event written since `since` due again now, with its own id, to each
    enabled endpoint (or the one named) that takes its type; how many per endpoint."""
    horizon = rules.replay_horizon(retention_days, utcnow())
    if since < horizon:
        raise InvalidRequest(
            f"Events written before {rfc3339(horizon)} may be deleted by retention"
            " (OUTGOING_WEBHOOK_RETENTION_DAYS) while they are replayed; replay from then"
            " or later.",
            code="replay_beyond_retention",
        )
    if endpoint_id is not None:
        chosen = [await read(database, endpoint_id)]
    else:
        chosen = [e for e in await listed(database) if e.status == rules.ENDPOINT_ENABLED]
    counts = {e.id: 0 for e in chosen}
    after = ""
    while True:
        events = await repository.events_since(database, since, after, REPLAY_BATCH)
        if not events:
            break
        after = events[-1][0]
        pairs = [(i, e.id) for i, kind, _ in events for e in chosen if subscribed(e.events, kind)]
        for _, endpoint in pairs:
            counts[endpoint] += 1
        if not dry_run and pairs:
            async with database.transaction() as sql:
                await repository.replay_deliveries(sql, pairs, utcnow())
    return [Replayed(e, n) for e, n in counts.items()]


def _is_endpoint_id(value: str) -> bool:
    return is_id(value, ENDPOINT_ID_PREFIX)
