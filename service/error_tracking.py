"""Unhandled errors reported to Sentry when `SENTRY_DSN` is set, through sentry-sdk's own
integrations: Litestar's for the routes (one event for a request that fails, the
errors it logged on the way as its breadcrumbs), logging's for error records outside a
request (the stdlib's, and the service's own error events, handed over by
service/logs.py: the worker's failed rounds), the interpreter's hook for a command
that dies of one, and `report` for a database's refusal that a command tells in one line
(service/commands.py).

What leaves the process is what the logs would show: every event and breadcrumb passes
the logs' redaction (`scrub`) last, and nothing is collected that the logs leave out
(no default PII, no request bodies, no local variables, whose values sentry-sdk cuts to
a length at which a secret's shape may no longer be recognised). A domain error
(`OnrampError`: a 4xx, or 503 for a dependency down) is an answer, not a bug, and is
not reported; alerts cover outages. Without `SENTRY_DSN` sentry-sdk is not imported.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import structlog

from service import logs
from service.errors import OnrampError
from service.release import RELEASE

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint
    from structlog.typing import EventDict

    from service.settings import Settings

# Keys of a structlog event that are not its fields.
_NOT_FIELDS = frozenset({"event", "exc_info", "level", "logger", "timestamp", "stack_info"})


def start(settings: Settings, component: str) -> bool:
    """Report unhandled errors of this process (`component`: api, worker, command) to
    Sentry, when SENTRY_DSN is set; whether it is."""
    dsn = settings.error_tracking.sentry_dsn
    if dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.litestar import LitestarIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn.get_secret_value(),
        environment=settings.server.environment,
        release=RELEASE,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        # Only what is named here: integrations enabled by what happens to be installed
        # (HTTP clients, SQLAlchemy, Redis) would patch libraries behind the service's back.
        auto_enabling_integrations=False,
        integrations=[
            LitestarIntegration(),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        before_send=_redacted_event,
        before_breadcrumb=_redacted_breadcrumb,
    )
    sentry_sdk.set_tag("component", component)
    logs.report_errors_to(_report_logged_error)
    return True


def report(error: BaseException) -> None:
    """Send `error` as an unhandled one would be, when `start` started error tracking:
    for a failure a command turns into one line rather than a traceback
    (service/commands.py), which the interpreter's hook never sees."""
    if "sentry_sdk" not in sys.modules:  # never started: no SENTRY_DSN
        return
    import sentry_sdk

    sentry_sdk.capture_exception(error)


def _redacted_event(event: Event, hint: Hint) -> Event | None:
    error = (hint.get("exc_info") or (None, None, None))[1]
    if isinstance(error, OnrampError):
        return None
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id is not None:
        event.setdefault("tags", {})["request_id"] = request_id
    for exception in event.get("exception", {}).get("values", []):
        exception["value"] = _first_line(exception.get("value"))
    return logs.scrub(event)  # type: ignore[no-any-return]


def _first_line(value: object) -> object:
    """An exception's message to its first line: the lines after it are a database's
    statement and parameters (SQLAlchemy's `[SQL: …]`, `[parameters: …]`) or its
    `DETAIL: Failing row contains (…)`, values that no key names as secret."""
    return value.split("\n", 1)[0] if isinstance(value, str) else value


def _redacted_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    return logs.scrub(crumb)  # type: ignore[no-any-return]


def _report_logged_error(event_dict: EventDict) -> None:
    """One of the service's own error events, as logging's integration reports a
    record: its message, logger, exception and fields. Within a request it is a
    breadcrumb of the request's one event: a request that fails logs its error on the
    way out at every layer, and Litestar's integration reports the failure itself."""
    import sentry_sdk
    from sentry_sdk.integrations.logging import EventHandler

    fields = {key: value for key, value in event_dict.items() if key not in _NOT_FIELDS}
    if "request_id" in event_dict:
        sentry_sdk.add_breadcrumb(
            category=str(event_dict.get("logger", "onramp")),
            message=str(event_dict.get("event", "")),
            level="error",
            data=fields,
        )
        return
    exc_info = event_dict.get("exc_info")
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif not isinstance(exc_info, tuple):
        exc_info = None
    record = logging.makeLogRecord(
        {
            **fields,
            "name": event_dict.get("logger", "onramp"),
            "levelno": logging.ERROR,
            "levelname": "ERROR",
            "msg": str(event_dict.get("event", "")),
            "exc_info": exc_info,
        }
    )
    EventHandler().handle(record)
