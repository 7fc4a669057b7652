"""structlog set-up shared by the service, its workers and the CLI.

Everything, including uvicorn's and Alembic's stdlib records, goes through one
formatter whose last step before rendering is `redact_secrets`, so no code path can
log a Stripe key, a client secret, a signature or a token by accident.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import IO, Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"

# Keys whose values are secret whatever they hold (compared without case, '-' or '_').
_SECRET_KEYS = frozenset(
    {
        "authorization",
        "clientsecret",
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
    }
)

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
        )
    )
)


def _normalise_key(key: object) -> str:
    return str(key).lower().replace("-", "").replace("_", "")


def scrub(value: Any) -> Any:
    """Return `value` with every secret replaced, descending into containers."""
    if isinstance(value, str):
        return _SECRET_PATTERN.sub(REDACTED, value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if _normalise_key(key) in _SECRET_KEYS else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [scrub(item) for item in value]
    if isinstance(value, bytes):
        return scrub(value.decode("utf-8", "replace"))
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last line of defence before a record is written."""
    return scrub(event_dict)  # type: ignore[no-any-return]


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


def configure_logging(
    level: str = "info", fmt: str = "json", stream: IO[str] | None = None
) -> None:
    """Route structlog and stdlib logging through one redacting formatter."""
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream is None and sys.stderr.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )
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
