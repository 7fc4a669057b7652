"""The operators' audit trail over HTTP (X-API-Key, read-only keys too)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import get
from litestar.datastructures import State
from litestar.openapi.spec import OpenAPIFormat
from litestar.params import FromQuery, QueryParameter

from service.audit import queries
from service.audit.provider import AuditServices
from service.auth.guards import API_KEY_SECURITY, Operator
from service.columns import parse_rfc3339
from service.errors import InvalidRequest
from service.openapi import DATABASE_UNAVAILABLE, OPERATOR_REFUSALS, problems
from service.pages import PageLimit

Since = Annotated[
    str | None,
    QueryParameter(
        format=OpenAPIFormat.DATE_TIME, description="Actions at or after this RFC 3339 time."
    ),
]


@get(
    "/api/v1/admin/audit",
    tags=["operations"],
    summary="The operators' audit trail, newest first",
    description="A row for every operator route call and operator command that changed, "
    "or tried to change, something: who (`actor`, a key's name or `cli:<user>`), what "
    "(`action`), on what (`target`), how it ended (`outcome`: `ok`, `refused`, `failed`, "
    "`dry_run`, with a short `detail`).",
    security=API_KEY_SECURITY,
    responses=problems(
        {
            400: "`since` is not an RFC 3339 date-time (`invalid_since`), a cursor this "
            "service did not hand out (`invalid_cursor`), or a bad limit.",
            **OPERATOR_REFUSALS,
            503: DATABASE_UNAVAILABLE,
        }
    ),
)
async def list_actions(
    operator: Operator,
    state: State,
    since: Since = None,
    cursor: FromQuery[str | None] = None,
    limit: PageLimit = 50,
) -> queries.ActionPage:
    database = AuditServices.of(state).read_database
    return await queries.page(database, since=since_of(since), cursor=cursor, limit=limit)


def since_of(value: str | None) -> datetime | None:
    """The moment `since` names; read here rather than by Litestar, which takes a bare
    number for a timestamp where the document promises a date-time."""
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        message = "must be an RFC 3339 date-time, such as 2026-12-01T00:00:00Z"
        raise InvalidRequest(
            message, code="invalid_since", errors=[{"field": "since", "message": message}]
        ) from None


routes = [list_actions]
