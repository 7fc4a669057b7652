"""structlog set-up shared by the service, its workers and the CLI.

Everything, including uvicorn's and Alembic's stdlib records, goes through one
formatter whose last step before rendering is `redact_secrets`, so no code path can
log a Stripe key, a client secret, a signature or a token by accident.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import IO, Any

import msgspec
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"

# Keys whose values are secret whatever they hold (compared without case, '-' or '_').
_SECRET_KEYS = frozenset(
    {
        "authorization",
        "clientsecret",
        "redirecturl",  # a link that pays for the session
        "secret",
        "secretkey",
        "webhooksecret",
        "signature",
        "stripesignature",
        "token",
        "jwt",
        "apikey",
        "xapikey",
        "password",
        "cookie",
        "setcookie",
        "ticket",  # a stream ticket (auth/tickets.py)
    }
)

# What every stream ticket starts with ("event stream ticket", service/auth/tickets.py):
# declared here so that the shape below and the tickets issued cannot disagree.
STREAM_TICKET_PREFIX = "est_"

# Secrets recognised by shape wherever they appear inside a string, as one pattern so
# that every logged string costs one scan.
_SECRET_PATTERN = re.compile(
    "|".join(
        (
            r"\b[sr]k_(?:test|live)_[A-Za-z0-9_]+",
            r"\bwhsec_[A-Za-z0-9+/=_-]+",
            r"\bcos_[A-Za-z0-9]+_secret_[A-Za-z0-9_]+",
            r"\b[Bb][Ee][Aa][Rr][Ee][Rr]\s+[A-Za-z0-9._~+/=-]+",
            r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
            r"\bv[01]=[0-9a-fA-F]{64}\b",
            r"\b0x[0-9a-fA-F]{130,}\b",
            r"(?<=://)[^:/@\s]+:[^@\s]+(?=@)",
            rf"\b{STREAM_TICKET_PREFIX}[A-Za-z0-9_-]{{16,}}",
        )
    )
)


# Every secret shape above contains one of these (in any case), so a string holding none
# of them cannot match and skips the scan: most logged strings (paths, ids, timestamps)
# hold none, and scanning each cost a third of an access line (bench/README.md).
def _may_hold_a_secret(text: str) -> bool:
    lowered = text.lower()
    return (
        "k_" in lowered
        or "whsec_" in lowered
        or "_secret_" in lowered
        or "bearer" in lowered
        or "eyj" in lowered
        or "=" in lowered
        or "0x" in lowered
        or "://" in lowered
        or STREAM_TICKET_PREFIX in lowered
    )


@lru_cache(maxsize=1024)
def is_secret_key(key: object) -> bool:
    """Whether a value kept under this name is secret whatever it holds (the traces'
    attributes are judged by it too, service/tracing)."""
    return str(key).lower().replace("-", "").replace("_", "") in _SECRET_KEYS


# Values that cannot hold a secret: returned as they are without further checks.
_PLAIN = frozenset({int, float, bool, type(None)})


def scrub(value: Any) -> Any:
    """Return `value` with every secret replaced, descending into containers."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is str or isinstance(value, str):
        return _SECRET_PATTERN.sub(REDACTED, value) if _may_hold_a_secret(value) else value
    if isinstance(value, Mapping):
        return {key: REDACTED if is_secret_key(key) else scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [scrub(item) for item in value]
    if isinstance(value, bytes):
        return scrub(value.decode("utf-8", "replace"))
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last line of defence before a record is written."""
    if _plainly_clean(event_dict):
        return event_dict
    return scrub(event_dict)  # type: ignore[no-any-return]


def _plainly_clean(event_dict: EventDict) -> bool:
    """Whether `scrub` would return the event as it is, judged in one pass: no secret
    key, only strings and plain values, and no marker of a secret's shape in all of its
    strings together (a marker in any one string is in their join, so the answer is
    never wrong, only sometimes cautious). An access line is this kind of event, and
    scrubbing its dozen values one by one was a twentieth of a session read."""
    strings = []
    for key, value in event_dict.items():
        kind = type(value)
        if kind is str:
            strings.append(value)
        elif kind not in _PLAIN:
            return False
        if is_secret_key(key):
            return False
    return not _may_hold_a_secret("\n".join(strings))


# Who hears of the service's own error events besides the log (error tracking, when
# SENTRY_DSN is set: service/error_tracking.py); None otherwise, costing one comparison.
_error_reporter: Callable[[EventDict], None] | None = None
_ERROR_METHODS = frozenset({"error", "exception", "critical"})


def report_errors_to(reporter: Callable[[EventDict], None] | None) -> None:
    """Hand every error event of the service's own loggers, as logged and before it is
    rendered, to `reporter` too (None: to nobody)."""
    global _error_reporter
    _error_reporter = reporter


def _report_errors(_: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    if _error_reporter is not None and method in _ERROR_METHODS:
        _error_reporter(event_dict)
    return event_dict


_ENCODER = msgspec.json.Encoder(enc_hook=repr)


def _json(event: EventDict, **_: Any) -> str:
    """One JSON line: msgspec is several times faster than `json.dumps` at this; what
    it cannot encode (keys that are not strings, say) goes through `json.dumps`, and
    anything neither knows is written as its repr()."""
    try:
        return _ENCODER.encode(event).decode()
    except (TypeError, ValueError):
        return json.dumps(event, default=repr)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of the record, not at set-up.

    Test runners and tools swap `sys.stderr`; a handler holding the old one would write
    to a closed stream.
    """

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _: IO[str]) -> None:
        pass


class _Lines:
    """Where the service's own (structlog) events go: one rendered line each, to the
    configured stream or else to whatever `sys.stderr` is at the time, as the stdlib
    handler writes other libraries' records."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def write(self, line: str) -> None:
        stream = self.stream or sys.stderr
        with self.lock:
            stream.write(line + "\n")
            stream.flush()


class _NamedLogger:
    """The logger structlog wraps: it writes the rendered line and knows its name (the
    `logger` key)."""

    def __init__(self, name: str, lines: _Lines) -> None:
        self.name = name
        self.lines = lines

    def msg(self, line: str) -> None:
        self.lines.write(line)

    debug = info = warning = warn = error = critical = fatal = exception = log = msg


def _timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The event's time in UTC, ISO 8601 with microseconds and a Z, like structlog's
    `TimeStamper(fmt="iso", utc=True)`: written by hand because that one builds and
    formats a datetime for each event, and the date and time change once a second
    (a tenth of an access line, bench/README.md)."""
    global _second
    now = time.time()
    second = int(now)
    # Read once and replaced whole: threads that log may each find another second here.
    known = _second
    if known[0] != second:
        known = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    event_dict["timestamp"] = f"{known[1]}.{int((now - second) * 1_000_000):06d}Z"
    return event_dict


_second: tuple[int, str] = (-1, "")

# The access line's logger and processors, as `configure_logging` last set them; None
# when the level leaves out info.
_access: tuple[_NamedLogger, list[Processor]] | None = None
ACCESS_LOGGER = "onramp.access"


def access_line(fields: dict[str, Any]) -> None:
    """Log one request's access line (`event: request` with `fields`) as structlog would,
    through the same processors and writer, but called directly: structlog's bound
    logger (its lookup, binding and dispatch) cost a quarter of the line, and every
    request writes one (bench/README.md)."""
    if _access is None:
        return
    logger, processors = _access
    event: Any = {**fields, "event": "request"}
    for processor in processors:
        event = processor(logger, "info", event)
    logger.msg(event)


def configure_logging(
    level: str = "info", fmt: str = "json", stream: IO[str] | None = None
) -> None:
    """Route structlog and stdlib logging through the same redacting processors.

    The service's own events are rendered by structlog itself and written directly;
    records of other libraries (uvicorn, Alembic) go through a stdlib handler with the
    same processors. Through stdlib logging, the service's access line cost three times
    as much (a record built and copied, handlers, a formatter; bench/README.md), and
    events below the level were built before being dropped; now they cost nothing.
    """
    global _access
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _timestamp,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_json)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream is None and sys.stderr.isatty())
    )
    rendering: list[Processor] = [structlog.processors.format_exc_info, redact_secrets, renderer]
    lines = _Lines(stream)
    processors = [*shared, _report_errors, *rendering]
    structlog.configure(
        processors=processors,
        logger_factory=lambda name="", *_: _NamedLogger(str(name), lines),
        wrapper_class=structlog.make_filtering_bound_logger(level.lower()),
        cache_logger_on_first_use=False,
    )
    writes_info = logging.getLevelName(level.upper()) <= logging.INFO
    _access = (_NamedLogger(ACCESS_LOGGER, lines), processors) if writes_info else None
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
    )
    # No record is formatted with its caller's file and line; finding them walked the
    # stack on every record.
    logging._srcfile = None
    handler = logging.StreamHandler(stream) if stream else _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "alembic"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # The service writes its own access line (with the request id); uvicorn's would double it.
    logging.getLogger("uvicorn.access").disabled = True
    for chatty in ("sqlalchemy.engine", "httpx", "httpcore", "stripe", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
