"""The domain's error family and its one translation to RFC 9457 problem details.

Domain code raises `OnrampError` subclasses and never builds HTTP responses; routing
and framework errors arrive as Litestar's `HTTPException`s. Both become
`application/problem+json` with a stable `code` here, through Litestar's problem
details plugin. Anything else is a bug: logged with the request id, answered with a
bare 500 that leaks nothing.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

from service import outages

log = structlog.get_logger("onramp.errors")


class OnrampError(Exception):
    """A failure the caller can act on; `code` is the stable machine-readable reason."""

    status: ClassVar[int] = 400
    code: str = "invalid_request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.code
        self.errors = errors
        self.headers = headers
        self.extra = extra


class InvalidRequest(OnrampError):
    status = 400
    code = "invalid_request"


class Unauthorized(OnrampError):
    status = 401
    code = "unauthorized"


class Forbidden(OnrampError):
    status = 403
    code = "forbidden"


class InsufficientScope(Forbidden):
    """A read-only operator key on an operator route that changes something."""

    code = "insufficient_scope"


class NotFound(OnrampError):
    status = 404
    code = "not_found"


class Conflict(OnrampError):
    status = 409
    code = "conflict"


class Unprocessable(OnrampError):
    status = 422
    code = "unprocessable"


class RateLimited(OnrampError):
    status = 429
    code = "rate_limited"


class TooManyStreams(OnrampError):
    """A wallet or a client network has as many live streams open as it may: one of
    them must end before another opens."""

    status = 429
    code = "too_many_streams"


class StreamCeiling(TooManyStreams):
    """This process holds as many live streams as it may (`LIVE_MAX_STREAMS`): another
    replica, or this one a little later, has room."""

    status = 503


class UpstreamUnavailable(OnrampError):
    status = 502
    code = "upstream_unavailable"


class NotConfigured(OnrampError):
    """A dependency is missing or down: 503, and nothing was changed."""

    status = 503
    code = "not_configured"


class DatabaseUnavailable(OnrampError):
    """The database is down, restarting, out of connections or read-only (a standby
    after a failover): retry, nothing was done. `Database` raises it for every driver
    and pool failure of that kind."""

    status = 503
    code = "database_unavailable"

    def __init__(self, cause: BaseException) -> None:
        super().__init__(
            "The database is not reachable right now; retry shortly.",
            headers={"Retry-After": "2"},
        )
        self.cause = type(cause).__name__


_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemDetailsException:
    body: dict[str, Any] = {"code": code, **extra}
    if errors:
        body["errors"] = errors
    return ProblemDetailsException(
        status_code=status,
        detail=detail,
        title=HTTPStatus(status).phrase,
        type_=f"urn:onramp:problem:{code}",
        headers=headers,
        extra=body,
    )


def _from_domain(error: OnrampError) -> ProblemDetailsException:
    if isinstance(error, DatabaseUnavailable):
        log.warning("database_unavailable", error=error.cause)
        outages.database_unavailable.labels("api").inc()
    return problem(
        error.status,
        error.code,
        error.detail,
        errors=error.errors,
        headers=error.headers,
        **error.extra,
    )


def _from_http(error: HTTPException) -> ProblemDetailsException:
    status = error.status_code
    code = _HTTP_CODES.get(status, f"http_{status}")
    if isinstance(error, ValidationException):
        errors = _field_errors(error.extra)
        fields = {e["field"] for e in errors}
        if len(fields) == 1 and (field_code := _FIELD_CODES.get(fields.pop())):
            code = field_code
        return problem(status, code, "The request is not valid.", errors=errors)
    detail = error.detail
    if status == 413:
        detail = "The request body is larger than this route accepts."
    elif status >= 500:
        detail = HTTPStatus(status).phrase
    return problem(status, code, detail, headers=error.headers)


# Fields whose shape is checked by the document's own schema, with the domain's code.
_FIELD_CODES = {"sourceAmount": "invalid_amount", "destinationAmount": "invalid_amount"}


def _field_errors(extra: Any) -> list[dict[str, str]]:
    if not isinstance(extra, list):
        return []
    return [
        {"field": str(item.get("key") or item.get("source") or ""), "message": item["message"]}
        for item in extra
        if isinstance(item, dict) and "message" in item
    ]


def _unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    log.error(
        "unhandled_exception",
        method=request.method,
        path=request.url.path,
        exc_info=error,
    )
    return problem(
        500, "internal_error", "An unexpected error occurred; quote the request id to support."
    ).to_response(request)


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={
                OnrampError: _from_domain,
                HTTPException: _from_http,
            }
        )
    )


exception_handlers = {Exception: _unexpected}
