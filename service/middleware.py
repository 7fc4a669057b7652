"""The outermost layer every request passes through: request id, access line, headers
and the request metrics.

Litestar applies its own middleware per route handler, so a 404 or 405 from the router
would never see it. This wrapper sits around the whole ASGI handler instead, so every
response, an error of the router's included, carries `X-Request-ID` and the security
headers and is logged once.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from typing import Any

import structlog
from litestar import Request
from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import access_line

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
# The example dApp (DAPP_DIR): its own scripts and styles, the API on the same origin,
# and Stripe's onramp widget (scripts, frames and calls to Stripe's hosts).
_STRIPE_HOSTS = b"https://js.stripe.com https://crypto-js.stripe.com"


def _app_csp(stand_in: str | None) -> bytes:
    """The dApp's policy; with the Stripe stand-in, its origin too (its embedded onramp's
    script, the frame of its payment page, and the session state the script reads)."""
    extra = b" " + stand_in.encode() if stand_in else b""
    return (
        b"default-src 'none'; script-src 'self' " + _STRIPE_HOSTS + extra + b"; "
        b"frame-src " + _STRIPE_HOSTS + b" https://*.stripe.com" + extra + b"; "
        b"connect-src 'self' https://*.stripe.com" + extra + b"; "
        b"style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data: https://*.stripe.com; frame-ancestors 'none'"
    )


_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
_CSP = {
    "api": dict(_API_HEADERS)[b"content-security-policy"],
    "docs": _DOCS_CSP,
    "demo": _DEMO_CSP,
    "app": _app_csp(None),
}


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's request id when it is safe to echo and log, else a fresh one."""
    for name, value in headers:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return os.urandom(16).hex()


class RequestContextMiddleware:
    """Every request passes here, so what can be is prepared once: the header sets of
    each kind of page. (The access line follows logging as last configured, as tests
    reconfigure it: service/logs.py.)"""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts: bool = False,
        stand_in: str | None = None,
        replica: str | None = None,
        metrics: RequestMetrics | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        # Which replica answered (REPLICA_NAME), in each access line.
        self.replica = replica
        self.hsts = hsts
        self._csp = {**_CSP, "app": _app_csp(stand_in)}
        self._headers = {kind: self._static_headers(kind) for kind in _CSP}
        # Every header this layer adds; a response that sets one of them keeps its own.
        self._names = frozenset(
            [b"x-request-id", *(name for kind in self._headers.values() for name, _ in kind)]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        request_id = request_id_from(scope["headers"])
        scope.setdefault("state", {})["request_id"] = request_id
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        path = scope["path"]
        extra = [(b"x-request-id", request_id.encode()), *self._headers[_kind_of(path)]]
        own = self._names
        started = time.perf_counter()
        status: int | None = None  # until a response starts

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers") or ()
                present = {name.lower() for name, _ in headers}
                message["headers"] = (
                    [*headers, *extra]
                    if present.isdisjoint(own)
                    else [*headers, *(header for header in extra if header[0] not in present)]
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            try:
                access_line(
                    {
                        "method": method,
                        "path": path,
                        "status": 500 if status is None else status,
                        "duration_ms": round(seconds * 1000, 2),
                        # Read after the app ran: ForwardedClient has put the client
                        # behind TRUSTED_PROXIES there (service/forwarded.py).
                        "client": client[0] if (client := scope.get("client")) else None,
                        "replica": self.replica,
                    }
                )
                if self.metrics is not None:
                    self.metrics.finished(scope, method, status, seconds)
            finally:
                structlog.contextvars.reset_contextvars(**bound)

    def _static_headers(self, kind: str) -> tuple[tuple[bytes, bytes], ...]:
        headers = [h for h in _API_HEADERS if h[0] != b"content-security-policy"]
        headers.append((b"content-security-policy", self._csp[kind]))
        if self.hsts:
            headers.append(_HSTS)
        return tuple(headers)


def _kind_of(path: str) -> str:
    """The interactive API docs, the demo page and the example dApp load scripts;
    everything else is data."""
    if path.startswith("/api/"):  # nearly every request: one comparison
        return "api"
    if path.startswith("/schema") and not path.endswith((".json", ".yaml", ".yml")):
        return "docs"
    if path.startswith("/demo"):
        return "demo"
    if path.startswith("/app"):
        return "app"
    return "api"


class RequestMetrics:
    """Litestar's request metrics (the same names, labels and buckets: its Prometheus
    middleware's own factories make them), recorded for less.

    Litestar's middleware runs in every route, and any route middleware makes Litestar
    put a second exception handler around each handler: the two layers were 3.4% of a
    session read (bench/README.md). (With traces on, their span naming is such a
    middleware, service/tracing.) Here the count, the duration and the errors are
    recorded by the outer wrapper as it writes the access line, once the router has
    named the route; the requests in progress from `before_request`, the first point at
    which the route is known. Each label set's children are looked up once.
    """

    def __init__(self, config: PrometheusConfig) -> None:
        if config.labels or config.exemplars or config.excluded_http_methods:
            raise ValueError("request metrics take no extra labels, exemplars or methods")
        if not config.group_path:
            raise ValueError("request metrics are by route (group_path)")
        self._factory = PrometheusMiddleware(app=_never_called, config=config)
        self._app_name = config.app_name
        # Route templates, compared whole (Litestar's middleware took them as patterns).
        excluded = config.exclude or ()
        self._excluded = frozenset([excluded] if isinstance(excluded, str) else excluded)
        self._in_progress: dict[tuple[str, str], Any] = {}
        self._finished: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    async def started(self, request: Request[Any, Any, Any]) -> None:
        """Litestar's `before_request` hook: the request is in progress on its route."""
        scope = request.scope
        method, path = scope["method"], scope["path_template"]
        if path in self._excluded:
            return
        in_progress = self._in_progress.get((method, path))
        if in_progress is None:
            labels = self._labels(method, path, 200)
            gauge = self._factory.requests_in_progress(labels)
            in_progress = self._in_progress[(method, path)] = gauge.labels(*labels.values())
        in_progress.inc()
        scope["state"][_IN_PROGRESS] = in_progress

    def finished(self, scope: Scope, method: str, status: int | None, seconds: float) -> None:
        """Count the request on its route (`status` None: it ended with no answer, cut
        off by its client or a shutdown, and is counted nowhere); one the router found
        no route for (a 404, a 405) is on none, as in Litestar's own middleware."""
        if (in_progress := scope["state"].pop(_IN_PROGRESS, None)) is not None:
            in_progress.dec()
        path = scope.get("path_template")
        if status is None or path is None or path in self._excluded:
            return
        finished = self._finished.get((method, path, status))
        if finished is None:
            labels = self._labels(method, path, status)
            values = list(labels.values())
            finished = self._finished[(method, path, status)] = (
                self._factory.request_count(labels).labels(*values),
                self._factory.request_time(labels).labels(*values),
                self._factory.requests_error_count(labels).labels(*values),
            )
        count, timing, errors = finished
        if status >= HTTP_500_INTERNAL_SERVER_ERROR:
            errors.inc()
        count.inc()
        timing.observe(seconds)

    def _labels(self, method: str, path: str, status: int) -> dict[str, str | int | float]:
        return {"method": method, "path": path, "status_code": status, "app_name": self._app_name}


_IN_PROGRESS = "onramp_in_progress"


async def _never_called(scope: Scope, receive: Receive, send: Send) -> None:
    """The app Litestar's middleware must be given to make the metrics; RequestMetrics
    never calls the middleware, so nothing ever reaches this."""
    raise RuntimeError("RequestMetrics' metric factory was called as a middleware")
