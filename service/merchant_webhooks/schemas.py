"""The JSON of the endpoint routes: camelCase, unknown fields refused."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from service.merchant_webhooks.addresses import URL_LIMIT
from service.merchant_webhooks.models import AttemptRow, EndpointRow
from service.merchant_webhooks.rules import EVENT_TYPES

_TYPES = ", ".join(f"`{t}`" for t in EVENT_TYPES)


class _Schema(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    pass


class EndpointCreate(_Schema):
    url: Annotated[str, msgspec.Meta(max_length=URL_LIMIT)]
    events: Annotated[
        list[str] | None,
        msgspec.Meta(description=f"The event types it takes, of {_TYPES}; all when absent."),
    ] = None
    description: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class Endpoint(_Schema):
    id: str
    url: str
    events: list[str]
    description: str | None
    status: str  # `enabled`, or `disabled` after 5 days of nothing but failures
    created_at: datetime


class EndpointCreated(Endpoint):
    secret: str  # shown here and on rotation only


class EndpointList(_Schema):
    items: list[Endpoint]


class RotatedSecret(_Schema):
    secret: str


class Attempt(_Schema):
    event_id: str
    type: str
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class AttemptList(_Schema):
    items: list[Attempt]


def endpoint(row: EndpointRow) -> Endpoint:
    return Endpoint(*_fields(row))


def created(row: EndpointRow) -> EndpointCreated:
    return EndpointCreated(*_fields(row), secret=row.secret)


def _fields(row: EndpointRow) -> tuple[str, str, list[str], str | None, str, datetime]:
    events = list(EVENT_TYPES) if row.events is None else row.events.split(",")
    return row.id, row.url, events, row.description, row.status, row.created_at


def attempt(row: AttemptRow) -> Attempt:
    return Attempt(
        row.event_id, row.type, row.attempt, row.at, row.status_code, row.error, row.duration_ms
    )
