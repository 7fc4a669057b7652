"""The outermost layer every request passes through: request id, access line, headers.

Litestar applies its own middleware per route handler, so a 404 or 405 from the router
would never see it. This wrapper sits around the whole ASGI handler instead, so every
response, an error of the router's included, carries `X-Request-ID` and the security
headers and is logged once.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

_API_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)
# The interactive API docs load their scripts and styles; everything else is data.
_DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; "
    b"frame-ancestors 'none'"
)
_DEMO_CSP = (
    b"default-src 'none'; script-src 'self'; connect-src 'self'; "
    b"style-src 'unsafe-inline'; frame-ancestors 'none'"
)
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")

access_log = structlog.get_logger("onramp.access")


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's request id when it is safe to echo and log, else a fresh one."""
    for name, value in headers:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        request_id = request_id_from(scope["headers"])
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        path = scope["path"]
        extra = self._headers_for(path, request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(header for header in extra if header[0] not in present),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            access_log.info(
                "request",
                method=method,
                path=path,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()

    def _headers_for(self, path: str, request_id: str) -> list[tuple[bytes, bytes]]:
        headers = [(b"x-request-id", request_id.encode())]
        if path.startswith("/schema") and not path.endswith((".json", ".yaml", ".yml")):
            headers.extend(h for h in _API_HEADERS if h[0] != b"content-security-policy")
            headers.append((b"content-security-policy", _DOCS_CSP))
        elif path.startswith("/demo"):
            headers.extend(h for h in _API_HEADERS if h[0] != b"content-security-policy")
            headers.append((b"content-security-policy", _DEMO_CSP))
        else:
            headers.extend(_API_HEADERS)
        if self.hsts:
            headers.append(_HSTS)
        return headers
