"""What the OpenAPI document promises about refusals.

Every refusal is an RFC 9457 problem (`application/problem+json`, see errors.py), and
each route lists the statuses it can refuse with, so that a generated client, or a
contract test such as schemathesis, knows every answer it may get. Litestar would
otherwise document only a 400 in its own (different) error shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation

PROBLEM_MEDIA_TYPE = "application/problem+json"

# The refusals most routes share, worded once.
DATABASE_UNAVAILABLE = "The database is not reachable right now (`database_unavailable`)."
TOO_LARGE = "The body is over this route's limit (`payload_too_large`)."
RATE_LIMITED = "Over the per-minute budget of this client IP or wallet (`rate_limited`)."
NOT_SIGNED_IN = "No valid wallet token (`unauthorized`)."
NO_API_KEY = "No `X-API-Key` (`unauthorized`)."
WRONG_API_KEY = "An unknown API key, or a wallet token instead of a key (`forbidden`)."
TOO_MANY_WRONG_KEYS = (
    "This client network sent ADMIN_AUTH_FAILURES_PER_MINUTE wrong or missing keys this "
    "minute; every key from it is refused until the minute ends (`rate_limited`)."
)
# Every operator route's refusals; one that changes things also refuses read-only keys.
OPERATOR_REFUSALS = {401: NO_API_KEY, 403: WRONG_API_KEY, 429: TOO_MANY_WRONG_KEYS}
OPERATOR_CHANGE_REFUSALS = {
    **OPERATOR_REFUSALS,
    403: "An unknown API key or a wallet token instead of a key (`forbidden`), or a "
    "read-only key (`insufficient_scope`).",
}


class FieldError(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, kw_only=True, rename="camel"):
    """RFC 9457 problem details; `code` is the stable machine-readable reason."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | msgspec.UnsetType = msgspec.UNSET
    # Stripe's own error code, on `stripe_error` only.
    stripe_code: str | msgspec.UnsetType = msgspec.UNSET


def problems(descriptions: Mapping[int, str]) -> dict[int, ResponseSpec]:
    """The `responses=` of a route handler: a problem for each status it may refuse with."""
    return {
        status: ResponseSpec(
            Problem,
            description=description,
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status, description in descriptions.items()
    }


EVENT_STREAM = "text/event-stream"


def event_stream_operation(event: str, data_schema: str) -> type[Operation]:
    """The `operation_class=` of a Server-Sent Events route: its 200 is `text/event-stream`.

    Its `schema` is a string (the stream's text), so that a generated client reads the
    body as text and never parses it as JSON; its `itemSchema` (OpenAPI 3.2's keyword for
    each item of a sequential media type, left alone by 3.1 tools) says what each event
    carries: `event`, `id`, and `data`, JSON of the component `data_schema`. Litestar has
    no field for `itemSchema`, so the operation adds it as it is written out."""

    @dataclass
    class EventStreamOperation(Operation):
        def to_schema(self) -> dict[str, Any]:
            written = super().to_schema()
            written["responses"]["200"]["content"][EVENT_STREAM]["itemSchema"] = {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "event": {"type": "string", "const": event},
                    "id": {"type": "string"},
                    "retry": {"type": "integer"},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"$ref": f"#/components/schemas/{data_schema}"},
                    },
                },
            }
            return written

    return EventStreamOperation
